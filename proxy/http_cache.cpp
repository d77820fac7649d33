#include "proxy/http_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>

#include <thread>

namespace outpost::http {
namespace {
constexpr std::string_view kVaryMarker = "OPVARY1\n";
const cache::Namespace kNs = cache::Namespace::kHttp;
}  // namespace

CachePolicyConfig make_cache_policy(const Config::HttpCache& cfg, std::uint64_t memory_size) {
  CachePolicyConfig policy;
  policy.heuristic_percent = cfg.heuristic_percent;
  policy.heuristic_max = static_cast<std::int64_t>(cfg.heuristic_max);
  policy.store_set_cookie = cfg.store_set_cookie;
  policy.max_variants = cfg.max_variants;
  policy.targeted_field = cfg.targeted_cache_control;
  policy.range_offset_limit = cfg.range_offset_limit;
  policy.range_max_parts = cfg.range_max_parts;
  policy.range_parts_memory = static_cast<std::uint64_t>(static_cast<double>(memory_size) * cfg.range_parts_percent / 100);
  for (const auto& p : cfg.refresh_patterns) {
    RefreshRule r;
    r.pattern = p.pattern;
    r.case_insensitive = p.ignore_case;
    r.min = static_cast<std::int64_t>(p.min);
    r.percent = p.percent;
    r.max = static_cast<std::int64_t>(p.max);
    if (r.compile(nullptr)) policy.rules.push_back(std::move(r));
  }
  return policy;
}

HttpCache::HttpCache(cache::Store& store) : store_(store) {}

std::int64_t HttpCache::expiry_of(const StoredResponse& m) { return m.response_time + m.lifetime; }

namespace {
// Where a variant lives: the primary key plus the Vary-selected request header values.
std::string variant_store_key(const std::string& key, const std::vector<std::pair<std::string, std::string>>& vary) {
  std::string k = key;
  for (const auto& [n, v] : vary) {
    k += '\x1f';
    k += n;
    k += '=';
    k += v;
  }
  return k;
}
}  // namespace

std::string HttpCache::variant_key(const std::string& key, const std::vector<std::string>& names,
                                   const HeaderList& req) const {
  StoredResponse tmp;
  HeaderList vary;
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ", ") + n;
  vary.add("Vary", joined);
  record_vary(vary, req, &tmp);
  return variant_store_key(key, tmp.vary);
}

void HttpCache::fetch(Worker& worker, const std::string& key, FetchDone done) {
  auto cb = std::make_shared<FetchDone>(std::move(done));
  auto on_loop = std::this_thread::get_id();
  // The disk record failed its check (TCP_SWAPFAIL_MISS); one dropped meanwhile is a miss.
  store_.lookup_async(kNs, key, [&worker, cb, on_loop](cache::Handle h, bool swap_fail) {
    if (std::this_thread::get_id() == on_loop) {
      (*cb)(std::move(h), false, swap_fail);
    } else {
      worker.post([cb, swap_fail, h = std::move(h)]() mutable { (*cb)(std::move(h), true, swap_fail); });
    }
  });
}

void HttpCache::lookup(Worker& worker, const std::string& key, const HeaderList& req_headers,
                       std::function<void(CacheLookup)> done) {
  // The request headers are needed after an asynchronous disk read: keep a copy.
  auto req = std::make_shared<HeaderList>(req_headers);
  fetch(worker, key, [this, &worker, key, req, done = std::move(done)](cache::Handle h, bool from_disk, bool swap_fail) {
    finish_lookup(worker, key, *req, std::move(h), from_disk, swap_fail, done);
  });
}

void HttpCache::finish_lookup(Worker& worker, const std::string& key, const HeaderList& req_headers, cache::Handle h,
                              bool from_disk, bool swap_fail, std::function<void(CacheLookup)> done) {
  if (h && h.metadata().starts_with(kVaryMarker)) {
    lookup_variant(worker, variant_key_of(key, h, req_headers), req_headers, from_disk, std::move(done));
    return;
  }
  done(primary_result(key, req_headers, std::move(h), from_disk, swap_fail));
}

namespace {
// A Vary marker's metadata: kVaryMarker, the names, then a line listing the variants stored
// under it (older markers end after the names).
std::string_view marker_names(std::string_view metadata) {
  auto rest = metadata.substr(kVaryMarker.size());
  return rest.substr(0, rest.find('\n'));
}
std::string_view marker_variants(std::string_view metadata) {
  auto rest = metadata.substr(kVaryMarker.size());
  auto nl = rest.find('\n');
  return nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
}
}  // namespace

std::string HttpCache::variant_key_of(const std::string& key, const cache::Handle& marker, const HeaderList& req_headers) const {
  // A Vary marker: the names it lists select the variant from this request.
  std::vector<std::string> names;
  for (auto n : split_list(marker_names(marker.metadata()))) names.emplace_back(n);
  return variant_key(key, names, req_headers);
}

void HttpCache::lookup_variant(Worker& worker, const std::string& vk, const HeaderList& req_headers, bool from_disk,
                               std::function<void(CacheLookup)> done) {
  auto req = std::make_shared<HeaderList>(req_headers);
  fetch(worker, vk, [this, vk, req, from_disk, done = std::move(done)](cache::Handle v, bool disk, bool v_swap_fail) {
    done(variant_result(vk, *req, std::move(v), from_disk || disk, v_swap_fail));
  });
}

CacheLookup HttpCache::variant_result(const std::string& vk, const HeaderList& req_headers, cache::Handle v,
                                      bool from_disk, bool swap_fail) {
  CacheLookup r;
  r.store_key = vk;
  r.from_disk = from_disk;
  r.swap_fail = swap_fail;
  if (v) {
    r.meta = parse_stored_response(v.metadata());
    if (r.meta && vary_matches(*r.meta, req_headers)) r.handle = std::move(v);
    else r.meta.reset();
  } else if ((r.reader = store_.attach(kNs, vk))) {
    r.meta = parse_stored_response(r.reader.metadata());
    if (!r.meta) r.reader = cache::Reader();
  }
  return r;
}

CacheLookup HttpCache::primary_result(const std::string& key, const HeaderList& req_headers, cache::Handle h,
                                      bool from_disk, bool swap_fail) {
  CacheLookup r;
  r.store_key = key;
  r.from_disk = from_disk;
  if (h) {
    r.meta = parse_stored_response(h.metadata());
    if (!r.meta) {
      spdlog::warn("http cache: unreadable metadata for {}, dropping it", key);
      store_.erase(kNs, key);
    } else if (vary_matches(*r.meta, req_headers)) {
      r.handle = std::move(h);
    } else {
      r.meta.reset();
    }
  } else if ((r.reader = store_.attach(kNs, key))) {
    if (r.reader.metadata().starts_with(kVaryMarker)) {
      r.reader = cache::Reader();
    } else {
      r.meta = parse_stored_response(r.reader.metadata());
      if (!r.meta || !vary_matches(*r.meta, req_headers)) {
        r.reader = cache::Reader();
        r.meta.reset();
      }
    }
  }
  r.swap_fail = swap_fail && !r.reader;
  return r;
}

HttpCache::Now HttpCache::lookup_now(const std::string& key, const HeaderList& req_headers, CacheLookup* out) {
  bool on_disk = false;
  cache::Handle h = store_.lookup_memory(kNs, key, &on_disk);
  if (on_disk) return Now::kReadPrimary;
  if (h && h.metadata().starts_with(kVaryMarker)) {
    std::string vk = variant_key_of(key, h, req_headers);
    cache::Handle v = store_.lookup_memory(kNs, vk, &on_disk);
    if (on_disk) {
      out->store_key = std::move(vk);
      return Now::kReadVariant;
    }
    *out = variant_result(vk, req_headers, std::move(v), false, false);
    return Now::kDone;
  }
  *out = primary_result(key, req_headers, std::move(h), false, false);
  return Now::kDone;
}

cache::Writer HttpCache::begin_store(const std::string& key, const StoredResponse& meta, std::uint64_t expected_size,
                                     std::size_t max_variants, std::string* why) {
  // Too large to be admitted: no writer (collapsed followers fetch their own, and nothing
  // is copied for an object the store would drop at its limit).
  if (expected_size > store_.max_object_size()) {
    if (why) *why = "larger than max_object_size";
    return cache::Writer();
  }
  std::string store_key = key;
  std::int64_t expiry = expiry_of(meta);
  if (!meta.vary.empty()) {
    std::string names;
    for (const auto& [n, v] : meta.vary) names += (names.empty() ? "" : ", ") + n;
    store_key = variant_store_key(key, meta.vary);
    // The variants stored under this marker so far (when it names the same fields): one
    // URL whose requests vary endlessly (a Vary on User-Agent, Cookie, ...) stops at the cap.
    char mine[17];
    std::snprintf(mine, sizeof mine, "%016zx", std::hash<std::string>{}(store_key));
    std::string listed;
    bool on_disk = false;
    cache::Handle m = store_.lookup_memory(kNs, key, &on_disk);
    if (m && m.metadata().starts_with(kVaryMarker) && marker_names(m.metadata()) == names)
      listed = marker_variants(m.metadata());
    std::size_t count = 0;
    bool known = false;
    for (auto h : split_list(listed)) {
      ++count;
      known = known || h == mine;
    }
    if (!known) {
      if (max_variants && count >= max_variants) {
        if (why) *why = "more than max_variants variants of this URL";
        return cache::Writer();
      }
      listed.append(listed.empty() ? "" : ",").append(mine);
    }
    store_.insert(kNs, key, std::string(kVaryMarker) + names + "\n" + listed, "", expiry + 86400);
  }
  cache::Writer w = store_.writer(kNs, store_key, meta.serialize(), expiry);
  if (!w && why) *why = "store refused the object";
  return w;
}

std::optional<StoredResponse> HttpCache::storable_meta(const CachePolicyConfig& policy, const HeaderList& req_headers,
                                                       const CacheControl& req_cc,
                                                       const MessageHead& resp, const std::string& url,
                                                       std::int64_t request_time, std::int64_t now,
                                                       std::string* why) const {
  if (!resp.transfer_codings.empty()) {
    // The body still carries a transfer coding (gzip, ...) that belongs to this hop: stored,
    // it would be served as the representation itself.
    if (why) *why = "transfer-coded body (" + resp.transfer_codings + ")";
    return std::nullopt;
  }
  bool targeted = false;
  auto resp_cc = response_cache_control(resp.headers, policy.targeted_field, &targeted);
  if (!is_storable("GET", req_headers, req_cc, resp.status, resp.headers, resp_cc, policy, url, why)) return std::nullopt;
  StoredResponse meta;
  meta.status = resp.status;
  meta.reason = resp.reason;
  meta.major = resp.major;
  meta.minor = resp.minor;
  meta.headers = resp.headers;
  // RFC 9111 §3.1: every field is kept as received — unknown and legacy ones (Set-Cookie2)
  // too — but the hop-by-hop ones and the proxy's own (Proxy-Authenticate is hop-by-hop,
  // Proxy-Authentication-Info is not), and Set-Cookie, never handed to another client.
  meta.headers.remove_hop_by_hop();
  meta.headers.remove("Proxy-Authentication-Info");
  meta.headers.remove("Set-Cookie");
  meta.request_time = request_time;
  meta.response_time = now;
  meta.lifetime = freshness_lifetime(resp.status, resp.headers, resp_cc, policy, url);
  if (targeted) meta.cc_field = policy.targeted_field;
  record_vary(resp.headers, req_headers, &meta);
  return meta;
}

StoredResponse HttpCache::merge_not_modified(const CachePolicyConfig& policy, const StoredResponse& stored,
                                             const HeaderList& resp_headers,
                                             std::int64_t request_time, std::int64_t now,
                                             const std::string& url) const {
  StoredResponse meta = stored;
  HeaderList fresh = resp_headers;
  fresh.remove_hop_by_hop();
  auto skip = [](const std::string& n) {
    return iequals(n, "Content-Length") || iequals(n, "Set-Cookie") || iequals(n, "Content-Range") ||
           iequals(n, "Proxy-Authentication-Info");
  };
  for (const auto& f : fresh)
    if (!skip(f.name)) meta.headers.remove(f.name);
  for (const auto& f : fresh)
    if (!skip(f.name)) meta.headers.add(f.name, f.value);
  meta.request_time = request_time;
  meta.response_time = now;
  bool targeted = false;
  auto cc = response_cache_control(meta.headers, policy.targeted_field, &targeted);
  meta.lifetime = freshness_lifetime(meta.status, meta.headers, cc, policy, url);
  meta.cc_field = targeted ? policy.targeted_field : std::string();
  return meta;
}

bool HttpCache::begin_background_refresh(const std::string& key) {
  std::lock_guard lk(mu_);
  return refreshing_.emplace(key, true).second;
}

void HttpCache::end_background_refresh(const std::string& key) {
  std::lock_guard lk(mu_);
  refreshing_.erase(key);
}

void HttpCache::refresh(const std::string& store_key, const StoredResponse& meta, const cache::Handle& revalidated) {
  store_.update_metadata(kNs, store_key, meta.serialize(), expiry_of(meta), revalidated);
}

bool HttpCache::invalidate(const std::string& key) {
  // Variants hang off the marker: without it they can no longer be found, and eviction
  // reclaims them. Stored parts of the URL go too.
  // (Always looked for: parts a disk tier kept across a restart are not counted yet.)
  bool parts = store_.erase(kNs, parts_key(key));
  if (parts) drop_parts(key);
  bool removed = store_.erase(kNs, key);
  return removed || parts;
}

std::string HttpCache::parts_key(const std::string& key) { return key + "\x1f\x1e" "parts"; }

void HttpCache::lookup_parts(Worker& worker, const std::string& key, PartsDone done) {
  std::string pk = parts_key(key);
  fetch(worker, pk, [this, pk, key, done = std::move(done)](cache::Handle h, bool from_disk, bool) {
    std::shared_ptr<const PartsMeta> meta;
    if (h) {
      if (auto m = PartsMeta::parse(h.metadata()); m && m->parts.bytes() == h.body_size()) {
        meta = std::make_shared<const PartsMeta>(std::move(*m));
      } else {
        spdlog::warn("http cache: unreadable parts of {}, dropping them", key);
        store_.erase(kNs, pk);
        h = cache::Handle();
      }
    }
    done(std::move(h), std::move(meta), from_disk);
  });
}

cache::Writer HttpCache::begin_parts(const std::string& key, const PartsMeta& meta, std::uint64_t memory_cap) {
  std::uint64_t size = meta.parts.bytes();
  if (size > memory_cap || size > store_.max_object_size()) return cache::Writer();
  std::vector<std::string> drop;
  {
    std::lock_guard lk(parts_mu_);
    if (auto it = parts_.find(key); it != parts_.end()) {
      parts_total_ -= it->second.first;
      parts_order_.erase(it->second.second);
      parts_.erase(it);
    }
    while (parts_total_ + size > memory_cap && !parts_order_.empty()) {
      auto& oldest = parts_order_.front();
      auto it = parts_.find(oldest);
      parts_total_ -= it->second.first;
      drop.push_back(oldest);
      parts_.erase(it);
      parts_order_.pop_front();
    }
    parts_order_.push_back(key);
    parts_.emplace(key, std::make_pair(size, std::prev(parts_order_.end())));
    parts_total_ += size;
    parts_live_.store(parts_.size(), std::memory_order_relaxed);
  }
  for (const auto& k : drop) store_.erase(kNs, parts_key(k));
  return store_.writer(kNs, parts_key(key), meta.serialize(), expiry_of(meta.resp));
}

void HttpCache::drop_parts(const std::string& key) {
  if (parts_live_.load(std::memory_order_relaxed) == 0) return;  // the usual case: no lock, no erase
  store_.erase(kNs, parts_key(key));
  std::lock_guard lk(parts_mu_);
  if (auto it = parts_.find(key); it != parts_.end()) {
    parts_total_ -= it->second.first;
    parts_order_.erase(it->second.second);
    parts_.erase(it);
  }
  parts_live_.store(parts_.size(), std::memory_order_relaxed);
}

std::uint64_t HttpCache::parts_bytes() const {
  std::lock_guard lk(parts_mu_);
  return parts_total_;
}

namespace {
// The store keys of `key` itself and of its variants (variant_store_key).
bool is_key_or_variant(std::string_view k, std::string_view key) {
  return k.starts_with(key) && (k.size() == key.size() || k[key.size()] == '\x1f');
}
}  // namespace

std::size_t HttpCache::purge(const std::string& key, bool prefix) {
  auto keys = store_.keys_matching(
      kNs, [&](std::string_view k) { return prefix ? k.starts_with(key) : is_key_or_variant(k, key); });
  std::size_t n = 0;
  for (const auto& k : keys) n += store_.erase(kNs, k) ? 1 : 0;
  return n;
}

void HttpCache::inspect(Worker& worker, const std::string& key, std::function<void(std::vector<StoredEntry>)> done) {
  auto keys = store_.keys_matching(kNs, [&](std::string_view k) { return is_key_or_variant(k, key); });
  std::sort(keys.begin(), keys.end());
  struct State {
    std::vector<StoredEntry> entries;
    std::size_t left = 0;
    std::function<void(std::vector<StoredEntry>)> done;
  };
  auto st = std::make_shared<State>();
  st->left = keys.size();
  st->done = std::move(done);
  if (keys.empty()) {
    worker.post([st] { st->done({}); });
    return;
  }
  st->entries.resize(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    bool on_disk = false;
    // Memory first (no I/O); an object only on disk is read on the store's I/O thread.
    cache::Handle h = store_.lookup_memory(kNs, keys[i], &on_disk);
    auto fill = [st, i, k = keys[i], &worker](cache::Handle h, bool from_disk) {
      StoredEntry e;
      e.store_key = k;
      e.from_disk = from_disk;
      if (h) {
        e.body_size = h.body_size();
        if (h.metadata().starts_with(kPartsMagic)) {
          if (auto pm = PartsMeta::parse(h.metadata())) {
            e.meta = pm->resp;
            for (const auto& r : pm->parts.ranges())
              e.parts.append(e.parts.empty() ? "" : ",").append(std::to_string(r.first) + "-" + std::to_string(r.last));
            e.parts += " of " + std::to_string(pm->complete);
          }
        } else if (!h.metadata().starts_with(kVaryMarker)) {
          e.meta = StoredResponse::parse(h.metadata());
        }
      }
      worker.post([st, i, e = std::move(e), h = std::move(h)]() mutable {
        st->entries[i] = std::move(e);
        if (--st->left > 0) return;
        // Vary markers and objects gone meanwhile are not entries.
        std::erase_if(st->entries, [](const StoredEntry& x) { return !x.meta && x.body_size == 0; });
        st->done(std::move(st->entries));
      });
    };
    if (on_disk)
      store_.lookup_async(kNs, keys[i], [fill](cache::Handle h, bool) { fill(std::move(h), true); });
    else
      fill(std::move(h), false);
  }
}

namespace {
std::int64_t steady_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

HttpCache::Collapse HttpCache::collapse_locked(const std::string& key) {
  if (pass_count_.load(std::memory_order_relaxed) != 0) {
    if (auto p = pass_until_.find(key); p != pass_until_.end()) {
      if (p->second > steady_seconds()) return Collapse::kPass;
      pass_until_.erase(p);
      pass_count_.store(pass_until_.size(), std::memory_order_relaxed);
    }
  }
  if (inflight_.find(key) == inflight_.end()) {
    inflight_.emplace(key, std::vector<Waiter>{});
    return Collapse::kLead;
  }
  return Collapse::kFollow;
}

void HttpCache::learned(const std::string& key, bool storable) {
  if (storable && pass_count_.load(std::memory_order_relaxed) == 0) return;  // the usual case, no lock
  std::lock_guard lk(mu_);
  if (storable) {
    pass_until_.erase(key);
  } else {
    std::int64_t now = steady_seconds();
    if (pass_until_.size() >= kPassMarksMax) {
      std::erase_if(pass_until_, [now](const auto& kv) { return kv.second <= now; });
      if (pass_until_.size() >= kPassMarksMax) pass_until_.clear();  // a flood of distinct URLs: forget them all
    }
    pass_until_[key] = now + kPassMemory;
  }
  pass_count_.store(pass_until_.size(), std::memory_order_relaxed);
}

void HttpCache::settle(const std::string& key, bool writer_started) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lk(mu_);
    auto it = inflight_.find(key);
    if (it == inflight_.end()) return;
    waiters = std::move(it->second);
    inflight_.erase(it);
  }
  for (auto& w : waiters) w.worker->post([fn = std::move(w.ready), writer_started] { fn(writer_started); });
}

ResponseHead stored_response_head(const StoredResponse& m, int status, std::int64_t age, const std::string& name,
                                  bool via, const std::string& cache_status, bool hit,
                                  const HeaderList* override_headers, std::string_view content_range) {
  ResponseHead head;
  fill_stored_response_head(head, m, status, age, name, via, cache_status, hit, override_headers, content_range);
  return head;
}

void fill_stored_response_head(ResponseHead& head, const StoredResponse& m, int status, std::int64_t age,
                               const std::string& name, bool via, std::string_view cache_status, bool hit,
                               const HeaderList* override_headers, std::string_view content_range,
                               std::int64_t content_length) {
  head.status = status;
  if (status == m.status) head.reason.assign(m.reason);
  else head.reason.clear();
  auto& h = head.headers;
  h.clear();
  // A 304 carries the headers a 200 would, without body framing (RFC 9110 §15.4.5); a 206
  // gets its Content-Range from the caller.
  const bool own_length = status == 304 || content_length != kKeepLength;
  for (const auto& f : override_headers ? *override_headers : m.headers) {
    const auto& n = f.name;
    if (iequals(n, "Age") || iequals(n, "Via") || iequals(n, "X-Cache") || iequals(n, "Cache-Status")) continue;
    if (own_length && iequals(n, "Content-Length")) continue;
    if (status == 206 && iequals(n, "Content-Range")) continue;
    h.add_copy(n, f.value);
  }
  char num[24];
  if (content_length >= 0) {
    auto e = std::to_chars(num, num + sizeof num, content_length).ptr;
    h.add_copy("Content-Length", std::string_view(num, static_cast<std::size_t>(e - num)));
  }
  if (!content_range.empty()) h.add_copy("Content-Range", content_range);
  {
    auto e = std::to_chars(num, num + sizeof num, std::max<std::int64_t>(0, age)).ptr;
    h.add_copy("Age", std::string_view(num, static_cast<std::size_t>(e - num)));
  }
  thread_local std::string buf;
  if (via) {
    buf.clear();
    if (m.headers.has("Via")) buf.append(m.headers.joined("Via")).append(", ");
    append_via_entry(buf, m.major, m.minor, name);
    h.add_copy("Via", buf);
  }
  buf.assign(hit ? "HIT from " : "MISS from ").append(name);
  h.add_copy("X-Cache", buf);
  h.add_copy("Cache-Status", cache_status);
}

std::shared_ptr<const StoredResponse> parse_stored_response(std::string_view bytes) {
  struct Slot {
    std::string bytes;
    std::shared_ptr<const StoredResponse> parsed;
  };
  constexpr std::size_t kSlots = 64;  // per thread; a slot holds a copy of the bytes
  constexpr std::size_t kMaxBytes = 16 * 1024;  // larger metadata is parsed each time
  thread_local std::array<Slot, kSlots> memo;
  auto h = reinterpret_cast<std::uintptr_t>(bytes.data()) ^ (bytes.size() * 0x9E3779B97F4A7C15ull);
  h ^= h >> 29;
  Slot& s = memo[(h * 0xBF58476D1CE4E5B9ull >> 58) % kSlots];
  if (s.parsed && s.bytes == bytes) return s.parsed;
  auto r = StoredResponse::parse(bytes);
  if (!r) return nullptr;
  auto p = std::make_shared<const StoredResponse>(std::move(*r));
  if (bytes.size() <= kMaxBytes) {
    s.bytes.assign(bytes);
    s.parsed = p;
  }
  return p;
}

}  // namespace outpost::http
