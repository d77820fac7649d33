#include "resolver/cache_lookup.hpp"

#include <algorithm>

#include "resolver/response_type.hpp"

namespace outpost::dns {

namespace {

// A cached DNAME at an ancestor of `at` (the nearest), with the CNAME it implies for `at`
// (synthesized CNAMEs are never cached themselves, so the DNAME is always in the answer).
std::optional<ChainLink> cached_dname_link(DnsCache& cache, const Name& at, std::uint64_t now_ms) {
  for (Name owner = at.parent(); !owner.is_root(); owner = owner.parent()) {
    auto set = cache.get_rrset(owner, type::DNAME, now_ms, kAnswerTrust);
    if (!set || set->rdata.empty()) continue;
    ResourceRecord dname{set->name, type::DNAME, kClassIN, set->ttl, set->rdata.front()};
    auto cname = synthesize_cname(dname, at);
    if (!cname) return std::nullopt;
    return ChainLink{std::move(dname), std::move(*cname)};
  }
  return std::nullopt;
}

}  // namespace

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
    if (auto cname = cache.get_rrset(at, type::CNAME, now_ms, kAnswerTrust); cname && !cname->rdata.empty()) {
      cname->append_to(&out.resolution.answer, cname->ttl);
      at = std::get<RdataName>(cname->rdata.front()).name;
    } else if (auto link = cached_dname_link(cache, at, now_ms)) {
      out.resolution.answer.push_back(*link->dname);
      out.resolution.answer.push_back(link->cname);
      at = link->target();
    } else {
      break;
    }
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
