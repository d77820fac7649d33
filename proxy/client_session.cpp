#include "proxy/client_session.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "core/uv_write.hpp"
#include "proxy/error_page.hpp"

namespace outpost {
namespace {
constexpr std::size_t kClientReadChunk = Chunk::kIoSize;
constexpr std::size_t kHighWater = 256 * 1024;  // queued bytes that stop the producer
constexpr std::size_t kLowWater = 64 * 1024;    // ... and that start it again
constexpr std::size_t kMaxUnparsed = 1024 * 1024;  // pipelined bytes buffered while busy
constexpr unsigned kBlockBackpressure = 1, kBlockPipeline = 2, kBlockDone = 4;
constexpr std::uint64_t kLingerMs = 2000;
constexpr std::size_t kExchangeFreeList = 256;  // recycled exchanges kept per thread

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hex(std::size_t n) {
  char b[24];
  int len = std::snprintf(b, sizeof b, "%zx\r\n", n);
  return std::string(b, static_cast<std::size_t>(len));
}

// RFC 9110 §9.3.8: a TRACE echo must not carry credentials (cross-site tracing reads
// HttpOnly cookies and proxy credentials from it).
void strip_trace_secrets(http::HeaderList& h) {
  for (const char* name : {"Proxy-Authorization", "Authorization", "Cookie"}) h.remove(name);
}

bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

const std::set<std::string_view>& supported_methods() {
  static const std::set<std::string_view> m = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PURGE"};
  return m;
}
}  // namespace

ClientSession::ClientSession(ProxyWorker& worker, uv_tcp_t* tcp)
    : w_(worker),
      settings_(worker.settings()),
      tcp_(tcp),
      parser_(http::HttpParser::Type::kRequest,
              {static_cast<std::size_t>(settings_->config.proxy.max_request_line),
               static_cast<std::size_t>(settings_->config.proxy.max_header_size)},
              this) {
  tcp_->data = this;
  uv_timer_init(w_.loop(), &timer_);
  timer_.data = this;
  handles_open_ = 2;
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    client_ip_ = IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    client_text_ = client_ip_.to_string();
  } else {
    client_text_ = "-";
  }
}

void ClientSession::start() {
  uv_tcp_nodelay(tcp_, 1);
  set_timer(static_cast<std::uint64_t>(settings_->config.proxy.idle_timeout * 1000), Phase::kIdle);
  update_reading();
}

// ---------------------------------------------------------------- exchanges

// Recycled exchanges, per thread: a request costs no allocation once the worker is warm,
// and an idle connection holds none.
std::vector<std::unique_ptr<ClientSession::Exchange>>& ClientSession::exchange_free_list() {
  thread_local std::vector<std::unique_ptr<Exchange>> list;
  return list;
}

void ClientSession::new_exchange() {
  ++ex_gen_;
  if (ex_) {
    *ex_ = Exchange();
    return;
  }
  auto& list = exchange_free_list();
  if (list.empty()) {
    ex_ = std::make_unique<Exchange>();
    return;
  }
  ex_ = std::move(list.back());
  list.pop_back();
}

void ClientSession::release_exchange() {
  ++ex_gen_;  // callbacks of the old exchange find nothing to act on
  if (!ex_) return;
  *ex_ = Exchange();  // nothing of the old request stays alive in the list
  auto& list = exchange_free_list();
  if (list.size() < kExchangeFreeList) list.push_back(std::move(ex_));
  ex_.reset();
}

// ---------------------------------------------------------------- reading

void ClientSession::update_reading() {
  if (closing_) return;
  bool want = block_reading_ == 0;
  auto* s = reinterpret_cast<uv_stream_t*>(tcp_);
  if (want && !reading_) {
    reading_ = true;
    uv_read_start(
        s,
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
          auto* self = static_cast<ClientSession*>(h->data);
          if (!self->rbuf_ || !self->rbuf_->unique()) self->rbuf_ = ChunkRef::make(kClientReadChunk);
          self->rbuf_->set_size(0);
          *buf = uv_buf_init(self->rbuf_->data(), static_cast<unsigned>(self->rbuf_->capacity()));
        },
        [](uv_stream_t* st, ssize_t nread, const uv_buf_t*) { static_cast<ClientSession*>(st->data)->on_read(nread); });
  } else if (!want && reading_) {
    reading_ = false;
    uv_read_stop(s);
  }
}

void ClientSession::on_read(ssize_t nread) {
  if (closing_ || nread == 0) return;
  if (nread < 0) {
    if (phase_ == Phase::kLingering) {
      abort();
      return;
    }
    if (ex_ && ex_->tunnel && ex_->tunnel_open) {
      ex_->client_eof = true;
      block_reading_ |= kBlockDone;
      update_reading();
      if (nread != UV_EOF || ex_->origin_eof) {
        abort();
      } else if (ex_->origin) {
        ex_->origin->shutdown_write();
      }
      return;
    }
    if (ex_ && ex_->active && ex_->request_done && !ex_->response_done && nread == UV_EOF) {
      // The client half-closed after a complete request: answer, then close.
      ex_->close_after = true;
      block_reading_ |= kBlockDone;
      update_reading();
      return;
    }
    if (ex_ && ex_->active && !ex_->request_done)
      spdlog::debug("client {} closed the connection mid-request", client_text_);
    abort();
    return;
  }
  if (phase_ == Phase::kLingering) return;  // discard
  rbuf_->set_size(static_cast<std::size_t>(nread));
  Slice s{rbuf_, rbuf_->data(), static_cast<std::size_t>(nread)};

  if (ex_ && ex_->tunnel) {
    if (ex_->origin) ex_->origin->touch();
    if (ex_->tunnel_open && ex_->origin) {
      ex_->origin->write({std::move(s)});
      if (ex_->origin && ex_->origin->write_queue_size() > kHighWater) {
        block_reading_ |= kBlockBackpressure;
        update_reading();
      }
    } else {
      ex_->pending_bytes += s.size;
      ex_->pending.push_back(std::move(s));
      if (ex_->pending_bytes > kHighWater) {
        block_reading_ |= kBlockBackpressure;
        update_reading();
      }
    }
    return;
  }
  if (phase_ == Phase::kIdle) {
    set_timer(static_cast<std::uint64_t>(settings_->config.proxy.header_timeout * 1000), Phase::kHead);
  } else if (phase_ == Phase::kBody) {
    set_timer(static_cast<std::uint64_t>(settings_->config.proxy.body_timeout * 1000), Phase::kBody);
  }
  unparsed_bytes_ += s.size;
  unparsed_.push_back(std::move(s));
  pump();
  // Once everything read is parsed, give the 64 KiB read chunk back to the per-thread pool:
  // an idle keep-alive connection then holds no buffer (like the origin pool's idle
  // connections), and the next read takes a warm chunk from the pool.
  if (!closing_ && rbuf_ && rbuf_->unique()) rbuf_ = ChunkRef();
  if (!closing_ && unparsed_bytes_ > kMaxUnparsed) {
    block_reading_ |= kBlockPipeline;
    update_reading();
  }
}

void ClientSession::pump() {
  if (in_pump_ || closing_) return;
  in_pump_ = true;
  while (!closing_ && !parser_paused_ && !unparsed_.empty() && !(ex_ && ex_->tunnel)) {
    Slice s = std::move(unparsed_.front());
    unparsed_.pop_front();
    unparsed_bytes_ -= s.size;
    if (phase_ == Phase::kIdle) {
      set_timer(static_cast<std::uint64_t>(settings_->config.proxy.header_timeout * 1000), Phase::kHead);
    }
    auto r = parser_.feed(s.chunk, s.data, s.size);
    if (closing_) break;
    if (r.kind == http::ParseResult::kError) {
      spdlog::info("client {}: malformed request ({}): {}", client_text_, r.status, r.reason);
      if (ex_ && ex_->active && ex_->response_started) {
        abort();
      } else {
        if (!ex_ || !ex_->active) {
          new_exchange();
          ex_->active = true;
          ex_->start_time = wall_now();
          ex_->start_ms = uv_now(w_.loop());
          ex_->req.method = parser_.head().method;
        }
        ex_->request_done = true;
        reject(r.status, "malformed request: " + r.reason, Outcome::kNone, true);
      }
      break;
    }
    if (r.consumed < s.size) {
      Slice rest{s.chunk, s.data + r.consumed, s.size - r.consumed};
      unparsed_bytes_ += rest.size;
      unparsed_.push_front(std::move(rest));
    }
    if (r.kind == http::ParseResult::kUpgrade) {
      // CONNECT: whatever follows the request head belongs to the tunnel.
      for (auto& u : unparsed_) {
        ex_->pending_bytes += u.size;
        ex_->pending.push_back(std::move(u));
      }
      unparsed_.clear();
      unparsed_bytes_ = 0;
      break;
    }
    if (r.kind == http::ParseResult::kPaused) {
      parser_paused_ = true;
      maybe_finish();
    }
  }
  in_pump_ = false;
  if (!closing_ && (block_reading_ & kBlockPipeline) && unparsed_bytes_ <= kMaxUnparsed / 2) {
    block_reading_ &= ~kBlockPipeline;
    update_reading();
  }
}

// ---------------------------------------------------------------- request events

int ClientSession::on_message_head(http::MessageHead& head) {
  if (closing_) return -1;
  new_exchange();
  ex_->active = true;
  ex_->start_time = wall_now();
  ex_->start_ms = uv_now(w_.loop());
  ex_->req = std::move(head);
  settings_ = w_.settings();
  ++w_.counters().requests;
  auto& req = ex_->req;
  ex_->url_text = req.target;
  ex_->head_request = req.method == "HEAD";
  ex_->close_after = !req.keep_alive || w_.shutting_down();
  ex_->has_body = req.chunked || (req.has_length && req.content_length > 0);
  if (ex_->has_body && !req.is_connect) {
    set_timer(static_cast<std::uint64_t>(settings_->config.proxy.body_timeout * 1000), Phase::kBody);
  } else {
    uv_timer_stop(&timer_);
    phase_ = Phase::kWaiting;
  }

  // The worker refused clients from other networks at accept; asked again on every request
  // so that a reload which removes a network applies to open keep-alive connections too.
  if (client_text_ == "-" || !settings_->rules.client_allowed(client_ip_)) {
    reject(403, "Access denied: your address is not allowed to use this proxy.", Outcome::kDenied);
    return 0;
  }
  if (req.major != 1) {
    reject(505, "Only HTTP/1.0 and HTTP/1.1 are supported.", Outcome::kNone, true);
    return 0;
  }
  if (!supported_methods().count(req.method)) {
    reject(501, "Method " + req.method + " is not supported.", Outcome::kNone);
    return 0;
  }
  const auto& cfg = settings_->config.proxy;
  if (cfg.max_request_body && req.has_length && req.content_length > cfg.max_request_body) {
    reject(413, "The request body is larger than this proxy accepts.", Outcome::kNone, true);
    return 0;
  }
  if (req.is_connect) {
    handle_connect();
    return 0;
  }
  if (!req.target.empty() && (req.target[0] == '/' || req.target == "*")) {
    handle_local();
    return 0;
  }
  http::UrlError err;
  auto url = http::parse_absolute_url(req.target, &err);
  if (!url) {
    if (err == http::UrlError::kUnsupportedScheme)
      reject(501, "This proxy does not forward this URL scheme.", Outcome::kNone);
    else
      reject(400, "The request target is not a valid absolute URL.", Outcome::kNone);
    return 0;
  }
  ex_->url = *url;
  ex_->url_text = url->to_string();
  // Forwarding loop: our own name already in Via.
  if (cfg.via) {
    std::string via = req.headers.joined("Via");
    for (auto item : http::split_list(via)) {
      auto sp = item.find(' ');
      if (sp != std::string_view::npos) {
        auto by = http::trim_ows(item.substr(sp + 1));
        by = by.substr(0, by.find(' '));
        if (http::iequals(by, settings_->config.server.name)) {
          reject(403, "Forwarding loop detected (this proxy already appears in Via).", Outcome::kDenied);
          return 0;
        }
      }
    }
  }
  // Max-Forwards (RFC 9110 §7.6.2) for OPTIONS and TRACE.
  if (req.method == "OPTIONS" || req.method == "TRACE") {
    if (auto* mf = req.headers.find("Max-Forwards")) {
      unsigned long long n = 0;
      auto [p, ec] = std::from_chars(mf->data(), mf->data() + mf->size(), n);
      if (ec == std::errc() && p == mf->data() + mf->size()) {
        if (n == 0) {
          ex_->discard_body = true;
          ex_->status = 200;
          ex_->code = Outcome::kMiss;
          std::string resp;
          if (req.method == "OPTIONS") {
            resp = http::simple_response(200, "text/plain", "", ex_->close_after, false,
                                         "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE, CONNECT\r\n");
          } else {
            std::string echo = req.method + " " + req.target + " HTTP/" + std::to_string(req.major) + "." +
                               std::to_string(req.minor) + "\r\n";
            http::HeaderList shown = req.headers;
            strip_trace_secrets(shown);
            shown.serialize(echo);
            echo += "\r\n";
            resp = http::simple_response(200, "message/http", echo, ex_->close_after);
          }
          ex_->response_started = ex_->response_done = true;
          send_to_client({slice_of(resp)});
          return 0;
        }
        req.headers.set("Max-Forwards", std::to_string(n - 1));
      }
    }
  }
  if (req.method == "PURGE") {
    handle_purge();
    return 0;
  }
  if (!settings_->rules.target_allowed(ex_->url.host, ex_->url.port, client_ip_)) {
    reject(403, "Access to " + ex_->url.host + " is denied by this proxy's rules.", Outcome::kDenied);
    return 0;
  }
  // A GET with a body is forwarded but never answered from or stored in the cache: the
  // body has no defined meaning (RFC 9110 §9.3.1) yet may change the answer, which the
  // cache key would not show.
  if (w_.cache() && (req.method == "GET" || req.method == "HEAD") && !ex_->has_body) {
    start_cache_lookup();
    return 0;
  }
  start_forward();
  return 0;
}

int ClientSession::on_message_body(Slice body) {
  if (closing_) return -1;
  ex_->body_in += body.size;
  auto max = settings_->config.proxy.max_request_body;
  if (max && ex_->body_in > max && !ex_->discard_body) {
    if (!ex_->response_started) {
      if (ex_->origin) {
        ex_->origin->close();
        ex_->origin = nullptr;
      }
      ex_->resolving.reset();
      reject(413, "The request body is larger than this proxy accepts.", Outcome::kNone, true);
    } else {
      abort();
    }
    return closing_ ? -1 : 0;
  }
  if (ex_->discard_body) return 0;
  if (ex_->origin && ex_->origin_head_sent) {
    forward_body(body);
  } else {
    ex_->pending_bytes += body.size;
    ex_->pending.push_back(std::move(body));
    if (ex_->pending_bytes > kHighWater) {
      block_reading_ |= kBlockBackpressure;
      update_reading();
    }
  }
  return 0;
}

int ClientSession::on_message_end() {
  if (closing_) return -1;
  ex_->request_done = true;
  if (ex_->tunnel) return 0;  // llhttp stops with HPE_PAUSED_UPGRADE
  if (phase_ == Phase::kBody) {
    uv_timer_stop(&timer_);
    phase_ = Phase::kWaiting;
  }
  if (!ex_->discard_body && ex_->origin && ex_->origin_head_sent && ex_->to_origin_chunked && !ex_->origin_body_done) {
    ex_->origin_body_done = true;
    ex_->origin->write({slice_of("0\r\n\r\n")});
  }
  return HPE_PAUSED;  // the next pipelined request waits for this response (see pump)
}

// ---------------------------------------------------------------- local answers

void ClientSession::reject(int status, const std::string& detail, Outcome code, bool close) {
  ex_->discard_body = true;
  ex_->status = status;
  ex_->code = code;
  if (close || ex_->close_after) ex_->close_after = true;
  if (ex_->origin) {
    ex_->origin->close();
    ex_->origin = nullptr;
  }
  ex_->resolving.reset();
  if (status >= 500 || status == 400 || status == 413)
    spdlog::info("client {}: {} {} -> {}: {}", client_text_, ex_->req.method, ex_->url_text, status, detail);
  else
    spdlog::debug("client {}: {} {} -> {}: {}", client_text_, ex_->req.method, ex_->url_text, status, detail);
  ex_->response_started = ex_->response_done = true;
  ex_->content_type = "text/html";
  send_to_client({slice_of(http::error_response(status, detail, settings_->config.server.name, ex_->close_after,
                                                 ex_->head_request))});
  maybe_finish();
}

void ClientSession::handle_local() {
  ex_->discard_body = true;
  const auto& target = ex_->req.target;
  std::string path = target.substr(0, target.find('?'));
  ex_->url_text = target;
  if (target == "*" && ex_->req.method == "OPTIONS") {
    ex_->status = 200;
    ex_->code = Outcome::kMiss;
    ex_->response_started = ex_->response_done = true;
    send_to_client({slice_of(http::simple_response(200, "text/plain", "", ex_->close_after, false,
                                                   "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE, CONNECT\r\n"))});
  } else if (path == "/health" && (ex_->req.method == "GET" || ex_->req.method == "HEAD")) {
    ex_->status = 200;
    ex_->code = Outcome::kMiss;
    ex_->content_type = "text/plain";
    ex_->response_started = ex_->response_done = true;
    send_to_client({slice_of(http::simple_response(200, "text/plain", "ok\n", ex_->close_after, ex_->head_request))});
  } else {
    reject(404, "No such page on this proxy: " + path, Outcome::kMiss);
    return;
  }
  maybe_finish();
}

// ---------------------------------------------------------------- forwarding

void ClientSession::handle_connect() {
  ex_->tunnel = true;
  ex_->code = Outcome::kTunnel;
  ex_->discard_body = true;
  auto url = http::parse_authority(ex_->req.target);
  if (!url) {
    reject(400, "CONNECT needs a host:port target.", Outcome::kNone, true);
    return;
  }
  url->scheme = "https";
  ex_->url = *url;
  ex_->url_text = ex_->req.target;
  if (!settings_->rules.connect_port_allowed(url->port)) {
    reject(403, "CONNECT to port " + std::to_string(url->port) + " is not allowed.", Outcome::kDenied, true);
    return;
  }
  if (!settings_->rules.target_allowed(url->host, url->port, client_ip_)) {
    reject(403, "Access to " + url->host + " is denied by this proxy's rules.", Outcome::kDenied, true);
    return;
  }
  start_forward();
}

void ClientSession::start_forward() {
  if (auto lit = IpAddress::parse(ex_->url.host)) {
    ResolveResult r;
    r.addresses.push_back(*lit);
    on_resolved(std::move(r));
    return;
  }
  auto req = w_.resolver().resolve(w_.loop(), ex_->url.host, [this](ResolveResult r) {
    ex_->resolving.reset();  // finished: the handle no longer refers to the lookup
    on_resolved(std::move(r));
  });
  if (req && ex_->active && !ex_->origin && !ex_->response_started) ex_->resolving = std::move(req);
}

void ClientSession::on_resolved(ResolveResult r) {
  if (closing_) return;
  if (r.status != 0) {
    reject(502, "Cannot resolve " + ex_->url.host + ": " + r.error, Outcome::kMiss, ex_->tunnel);
    return;
  }
  bool any_denied = false;
  for (auto& a : r.addresses) {
    if (settings_->rules.address_allowed(a, ex_->url.port, client_ip_)) ex_->addrs.push_back(a);
    else any_denied = true;
  }
  if (ex_->addrs.empty()) {
    reject(any_denied ? 403 : 502,
           any_denied ? "Access to " + ex_->url.host + " is denied by this proxy's rules." : "No address for " + ex_->url.host,
           any_denied ? Outcome::kDenied : Outcome::kMiss, ex_->tunnel);
    return;
  }
  connect_next();
}

void ClientSession::connect_next() {
  const auto& cfg = settings_->config;
  std::string key = ex_->url.host + ":" + std::to_string(ex_->url.port);
  OriginConnection* c = ex_->tunnel ? new OriginConnection(w_.pool(), key) : w_.pool().acquire(key);
  ex_->origin = c;
  ex_->origin_reused = c->reused();
  ex_->origin_connected = false;
  c->set_owner(this);
  if (c->connected()) {
    on_origin_connected();
    return;
  }
  const IpAddress& a = ex_->addrs[ex_->next_addr++ % ex_->addrs.size()];
  c->connect(a, ex_->url.port, cfg.origin.connect_timeout);
}

void ClientSession::on_origin_connected() {
  if (closing_ || !ex_->origin) return;
  ex_->origin_connected = true;
  ex_->hierarchy = "HIER_DIRECT";
  ex_->peer = ex_->origin->address().to_string();
  if (ex_->tunnel) {
    ex_->tunnel_open = true;
    w_.request_metrics().tunnel_opened();
    ex_->status = 200;
    ex_->response_started = true;
    phase_ = Phase::kTunnel;
    uv_timer_stop(&timer_);
    send_to_client({slice_of("HTTP/1.1 200 Connection established\r\n\r\n")});
    ex_->origin->start_raw(settings_->config.proxy.tunnel_idle_timeout);
    if (!ex_->pending.empty()) {
      ex_->origin->write(std::move(ex_->pending));
      ex_->pending.clear();
      ex_->pending_bytes = 0;
    }
    block_reading_ &= ~kBlockBackpressure;
    update_reading();
    return;
  }
  send_request_head();
}

void ClientSession::send_request_head() {
  auto& req = ex_->req;
  const auto& cfg = settings_->config;
  http::HeaderList h = req.headers;
  h.remove_hop_by_hop();
  h.remove("Host");
  std::string head;
  head.reserve(512);
  head += req.method;
  head += ' ';
  head += ex_->url.path;
  head += " HTTP/1.1\r\nHost: ";
  head += ex_->url.authority();
  head += "\r\n";
  if (req.chunked) h.remove("Content-Length");
  if (cfg.proxy.via) http::append_via(h, req.major, req.minor, cfg.server.name);
  if (ex_->revalidating) add_revalidation_headers(h);
  if (req.method == "TRACE") strip_trace_secrets(h);  // the origin echoes what it gets
  ex_->request_time = static_cast<std::int64_t>(std::time(nullptr));
  const auto& ff = cfg.proxy.forwarded_for;
  if (ff != "transparent") {
    std::string xff = h.joined("X-Forwarded-For");
    h.remove("X-Forwarded-For");
    if (ff != "delete") h.add("X-Forwarded-For", (xff.empty() ? "" : xff + ", ") + (ff == "on" ? client_text_ : "unknown"));
  }
  h.serialize(head);
  ex_->to_origin_chunked = req.chunked;
  if (req.chunked) {  // the client's codings go on as sent ("gzip, chunked" stays so)
    head += "Transfer-Encoding: ";
    if (!req.transfer_codings.empty()) head += req.transfer_codings + ", ";
    head += "chunked\r\n";
  }
  head += "\r\n";
  ex_->origin->begin_exchange(ex_->head_request, cfg.origin.read_timeout);
  std::vector<Slice> out;
  out.push_back(slice_of(head));
  ex_->origin_head_sent = true;
  auto pending = std::move(ex_->pending);
  ex_->pending.clear();
  ex_->pending_bytes = 0;
  for (auto& s : pending) {
    if (ex_->to_origin_chunked) {
      out.push_back(slice_of(hex(s.size)));
      ex_->body_sent += s.size;
      out.push_back(std::move(s));
      out.push_back(slice_of("\r\n"));
    } else {
      ex_->body_sent += s.size;
      out.push_back(std::move(s));
    }
  }
  if (ex_->request_done && ex_->to_origin_chunked && !ex_->origin_body_done) {
    ex_->origin_body_done = true;
    out.push_back(slice_of("0\r\n\r\n"));
  }
  ex_->origin->write(std::move(out));
  if (block_reading_ & kBlockBackpressure) {
    block_reading_ &= ~kBlockBackpressure;
    update_reading();
  }
}

void ClientSession::forward_body(const Slice& s) {
  std::vector<Slice> out;
  if (ex_->to_origin_chunked) {
    out.push_back(slice_of(hex(s.size)));
    out.push_back(s);
    out.push_back(slice_of("\r\n"));
  } else {
    out.push_back(s);
  }
  ex_->body_sent += s.size;
  ex_->origin->write(std::move(out));
  if (ex_->origin && ex_->origin->write_queue_size() > kHighWater) {
    block_reading_ |= kBlockBackpressure;
    update_reading();
  }
}

void ClientSession::on_origin_write_done() {
  if (closing_ || !ex_->origin) return;
  if ((block_reading_ & kBlockBackpressure) && ex_->origin->write_queue_size() < kLowWater) {
    block_reading_ &= ~kBlockBackpressure;
    update_reading();
  }
}

void ClientSession::on_origin_interim(http::MessageHead& head) {
  if (closing_) return;
  batching_ = true;
  if (ex_->req.minor == 0) return;  // HTTP/1.0 clients get no 1xx (RFC 9110 §15.2)
  http::ResponseHead interim{head.status, head.reason, std::move(head.headers)};
  interim.headers.remove_hop_by_hop();
  interim.headers.remove("Content-Length");
  http::Http1Framing framing;
  framing.interim = true;
  send_to_client({slice_of(http::write_response_head(interim, framing))});
}

int ClientSession::on_origin_head(http::MessageHead& head) {
  if (closing_) return -1;
  batching_ = true;
  auto& req = ex_->req;
  if (auto* cache = w_.cache()) {
    if (ex_->revalidating) {
      if (head.status == 304) {
        refresh_from_304(head);
        ex_->absorb = true;  // the stored body answers the client (see on_origin_end)
        return 0;
      }
      if (head.status >= 500 && http::stale_if_error_allows(*ex_->stale_meta, ex_->req_cc, std::time(nullptr))) {
        ex_->absorb = true;
        ex_->serve_stale_on_end = true;
        return 0;
      }
      ex_->code = Outcome::kRefreshModified;
    }
    if (ex_->cache_get && ex_->req.method == "GET") begin_storing(head);
    else invalidate_after_unsafe(head);
    (void)cache;
  }
  ex_->status = head.status;
  ex_->origin_length_known = head.has_length && !head.chunked;
  if (auto* ct = head.headers.find("Content-Type")) ex_->content_type = *ct;
  http::HeaderList h = std::move(head.headers);
  h.remove_hop_by_hop();
  bool no_body = ex_->head_request || head.status == 204 || head.status == 304;
  if (head.status == 204) h.remove("Content-Length");  // RFC 9110 §8.6: never on a 204
  if (!no_body) {
    if (!head.transfer_codings.empty() && req.minor == 0) {
      // The body stays coded (gzip, ...) and an HTTP/1.0 client cannot be told so (RFC 9112
      // §6.1: no Transfer-Encoding to 1.0); relaying it would hand over a corrupt body.
      spdlog::info("client {}: {} {}: response uses transfer coding \"{}\", which an HTTP/1.0 client cannot receive",
                   client_text_, req.method, ex_->url_text, head.transfer_codings);
      return -1;
    }
    if (head.has_length && !head.chunked) {
      // Content-Length passes through unchanged.
    } else {
      h.remove("Content-Length");
      if (req.minor >= 1) ex_->chunked_out = true;
      else ex_->close_after = true;  // HTTP/1.0 client: the end of the body is the close
    }
  }
  if (settings_->config.proxy.via) http::append_via(h, head.major, head.minor, settings_->config.server.name);
  if (w_.cache()) {
    h.remove("X-Cache");
    h.add("X-Cache", "MISS from " + settings_->config.server.name);
    std::string cs = ex_->cache_status.empty() ? settings_->config.server.name + "; fwd=" +
                                                    (ex_->cache_get ? "uri-miss" : "method")
                                              : ex_->cache_status;
    std::string prior = h.joined("Cache-Status");
    h.remove("Cache-Status");
    h.add("Cache-Status", (prior.empty() ? "" : prior + ", ") + cs);
  }
  if (w_.shutting_down()) ex_->close_after = true;
  http::Http1Framing framing;
  framing.chunked = ex_->chunked_out;
  framing.transfer_codings = head.transfer_codings;  // the body is still coded with these
  framing.close = ex_->close_after;
  framing.client_http10 = req.minor == 0;
  ex_->response_started = true;
  send_to_client({slice_of(http::write_response_head({head.status, head.reason, std::move(h)}, framing))});
  return 0;
}

int ClientSession::on_origin_body(Slice body) {
  if (closing_) return -1;
  if (ex_->absorb) return 0;
  if (ex_->writer && ex_->writer.append(body.view()) != cache::Status::kOk) ex_->writer.abort();
  if (ex_->follows_own_writer) return 0;  // the client reads the stored copy (pump_reader)
  ex_->body_relayed += body.size;
  batching_ = true;
  if (ex_->chunked_out) {
    std::size_t n = body.size;
    send_to_client({slice_of(hex(n)), std::move(body), slice_of("\r\n")});
  } else {
    send_to_client({std::move(body)});
  }
  return closing_ ? -1 : 0;
}

int ClientSession::on_origin_end() {
  if (closing_) return -1;
  if (ex_->absorb && ex_->origin) {
    // Revalidation answered (304) or failed with stale-if-error: serve the stored body.
    OriginConnection* c = ex_->origin;
    ex_->origin = nullptr;
    if (ex_->request_done) c->release_to_pool();
    else c->close();
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const auto& name = settings_->config.server.name;
    auto meta = *ex_->stale_meta;
    std::int64_t age = http::current_age(meta, now);
    if (ex_->serve_stale_on_end)
      serve_stored(ex_->stale, meta, age, Outcome::kRefreshFailOld, name + "; fwd=stale; detail=stale-if-error");
    else
      serve_stored(ex_->stale, meta, age, Outcome::kRefreshUnmodified, name + "; fwd=stale; fwd-status=304");
    return 0;
  }
  if (ex_->writer) {
    auto st = ex_->writer.commit();
    if (st != cache::Status::kOk) spdlog::debug("http cache: {} not stored: {}", ex_->url_text, cache::status_name(st));
  }
  if (ex_->chunked_out) send_to_client({slice_of("0\r\n\r\n")});
  // A client reading the stored copy is done when its reader reaches the end.
  if (!ex_->follows_own_writer) ex_->response_done = true;
  if (ex_->origin) {
    OriginConnection* c = ex_->origin;
    ex_->origin = nullptr;
    origin_paused_ = false;
    if (ex_->request_done && (!ex_->to_origin_chunked || ex_->origin_body_done)) c->release_to_pool();
    else {
      ex_->discard_body = true;  // the origin answered early; drop the rest of the body
      c->close();
    }
  }
  maybe_finish();
  return 0;
}

void ClientSession::on_origin_raw(Slice data) {
  if (closing_) return;
  send_to_client({std::move(data)});
}

void ClientSession::on_origin_eof() {
  if (closing_) return;
  ex_->origin_eof = true;
  if (ex_->client_eof) {
    abort();
    return;
  }
  // Half-close towards the client once everything queued has been written.
  shutdown_req_.data = this;
  uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(tcp_), [](uv_shutdown_t*, int) {});
}

void ClientSession::on_origin_error(int uv_status, bool timeout, const std::string& what) {
  if (closing_) return;
  ex_->origin = nullptr;  // it closed itself
  origin_paused_ = false;
  if (ex_->tunnel && ex_->tunnel_open) {
    spdlog::debug("client {}: tunnel {} ended: {}", client_text_, ex_->url_text, what);
    abort();
    return;
  }
  if (ex_->response_started) {
    spdlog::info("client {}: {} {}: origin failed mid-response: {}", client_text_, ex_->req.method, ex_->url_text, what);
    ex_->code = Outcome::kMissAborted;
    abort();
    return;
  }
  // A pooled connection the origin had already closed: retry once on a fresh one.
  if (ex_->origin_reused && !ex_->retried && idempotent(ex_->req.method) && ex_->body_sent == 0 && !timeout) {
    ex_->retried = true;
    ex_->origin_head_sent = false;
    connect_next();
    return;
  }
  // Connection refused or timed out: try the host's other addresses.
  if (!ex_->origin_connected && ex_->next_addr < ex_->addrs.size() && ex_->body_sent == 0) {
    ex_->origin_head_sent = false;
    connect_next();
    return;
  }
  (void)uv_status;
  if (ex_->revalidating && ex_->stale_meta) {
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const auto& name = settings_->config.server.name;
    if (http::stale_if_error_allows(*ex_->stale_meta, ex_->req_cc, now)) {
      serve_stored(ex_->stale, *ex_->stale_meta, http::current_age(*ex_->stale_meta, now), Outcome::kRefreshFailOld,
                   name + "; fwd=stale; detail=stale-if-error");
      return;
    }
    // must-revalidate (or no permission to serve stale): RFC 9111 §4.2.4 / §5.2.2.2 → 504.
    reject(504, "The cached response is stale and the origin server " + ex_->url.authority() +
                    " cannot be reached to revalidate it (" + what + ").",
           Outcome::kRefreshFailErr);
    return;
  }
  if (timeout)
    reject(504, "The origin server " + ex_->url.authority() + " did not answer in time (" + what + ").", Outcome::kMiss, ex_->tunnel);
  else
    reject(502, "Cannot get a valid answer from " + ex_->url.authority() + ": " + what + ".", Outcome::kMiss, ex_->tunnel);
}

// ---------------------------------------------------------------- writing, ending

void ClientSession::send_to_client(std::vector<Slice> slices) {
  if (closing_) return;
  if (ex_ && !ex_->first_byte_ms && !slices.empty()) ex_->first_byte_ms = uv_now(w_.loop());
  for (auto& s : slices) {
    if (ex_) ex_->bytes_out += s.size;
    out_bytes_ += s.size;
    out_.push_back(std::move(s));
  }
  if (!batching_ || out_bytes_ >= kHighWater) flush_client();
}

void ClientSession::flush_client() {
  if (closing_ || out_.empty()) return;
  auto slices = std::move(out_);
  out_.clear();
  out_bytes_ = 0;
  // Usually the kernel takes it all at once: then nothing is queued and no completion
  // follows (nothing can be waiting for one: the queue was empty).
  int rc = write_slices_now(
      reinterpret_cast<uv_stream_t*>(tcp_), std::move(slices),
      [](void* owner, int status) { static_cast<ClientSession*>(owner)->on_client_write_done(status); }, this);
  if (rc == 1) return;
  if (rc != 0) {
    abort();
    return;
  }
  auto q = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(tcp_));
  if (q > 0) watch_write_progress();
  if (q > kHighWater && ex_ && ex_->origin && !origin_paused_ && !ex_->follows_own_writer && !follow_own_writer()) {
    origin_paused_ = true;
    ex_->origin->pause_reading();
  }
}

void ClientSession::watch_write_progress() {
  if (!write_timer_) {
    write_timer_ = new uv_timer_t;
    uv_timer_init(w_.loop(), write_timer_);
    write_timer_->data = this;
    ++handles_open_;
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(write_timer_))) return;
  uv_timer_start(
      write_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ClientSession*>(t->data);
        spdlog::info("client {}: read nothing of its response for {} s, closing", self->client_text_,
                     self->settings_->config.proxy.write_timeout);
        self->abort();
      },
      static_cast<std::uint64_t>(settings_->config.proxy.write_timeout * 1000), 0);
}

void ClientSession::on_origin_read_processed() {
  batching_ = false;
  flush_client();
}

void ClientSession::on_client_write_done(int status) {
  if (closing_) return;
  if (status < 0) {
    abort();
    return;
  }
  if (write_timer_) {  // progress: the client read something
    uv_timer_stop(write_timer_);
    if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(tcp_)) > 0) watch_write_progress();
  }
  if (origin_paused_ && ex_ && ex_->origin &&
      uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(tcp_)) < kLowWater) {
    origin_paused_ = false;
    ex_->origin->resume_reading();
  }
  if (ex_ && ex_->reader_waiting && uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(tcp_)) < kLowWater)
    pump_reader();
}

void ClientSession::maybe_finish() {
  if (closing_ || !ex_ || !ex_->active || ex_->tunnel) {
    if (ex_ && ex_->tunnel && ex_->response_done && !closing_) close_after_flush();
    return;
  }
  if (!ex_->response_done) return;
  if (!ex_->request_done && !ex_->close_after) return;
  finish_exchange();
}

void ClientSession::log_exchange() {
  AccessLogEntry e;
  e.start_time = ex_->start_time;
  e.elapsed_ms = static_cast<long long>(uv_now(w_.loop()) - ex_->start_ms);
  e.client = client_text_;
  e.code = outcome_name(ex_->code);
  e.status = ex_->status;
  e.bytes = ex_->bytes_out;
  e.method = ex_->req.method;
  e.url = ex_->url_text;
  e.hierarchy = ex_->hierarchy;
  e.peer = ex_->peer;
  e.content_type = ex_->content_type;
  if (ex_->tunnel_open) w_.request_metrics().tunnel_closed();
  w_.request_metrics().record(ex_->code, ex_->req.method, ex_->status, ex_->bytes_out, static_cast<double>(e.elapsed_ms),
                              ex_->first_byte_ms ? static_cast<double>(ex_->first_byte_ms - ex_->start_ms) : -1);
  w_.access_log().add(e);
}

void ClientSession::finish_exchange() {
  end_cache_participation();
  log_exchange();
  ex_->active = false;
  if (ex_->origin) {
    ex_->origin->close();
    ex_->origin = nullptr;
  }
  if (ex_->close_after || w_.shutting_down()) {
    close_after_flush();
    return;
  }
  release_exchange();
  set_timer(static_cast<std::uint64_t>(settings_->config.proxy.idle_timeout * 1000), Phase::kIdle);
  if (parser_paused_) {
    parser_.resume();
    parser_paused_ = false;
  }
  pump();
}

void ClientSession::close_after_flush() {
  if (closing_ || phase_ == Phase::kLingering) return;
  batching_ = false;
  flush_client();  // everything queued must precede our FIN
  if (closing_) return;
  // Lingering close: send our FIN after the queued response, then keep reading (and
  // discarding) for a moment so that unread request bytes do not make the kernel reset
  // the connection before the client has read the response.
  phase_ = Phase::kLingering;
  if (ex_ && ex_->origin) {
    ex_->origin->close();
    ex_->origin = nullptr;
  }
  shutdown_req_.data = this;
  int rc = uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(tcp_), [](uv_shutdown_t*, int) {});
  if (rc != 0) {
    abort();
    return;
  }
  block_reading_ = 0;
  update_reading();
  set_timer(kLingerMs, Phase::kLingering);
}

void ClientSession::on_shutdown() {
  if (closing_) return;
  if ((!ex_ || !ex_->active) && unparsed_.empty() && phase_ == Phase::kIdle) {
    abort();
    return;
  }
  // A request in progress ends with Connection: close; one still arriving sees
  // shutting_down() when its head is parsed.
  if (ex_) ex_->close_after = true;
}

void ClientSession::abort() {
  if (closing_) return;
  if (ex_ && ex_->active) {
    if (!ex_->response_done && ex_->code == Outcome::kMiss && ex_->status) ex_->code = Outcome::kMissAborted;
    log_exchange();
    ex_->active = false;
  }
  closing_ = true;
  end_cache_participation();
  if (ex_) {
    ex_->resolving.reset();
    if (ex_->origin) {
      ex_->origin->close();
      ex_->origin = nullptr;
    }
  }
  auto on_closed = [](uv_handle_t* h) {
    auto* self = static_cast<ClientSession*>(h->data);
    if (h == reinterpret_cast<uv_handle_t*>(self->write_timer_)) delete self->write_timer_;
    if (--self->handles_open_ == 0) {
      self->w_.session_closed(self);
      delete self->tcp_;
      delete self;
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), on_closed);
  if (write_timer_) uv_close(reinterpret_cast<uv_handle_t*>(write_timer_), on_closed);
}

// ---------------------------------------------------------------- timers

void ClientSession::set_timer(std::uint64_t ms, Phase phase) {
  phase_ = phase;
  uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<ClientSession*>(t->data)->on_timer(); }, ms, 0);
}

void ClientSession::on_timer() {
  if (closing_) return;
  switch (phase_) {
    case Phase::kHead:
      spdlog::info("client {}: request header timeout", client_text_);
      if (!ex_ || !ex_->active) {
        new_exchange();
        ex_->active = true;
        ex_->start_time = wall_now();
        ex_->start_ms = uv_now(w_.loop());
      }
      ex_->request_done = true;
      reject(408, "The request header was not received in time.", Outcome::kNone, true);
      break;
    case Phase::kBody:
      spdlog::info("client {}: request body timeout", client_text_);
      if (!ex_->response_started) {
        ex_->request_done = true;
        reject(408, "The request body was not received in time.", Outcome::kNone, true);
      } else {
        abort();
      }
      break;
    default:
      abort();  // idle keep-alive timeout, or lingering close done
  }
}

}  // namespace outpost
