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
};

struct NegativeEntry {
  bool nxdomain = false;  // else NODATA for the asked type
  std::optional<RRset> soa;  // with its TTL already counted down
  std::uint32_t ttl = 0;
};

// Helpers shared by the implementations: the entry key (lower-case name, kind, type) and the
// TTL clamp.
std::string dns_cache_key(char kind, const Name& name, std::uint16_t type);
// Negative entries: NXDOMAIN under the name alone, NODATA under the name and the type, in kinds
// of their own, so that no question type can reach (or overwrite) the other's entry.
std::string nxdomain_cache_key(const Name& name);
std::string nodata_cache_key(const Name& name, std::uint16_t type);
std::uint32_t clamp_ttl(const CacheLimits& limits, std::uint32_t ttl);
// A negative answer's TTL (already the lesser of the SOA's TTL and MINIMUM): clamped, then at
// most max_negative_ttl.
std::uint32_t clamp_negative_ttl(const CacheLimits& limits, std::uint32_t ttl);

class DnsCache {
 public:
  explicit DnsCache(const CacheLimits& limits) { set_limits(limits); }
  virtual ~DnsCache() = default;
  // The limits apply to what is stored from then on. The cache is shared by every worker and
  // a reload changes them from the main thread: four relaxed atomics, so a put may see old
  // and new values mixed for a moment (clamp_ttl copes with min_ttl > max_ttl).
  CacheLimits limits() const {
    return {min_ttl_.load(std::memory_order_relaxed), max_ttl_.load(std::memory_order_relaxed),
            servfail_ttl_.load(std::memory_order_relaxed), max_negative_ttl_.load(std::memory_order_relaxed)};
  }
  void set_limits(const CacheLimits& l) {
    min_ttl_.store(l.min_ttl, std::memory_order_relaxed);
    max_ttl_.store(l.max_ttl, std::memory_order_relaxed);
    servfail_ttl_.store(l.servfail_ttl, std::memory_order_relaxed);
    max_negative_ttl_.store(l.max_negative_ttl, std::memory_order_relaxed);
  }
  // `now_ms` is a monotonic clock in milliseconds; TTLs are clamped to the limits on insert.
  virtual void put_rrset(const RRset& set, Trust trust, std::uint64_t now_ms) = 0;
  // The RRset with its TTL counted down; nullopt if absent, expired or trusted less than
  // `at_least` (kAnswerTrust to answer from, Trust::glue to find servers).
  virtual std::optional<RRset> get_rrset(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                         Trust at_least) = 0;
  // NXDOMAIN covers every type of the name; NODATA only `type`.
  virtual void put_negative(const Name& name, std::uint16_t type, bool nxdomain, const std::optional<RRset>& soa,
                            std::uint32_t ttl, std::uint64_t now_ms) = 0;
  virtual std::optional<NegativeEntry> get_negative(const Name& name, std::uint16_t type, std::uint64_t now_ms) = 0;
  virtual void put_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) = 0;
  virtual bool has_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) = 0;
  virtual std::size_t size() const = 0;

 private:
  std::atomic<std::uint32_t> min_ttl_, max_ttl_, servfail_ttl_, max_negative_ttl_;
};

}  // namespace outpost::dns
