// The SNTP server's packet reader (services/sntp/ntp_packet) on arbitrary datagrams: never
// reads out of bounds; a refusal says why; an accepted request is a v3/v4 client request, and
// the answer and the KoD built for it are server-mode packets of its version whose origin
// timestamp is its transmit timestamp and which read back as mode 4, not as requests.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "services/sntp/ntp_packet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::sntp;
  Request req;
  std::string why;
  Verdict v = parse_request({data, size}, &req, &why);
  if (v != Verdict::kAnswer) {
    if (why.empty()) std::abort();
    return 0;
  }
  if ((req.version != 3 && req.version != 4) || req.mode != kModeClient) std::abort();
  ServerInfo info;
  for (const Packet& p : {make_response(req, info, 1, 2), make_kod(req, info, "RATE", 1, 2)}) {
    Request back;
    if (parse_request(p, &back, &why) != Verdict::kWrongMode || back.mode != kModeServer ||
        back.version != req.version)
      std::abort();
    std::uint64_t origin = 0;
    for (std::size_t i = 24; i < 32; ++i) origin = origin << 8 | p[i];
    if (origin != req.transmit) std::abort();
  }
  return 0;
}
