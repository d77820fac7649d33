// The resolver's cache interface: positive RRsets, negative answers (RFC 2308) and short-lived
// SERVFAIL entries, all with TTLs counted down on read. An internal interface so that it can sit
// on the shared store (cache/, namespace "dns") once that lands; memory_dns_cache.hpp is the
// in-process implementation used until then.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "resolver/rrset.hpp"

namespace outpost::dns {

// How much an RRset is believed (RFC 2181 section 5.4.1): better data replaces worse, never
// the reverse, and only data at kAnswerTrust or above is ever given as an answer.
enum class Trust : std::uint8_t {
  glue = 1,         // additional section (glue, server addresses): only to reach servers
  referral = 2,     // a referral's NS set, the parent's copy: only to reach the child
  answer_noaa = 3,  // answer section without AA (a forwarder's answer)
  authority = 4,    // authority section of an authoritative answer (the zone's own NS set)
  answer = 5,       // answer section of an authoritative answer
  local = 6,
};
inline constexpr Trust kAnswerTrust = Trust::answer_noaa;

struct CacheLimits {
  std::uint32_t min_ttl = 0;
  std::uint32_t max_ttl = 86400;
  std::uint32_t servfail_ttl = 5;
  std::uint32_t max_negative_ttl = 3600;  // RFC 2308 recommends at most 1-3 hours
  // Serve-stale (RFC 8767): seconds an expired entry is kept past its expiry, for stale
  // answers only (peek_rrset / peek_negative with stale_ok). 0: dropped when it expires.
  std::uint32_t stale_max_age = 0;
};

// How fresh a cached entry is, for serve-stale and prefetch.
struct Freshness {
  std::uint32_t original_ttl = 0;  // the TTL it was stored with (clamped)
  std::int64_t remaining_ms = 0;   // <= 0: expired that long ago (kept for serve-stale)
  bool expired() const { return remaining_ms <= 0; }
  // In the last tenth of its original TTL: a hit starts a prefetch (as Unbound's prefetch).
  bool nearly_expired() const {
    return !expired() && remaining_ms * 10 <= static_cast<std::int64_t>(original_ttl) * 1000;
  }
};

struct NegativeEntry {
  bool nxdomain = false;  // else NODATA for the asked type
  std::optional<RRset> soa;  // with its TTL already counted down
  std::uint32_t ttl = 0;
  Security security = Security::unchecked;  // as validated when it was stored
  std::vector<RRset> proof;  // the NSEC/NSEC3 RRsets (with RRSIGs) that proved it, for DO clients
};

// Helpers shared by the implementations: the entry key (lower-case name, kind, type) and the
// TTL clamp.
std::string dns_cache_key(char kind, const Name& name, std::uint16_t type);
// Negative entries: NXDOMAIN under the name alone, NODATA under the name and the type, in kinds
// of their own, so that no question type can reach (or overwrite) the other's entry.
std::string nxdomain_cache_key(const Name& name);
std::string nodata_cache_key(const Name& name, std::uint16_t type);
std::uint32_t clamp_ttl(const CacheLimits& limits, std::uint32_t ttl);
// Whether an entry key (dns_cache_key's form) is of `name_wire` (lower-case wire form), or with
// `subtree` of a name at or below it (label boundaries respected: "xa.test" is not under
// "a.test").
bool cache_key_matches(std::string_view key, std::string_view name_wire, bool subtree);
// Whether a live cached RRset stays when another arrives: better trust stays; at equal trust a
// validated one stays over an unchecked one (a name server's address looked up without
// validation does not undo a validated answer).
inline bool keeps_over(Trust old_trust, Security old_sec, Trust new_trust, Security new_sec) {
  if (old_trust != new_trust) return old_trust > new_trust;
  return old_sec != Security::unchecked && new_sec == Security::unchecked;
}
// A negative answer's TTL (already the lesser of the SOA's TTL and MINIMUM): clamped, then at
// most max_negative_ttl.
std::uint32_t clamp_negative_ttl(const CacheLimits& limits, std::uint32_t ttl);

class DnsCache {
 public:
  explicit DnsCache(const CacheLimits& limits) { set_limits(limits); }
  virtual ~DnsCache() = default;
  // The limits apply to what is stored from then on. The cache is shared by every worker and
  // a reload changes them from the main thread: relaxed atomics, so a put may see old and new
  // values mixed for a moment (clamp_ttl copes with min_ttl > max_ttl).
  CacheLimits limits() const {
    return {min_ttl_.load(std::memory_order_relaxed), max_ttl_.load(std::memory_order_relaxed),
            servfail_ttl_.load(std::memory_order_relaxed), max_negative_ttl_.load(std::memory_order_relaxed),
            stale_max_age_.load(std::memory_order_relaxed)};
  }
  void set_limits(const CacheLimits& l) {
    min_ttl_.store(l.min_ttl, std::memory_order_relaxed);
    max_ttl_.store(l.max_ttl, std::memory_order_relaxed);
    servfail_ttl_.store(l.servfail_ttl, std::memory_order_relaxed);
    max_negative_ttl_.store(l.max_negative_ttl, std::memory_order_relaxed);
    stale_max_age_.store(l.stale_max_age, std::memory_order_relaxed);
  }
  // How long past its expiry an entry is kept (serve-stale), in milliseconds.
  std::uint64_t stale_keep_ms() const { return stale_max_age_.load(std::memory_order_relaxed) * 1000ull; }
  // `now_ms` is a monotonic clock in milliseconds; TTLs are clamped to the limits on insert.
  virtual void put_rrset(const RRset& set, Trust trust, std::uint64_t now_ms) = 0;
  // The RRset with its TTL counted down; nullopt if absent, expired or trusted less than
  // `at_least` (kAnswerTrust to answer from, Trust::glue to find servers).
  std::optional<RRset> get_rrset(const Name& name, std::uint16_t type, std::uint64_t now_ms, Trust at_least) {
    return peek_rrset(name, type, now_ms, at_least, nullptr, false);
  }
  // As get_rrset, with how fresh the entry is in *fresh (if given). With stale_ok, an entry
  // expired less than stale_max_age ago is returned too (TTL 0): for stale answers only,
  // never to resolve with.
  virtual std::optional<RRset> peek_rrset(const Name& name, std::uint16_t type, std::uint64_t now_ms, Trust at_least,
                                          Freshness* fresh, bool stale_ok) = 0;
  // NXDOMAIN covers every type of the name; NODATA only `type`.
  // `security`: what DNSSEC validation made of the denial (RRsets carry theirs in RRset::security).
  virtual void put_negative(const Name& name, std::uint16_t type, bool nxdomain, const std::optional<RRset>& soa,
                            std::uint32_t ttl, std::uint64_t now_ms, Security security = Security::unchecked,
                            const std::vector<RRset>& proof = {}) = 0;
  std::optional<NegativeEntry> get_negative(const Name& name, std::uint16_t type, std::uint64_t now_ms) {
    return peek_negative(name, type, now_ms, nullptr, false);
  }
  // As get_negative, with freshness and stale entries as peek_rrset.
  virtual std::optional<NegativeEntry> peek_negative(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                                     Freshness* fresh, bool stale_ok) = 0;
  virtual void put_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) = 0;
  virtual bool has_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) = 0;
  virtual std::size_t size() const = 0;
  // Drops every entry of `name` (all types, negative and SERVFAIL entries too), or with
  // `subtree` of every name at or below it; returns how many. For operators (`outpost ctl dns
  // flush`): it walks the whole cache.
  virtual std::size_t erase_names(const Name& name, bool subtree) = 0;

 private:
  std::atomic<std::uint32_t> min_ttl_, max_ttl_, servfail_ttl_, max_negative_ttl_, stale_max_age_;
};

}  // namespace outpost::dns
