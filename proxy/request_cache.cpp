// ClientSession's HTTP-cache half: lookups, hits, revalidation, storing, collapsed
// forwarding, invalidation and PURGE (RFC 9111). The forwarding half is client_session.cpp.
#include <spdlog/spdlog.h>

#include <ctime>

#include "core/uv_write.hpp"
#include "proxy/background_refresh.hpp"
#include "proxy/client_session.hpp"
#include "proxy/error_page.hpp"

namespace outpost {
namespace {
constexpr std::size_t kReaderHighWater = 256 * 1024;

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string hexlen(std::size_t n) {
  char b[24];
  int len = std::snprintf(b, sizeof b, "%zx\r\n", n);
  return std::string(b, static_cast<std::size_t>(len));
}

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

bool unsafe_method(std::string_view m) { return m == "POST" || m == "PUT" || m == "DELETE" || m == "PATCH"; }
}  // namespace

void ClientSession::start_cache_lookup() {
  auto* cache = w_.cache();
  ex_->cache_get = true;
  ex_->cache_key = http::cache_key(ex_->url);
  ex_->req_cc = http::CacheControl::parse(ex_->req.headers);
  std::weak_ptr<int> alive = alive_;
  std::uint64_t gen = ex_gen_;
  cache->lookup(w_.worker(), ex_->cache_key, ex_->req.headers, [this, alive, gen](http::CacheLookup r) {
    if (alive.expired() || closing_ || gen != ex_gen_) return;
    on_cache_lookup(std::move(r));
  });
}

void ClientSession::on_cache_lookup(http::CacheLookup r) {
  auto* cache = w_.cache();
  std::int64_t now = now_s();
  const auto& name = settings_->config.server.name;
  if (r.handle && r.meta) {
    std::int64_t age = 0;
    auto use = http::evaluate(*r.meta, ex_->req_cc, now, &age);
    Outcome hit_code = r.from_disk ? Outcome::kHit : Outcome::kMemHit;
    std::int64_t ttl = r.meta->lifetime - age;
    if (use == http::Usability::kFresh) {
      serve_stored(r.handle, *r.meta, age, hit_code, name + "; hit; ttl=" + std::to_string(ttl));
      return;
    }
    if (use == http::Usability::kStaleServable || use == http::Usability::kStaleWhileRevalidate) {
      // Served stale with the client's (max-stale) or the origin's (stale-while-revalidate,
      // RFC 5861) permission; the latter also starts one background revalidation.
      if (use == http::Usability::kStaleWhileRevalidate && cache->begin_background_refresh(ex_->cache_key))
        BackgroundRefresh::start(w_, ex_->url, ex_->cache_key, r.store_key, *r.meta, r.handle, ex_->req.headers);
      serve_stored(r.handle, *r.meta, age, Outcome::kStaleHit, name + "; hit; ttl=" + std::to_string(ttl));
      return;
    }
    // Must validate before use.
    bool has_validators = r.meta->headers.has("ETag") || r.meta->headers.has("Last-Modified");
    if (ex_->req_cc.only_if_cached) {
      reject(504, "The cached response is stale and the request says only-if-cached.", Outcome::kMiss);
      return;
    }
    if (has_validators) {
      ex_->revalidating = true;
      ex_->stale = r.handle;
      ex_->stale_meta = r.meta;
      ex_->stale_store_key = r.store_key;
      start_forward();
      return;
    }
  } else if (r.reader && r.meta && ex_->req.method == "GET") {
    follow_reader(std::move(r.reader), *r.meta);
    return;
  }
  if (ex_->req_cc.only_if_cached) {
    reject(504, "The response is not in the cache and the request says only-if-cached.", Outcome::kMiss);
    return;
  }
  if (r.swap_fail) {
    spdlog::warn("http cache: stored copy of {} failed its check on read; fetching it again", ex_->url_text);
    ex_->code = Outcome::kSwapFailMiss;
  }
  if (ex_->req.method == "GET" && !ex_->followed) {
    std::weak_ptr<int> alive = alive_;
    std::uint64_t gen = ex_gen_;
    bool lead = cache->lead_or_follow(ex_->cache_key, w_.worker(), [this, alive, gen](bool ready) {
      if (alive.expired() || closing_ || gen != ex_gen_) return;
      ex_->followed = true;
      if (ready) start_cache_lookup();  // the leader's object is being written: follow it
      else start_forward();             // it will not be stored: fetch our own
    });
    if (!lead) return;  // waiting for the request already on its way to the origin
    ex_->leader = true;
  }
  start_forward();
}

void ClientSession::serve_stored(const cache::Handle& h, const http::StoredResponse& meta, std::int64_t age,
                                 Outcome code, const std::string& cache_status) {
  const auto& req = ex_->req;
  const auto& name = settings_->config.server.name;
  ex_->discard_body = true;
  ex_->code = code;
  ex_->hierarchy = ex_->peer.empty() ? "HIER_NONE" : ex_->hierarchy;
  if (auto* ct = meta.headers.find("Content-Type")) ex_->content_type = *ct;
  const bool via = settings_->config.proxy.via;
  http::Http1Framing framing;
  framing.close = ex_->close_after;
  framing.client_http10 = req.minor == 0;
  std::uint64_t size = h.body_size();
  bool no_body = meta.status == 204 || meta.status == 304;

  // Client conditionals against the stored response (RFC 9110 §13.2.2).
  bool not_modified = false;
  if (meta.status == 200) {
    if (auto* inm = req.headers.find("If-None-Match")) {
      if (auto* etag = meta.headers.find("ETag")) not_modified = http::if_none_match(*inm, *etag);
    } else if (auto* ims = req.headers.find("If-Modified-Since")) {
      auto since = http::parse_http_date(*ims);
      auto lm = meta.headers.find("Last-Modified") ? http::parse_http_date(*meta.headers.find("Last-Modified")) : std::nullopt;
      not_modified = since && lm && *lm <= *since;
    }
  }
  if (not_modified) {
    if (ex_->code == Outcome::kMemHit || ex_->code == Outcome::kHit) ex_->code = Outcome::kImsHit;
    ex_->status = 304;
    ex_->response_started = ex_->response_done = true;
    send_to_client({slice_of(http::stored_response_head(meta, 304, age, name, via, cache_status, true, framing))});
    maybe_finish();
    return;
  }

  http::HeaderList headers = meta.headers;
  headers.remove("Content-Length");
  if (!no_body) headers.add("Content-Length", std::to_string(size));

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
    spdlog::debug("http cache: Range for {} answered with the whole object ({})", ex_->url_text,
                  plan.kind == http::RangePlan::Kind::kWhole ? "the ranges cover all of it" : "invalid or too many ranges");
  const auto& ranges = plan.ranges;
  if (plan.kind == http::RangePlan::Kind::kPartial || plan.kind == http::RangePlan::Kind::kUnsatisfiable) {
    if (plan.kind == http::RangePlan::Kind::kUnsatisfiable) {
      http::HeaderList h416 = meta.headers;
      h416.remove("Content-Length");
      h416.add("Content-Length", "0");
      ex_->status = 416;
      ex_->response_started = ex_->response_done = true;
      send_to_client({slice_of(http::stored_response_head(meta, 416, age, name, via, cache_status, true, framing, &h416,
                                                          "bytes */" + std::to_string(size)))});
      maybe_finish();
      return;
    }
    ex_->status = 206;
    if (ranges.size() == 1) {
      auto [a, b] = ranges[0];
      http::HeaderList h206 = meta.headers;
      h206.remove("Content-Length");
      h206.add("Content-Length", std::to_string(b - a + 1));
      std::vector<Slice> out;
      out.push_back(slice_of(http::stored_response_head(
          meta, 206, age, name, via, cache_status, true, framing, &h206,
          "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(size))));
      for (auto& s : body_range(h.body(), a, b)) out.push_back(std::move(s));
      ex_->response_started = ex_->response_done = true;
      send_to_client(std::move(out));
      maybe_finish();
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
    std::vector<Slice> out;
    out.push_back(slice_of(http::stored_response_head(meta, 206, age, name, via, cache_status, true, framing, &hm)));
    for (auto& s : parts) out.push_back(std::move(s));
    ex_->response_started = ex_->response_done = true;
    send_to_client(std::move(out));
    maybe_finish();
    return;
  }

  ex_->status = meta.status;
  std::vector<Slice> out;
  out.push_back(slice_of(http::stored_response_head(meta, meta.status, age, name, via, cache_status, true, framing,
                                                    &headers)));
  if (!ex_->head_request && !no_body)
    for (const auto& s : h.body()) out.push_back(s);  // zero copy: the slices keep their chunks alive
  ex_->response_started = ex_->response_done = true;
  send_to_client(std::move(out));
  maybe_finish();
}

void ClientSession::follow_reader(cache::Reader reader, const http::StoredResponse& meta) {
  // Collapsed forwarding: stream the object another request is writing right now.
  const auto& name = settings_->config.server.name;
  ex_->discard_body = true;
  ex_->code = Outcome::kCollapsedHit;
  ex_->status = meta.status;
  if (auto* ct = meta.headers.find("Content-Type")) ex_->content_type = *ct;
  bool has_length = meta.headers.has("Content-Length");
  if (!has_length) {
    if (ex_->req.minor >= 1) ex_->reader_chunked = true;
    else ex_->close_after = true;
  }
  http::Http1Framing framing;
  framing.chunked = ex_->reader_chunked;
  framing.close = ex_->close_after;
  framing.client_http10 = ex_->req.minor == 0;
  ex_->reader = std::move(reader);
  ex_->response_started = true;
  send_to_client({slice_of(http::stored_response_head(meta, meta.status, http::current_age(meta, now_s()), name,
                                                      settings_->config.proxy.via, name + "; fwd=uri-miss; collapsed",
                                                      true, framing))});
  pump_reader();
}

void ClientSession::pump_reader() {
  if (closing_ || !ex_ || !ex_->reader) return;
  ex_->reader_waiting = false;
  auto* tcp = reinterpret_cast<uv_stream_t*>(tcp_);
  while (!closing_ && ex_->reader) {
    if (uv_stream_get_write_queue_size(tcp) > kReaderHighWater) {
      ex_->reader_waiting = true;  // on_client_write_done() calls back
      return;
    }
    std::vector<Slice> slices;
    auto res = ex_->reader.read(&slices);
    if (res == cache::ReadResult::kData) {
      std::vector<Slice> out;
      for (auto& s : slices) {
        if (ex_->reader_skip >= s.size) {  // the client has these bytes already
          ex_->reader_skip -= s.size;
          continue;
        }
        s.data += ex_->reader_skip;
        s.size -= static_cast<std::size_t>(ex_->reader_skip);
        ex_->reader_skip = 0;
        if (ex_->reader_chunked) out.push_back(slice_of(hexlen(s.size)));
        out.push_back(std::move(s));
        if (ex_->reader_chunked) out.push_back(slice_of("\r\n"));
      }
      if (!ex_->head_request) send_to_client(std::move(out));
      continue;
    }
    if (res == cache::ReadResult::kWait) {
      std::weak_ptr<int> alive = alive_;
      std::uint64_t gen = ex_gen_;
      Worker* worker = &w_.worker();
      ex_->reader.subscribe([this, alive, gen, worker] {
        worker->post([this, alive, gen] {
          if (alive.expired() || closing_ || gen != ex_gen_) return;
          pump_reader();
        });
      });
      return;
    }
    if (res == cache::ReadResult::kEnd) {
      if (ex_->reader_chunked && !ex_->head_request) send_to_client({slice_of("0\r\n\r\n")});
      ex_->reader = cache::Reader();
      ex_->response_done = true;
      maybe_finish();
      return;
    }
    // The writer gave up (origin failed mid-response): the client sees a cut connection,
    // exactly as the leader's client does.
    ex_->code = ex_->follows_own_writer ? Outcome::kMissAborted : Outcome::kCollapsedAborted;
    abort();
    return;
  }
}

bool ClientSession::follow_own_writer() {
  // This client is slower than its origin. Rather than hold the origin back (and with it
  // every request collapsed onto this fetch, and the origin's own read timeout), the origin's
  // body goes on into the store at the origin's pace and this client reads the stored copy
  // at its own, like a follower. Only with a known length, so the writer cannot give up for
  // size halfway, and a body relayed as it came (no re-chunking to continue).
  if (!ex_->writer || !ex_->origin_length_known || ex_->chunked_out || ex_->head_request) return false;
  ex_->reader = ex_->writer.reader();
  if (!ex_->reader) return false;
  ex_->reader_skip = ex_->body_relayed;
  ex_->reader_chunked = false;
  ex_->follows_own_writer = true;
  ex_->reader_waiting = true;  // on_client_write_done() pumps once the queue drains
  return true;
}

void ClientSession::add_revalidation_headers(http::HeaderList& h) {
  // Our validators replace the client's: the client's conditionals are answered from the
  // refreshed entry afterwards.
  h.remove("If-None-Match");
  h.remove("If-Modified-Since");
  h.remove("If-Match");
  h.remove("If-Unmodified-Since");
  h.remove("If-Range");
  h.remove("Range");
  if (auto* etag = ex_->stale_meta->headers.find("ETag")) h.add("If-None-Match", *etag);
  if (auto* lm = ex_->stale_meta->headers.find("Last-Modified")) h.add("If-Modified-Since", *lm);
}

void ClientSession::begin_storing(const http::MessageHead& head) {
  auto* cache = w_.cache();
  const auto& name = settings_->config.server.name;
  std::string why;
  auto meta = cache->storable_meta(ex_->req.headers, ex_->req_cc, head, ex_->url_text, ex_->request_time, now_s(), &why);
  if (ex_->revalidating && !meta) cache->invalidate(ex_->cache_key);  // the new answer replaces the old
  if (meta) {
    ex_->writer = cache->begin_store(ex_->cache_key, *meta, head.content_length);
    if (!ex_->writer) why = "store refused the object";
  }
  ex_->cache_status = name + "; fwd=" + (ex_->revalidating ? "stale" : "uri-miss") + "; fwd-status=" +
                     std::to_string(head.status) + (ex_->writer ? "; stored" : "; detail=\"" + why + "\"");
  if (ex_->leader) {
    cache->settle(ex_->cache_key, static_cast<bool>(ex_->writer));
    ex_->leader = false;
  }
}

void ClientSession::refresh_from_304(const http::MessageHead& head) {
  // RFC 9111 §4.3.4: the 304's header fields replace the stored ones of the same name.
  auto* cache = w_.cache();
  auto meta = cache->merge_not_modified(*ex_->stale_meta, head.headers, ex_->request_time, now_s(), ex_->url_text);
  cache->refresh(ex_->stale_store_key, meta, ex_->stale);
  ex_->stale_meta = meta;
}

void ClientSession::invalidate_after_unsafe(const http::MessageHead& head) {
  // RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and
  // the Location / Content-Location URIs on the same host.
  if (!unsafe_method(ex_->req.method) || head.status < 200 || head.status >= 400) return;
  auto* cache = w_.cache();
  cache->invalidate(http::cache_key(ex_->url));
  for (const char* name : {"Location", "Content-Location"}) {
    auto* v = head.headers.find(name);
    if (!v || v->empty()) continue;
    http::Url target;
    if ((*v)[0] == '/') {
      target = ex_->url;
      target.path = *v;
    } else {
      http::UrlError err;
      auto u = http::parse_absolute_url(*v, &err);
      if (!u || u->host != ex_->url.host || u->port != ex_->url.port) continue;  // other hosts: never
      target = *u;
    }
    cache->invalidate(http::cache_key(target));
  }
}

void ClientSession::handle_purge() {
  ex_->discard_body = true;
  if (!settings_->config.acl.purge_clients.contains(client_ip_)) {
    reject(403, "PURGE is not allowed from your address.", Outcome::kDenied);
    return;
  }
  bool removed = w_.cache() && w_.cache()->invalidate(http::cache_key(ex_->url));
  ex_->status = removed ? 200 : 404;
  ex_->code = Outcome::kMiss;
  ex_->response_started = ex_->response_done = true;
  send_to_client({slice_of(http::simple_response(ex_->status, "text/plain", removed ? "purged\n" : "not in cache\n",
                                                 ex_->close_after))});
  maybe_finish();
}

void ClientSession::end_cache_participation() {
  if (!ex_) return;
  if (ex_->leader && w_.cache()) {
    w_.cache()->settle(ex_->cache_key, false);
    ex_->leader = false;
  }
  if (ex_->writer) ex_->writer.abort();  // an uncommitted object never becomes visible
  ex_->reader = cache::Reader();
}

}  // namespace outpost
