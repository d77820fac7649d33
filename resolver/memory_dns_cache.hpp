// In-memory DnsCache: sharded hash maps under mutexes, shared by every worker. Stand-in until
// the shared store (cache/) lands; same interface.
#pragma once
#include <array>
#include <mutex>
#include <string>
#include <unordered_map>

#include "resolver/dns_cache.hpp"

namespace outpost::dns {

class MemoryDnsCache final : public DnsCache {
 public:
  explicit MemoryDnsCache(CacheLimits limits = {}, std::size_t max_entries = 1 << 20);
  void put_rrset(const RRset& set, Trust trust, std::uint64_t now_ms) override;
  std::optional<RRset> peek_rrset(const Name& name, std::uint16_t type, std::uint64_t now_ms, Trust at_least,
                                  Freshness* fresh, bool stale_ok) override;
  void put_negative(const Name& name, std::uint16_t type, bool nxdomain, const std::optional<RRset>& soa,
                    std::uint32_t ttl, std::uint64_t now_ms, Security security = Security::unchecked,
                    const std::vector<RRset>& proof = {}) override;
  std::optional<NegativeEntry> peek_negative(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                             Freshness* fresh, bool stale_ok) override;
  void put_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) override;
  bool has_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) override;
  std::size_t size() const override;
  std::size_t erase_names(const Name& name, bool subtree) override;

 private:
  enum class Kind : char { rrset = 'R', servfail = 'S' };  // negative entries: see nxdomain_cache_key
  struct Entry {
    std::uint64_t expires_ms = 0;
    std::uint32_t ttl = 0;  // as stored (clamped)
    Trust trust = Trust::glue;
    RRset rrset;  // rrset kind
    bool nxdomain = false;
    std::optional<RRset> soa;
    Security security = Security::unchecked;  // negative entries (RRsets carry their own)
    std::vector<RRset> proof;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> map;
  };
  static std::string key(Kind k, const Name& n, std::uint16_t type);
  Shard& shard_for(const std::string& key);
  std::uint32_t clamp(std::uint32_t ttl) const;
  void insert(Shard& s, std::string key, Entry e, std::uint64_t now_ms);
  // The entry under key if usable: live, or (stale_ok) expired within stale_max_age. Entries
  // past that are erased. Under the shard's lock.
  const Entry* usable(Shard& s, const std::string& key, std::uint64_t now_ms, bool stale_ok, Freshness* fresh);

  std::size_t max_per_shard_;
  std::array<Shard, 16> shards_;
};

// Remaining whole seconds of an entry that expires at expires_ms (0 when expired).
std::uint32_t remaining_ttl(std::uint64_t expires_ms, std::uint64_t now_ms);
// An entry's freshness from its expiry and stored TTL (the same clock as now_ms).
Freshness freshness_of(std::uint64_t expires_ms, std::uint32_t ttl, std::uint64_t now_ms);

}  // namespace outpost::dns
