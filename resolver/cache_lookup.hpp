// Answering a question from the cache alone: follows cached CNAMEs, then the asked RRset or a
// negative entry. Used by the server (RD=0 and the hot path) and at each iterator step.
#pragma once
#include "resolver/dns_cache.hpp"
#include "resolver/resolution.hpp"

namespace outpost::dns {

struct CacheAnswer {
  bool complete = false;  // `resolution` is the whole answer
  Resolution resolution;  // if incomplete: the CNAME chain found so far
  Name next;              // if incomplete: the name still to resolve
  unsigned cnames = 0;    // CNAME links followed
  bool stale = false;     // an entry used had expired (only with stale_ok)
  bool prefetch = false;  // an entry used is in the last tenth of its TTL (Freshness::nearly_expired)
  // The least time left of the entries used: until the first expires, and until the first
  // enters the last tenth of its TTL (ms; negative once it has).
  std::int64_t fresh_ms = INT64_MAX, until_prefetch_ms = INT64_MAX;
  // resolution.security: the least of the entries used.
};

// With stale_ok, expired entries kept for serve-stale (RFC 8767) are used as well, and a
// cached SERVFAIL is passed over: the lookup of a stale answer once resolution has failed.
// With checked_only (DNSSEC validation on), entries stored unchecked count as absent.
CacheAnswer lookup_in_cache(DnsCache& cache, const Question& q, std::uint64_t now_ms, unsigned max_chain,
                            bool stale_ok = false, bool checked_only = false);

}  // namespace outpost::dns
