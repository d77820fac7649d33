#include "resolver/memory_dns_cache.hpp"

#include <algorithm>
#include <functional>

namespace outpost::dns {

std::uint32_t remaining_ttl(std::uint64_t expires_ms, std::uint64_t now_ms) {
  if (expires_ms <= now_ms) return 0;
  return static_cast<std::uint32_t>((expires_ms - now_ms) / 1000);
}

Freshness freshness_of(std::uint64_t expires_ms, std::uint32_t ttl, std::uint64_t now_ms) {
  return {ttl, static_cast<std::int64_t>(expires_ms) - static_cast<std::int64_t>(now_ms)};
}

MemoryDnsCache::MemoryDnsCache(CacheLimits limits, std::size_t max_entries)
    : DnsCache(limits), max_per_shard_(std::max<std::size_t>(1, max_entries / 16)) {}

std::string dns_cache_key(char kind, const Name& n, std::uint16_t type) {
  std::string out = n.lowercase_wire();
  out.push_back(kind);
  out.push_back(static_cast<char>(type >> 8));
  out.push_back(static_cast<char>(type));
  return out;
}

bool cache_key_matches(std::string_view key, std::string_view name_wire, bool subtree) {
  if (key.size() < 3) return false;
  std::string_view name = key.substr(0, key.size() - 3);
  if (!subtree) return name == name_wire;
  // Walk the key's labels: a suffix that starts at a label is a name above it.
  for (std::size_t pos = 0; pos < name.size(); pos += 1 + static_cast<unsigned char>(name[pos]))
    if (name.size() - pos == name_wire.size() && name.substr(pos) == name_wire) return true;
  return false;
}

std::string nxdomain_cache_key(const Name& n) { return dns_cache_key('X', n, 0); }
std::string nodata_cache_key(const Name& n, std::uint16_t type) { return dns_cache_key('N', n, type); }

std::uint32_t clamp_ttl(const CacheLimits& limits, std::uint32_t ttl) {
  return std::clamp(ttl, limits.min_ttl, std::max(limits.min_ttl, limits.max_ttl));
}

std::uint32_t clamp_negative_ttl(const CacheLimits& limits, std::uint32_t ttl) {
  return std::min(clamp_ttl(limits, ttl), limits.max_negative_ttl);
}

std::string MemoryDnsCache::key(Kind k, const Name& n, std::uint16_t type) {
  return dns_cache_key(static_cast<char>(k), n, type);
}

MemoryDnsCache::Shard& MemoryDnsCache::shard_for(const std::string& key) {
  return shards_[std::hash<std::string>()(key) % shards_.size()];
}

std::uint32_t MemoryDnsCache::clamp(std::uint32_t ttl) const { return clamp_ttl(limits(), ttl); }

void MemoryDnsCache::insert(Shard& s, std::string key, Entry e, std::uint64_t now_ms) {
  if (s.map.size() >= max_per_shard_ && !s.map.count(key)) {
    // Full: drop what has expired; if nothing has, drop an arbitrary entry.
    std::erase_if(s.map, [now_ms](const auto& kv) { return kv.second.expires_ms <= now_ms; });
    if (s.map.size() >= max_per_shard_) s.map.erase(s.map.begin());
  }
  s.map.insert_or_assign(std::move(key), std::move(e));
}

const MemoryDnsCache::Entry* MemoryDnsCache::usable(Shard& s, const std::string& key, std::uint64_t now_ms,
                                                     bool stale_ok, Freshness* fresh) {
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  const Entry& e = it->second;
  if (e.expires_ms <= now_ms) {
    // Expired: kept for stale answers within stale_max_age, never given to normal lookups.
    if (e.expires_ms + stale_keep_ms() <= now_ms) {
      s.map.erase(it);
      return nullptr;
    }
    if (!stale_ok) return nullptr;
  }
  if (fresh) *fresh = freshness_of(e.expires_ms, e.ttl, now_ms);
  return &e;
}

void MemoryDnsCache::put_rrset(const RRset& set, Trust trust, std::uint64_t now_ms) {
  auto k = key(Kind::rrset, set.name, set.type);
  auto& s = shard_for(k);
  std::uint32_t ttl = clamp(set.ttl);
  std::lock_guard lk(s.mu);
  auto it = s.map.find(k);
  if (it != s.map.end() && it->second.expires_ms > now_ms && keeps_over(it->second.trust, it->second.rrset.security, trust, set.security))
    return;
  Entry e;
  e.expires_ms = now_ms + ttl * 1000ull;
  e.ttl = ttl;
  e.trust = trust;
  e.rrset = set;
  e.rrset.ttl = ttl;
  insert(s, std::move(k), std::move(e), now_ms);
}

std::optional<RRset> MemoryDnsCache::peek_rrset(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                                Trust at_least, Freshness* fresh, bool stale_ok) {
  auto k = key(Kind::rrset, name, type);
  auto& s = shard_for(k);
  std::lock_guard lk(s.mu);
  const Entry* e = usable(s, k, now_ms, stale_ok, fresh);
  if (!e || e->trust < at_least) return std::nullopt;
  RRset out = e->rrset;
  out.ttl = remaining_ttl(e->expires_ms, now_ms);
  return out;
}

void MemoryDnsCache::put_negative(const Name& name, std::uint16_t type, bool nxdomain, const std::optional<RRset>& soa,
                                  std::uint32_t ttl, std::uint64_t now_ms, Security security,
                                  const std::vector<RRset>& proof) {
  auto k = nxdomain ? nxdomain_cache_key(name) : nodata_cache_key(name, type);
  auto& s = shard_for(k);
  ttl = clamp_negative_ttl(limits(), ttl);
  Entry e;
  e.expires_ms = now_ms + ttl * 1000ull;
  e.ttl = ttl;
  e.nxdomain = nxdomain;
  e.soa = soa;
  e.security = security;
  e.proof = proof;
  std::lock_guard lk(s.mu);
  insert(s, std::move(k), std::move(e), now_ms);
}

std::optional<NegativeEntry> MemoryDnsCache::peek_negative(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                                           Freshness* fresh, bool stale_ok) {
  for (const auto& k : {nxdomain_cache_key(name), nodata_cache_key(name, type)}) {
    auto& s = shard_for(k);
    std::lock_guard lk(s.mu);
    const Entry* e = usable(s, k, now_ms, stale_ok, fresh);
    if (!e) continue;
    NegativeEntry out;
    out.nxdomain = e->nxdomain;
    out.ttl = remaining_ttl(e->expires_ms, now_ms);
    out.soa = e->soa;
    out.security = e->security;
    out.proof = e->proof;
    for (auto& p : out.proof) p.ttl = out.ttl;
    if (out.soa) out.soa->ttl = out.ttl;
    return out;
  }
  return std::nullopt;
}

void MemoryDnsCache::put_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) {
  auto k = key(Kind::servfail, name, type);
  auto& s = shard_for(k);
  Entry e;
  e.expires_ms = now_ms + limits().servfail_ttl * 1000ull;
  std::lock_guard lk(s.mu);
  insert(s, std::move(k), std::move(e), now_ms);
}

bool MemoryDnsCache::has_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) {
  auto k = key(Kind::servfail, name, type);
  auto& s = shard_for(k);
  std::lock_guard lk(s.mu);
  auto it = s.map.find(k);
  return it != s.map.end() && it->second.expires_ms > now_ms;
}

std::size_t MemoryDnsCache::erase_names(const Name& name, bool subtree) {
  std::string wire = name.lowercase_wire();
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    n += std::erase_if(s.map, [&](const auto& kv) { return cache_key_matches(kv.first, wire, subtree); });
  }
  return n;
}

std::size_t MemoryDnsCache::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lk(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace outpost::dns
