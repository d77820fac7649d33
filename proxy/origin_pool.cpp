#include "proxy/origin_pool.hpp"

#include <spdlog/spdlog.h>

#include "core/tcp_stream.hpp"
#include "tls/tls_stream.hpp"

#include <algorithm>
#include <charconv>

namespace outpost {

OriginConnection::OriginConnection(OriginPool& pool, std::string key) : OriginConnection(pool, OriginKey{}, std::move(key)) {}

OriginConnection::OriginConnection(OriginPool& pool, const OriginKey& origin, std::string key)
    : pool_(pool),
      key_(std::move(key)),
      parser_(http::HttpParser::Type::kResponse, {1 << 16, 1 << 20}, this) {
  stream_ = pool_.make_stream(origin, key_, &tls_, &setup_error_);
  if (stream_) stream_->set_handler(this);
  timer_.init(pool_.loop(), this);
}

void OriginConnection::connect(const IpAddress& addr, std::uint16_t port, double timeout_s) {
  addr_ = addr;
  if (!stream_) {
    fail(UV_EINVAL, false, setup_error_);
    return;
  }
  ++pool_.opened_;
  int rc = stream_->connect(SocketAddress{addr, port});
  if (rc != 0) {
    // Report asynchronously-equivalent: the owner expects a callback, not a return code.
    fail(rc, false, std::string("connect: ") + uv_strerror(rc));
    return;
  }
  timer_.arm(static_cast<std::uint64_t>(timeout_s * 1000),
             [](void* self) { static_cast<OriginConnection*>(self)->fail(UV_ETIMEDOUT, true, "connect timeout"); });
}

void OriginConnection::fail(int status, bool timeout, const std::string& what) {
  if (closing_) return;
  auto* owner = owner_;
  owner_ = nullptr;
  close();
  if (owner) owner->on_origin_error(status, timeout, what);
}

void OriginConnection::touch() {
  if (closing_) return;
  timer_.arm(timeout_ms_,
             [](void* self) { static_cast<OriginConnection*>(self)->fail(UV_ETIMEDOUT, true, "origin read timeout"); });
}

void OriginConnection::begin_exchange(bool head_request, double read_timeout_s, bool upgrade) {
  parser_.reset();
  skip_body_ = head_request;
  upgrade_asked_ = upgrade;
  switched_ = false;
  keep_alive_ = false;
  // After an upgrade the origin refused, the connection may still be HTTP; not reusing it
  // costs one connection per refusal and leaves no doubt.
  unsafe_to_reuse_ = upgrade;
  protocol_error_.clear();
  timeout_ms_ = static_cast<std::uint64_t>(read_timeout_s * 1000);
  touch();
  start_reading();
}

StreamPtr OriginConnection::detach_stream() {
  if (closing_ || !connected_) return nullptr;
  StreamPtr s = std::move(stream_);
  s->set_handler(nullptr);
  close();
  return s;
}

void OriginConnection::start_reading() {
  if (closing_) return;
  stream_->read_start();
}

void OriginConnection::pause_reading() {
  if (closing_ || !stream_->reading()) return;
  paused_ = true;
  stream_->read_stop();
  // Our own client is slow, not the origin: its silence while held back is not a timeout
  // (the client's write timeout bounds the wait).
  timer_.stop();
}

void OriginConnection::resume_reading() {
  if (!paused_ || closing_) return;
  paused_ = false;
  touch();
  start_reading();
}

X509* OriginConnection::peer_certificate() const { return tls_ ? tls_->peer_certificate() : nullptr; }

void OriginConnection::on_connected() {
  timer_.stop();
  connected_ = true;
  if (tls_) {
    ++pool_.tls_handshakes_;
    if (tls_->session_reused()) ++pool_.tls_resumed_;
  }
  if (owner_) owner_->on_origin_connected();
}

void OriginConnection::on_error(int status, std::string_view what) {
  if (tls_ && !connected_ && !tls_->verify_error().empty()) ++pool_.tls_verify_failures_;
  if (idle_) {
    on_idle_event();
    return;
  }
  fail(status, false, std::string(what));
}

void OriginConnection::on_eof() {
  if (idle_) {
    on_idle_event();
    return;
  }
  if (parser_.message_in_progress() && parser_.head_done()) {
    // Close-delimited body: EOF ends the message.
    auto r = parser_.finish();
    if (r.kind == http::ParseResult::kError) {
      fail(UV_EPROTO, false, "origin closed the connection mid-response");
    } else {
      keep_alive_ = false;
    }
    return;
  }
  fail(UV_EOF, false, "origin closed the connection");
}

void OriginConnection::on_read(Slice data) {
  if (idle_) {
    on_idle_event();
    return;
  }
  touch();
  pool_.bytes_received_ += data.size;
  in_read_ = true;
  OriginEvents* reader = owner_;
  auto r = parser_.feed(data.chunk, data.data, data.size);
  in_read_ = false;
  if (switched_ && r.kind == http::ParseResult::kUpgrade) {
    // The rest of this read is the new protocol's. The owner takes the stream (or drops
    // the connection); nothing of it is HTTP any more, so it is never pooled.
    keep_alive_ = false;
    Slice early{data.chunk, data.data + r.consumed, data.size - r.consumed};
    if (owner_) owner_->on_origin_upgraded(parser_.head(), std::move(early));
    return;
  }
  // Only to an owner that still holds this connection: one that released it at the end of
  // the response has flushed already, and may be serving another request by now.
  if (reader && reader == owner_) reader->on_origin_read_processed();
  if (r.kind != http::ParseResult::kOk && r.kind != http::ParseResult::kError && r.consumed < data.size) {
    // Bytes after a complete response that nobody asked for: never reuse this connection.
    keep_alive_ = false;
  }
  if (release_requested_) {
    release_requested_ = false;
    release_to_pool();
    return;
  }
  if (closing_) return;
  if (r.kind == http::ParseResult::kError)
    fail(UV_EPROTO, false, "invalid response from origin: " + (protocol_error_.empty() ? r.reason : protocol_error_));
}

int OriginConnection::on_message_head(http::MessageHead& head) {
  if (closing_ || !owner_) return -1;
  // RFC 9110 §15: a status is three digits, 100-599. Anything else is not a response we
  // can relay (llhttp accepts any three digits).
  if (head.status < 100 || head.status > 599) {
    protocol_error_ = "invalid status code " + std::to_string(head.status);
    return -1;
  }
  // Framing the response declares for a body it cannot have. Such a connection is never
  // reused: the declared bytes may still arrive and would read as the next response.
  bool declares_body = head.chunked || (head.has_length && head.content_length > 0);
  if (head.status < 200) {
    if (head.status == 101) {
      if (!upgrade_asked_) {
        protocol_error_ = "unrequested protocol switch (101)";
        return -1;
      }
      // RFC 9110 §15.2.2 / RFC 6455 §4.2.2: the switch names its protocol in Upgrade and
      // Connection; llhttp's upgrade flag says both are there.
      if (!head.upgrade) {
        protocol_error_ = "101 without Upgrade and Connection: upgrade";
        return -1;
      }
      switched_ = true;
      return 0;  // the head ends the message; llhttp stops with an upgrade (see on_read)
    }
    if (declares_body) unsafe_to_reuse_ = true;
    owner_->on_origin_interim(head);
    if (closing_ || !owner_) return -1;
    return 1;  // an interim response has no body, whatever its headers say
  }
  // 204, 304 and responses to HEAD have no body whatever their headers say (RFC 9112 §6.3).
  // A Content-Length on a HEAD response describes the representation, as it may on a 304;
  // but a 304 with one is also the form a body smuggled after it takes, and origins rarely
  // send it, so that connection is not reused either (a small cost, only there).
  bool no_body = skip_body_ || head.status == 204 || head.status == 304;
  if (no_body && (head.chunked || (!skip_body_ && declares_body))) unsafe_to_reuse_ = true;
  keep_alive_ = head.keep_alive;
  int rc = owner_->on_origin_head(head);
  if (rc == 0 && no_body) return 1;
  return rc;
}

int OriginConnection::on_message_body(Slice body) {
  if (closing_ || !owner_) return -1;
  return owner_->on_origin_body(std::move(body));
}

int OriginConnection::on_message_end() {
  if (closing_ || !owner_) return -1;
  if (parser_.head().status < 200) return 0;  // interim: the final response follows (a 101: see on_read)
  keep_alive_ = keep_alive_ && parser_.head().keep_alive && !unsafe_to_reuse_;
  int rc = owner_->on_origin_end();
  // One response per request: anything after it is unsolicited; stop here.
  return rc == 0 ? HPE_PAUSED : rc;
}

int OriginConnection::write(std::vector<Slice>&& slices) {
  if (closing_) return UV_ECANCELED;
  return stream_->write(std::move(slices));
}

void OriginConnection::on_write_done() {
  if (owner_) owner_->on_origin_write_done();
}

std::size_t OriginConnection::write_queue_size() const { return closing_ ? 0 : stream_->queued_bytes(); }

void OriginConnection::release_to_pool() {
  owner_ = nullptr;
  if (closing_) return;
  if (in_read_) {  // finish parsing the current read first
    release_requested_ = true;
    return;
  }
  ++requests_;
  if (!keep_alive_ || !connected_ || parser_.message_in_progress() || write_queue_size() > 0) {
    close();
    return;
  }
  pool_.park(this);
}

void OriginConnection::on_idle_event() {
  // An idle keep-alive connection said something (usually EOF): it cannot be reused.
  pool_.unpark(this);
  close();
}

void OriginConnection::close() {
  if (closing_) return;
  closing_ = true;
  owner_ = nullptr;
  if (idle_) pool_.unpark(this);
  stream_.reset();  // the stream reports nothing more and frees itself
  timer_.close([](uv_handle_t* h) { delete static_cast<OriginConnection*>(h->data); });
}

OriginPool::OriginPool(uv_loop_t* loop, unsigned max_idle_per_host, double idle_timeout_s)
    : loop_(loop),
      max_idle_(max_idle_per_host),
      idle_timeout_ms_(static_cast<std::uint64_t>(idle_timeout_s * 1000)) {}

OriginPool::~OriginPool() { close_idle(); }

void OriginPool::set_limits(unsigned max_idle_per_host, double idle_timeout_s) {
  max_idle_ = max_idle_per_host;
  idle_timeout_ms_ = static_cast<std::uint64_t>(idle_timeout_s * 1000);
}

std::string OriginKey::to_string() const {
  std::string k;
  append_to(k);
  return k;
}

void OriginKey::append_to(std::string& k) const {
  char digits[8];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, port);
  k.reserve(k.size() + scheme.size() + host.size() + 10 + tls_profile.size());
  k.append(scheme).append("://", 3).append(host).append(1, ':').append(digits, end);
  if (!tls_profile.empty()) k.append(1, '#').append(tls_profile);
}

StreamPtr OriginPool::make_stream(const OriginKey& origin, const std::string& key, tls::TlsStream** tls,
                                  std::string* error) {
  StreamPtr transport = stream_factory_ ? stream_factory_() : StreamPtr(new TcpStream(loop_));
  if (origin.tls_profile.empty()) return transport;
  if (tls_contexts_.empty() || tls_contexts_ca_ != ca_file_) {
    std::string why;
    auto ctx = tls::ClientContext::create(tls::ClientOptions{ca_file_}, &why);
    if (!ctx) {
      *error = "cannot set up TLS to origins (" + (ca_file_.empty() ? std::string("system trust store") : ca_file_) +
               "): " + why;
      spdlog::error("origin: {}", *error);
      return nullptr;
    }
    tls_contexts_.push_back(std::move(ctx));
    tls_contexts_ca_ = ca_file_;
  }
  // SNI and the certificate check use the host as the URL names it; resumption is keyed by
  // the pool key (host, port and trust).
  StreamPtr s = tls::make_client_stream(*tls_contexts_.back(), std::move(transport), origin.host, key);
  if (!s) *error = "cannot run TLS over this connection's stream";
  *tls = static_cast<tls::TlsStream*>(s.get());
  return s;
}

OriginKey OriginPool::key_for(const http::Url& url, bool tunnel) const {
  OriginKey k{url.scheme, url.host, url.port, {}};
  if (url.scheme == "https" && !tunnel) k.tls_profile = tls_profile_;
  return k;
}

void OriginPool::set_tls_trust(const std::string& ca_file) {
  ca_file_ = ca_file;
  tls_profile_ = ca_file.empty() ? "verify:system" : "verify:" + ca_file;
}

OriginConnection* OriginPool::acquire(const std::string& key) { return acquire(OriginKey{}, key); }

OriginConnection* OriginPool::acquire(const OriginKey& origin, const std::string& key) {
  auto it = idle_.find(key);
  while (it != idle_.end() && !it->second.empty()) {
    OriginConnection* c = it->second.back();
    it->second.pop_back();
    c->idle_ = false;
    if (c->closing_) continue;
    c->timer_.stop();
    // Reading stays on (no epoll_ctl churn): begin_exchange() follows at once. An emptied
    // list stays for the next park() (no map node and key copied per request under load);
    // empty lists are swept when there are many.
    ++reused_;
    return c;
  }
  if (idle_.size() > kSweepAbove) std::erase_if(idle_, [](const auto& kv) { return kv.second.empty(); });
  return new OriginConnection(*this, origin, key);
}

void OriginPool::park(OriginConnection* c) {
  auto& list = idle_[c->key_];
  if (list.size() >= max_idle_) {
    c->close();
    return;
  }
  c->idle_ = true;  // it holds no read buffer: streams keep none between reads
  list.push_back(c);
  // Watch for the origin closing it, and expire it after the idle timeout. The parser's head
  // buffers and a TLS stream's record buffers go back a moment into the silence first (at
  // once, a busy origin's next request would allocate them again).
  c->start_reading();
  static constexpr LazyTimer::Fn expire = [](void* o) {
    auto* self = static_cast<OriginConnection*>(o);
    self->pool_.unpark(self);
    self->close();
  };
  if (idle_timeout_ms_ > Stream::kIdleMemoryDelayMs) {
    c->timer_.arm(Stream::kIdleMemoryDelayMs, [](void* o) {
      auto* self = static_cast<OriginConnection*>(o);
      if (self->stream_) self->stream_->release_idle_memory();
      self->parser_.release_memory();
      self->timer_.arm(self->pool_.idle_timeout_ms_ - Stream::kIdleMemoryDelayMs, expire);
    });
  } else {
    c->timer_.arm(idle_timeout_ms_, expire);
  }
}

void OriginPool::unpark(OriginConnection* c) {
  if (!c->idle_) return;
  c->idle_ = false;
  auto it = idle_.find(c->key_);
  if (it == idle_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), c), v.end());
  if (v.empty()) idle_.erase(it);
}

void OriginPool::close_idle() {
  auto all = std::move(idle_);
  idle_.clear();
  for (auto& [k, list] : all)
    for (auto* c : list) {
      c->idle_ = false;
      c->close();
    }
}

std::size_t OriginPool::idle_count() const {
  std::size_t n = 0;
  for (auto& [k, v] : idle_) n += v.size();
  return n;
}

}  // namespace outpost
