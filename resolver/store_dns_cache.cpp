#include "resolver/store_dns_cache.hpp"

#include <uv.h>

#include <algorithm>
#include <chrono>

#include "cache/store.hpp"
#include "resolver/memory_dns_cache.hpp"

namespace outpost::dns {

namespace {

constexpr char kRrset = 'R', kServfail = 'S';

std::string key_of(char kind, const Name& n, std::uint16_t type) { return dns_cache_key(kind, n, type); }

}  // namespace

StoreDnsCache::StoreDnsCache(std::shared_ptr<cache::Store> store, CacheLimits limits)
    : DnsCache(limits), store_(std::move(store)) {
  auto wall_now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  offset_ms_ = wall_now - static_cast<std::int64_t>(uv_hrtime() / 1000000);
}

std::uint32_t StoreDnsCache::clamp(std::uint32_t ttl) const { return clamp_ttl(limits(), ttl); }

void StoreDnsCache::put(const std::string& key, const Meta& meta, const Message& body, std::uint64_t keep_ms) {
  std::string md(11, '\0');
  for (int i = 0; i < 8; ++i) md[i] = static_cast<char>(meta.expires_ms >> (56 - 8 * i));
  md[8] = static_cast<char>(meta.trust);
  md[9] = meta.nxdomain ? 1 : 0;
  md[10] = static_cast<char>(meta.security);
  auto wire = write_message(body);
  store_->insert(cache::Namespace::kDns, key, md, std::string_view(reinterpret_cast<const char*>(wire.data()), wire.size()),
                 static_cast<std::int64_t>((meta.expires_ms + keep_ms) / 1000 + 1));
}

std::optional<StoreDnsCache::Meta> StoreDnsCache::get(const std::string& key, std::uint64_t now_wall_ms, Message* body,
                                                      bool stale_ok) {
  auto h = store_->lookup(cache::Namespace::kDns, key);
  if (!h) return std::nullopt;
  auto md = h.metadata();
  // 10 bytes: written before DNSSEC (unchecked).
  if (md.size() != 10 && md.size() != 11) return std::nullopt;
  Meta m;
  for (int i = 0; i < 8; ++i) m.expires_ms = m.expires_ms << 8 | static_cast<unsigned char>(md[i]);
  m.trust = static_cast<Trust>(md[8]);
  m.nxdomain = md[9] != 0;
  if (md.size() == 11 && md[10] >= 0 && md[10] <= static_cast<char>(Security::secure))
    m.security = static_cast<Security>(md[10]);
  if (m.expires_ms <= now_wall_ms) {
    // Expired: kept for stale answers within stale_max_age, never given to normal lookups.
    if (m.expires_ms + stale_keep_ms() <= now_wall_ms) {
      store_->erase(cache::Namespace::kDns, key);
      return std::nullopt;
    }
    if (!stale_ok) return std::nullopt;
  }
  if (body) {
    auto bytes = h.body_string();
    // What we stored ourselves; a record that does not parse (disk damage) is a miss.
    if (parse_message({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, body) != Status::ok)
      return std::nullopt;
  }
  return m;
}

void StoreDnsCache::put_rrset(const RRset& set, Trust trust, std::uint64_t now_ms) {
  auto key = key_of(kRrset, set.name, set.type);
  if (auto old = get(key, wall(now_ms), nullptr); old && keeps_over(old->trust, old->security, trust, set.security)) return;
  std::uint32_t ttl = clamp(set.ttl);
  Message body;
  set.append_signed_to(&body.answer, ttl);
  body.authority = set.proof;
  put(key, {wall(now_ms) + ttl * 1000ull, trust, false, set.security}, body, stale_keep_ms());
}

std::optional<RRset> StoreDnsCache::peek_rrset(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                               Trust at_least, Freshness* fresh, bool stale_ok) {
  Message body;
  auto m = get(key_of(kRrset, name, type), wall(now_ms), &body, stale_ok);
  if (!m || m->trust < at_least || body.answer.empty()) return std::nullopt;
  auto sets = group_signed_rrsets(body.answer);
  if (sets.empty()) return std::nullopt;
  RRset out = sets.front();
  out.security = m->security;
  out.proof = std::move(body.authority);
  // The records were stored with the (clamped) TTL they were given.
  if (fresh) *fresh = freshness_of(m->expires_ms, out.ttl, wall(now_ms));
  out.ttl = remaining_ttl(m->expires_ms, wall(now_ms));
  return out;
}

void StoreDnsCache::put_negative(const Name& name, std::uint16_t type, bool nxdomain, const std::optional<RRset>& soa,
                                 std::uint32_t ttl, std::uint64_t now_ms, Security security,
                                 const std::vector<RRset>& proof) {
  ttl = clamp_negative_ttl(limits(), ttl);
  Message body;
  if (soa) soa->append_signed_to(&body.authority, ttl);
  for (auto& p : proof) p.append_signed_to(&body.additional, ttl);
  put(nxdomain ? nxdomain_cache_key(name) : nodata_cache_key(name, type),
      {wall(now_ms) + ttl * 1000ull, Trust::answer, nxdomain, security}, body, stale_keep_ms());
}

std::optional<NegativeEntry> StoreDnsCache::peek_negative(const Name& name, std::uint16_t type, std::uint64_t now_ms,
                                                          Freshness* fresh, bool stale_ok) {
  for (const auto& key : {nxdomain_cache_key(name), nodata_cache_key(name, type)}) {
    Message body;
    auto m = get(key, wall(now_ms), &body, stale_ok);
    if (!m) continue;
    NegativeEntry out;
    out.nxdomain = m->nxdomain;
    out.security = m->security;
    out.ttl = remaining_ttl(m->expires_ms, wall(now_ms));
    std::uint32_t stored_ttl = 0;  // known from the SOA stored with it
    if (!body.authority.empty()) {
      out.soa = group_signed_rrsets(body.authority).front();
      stored_ttl = out.soa->ttl;
      out.soa->ttl = out.ttl;
    }
    out.proof = group_signed_rrsets(body.additional);
    for (auto& p : out.proof) p.ttl = out.ttl;
    if (fresh) *fresh = freshness_of(m->expires_ms, stored_ttl, wall(now_ms));
    return out;
  }
  return std::nullopt;
}

void StoreDnsCache::put_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) {
  put(key_of(kServfail, name, type), {wall(now_ms) + limits().servfail_ttl * 1000ull, Trust::glue, false}, Message{}, 0);
}

bool StoreDnsCache::has_servfail(const Name& name, std::uint16_t type, std::uint64_t now_ms) {
  return get(key_of(kServfail, name, type), wall(now_ms), nullptr).has_value();
}

std::size_t StoreDnsCache::erase_names(const Name& name, bool subtree) {
  std::string wire = name.lowercase_wire();
  auto keys = store_->keys_matching(cache::Namespace::kDns,
                                    [&](std::string_view k) { return cache_key_matches(k, wire, subtree); });
  std::size_t n = 0;
  for (const auto& k : keys) n += store_->erase(cache::Namespace::kDns, k) ? 1 : 0;
  return n;
}

std::size_t StoreDnsCache::size() const {
  auto st = store_->stats().of(cache::Namespace::kDns);
  return static_cast<std::size_t>(st.objects_memory);
}

}  // namespace outpost::dns
