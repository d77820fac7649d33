// The request's HTTP-cache half: lookups, hits, revalidation, storing, collapsed forwarding
// and invalidation (RFC 9111). The stage machine and forwarding are in request.cpp.
#include <spdlog/spdlog.h>

#include <cassert>
#include <charconv>
#include <cstring>
#include <ctime>

#include "proxy/background_refresh.hpp"
#include "core/uv_write.hpp"
#include "proxy/proxy_worker.hpp"
#include "proxy/request.hpp"

namespace outpost {
namespace {
std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Slices [first, last] (inclusive) of a body held as slices.
std::vector<Slice> body_range(const std::vector<Slice>& body, std::uint64_t first, std::uint64_t last) {
  std::vector<Slice> out;
  std::uint64_t pos = 0;
  for (const auto& s : body) {
    std::uint64_t end = pos + s.size;  // exclusive
    if (end > first && pos <= last) {
      std::uint64_t a = std::max(first, pos), b = std::min(last + 1, end);
      out.push_back(Slice{s.chunk, s.data + (a - pos), static_cast<std::size_t>(b - a)});
    }
    pos = end;
    if (pos > last) break;
  }
  return out;
}

}  // namespace

void ProxyRequest::start_cache_lookup() {
  auto* cache = w_.cache();
  cache_get_ = true;
  // The normalised URL the route made is the cache key (url_text_ serves as both).
  assert(url_text_ == http::cache_key(url_));
  req_cc_ = http::CacheControl::parse(req_.headers);
  http::CacheLookup now;
  auto how = cache->lookup_now(url_text_, req_.headers, &now);
  if (how == http::HttpCache::Now::kDone) {
    on_cache_lookup(std::move(now));
    return;
  }
  auto done = [this, current = still_current()](http::CacheLookup r) {
    if (!current() || !active_) return;
    on_cache_lookup(std::move(r));
  };
  if (how == http::HttpCache::Now::kReadVariant) cache->lookup_variant(w_.worker(), now.store_key, req_.headers, false, done);
  else cache->lookup(w_.worker(), url_text_, req_.headers, done);
}

void ProxyRequest::on_cache_lookup(http::CacheLookup r) {
  auto* cache = w_.cache();
  std::int64_t now = now_s();
  const auto& name = settings_->config.server.name;
  if (r.handle && r.meta) {
    std::int64_t age = 0;
    auto use = http::evaluate(*r.meta, req_cc_, now, &age);
    Outcome hit_code = r.from_disk ? Outcome::kHit : Outcome::kMemHit;
    std::int64_t ttl = r.meta->lifetime - age;
    if (use == http::Usability::kFresh) {
      serve_stored(r.handle, *r.meta, age, hit_code, name + "; hit; ttl=" + std::to_string(ttl));
      return;
    }
    if (use == http::Usability::kStaleServable || use == http::Usability::kStaleWhileRevalidate) {
      // Served stale with the client's (max-stale) or the origin's (stale-while-revalidate,
      // RFC 5861) permission; the latter also starts one background revalidation.
      if (use == http::Usability::kStaleWhileRevalidate && cache->begin_background_refresh(url_text_))
        BackgroundRefresh::start(w_, url_, url_text_, r.store_key, *r.meta, r.handle, req_.headers);
      serve_stored(r.handle, *r.meta, age, Outcome::kStaleHit, name + "; hit; ttl=" + std::to_string(ttl));
      return;
    }
    // Must validate before use.
    bool has_validators = r.meta->headers.has("ETag") || r.meta->headers.has("Last-Modified");
    if (req_cc_.only_if_cached) {
      reject(504, "The cached response is stale and the request says only-if-cached.", Outcome::kMiss);
      return;
    }
    if (has_validators) {
      revalidating_ = true;
      stale_ = r.handle;
      stale_meta_ = *r.meta;
      stale_store_key_ = r.store_key;
      set_stage(Stage::kResolve);
      advance();
      return;
    }
  } else if (r.reader && r.meta && req_.method == "GET") {
    follow_reader(std::move(r.reader), *r.meta);
    return;
  }
  if (!parts_looked_ && range_candidate()) {
    // A single range the complete object could not answer: perhaps its stored parts can.
    parts_looked_ = true;
    bool swap_fail = r.swap_fail;
    cache->lookup_parts(w_.worker(), url_text_,
                        [this, current = still_current(), swap_fail](cache::Handle h,
                                                                     std::shared_ptr<const http::PartsMeta> m,
                                                                     bool from_disk) {
                          if (!current() || !active_) return;
                          on_parts_lookup(std::move(h), std::move(m), from_disk, swap_fail);
                        });
    return;
  }
  cache_miss(r.swap_fail, r.store_key);
}

void ProxyRequest::cache_miss(bool swap_fail, const std::string& store_key) {
  auto* cache = w_.cache();
  if (req_cc_.only_if_cached) {
    reject(504, "The response is not in the cache and the request says only-if-cached.", Outcome::kMiss);
    return;
  }
  if (swap_fail) {
    spdlog::warn("http cache: stored copy of {} failed its check on read; fetching it again", url_text_);
    code_ = Outcome::kSwapFailMiss;
  }
  // A conditional GET on a miss: its 304 could not be stored, and the object would stay
  // out of the cache until a plain GET. When the answer may well be storable (nothing in the
  // request forbids it; below, the key not marked uncacheable), the object is fetched whole,
  // stored, and the client's conditional answered from it (nginx, Varnish) -- unless the
  // store would not keep it: in a full memory-only store a key seen once goes to the small
  // queue and is mostly evicted unread, so its whole body would cost the origin's bytes for
  // nothing where the origin's 304 costs none (docs/CACHING.md). Such a conditional goes as
  // the client sent it, as Squid sends it, and does not collapse: its 304 is for this client
  // only, and plain GETs for the URL meanwhile must not wait on it.
  // The store is asked about the object's own key: a variant's, when the URL varies (its
  // primary key holds the Vary marker, which every variant's lookup touches).
  const std::string& object_key = store_key.empty() ? url_text_ : store_key;
  bool conditional = req_.headers.has("If-None-Match") || req_.headers.has("If-Modified-Since");
  bool whole = conditional && req_.method == "GET" && !followed_ && !req_cc_.no_store &&
               !req_.headers.has("Authorization") && !req_.headers.has("If-Match") &&
               !req_.headers.has("If-Unmodified-Since") && !req_.headers.has("If-Range") &&
               !req_.headers.has("Range") && cache->would_keep(object_key);
  unconditional_ = false;
  own_conditional_ = conditional;  // until it is known to go without its conditionals
  if (conditional && !whole && req_.method == "GET" && !followed_) cache->note_request(object_key);
  // Range requests do not collapse either: a 206 tells nothing of whether the whole object
  // may be stored, and followers would get the whole of it.
  if (req_.method == "GET" && !followed_ && !req_.headers.has("Range") && (whole || !conditional)) {
    auto role = cache->lead_or_follow(url_text_, w_.worker(), [this] {
      return [this, current = still_current()](bool ready) {
        if (!current() || !active_) return;
        followed_ = true;
        // Ready: the leader's object is being written, follow it; else it will not be
        // stored, fetch our own.
        set_stage(ready ? Stage::kCacheLookup : Stage::kResolve);
        advance();
      };
    });
    if (role == http::HttpCache::Collapse::kFollow) {
      set_stage(Stage::kCollapsedWait);  // for the request already on its way to the origin
      return;
    }
    leader_ = role == http::HttpCache::Collapse::kLead;
    passed_ = role == http::HttpCache::Collapse::kPass;
    unconditional_ = whole && !passed_;  // a key marked uncacheable: sent as it came
    own_conditional_ = conditional && !unconditional_;
  }
  set_stage(Stage::kResolve);
  advance();
}

void ProxyRequest::serve_stored(const cache::Handle& h, const http::StoredResponse& meta, std::int64_t age,
                                 Outcome code, const std::string& cache_status) {
  const auto& req = req_;
  const auto& name = settings_->config.server.name;
  discard_body_ = true;
  code_ = code;
  hierarchy_ = !peer_ ? "HIER_NONE" : hierarchy_;
  if (auto* ct = meta.headers.find("Content-Type")) content_type_ = *ct;
  const bool via = settings_->config.proxy.via;
  set_stage(Stage::kServeStored);
  std::uint64_t size = h.body_size();
  bool no_body = meta.status == 204 || meta.status == 304;

  // Client conditionals against the stored response (RFC 9110 §13.2.2).
  bool not_modified = meta.status == 200 && http::not_modified_for(req.headers, meta.headers);
  if (not_modified) {
    if (code_ == Outcome::kMemHit || code_ == Outcome::kHit) code_ = Outcome::kImsHit;
    status_ = 304;
    http::fill_stored_response_head(stored_head_, meta, 304, age, name, via, cache_status, true);
    send_stored(stored_head_, BodyFraming::kNone, {});
    return;
  }

  // Range requests on a complete stored 200 (RFC 9110 §14).
  const std::string* range = req.method == "GET" && meta.status == 200 ? req.headers.find("Range") : nullptr;
  if (range) {
    if (auto* if_range = req.headers.find("If-Range")) {
      auto* etag = meta.headers.find("ETag");
      bool strong_match = etag && !etag->starts_with("W/") && *etag == *if_range;
      auto* lm = meta.headers.find("Last-Modified");
      bool date_match = lm && *lm == *if_range;
      if (!strong_match && !date_match) range = nullptr;  // changed: send everything
    }
  }
  auto plan = range ? http::plan_ranges(*range, size) : http::RangePlan{};
  if (range && (plan.kind == http::RangePlan::Kind::kIgnore || plan.kind == http::RangePlan::Kind::kWhole))
    spdlog::debug("http cache: Range for {} answered with the whole object ({})", url_text_,
                  plan.kind == http::RangePlan::Kind::kWhole ? "the ranges cover all of it" : "invalid or too many ranges");
  const auto& ranges = plan.ranges;
  if (plan.kind == http::RangePlan::Kind::kPartial || plan.kind == http::RangePlan::Kind::kUnsatisfiable) {
    if (plan.kind == http::RangePlan::Kind::kUnsatisfiable) {
      status_ = 416;
      http::fill_stored_response_head(stored_head_, meta, 416, age, name, via, cache_status, true, nullptr,
                                      "bytes */" + std::to_string(size), 0);
      send_stored(stored_head_, BodyFraming::kNone, {});
      return;
    }
    status_ = 206;
    if (ranges.size() == 1) {
      auto [a, b] = ranges[0];
      http::fill_stored_response_head(
          stored_head_, meta, 206, age, name, via, cache_status, true, nullptr,
          "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(size),
          static_cast<std::int64_t>(b - a + 1));
      send_stored(stored_head_, BodyFraming::kLength, body_range(h.body(), a, b));
      return;
    }
    // Several ranges: multipart/byteranges.
    static const std::string boundary = "OUTPOST_BYTERANGES_7d1f3a";
    std::string ctype = meta.headers.find("Content-Type") ? *meta.headers.find("Content-Type") : "application/octet-stream";
    std::vector<Slice> parts;
    std::uint64_t total = 0;
    for (auto [a, b] : ranges) {
      std::string part_head = "\r\n--" + boundary + "\r\nContent-Type: " + ctype + "\r\nContent-Range: bytes " +
                              std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(size) + "\r\n\r\n";
      total += part_head.size() + (b - a + 1);
      parts.push_back(slice_of(part_head));
      for (auto& s : body_range(h.body(), a, b)) parts.push_back(std::move(s));
    }
    std::string tail = "\r\n--" + boundary + "--\r\n";
    total += tail.size();
    parts.push_back(slice_of(tail));
    http::HeaderList hm = meta.headers;
    hm.remove("Content-Length");
    hm.remove("Content-Type");
    hm.add("Content-Type", "multipart/byteranges; boundary=" + boundary);
    hm.add("Content-Length", std::to_string(total));
    send_stored(http::stored_response_head(meta, 206, age, name, via, cache_status, true, &hm), BodyFraming::kLength,
                std::move(parts));
    return;
  }

  status_ = meta.status;
  std::vector<Slice> body;
  if (!head_request_ && !no_body) body = h.body();  // zero copy: the slices keep their chunks alive
  // The stored fields with the object's own length (a stored 204/304 gets none).
  http::fill_stored_response_head(stored_head_, meta, meta.status, age, name, via, cache_status, true, nullptr, {},
                                  no_body ? http::kDropLength : static_cast<std::int64_t>(size));
  send_stored(stored_head_, body.empty() ? BodyFraming::kNone : BodyFraming::kLength, std::move(body));
}

void ProxyRequest::send_stored(const http::ResponseHead& head, BodyFraming framing, std::vector<Slice> body) {
  set_stage(Stage::kDone);
  sink_->cork();  // head and body in one write (end() sends it)
  sink_->start(head, framing);
  if (!body.empty()) sink_->send(std::move(body));
  sink_->end();
}

void ProxyRequest::follow_reader(cache::Reader reader, const http::StoredResponse& meta) {
  // Collapsed forwarding: stream the object another request is writing right now.
  const auto& name = settings_->config.server.name;
  discard_body_ = true;
  code_ = Outcome::kCollapsedHit;
  status_ = meta.status;
  if (auto* ct = meta.headers.find("Content-Type")) content_type_ = *ct;
  set_stage(Stage::kFollow);
  reader_ = std::move(reader);
  sink_->cork();  // the head leaves with the first body bytes (pump_reader uncorks)
  sink_->start(http::stored_response_head(meta, meta.status, http::current_age(meta, now_s()), name,
                                          settings_->config.proxy.via, name + "; fwd=uri-miss; collapsed", true),
               meta.headers.has("Content-Length") ? BodyFraming::kLength : BodyFraming::kUnknown);
  pump_reader();
}

void ProxyRequest::pump_reader() {
  if (!active_ || !reader_) return;
  reader_waiting_ = false;
  while (active_ && reader_) {
    if (sink_->congested()) {
      sink_->uncork();
      reader_waiting_ = true;  // on_sink_drained() calls back
      return;
    }
    std::vector<Slice> slices;
    auto res = reader_.read(&slices);
    if (res == cache::ReadResult::kData) {
      std::vector<Slice> out;
      for (auto& s : slices) {
        if (reader_skip_ >= s.size) {  // the client has these bytes already
          reader_skip_ -= s.size;
          continue;
        }
        s.data += reader_skip_;
        s.size -= static_cast<std::size_t>(reader_skip_);
        reader_skip_ = 0;
        out.push_back(std::move(s));
      }
      if (!head_request_ && !out.empty()) sink_->send(std::move(out));
      continue;
    }
    if (res == cache::ReadResult::kWait) {
      sink_->uncork();  // what the writer has so far goes out now
      Worker* worker = &w_.worker();
      reader_.subscribe([this, current = still_current(), worker] {
        worker->post([this, current] {
          if (!current()) return;
          pump_reader();
        });
      });
      return;
    }
    if (res == cache::ReadResult::kEnd) {
      reader_ = cache::Reader();
      set_stage(Stage::kDone);
      sink_->end();
      return;
    }
    // The writer gave up (origin failed mid-response): the client sees a cut connection,
    // exactly as the leader's client does.
    code_ = follows_own_writer_ ? Outcome::kMissAborted : Outcome::kCollapsedAborted;
    sink_->abort();
    return;
  }
}

bool ProxyRequest::follow_own_writer() {
  // This client is slower than its origin. Rather than hold the origin back (and with it
  // every request collapsed onto this fetch, and the origin's own read timeout), the origin's
  // body goes on into the store at the origin's pace and this client reads the stored copy
  // at its own, like a follower. Only with a known length, so the writer cannot give up for
  // size halfway, and a body relayed as it came (no re-chunking to continue).
  if (!writer_ || !origin_length_known_ || head_request_ || clip_) return false;
  reader_ = writer_.reader();
  if (!reader_) return false;
  reader_skip_ = body_relayed_;
  follows_own_writer_ = true;
  reader_waiting_ = true;  // on_sink_drained() pumps once the queue drains
  return true;
}

bool ProxyRequest::revalidation_replaces(std::string_view name) {
  // Our validators replace the client's: the client's conditionals are answered from the
  // refreshed entry afterwards.
  for (std::string_view n : {"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"})
    if (http::iequals(name, n)) return true;
  return false;
}

void ProxyRequest::append_revalidation_fields(std::string& out) const {
  if (auto* etag = stale_meta_->headers.find("ETag")) http::append_field(out, "If-None-Match", *etag);
  if (auto* lm = stale_meta_->headers.find("Last-Modified")) http::append_field(out, "If-Modified-Since", *lm);
}

void ProxyRequest::begin_storing(const http::MessageHead& head) {
  auto* cache = w_.cache();
  const auto& name = settings_->config.server.name;
  std::string why;
  auto meta = cache->storable_meta(settings_->cache_policy, req_.headers, req_cc_, head, url_text_, request_time_, now_s(), &why);
  if (revalidating_ && !meta) cache->invalidate(url_text_);  // the new answer replaces the old
  if (meta) {
    writer_ = cache->begin_store(url_text_, *meta, head.content_length, settings_->cache_policy.max_variants, &why);
  }
  // The origin's 304 to a client's own conditional says nothing of whether the URL's 200 may
  // be stored: no hit-for-miss mark for it.
  bool own_304 = own_conditional_ && head.status == 304;
  if (own_304) why = "the origin's answer to the client's own conditional";
  // RFC 9211 Cache-Status, built in one buffer (this runs for every forwarded GET).
  cache_status_.clear();
  cache_status_.reserve(name.size() + 48 + why.size());
  cache_status_.append(name).append(revalidating_ ? "; fwd=stale" : "; fwd=uri-miss").append("; fwd-status=");
  char digits[8];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, head.status);
  cache_status_.append(digits, end);
  if (writer_) cache_status_.append("; stored");
  else cache_status_.append("; detail=\"").append(why).append("\"");
  // A pass (the key is marked uncacheable) that is again uncacheable leaves the mark as it
  // is: it lapses kPassMemory after the fetch that set it, as Varnish's hit-for-miss does,
  // and no request pays a lock on the shared map to renew it.
  if (writer_ || (!passed_ && !own_304)) cache->learned(url_text_, static_cast<bool>(writer_));
  if (writer_) cache->drop_parts(url_text_);  // a complete object supersedes stored parts
  if (leader_) {
    cache->settle(url_text_, static_cast<bool>(writer_));
    leader_ = false;
  }
}

void ProxyRequest::refresh_from_304(const http::MessageHead& head) {
  // RFC 9111 §4.3.4: the 304's header fields replace the stored ones of the same name.
  auto* cache = w_.cache();
  auto meta = cache->merge_not_modified(settings_->cache_policy, *stale_meta_, head.headers, request_time_, now_s(), url_text_);
  cache->refresh(stale_store_key_, meta, stale_);
  stale_meta_ = meta;
}

void ProxyRequest::invalidate_after_unsafe(const http::MessageHead& head) {
  // RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and
  // the Location / Content-Location URIs on the same host.
  if (method_safe(req_.method) || head.status < 200 || head.status >= 400) return;
  // An intercepted request whose Host is not where it went says nothing about Host's URLs.
  if (client_.original_dst && !host_verified_) return;
  auto* cache = w_.cache();
  cache->invalidate(http::cache_key(url_));
  for (const char* name : {"Location", "Content-Location"}) {
    auto* v = head.headers.find(name);
    if (!v || v->empty()) continue;
    http::Url target;
    if ((*v)[0] == '/') {
      target = url_;
      target.path = *v;
    } else {
      http::UrlError err;
      auto u = http::parse_absolute_url(*v, &err);
      if (!u || u->host != url_.host || u->port != url_.port) continue;  // other hosts: never
      target = *u;
    }
    cache->invalidate(http::cache_key(target));
  }
}

void ProxyRequest::end_cache_participation() {
  if (leader_ && w_.cache()) {
    w_.cache()->settle(url_text_, false);
    leader_ = false;
  }
  if (writer_) writer_.abort();  // an uncommitted object never becomes visible
  if (part_writer_) part_writer_.abort();
  reader_ = cache::Reader();
}

// ---------------------------------------------------------------- partial content

namespace {
// The stored bytes of the representation's range `r` (every byte of it stored), as slices
// of the parts object's body.
std::vector<Slice> parts_slices(const cache::Handle& h, const http::PartSet& parts, http::ByteRange r) {
  std::vector<Slice> out;
  for (auto s : parts.stored_within(r)) {
    std::uint64_t off = parts.body_offset(s.first);
    for (auto& x : body_range(h.body(), off, off + (s.last - s.first))) out.push_back(std::move(x));
  }
  return out;
}

// Whether `data` equals the stored body's bytes from offset `off`.
bool stored_equals(const std::vector<Slice>& body, std::uint64_t off, const char* data, std::uint64_t n) {
  for (const auto& s : body_range(body, off, off + n - 1)) {
    if (std::memcmp(s.data, data, s.size) != 0) return false;
    data += s.size;
  }
  return true;
}

std::size_t field_count(const http::HeaderList& h, std::string_view name) {
  std::size_t n = 0;
  for (const auto& f : h)
    if (http::iequals(f.name, name)) ++n;
  return n;
}

std::string range_text(http::ByteRange r, std::uint64_t complete) {
  return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(complete);
}
}  // namespace

bool ProxyRequest::range_candidate() const {
  // One single-range Range field on a GET whose answer may be stored, and no conditional
  // but If-Range (a range under If-None-Match... goes as sent).
  const auto& policy = settings_->cache_policy;
  if (req_.method != "GET" || req_cc_.no_store || req_.headers.has("Authorization")) return false;
  if (policy.range_parts_memory == 0 && policy.range_offset_limit == 0) return false;
  if (field_count(req_.headers, "Range") != 1 || field_count(req_.headers, "If-Range") > 1) return false;
  if (!http::parse_single_range(*req_.headers.find("Range"))) return false;
  for (std::string_view n : {"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"})
    if (req_.headers.has(n)) return false;
  return true;
}

void ProxyRequest::on_parts_lookup(cache::Handle h, std::shared_ptr<const http::PartsMeta> m, bool from_disk,
                                   bool swap_fail) {
  const auto& policy = settings_->cache_policy;
  const std::string& range = *req_.headers.find("Range");
  if (m && !http::vary_matches(m->resp, req_.headers)) m.reset();
  if (m) {
    parts_ = std::move(h);
    parts_meta_ = m;
    const std::string* if_range = req_.headers.find("If-Range");
    bool applies = !if_range || http::if_range_matches(*if_range, m->resp.headers);
    std::int64_t age = 0;
    auto use = http::evaluate(m->resp, req_cc_, now_s(), &age);
    bool usable = use == http::Usability::kFresh || use == http::Usability::kStaleServable;
    auto plan = http::plan_ranges(range, m->complete);
    if (applies && usable && plan.kind == http::RangePlan::Kind::kUnsatisfiable) {
      discard_body_ = true;
      code_ = from_disk ? Outcome::kHit : Outcome::kMemHit;
      status_ = 416;
      set_stage(Stage::kServeStored);
      const auto& name = settings_->config.server.name;
      http::fill_stored_response_head(stored_head_, m->resp, 416, age, name, settings_->config.proxy.via,
                                      name + "; hit", true, nullptr, "bytes */" + std::to_string(m->complete), 0);
      send_stored(stored_head_, BodyFraming::kNone, {});
      return;
    }
    if (applies && plan.kind == http::RangePlan::Kind::kPartial && plan.ranges.size() == 1) {
      auto want = plan.ranges[0];
      if (m->parts.covers(want)) {
        if (usable) {
          serve_parts(parts_, *m, want, age, from_disk);
          return;
        }
      } else if (auto gaps = m->parts.gaps(want); !(gaps.size() == 1 && gaps[0] == want)) {
        // Partly stored: ask only for the span of the missing bytes, under If-Range with the
        // parts' validator (a 200 instead means the representation changed). Stale parts
        // may serve here: the origin's 206 confirms they are current.
        range_mode_ = RangeMode::kFill;
        client_range_ = want;
        fetch_range_ = {gaps.front().first, gaps.back().last};
        cache_miss(swap_fail);
        return;
      }
    }
  }
  auto spec = http::parse_single_range(range);
  if (policy.range_offset_limit > 0 && spec->first && *spec->first < policy.range_offset_limit) {
    range_mode_ = RangeMode::kWhole;  // Squid's range_offset_limit
  } else if (policy.range_parts_memory > 0) {
    range_mode_ = RangeMode::kPlain;
  }
  cache_miss(swap_fail);
}

void ProxyRequest::serve_parts(const cache::Handle& h, const http::PartsMeta& m, http::ByteRange want,
                               std::int64_t age, bool from_disk) {
  const auto& name = settings_->config.server.name;
  discard_body_ = true;
  code_ = from_disk ? Outcome::kHit : Outcome::kMemHit;
  hierarchy_ = "HIER_NONE";
  if (auto* ct = m.resp.headers.find("Content-Type")) content_type_ = *ct;
  set_stage(Stage::kServeStored);
  status_ = 206;
  http::fill_stored_response_head(stored_head_, m.resp, 206, age, name, settings_->config.proxy.via,
                                  name + "; hit; ttl=" + std::to_string(m.resp.lifetime - age) + "; detail=parts",
                                  true, nullptr, range_text(want, m.complete),
                                  static_cast<std::int64_t>(want.last - want.first + 1));
  send_stored(stored_head_, BodyFraming::kLength, parts_slices(h, m.parts, want));
}

bool ProxyRequest::begin_part(const http::MessageHead& head) {
  // A 206 to a single-range miss. Stored as a part only when it is one range of a known
  // complete length, its body framed as that range's length, with a strong validator, and
  // storable as the 200 it is a part of would be.
  auto* cache = w_.cache();
  const auto& policy = settings_->cache_policy;
  const auto& name = settings_->config.server.name;
  std::optional<http::ContentRange> cr;
  if (field_count(head.headers, "Content-Range") == 1) cr = http::parse_content_range(*head.headers.find("Content-Range"));
  std::uint64_t len = cr ? cr->last - cr->first + 1 : 0;
  bool framing_ok = cr && head.transfer_codings.empty() && (!head.has_length || head.chunked || head.content_length == len);
  bool same = cr && parts_meta_ && cr->complete == parts_meta_->complete &&
              http::same_representation(parts_meta_->resp.headers, head.headers);
  if (range_mode_ == RangeMode::kFill &&
      !(framing_ok && same && cr->first <= fetch_range_.first && cr->last >= fetch_range_.last)) {
    spdlog::info("client {}: GET {}: the origin's 206 (Content-Range \"{}\") does not hold bytes {}-{} of the stored "
                 "parts' representation; parts dropped",
                 client_.text, url_text_, head.headers.joined("Content-Range"), fetch_range_.first, fetch_range_.last);
    cache->drop_parts(url_text_);
    reject(502, "The origin server's partial response does not match the range asked or the parts stored.",
           Outcome::kMiss);
    return false;
  }
  std::string why;
  if (!framing_ok) {
    why = "206 without one Content-Range matching its body";
  } else if (cr->complete > cache->store().max_object_size()) {
    why = "larger than max_object_size";
  } else if (auto plan = http::plan_ranges(*req_.headers.find("Range"), cr->complete);
             range_mode_ == RangeMode::kPlain && !(plan.kind == http::RangePlan::Kind::kPartial &&
                                                   plan.ranges.size() == 1 && cr->first <= plan.ranges[0].last &&
                                                   cr->last >= plan.ranges[0].first)) {
    why = "206 for another range than asked";
  } else {
    http::MessageHead rep;  // the 200 this is a part of
    rep.status = 200;
    rep.reason = "OK";
    rep.major = head.major;
    rep.minor = head.minor;
    rep.headers = head.headers;
    rep.headers.remove("Content-Range");
    rep.headers.set("Content-Length", std::to_string(cr->complete));
    auto meta = cache->storable_meta(policy, req_.headers, req_cc_, rep, url_text_, request_time_, now_s(), &why);
    if (meta && http::strong_validator(meta->headers).empty()) {
      meta.reset();
      why = "no strong validator to join parts by";
    }
    if (meta) {
      http::PartsMeta pm;
      pm.complete = cr->complete;
      pm.resp = *meta;
      part_merges_ = same && parts_meta_->resp.vary == meta->vary;
      if (part_merges_) pm.parts = parts_meta_->parts;
      // (otherwise the stored parts are of another representation: this one replaces them)
      pm.parts.add({cr->first, cr->last});
      if (pm.parts.count() > policy.range_max_parts) {
        why = "more than range_max_parts ranges";
      } else if (pm.parts.complete(pm.complete)) {
        part_writer_ = cache->begin_store(url_text_, *meta, pm.complete, policy.max_variants, &why);
        part_completes_ = static_cast<bool>(part_writer_);
      } else {
        part_writer_ = cache->begin_parts(url_text_, pm, policy.range_parts_memory);
        if (!part_writer_) why = "over range_parts_percent of the memory";
      }
      if (part_writer_) {
        part_ = {cr->first, cr->last};
        part_pos_ = cr->first;
        if (part_merges_ && cr->first > 0)  // the stored bytes before this part
          for (const auto& s : parts_slices(parts_, parts_meta_->parts, {0, cr->first - 1})) part_writer_.append(s.view());
      } else if (parts_meta_ && !part_merges_) {
        cache->drop_parts(url_text_);
      }
    }
  }
  cache_status_ = name + (range_mode_ == RangeMode::kFill ? "; fwd=partial" : "; fwd=uri-miss") + "; fwd-status=206";
  if (part_writer_) cache_status_ += "; stored";
  else cache_status_ += "; detail=\"" + why + "\"";
  if (range_mode_ == RangeMode::kFill) {
    clip_ = true;
    clip_lo_ = fetch_range_.first;
    clip_hi_ = fetch_range_.last;
    relay_pos_ = cr->first;
  }
  return true;
}

std::vector<Slice> ProxyRequest::parts_slices_of(std::uint64_t first, std::uint64_t last) const {
  return parts_slices(parts_, parts_meta_->parts, {first, last});
}

bool ProxyRequest::feed_part(const Slice& body) {
  if (!part_writer_ || body.size == 0) return true;
  std::uint64_t first = part_pos_, last = part_pos_ + body.size - 1;
  if (last > part_.last) {
    spdlog::info("client {}: GET {}: the origin's 206 body is longer than its Content-Range; not stored", client_.text,
                 url_text_);
    part_writer_.abort();
    return true;
  }
  if (part_merges_) {
    // Bytes of the stored parts again: a strong validator says they are the same; a hostile
    // or broken origin may say otherwise, and then nothing of either is kept.
    for (auto s : parts_meta_->parts.stored_within({first, last})) {
      if (!stored_equals(parts_.body(), parts_meta_->parts.body_offset(s.first), body.data + (s.first - first),
                         s.last - s.first + 1)) {
        spdlog::warn("http cache: {}: a 206 with the stored parts' validator has other bytes at {}-{}; parts dropped",
                     url_text_, s.first, s.last);
        part_writer_.abort();
        w_.cache()->drop_parts(url_text_);
        return false;
      }
    }
  }
  if (part_writer_.append(body.view()) != cache::Status::kOk) part_writer_.abort();
  part_pos_ = last + 1;
  return true;
}

void ProxyRequest::finish_part() {
  if (!part_writer_) return;
  if (part_pos_ != part_.last + 1) {  // shorter than its Content-Range
    spdlog::info("client {}: GET {}: the origin's 206 body is shorter than its Content-Range; not stored", client_.text,
                 url_text_);
    part_writer_.abort();
    return;
  }
  if (part_merges_ && part_.last + 1 < parts_meta_->complete)  // the stored bytes after it
    for (const auto& s : parts_slices(parts_, parts_meta_->parts, {part_.last + 1, parts_meta_->complete - 1}))
      part_writer_.append(s.view());
  auto st = part_writer_.commit();
  if (st != cache::Status::kOk) spdlog::debug("http cache: part of {} not stored: {}", url_text_, cache::status_name(st));
  else if (part_completes_) w_.cache()->drop_parts(url_text_);  // joined into the complete object
}

void ProxyRequest::shape_range_answer(const http::MessageHead& head, http::ResponseHead& out) {
  // The client's range, answered from the response passing by: kFill (stored bytes around
  // the fetched span) or kWhole (the whole 200, of which the client gets its range).
  auto& h = out.headers;
  h.remove("Content-Length");
  h.remove("Content-Range");
  std::uint64_t complete = range_mode_ == RangeMode::kFill ? parts_meta_->complete : head.content_length;
  out.status = 206;  // a single range keeps its 206 even when it is all of it ("bytes=0-")
  out.reason = "Partial Content";
  h.add("Content-Range", range_text(client_range_, complete));
  h.add("Content-Length", std::to_string(client_range_.last - client_range_.first + 1));
  status_ = out.status;
}

}  // namespace outpost
