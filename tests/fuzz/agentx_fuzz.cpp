// The AgentX codec (services/snmp/agentx) on arbitrary bytes from a master: never reads out
// of bounds; a header it accepts has version 1, a known type and a bounded payload length; a
// request it accepts is answered (against a small MIB) with a Response whose header parses
// and names the same IDs and whose payload is as long as the header says.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "services/snmp/agentx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::snmp;
  using namespace outpost::snmp::agentx;
  static const MibView v = [] {
    outpost::MetricSet m;
    m.gauge("outpost_start_time_seconds", "", {}, 1000);
    return build_mib(m, MibInfo{"1.0", "fuzz", 1 << 20, 0}, 2000);
  }();
  Header h;
  std::string why;
  if (!parse_header({data, size}, &h, &why)) {
    if (why.empty()) std::abort();
    return 0;
  }
  if (h.version != 1 || h.payload_length % 4 || h.payload_length > kMaxPayload) std::abort();
  std::span<const std::uint8_t> payload(data + kHeaderSize, std::min<std::size_t>(size - kHeaderSize, h.payload_length));
  if (h.type == PduType::kResponse) {
    Response r;
    parse_response(h, payload, &r, &why);
    return 0;
  }
  Request req;
  if (!parse_request(h, payload, &req, &why)) return 0;
  auto bindings = answer(req, v);
  if (h.type != PduType::kGetBulk && bindings.size() != req.ranges.size()) std::abort();
  auto out = encode_response(h, kNoError, 0, bindings);
  Header back;
  if (!parse_header(out, &back, &why) || back.type != PduType::kResponse || back.packet_id != h.packet_id ||
      back.session_id != h.session_id || back.transaction_id != h.transaction_id ||
      back.payload_length != out.size() - kHeaderSize)
    std::abort();
  return 0;
}
