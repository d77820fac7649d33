// DnsCache on the shared cache store (cache/store.hpp, namespace "dns"), so that DNS entries
// compete for the same memory budget as HTTP objects and certificates. Each entry is one store
// object: metadata = absolute expiry (unix ms) + trust + kind, body = the records in DNS wire
// form. Only the memory tier is consulted (a disk hit would arrive on the store's I/O thread;
// a miss simply resolves again).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "resolver/dns_cache.hpp"

namespace outpost::cache {
class Store;
}

namespace outpost::dns {

class StoreDnsCache final : public DnsCache {
 public:
  // `now_ms` values passed to the methods are monotonic (uv_now); they are turned into unix
  // time with the offset measured here, so that stored expiries survive a restart.
  StoreDnsCache(std::shared_ptr<cache::Store> store, CacheLimits limits = {});
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
  struct Meta {
    std::uint64_t expires_ms = 0;  // unix ms
    Trust trust = Trust::glue;
    bool nxdomain = false;
    Security security = Security::unchecked;
  };
  // `keep_ms`: how long past its expiry the entry stays (serve-stale; 0 for SERVFAIL marks).
  void put(const std::string& key, const Meta& meta, const Message& body, std::uint64_t keep_ms);
  // The live entry under key, or with stale_ok one expired less than stale_max_age ago (older
  // ones are erased); body parsed into *body if given.
  std::optional<Meta> get(const std::string& key, std::uint64_t now_wall_ms, Message* body, bool stale_ok = false);
  std::uint64_t wall(std::uint64_t now_ms) const { return now_ms + offset_ms_; }
  std::uint32_t clamp(std::uint32_t ttl) const;

  std::shared_ptr<cache::Store> store_;
  std::int64_t offset_ms_ = 0;
};

}  // namespace outpost::dns
