// Settings of the resolver engine (filled from the [dns] config section by the app, or
// directly by tests and tools).
#pragma once
#include <cstdint>
#include <vector>

#include <memory>

#include "resolver/delegation.hpp"

namespace outpost::dns {

class TrustAnchorTracker;

struct ForwardZone {
  Name zone;  // "." forwards everything
  std::vector<IpAddress> servers;
  std::uint16_t port = 53;
};

struct ResolverConfig {
  Delegation root_hints;          // builtin_root_hints() or a hints file
  std::uint16_t upstream_port = 53;
  bool qname_minimisation = true;  // RFC 9156
  // As Unbound's qname-minimisation-strict. Off (the default): an error or an NXDOMAIN for a
  // minimised name is asked again with the full name (RFC 9156 section 4.3; servers that
  // answer empty non-terminals wrongly are common). On: NXDOMAIN ends the resolution (RFC
  // 8020: nothing exists below it) and errors are not retried with the full name.
  bool qname_minimisation_strict = false;
  std::vector<ForwardZone> forward_zones;
  unsigned max_referrals = 30;     // per question
  unsigned max_cname_chain = 8;
  unsigned max_sends = 64;         // upstream queries per client question, sub-queries included
  unsigned max_depth = 4;          // nesting of sub-queries for name-server addresses
  unsigned max_rounds = 2;         // passes over a zone's addresses before giving up
  std::uint64_t max_query_time_ms = 10000;  // no new upstream query after this long
  // Serve-stale (RFC 8767; Unbound's serve-expired): when resolution fails (or is still running
  // after stale_client_timeout_ms; 0: at once) an expired answer still in the cache is given,
  // with TTL stale_answer_ttl, and refreshed in the background. How long the cache keeps
  // expired entries is CacheLimits::stale_max_age.
  bool serve_stale = false;
  std::uint32_t stale_answer_ttl = 30;
  std::uint32_t stale_client_timeout_ms = 1800;
  // Prefetch (Unbound's prefetch): a cache hit in the last tenth of an entry's TTL starts one
  // background re-resolution of the question, so popular names never expire.
  bool prefetch = false;
  // 0x20 (draft-vixie-dnsext-dns0x20): the case of each UDP query name is randomised and the
  // reply's question must match it byte for byte; a server that keeps failing is asked
  // without it for a while (ServerSelection).
  bool use_0x20 = false;
  // DNSSEC validation (RFC 4033-4035; validator.hpp): answers are checked from these trust
  // anchors (DS or DNSKEY records) down; secure ones get the AD bit, bogus ones SERVFAIL with
  // an Extended DNS Error, remembered bogus_ttl seconds.
  bool dnssec_validation = false;
  std::vector<ResourceRecord> trust_anchors;
  // RFC 5011 (trust_anchors.hpp): when set, the anchors in use are the tracker's (which starts
  // from trust_anchors and follows the trust points' key rollovers); shared by every worker.
  std::shared_ptr<TrustAnchorTracker> anchor_tracker;
  std::uint32_t bogus_ttl = 60;
  // RFC 8198: NXDOMAIN and NODATA answered from cached validated NSEC/NSEC3 records.
  bool aggressive_nsec = true;
  // Unbound's domain-insecure: questions at or below these names, and zones there, are not
  // validated (insecure: no AD, never bogus), whatever the chain of trust above says.
  std::vector<Name> domain_insecure;
  bool is_domain_insecure(const Name& n) const {
    for (auto& d : domain_insecure)
      if (n.is_subdomain_of(d)) return true;
    return false;
  }
};

}  // namespace outpost::dns
