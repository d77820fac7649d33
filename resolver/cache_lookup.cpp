#include "resolver/cache_lookup.hpp"

#include <algorithm>

namespace outpost::dns {

CacheAnswer lookup_in_cache(DnsCache& cache, const Question& q, std::uint64_t now_ms, unsigned max_chain) {
  CacheAnswer out;
  out.resolution.from_cache = true;
  Name at = q.name;
  std::vector<Name> seen{at};
  for (;;) {
    if (cache.has_servfail(at, q.type, now_ms)) {
      out.complete = true;
      out.resolution.rcode = rcode::SERVFAIL;
      out.resolution.why = "cached failure";
      return out;
    }
    // Only answers (RFC 2181 5.4.1): glue and a parent's NS sets are there to reach servers.
    if (auto set = cache.get_rrset(at, q.type, now_ms, kAnswerTrust)) {
      set->append_to(&out.resolution.answer, set->ttl);
      out.complete = true;
      out.resolution.rcode = rcode::NOERROR;
      return out;
    }
    if (auto neg = cache.get_negative(at, q.type, now_ms)) {
      out.complete = true;
      out.resolution.rcode = neg->nxdomain ? rcode::NXDOMAIN : rcode::NOERROR;
      if (neg->soa) neg->soa->append_to(&out.resolution.authority, neg->ttl);
      return out;
    }
    if (q.type == type::CNAME) break;
    auto cname = cache.get_rrset(at, type::CNAME, now_ms, kAnswerTrust);
    if (!cname || cname->rdata.empty()) break;
    cname->append_to(&out.resolution.answer, cname->ttl);
    at = std::get<RdataName>(cname->rdata.front()).name;
    if (++out.cnames > max_chain || std::find(seen.begin(), seen.end(), at) != seen.end()) {
      out.complete = true;
      out.resolution.rcode = rcode::SERVFAIL;
      out.resolution.why = "CNAME chain too long or looping";
      return out;
    }
    seen.push_back(at);
  }
  out.next = at;
  return out;
}

}  // namespace outpost::dns
