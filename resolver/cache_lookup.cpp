#include "resolver/cache_lookup.hpp"

#include <algorithm>

#include "resolver/response_type.hpp"

namespace outpost::dns {

namespace {

// Answer-level reads for one lookup, noting in `out` whether an entry used was stale or due a
// prefetch.
struct Reader {
  DnsCache& cache;
  std::uint64_t now_ms;
  bool stale_ok;
  bool checked_only;
  CacheAnswer& out;

  void note(const Freshness& f, Security s) {
    out.resolution.security = least(out.resolution.security, s);
    if (f.expired()) out.stale = true;
    if (f.nearly_expired()) out.prefetch = true;
    out.fresh_ms = std::min(out.fresh_ms, f.remaining_ms);
    out.until_prefetch_ms =
        std::min(out.until_prefetch_ms, f.remaining_ms - static_cast<std::int64_t>(f.original_ttl) * 100);
  }
  std::optional<RRset> rrset(const Name& name, std::uint16_t type) {
    Freshness f;
    // Only answers (RFC 2181 5.4.1): glue and a parent's NS sets are there to reach servers.
    auto set = cache.peek_rrset(name, type, now_ms, kAnswerTrust, &f, stale_ok);
    if (set && checked_only && set->security == Security::unchecked) return std::nullopt;
    if (set) note(f, set->security);
    return set;
  }
  std::optional<NegativeEntry> negative(const Name& name, std::uint16_t type) {
    Freshness f;
    auto neg = cache.peek_negative(name, type, now_ms, &f, stale_ok);
    if (neg && checked_only && neg->security == Security::unchecked) return std::nullopt;
    if (neg) note(f, neg->security);
    return neg;
  }
};

// A cached DNAME at an ancestor of `at` (the nearest), with the CNAME it implies for `at`
// (synthesized CNAMEs are never cached themselves, so the DNAME is always in the answer).
std::optional<ChainLink> cached_dname_link(Reader& read, const Name& at) {
  for (Name owner = at.parent(); !owner.is_root(); owner = owner.parent()) {
    auto set = read.rrset(owner, type::DNAME);
    if (!set || set->rdata.empty()) continue;
    ResourceRecord dname{set->name, type::DNAME, kClassIN, set->ttl, set->rdata.front()};
    auto cname = synthesize_cname(dname, at);
    if (!cname) return std::nullopt;
    return ChainLink{std::move(dname), std::move(*cname)};
  }
  return std::nullopt;
}

}  // namespace

CacheAnswer lookup_in_cache(DnsCache& cache, const Question& q, std::uint64_t now_ms, unsigned max_chain,
                            bool stale_ok, bool checked_only) {
  CacheAnswer out;
  out.resolution.from_cache = true;
  out.resolution.security = Security::secure;  // lowered by each entry used
  Reader read{cache, now_ms, stale_ok, checked_only, out};
  Name at = q.name;
  std::vector<Name> seen{at};
  for (;;) {
    if (auto set = read.rrset(at, q.type)) {
      set->append_signed_to(&out.resolution.answer, set->ttl);
      for (auto rr : set->proof) {
        rr.ttl = std::min(rr.ttl, set->ttl);
        out.resolution.authority.push_back(std::move(rr));
      }
      out.complete = true;
      out.resolution.rcode = rcode::NOERROR;
      return out;
    }
    if (auto neg = read.negative(at, q.type)) {
      out.complete = true;
      out.resolution.rcode = neg->nxdomain ? rcode::NXDOMAIN : rcode::NOERROR;
      if (neg->soa) neg->soa->append_signed_to(&out.resolution.authority, neg->ttl);
      for (auto& p : neg->proof) p.append_signed_to(&out.resolution.authority, neg->ttl);
      return out;
    }
    // A recent failure (after the data: a failed prefetch leaves live data answered).
    if (!stale_ok && cache.has_servfail(at, q.type, now_ms)) {
      out.complete = true;
      out.resolution.rcode = rcode::SERVFAIL;
      out.resolution.why = "cached failure";
      return out;
    }
    if (q.type == type::CNAME) break;
    if (auto cname = read.rrset(at, type::CNAME); cname && !cname->rdata.empty()) {
      cname->append_signed_to(&out.resolution.answer, cname->ttl);
      at = std::get<RdataName>(cname->rdata.front()).name;
    } else if (auto link = cached_dname_link(read, at)) {
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
