// Delegation points: a zone cut with its name servers and their known addresses
// (Unbound's iter_delegpt). Built from root hints, from a referral, or from the cache.
#pragma once
#include <optional>
#include <vector>

#include "core/net_address.hpp"
#include "resolver/dns_cache.hpp"
#include "resolver/dns_message.hpp"

namespace outpost::dns {

struct NameServer {
  Name name;
  std::vector<IpAddress> addresses;
  bool resolving = false;  // an address lookup for it has been started
  bool resolved = false;   // that lookup has finished (with or without addresses)
};

struct Delegation {
  Name zone;
  std::vector<NameServer> servers;

  bool has_addresses() const;
  // No server has an address and every server's name lies inside the zone, so finding one
  // would need this very delegation (Unbound's iter_dp_is_useless).
  bool unusable() const;
  std::vector<IpAddress> all_addresses() const;
  NameServer* find(const Name& ns);
  // Adds an address for a server name in the set (ignored for names not in the set).
  void add_address(const Name& ns, const IpAddress& a);
};

IpAddress address_of(const Rdata& rd);  // A or AAAA rdata; unspecified otherwise

// A delegation from a referral's NS RRset plus glue from `additional`, taking addresses only
// for server names inside `bailiwick`, the zone of the server that referred (in-domain glue
// and sibling glue, as Unbound: two zones whose servers live in each other are reachable only
// through the parent's glue); other server names are left to be resolved separately.
Delegation delegation_from_referral(const RRset& ns, const std::vector<RRset>& additional, const Name& bailiwick);

// The name whose closest zone cut holds the answer to a question: the name itself, but its
// parent for DS, which lives on the parent side of the cut (RFC 4035 section 3.1.4.1).
Name cut_search_name(const Name& qname, std::uint16_t qtype);

// The deepest usable delegation for `qname` known to the cache: an unexpired NS RRset at an
// ancestor of qname (qname itself included) with, for each server, the cached A/AAAA RRsets.
// An unusable one (see Delegation::unusable) is passed over for its parent; at the root the
// caller falls back to the hints.
std::optional<Delegation> delegation_from_cache(DnsCache& cache, const Name& qname, std::uint64_t now_ms);

// Caches a delegation's NS RRset and the glue of a referral inside `bailiwick` (as above).
void cache_referral(DnsCache& cache, const RRset& ns, const std::vector<RRset>& additional, const Name& bailiwick,
                    std::uint64_t now_ms);

// Caches, at glue trust (to reach those servers, never to answer from), the addresses in
// `additional` of the servers `ns` names, for names inside `within`.
void cache_server_addresses(DnsCache& cache, const RRset& ns, const std::vector<RRset>& additional, const Name& within,
                            std::uint64_t now_ms);

}  // namespace outpost::dns
