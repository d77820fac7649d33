// Response scrubbing (Unbound's iter_scrub): drops every record a server is not entitled to
// give. A server asked about zone Z may only speak for names inside Z (its bailiwick); answer
// records must lie on the CNAME chain from the question; authority NS/SOA records must be at an
// ancestor of the name asked; additional records are kept only as addresses inside Z of the
// hosts that kept NS, MX and SRV records name (anything else there is bait).
#pragma once
#include "resolver/dns_message.hpp"

namespace outpost::dns {

struct ScrubStats {
  unsigned dropped = 0;
};

// `zone` is the zone of the server asked (for a forwarder: the root, it may speak for anything).
ScrubStats scrub_response(Message* m, const Question& asked, const Name& zone);

}  // namespace outpost::dns
