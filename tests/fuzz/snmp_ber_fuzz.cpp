// The SNMP agent's BER codec (services/snmp/ber) and its answers on arbitrary datagrams:
// never reads out of bounds; a message it accepts encodes to bytes that decode to the same
// message; the answer to it (against a small MIB) encodes and decodes again, and stays within
// the size it was given; peek_version_and_community accepts whatever decode_message accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "services/snmp/ber.hpp"
#include "services/snmp/mib.hpp"
#include "services/snmp/snmp_agent.hpp"

namespace {

const outpost::snmp::MibView& view() {
  using namespace outpost::snmp;
  static const MibView v = [] {
    outpost::MetricSet m;
    m.counter("outpost_http_requests_total", "", {{"outcome", "TCP_MEM_HIT"}, {"method", "GET"}}, 7);
    m.gauge("outpost_start_time_seconds", "", {}, 1000);
    MibInfo info{"1.0", "fuzz", 1 << 20, 0};
    return build_mib(m, info, 2000);
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::snmp;
  Message m;
  std::string why;
  if (!decode_message({data, size}, &m, &why)) {
    if (why.empty()) std::abort();
    return 0;
  }
  std::int64_t version = 0;
  std::string community;
  if (!peek_version_and_community({data, size}, &version, &community, &why) || version != m.version ||
      community != m.community)
    std::abort();
  auto bytes = encode_message(m);
  Message again;
  if (!decode_message(bytes, &again, &why) || !(again == m)) std::abort();
  constexpr std::size_t kLimit = 2048;
  Message r = answer(m, view(), kLimit);
  auto out = encode_message(r);
  if (r.pdu == Tag::kResponse && (m.pdu == Tag::kGetRequest || m.pdu == Tag::kGetNextRequest ||
                                  m.pdu == Tag::kGetBulkRequest) && out.size() > kLimit + 16)
    std::abort();
  Message back;
  if (!decode_message(out, &back, &why) || !(back == r)) std::abort();
  return 0;
}
