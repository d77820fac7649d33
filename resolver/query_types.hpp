// Which question types a recursive resolver resolves (RFC 6895 section 3.1). Data types and ANY
// (answered as the authorities answer it, a subset per RFC 8482) are resolved. The rest never
// go upstream or into the cache: zone transfers (IXFR, AXFR, over UDP or TCP) REFUSED, there is
// no zone to transfer; the meta-TYPEs OPT, TSIG and TKEY, the obsolete MAILB and MAILA and the
// unassigned meta range 128-248 FORMERR, they are not questions (both as Unbound answers); and
// type 0, reserved and never a data type, FORMERR too (Unbound would resolve it).
#pragma once
#include <cstdint>
#include <optional>

namespace outpost::dns {

// The RCODE for a question of this type, or nullopt when it is resolved.
std::optional<std::uint16_t> unresolvable_type_rcode(std::uint16_t qtype);

}  // namespace outpost::dns
