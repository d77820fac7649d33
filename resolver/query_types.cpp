#include "resolver/query_types.hpp"

#include "resolver/dns_message.hpp"

namespace outpost::dns {

std::optional<std::uint16_t> unresolvable_type_rcode(std::uint16_t qtype) {
  constexpr std::uint16_t kTkey = 249, kTsig = 250, kIxfr = 251, kAxfr = 252, kMailb = 253, kMaila = 254;
  if (qtype == kIxfr || qtype == kAxfr) return rcode::REFUSED;
  if (qtype == 0 || qtype == type::OPT || qtype == kTkey || qtype == kTsig || qtype == kMailb || qtype == kMaila ||
      (qtype >= 128 && qtype <= 248))
    return rcode::FORMERR;
  return std::nullopt;
}

}  // namespace outpost::dns
