#include "proxy/http1_connection.hpp"

#include <spdlog/spdlog.h>

#include <iterator>

#include "core/uv_write.hpp"
#include "proxy/proxy_worker.hpp"
#include "tls/tls_stream.hpp"

namespace outpost {
namespace {
constexpr std::size_t kMaxUnparsed = 1024 * 1024;  // pipelined bytes buffered while busy
// Reasons to stop reading the client.
constexpr unsigned kBlockBackpressure = 1, kBlockPipeline = 2, kBlockDone = 4, kBlockUpgrade = 8;
constexpr std::uint64_t kLingerMs = 2000;

std::uint64_t ms(double seconds) { return static_cast<std::uint64_t>(seconds * 1000); }
}  // namespace

Http1Connection::Http1Connection(ProxyWorker& worker, StreamPtr stream, std::string authority, std::string user,
                                 std::vector<std::string> groups, std::optional<SocketAddress> original_dst)
    : w_(worker),
      stream_(std::move(stream)),
      parser_(http::HttpParser::Type::kRequest,
              {static_cast<std::size_t>(worker.settings()->config.proxy.max_request_line),
               static_cast<std::size_t>(worker.settings()->config.proxy.max_header_size)},
              this) {
  stream_->set_handler(this);
  timer_.init(w_.loop(), this);
  handles_open_ = 1;
  opened_ms_ = uv_now(w_.loop());
  if (auto peer = stream_->peer_address()) {
    client_.ip = peer->ip;
    client_.text = peer->ip.to_string();
  }
  client_.authority = std::move(authority);
  client_.user = std::move(user);
  client_.groups = std::move(groups);
  client_.original_dst = original_dst;
}

Http1Connection::~Http1Connection() = default;

void Http1Connection::start(bool handshake_first) {
  handshake_first_ = handshake_first;
  const auto& cfg = w_.settings()->config.proxy;
  if (handshake_first) set_timer(ms(cfg.header_timeout), Phase::kHead);
  else enter_idle();
  update_reading();
}

void Http1Connection::start_intercepted_tls() {
  silent_ = true;
  ProxyRequest& req = new_request();
  // As after a CONNECT head (on_message_head, on_message_end, pump): the request is complete,
  // the connection ends with it, and the client's bytes are the tunnel's (read by the peek).
  connect_ = upgraded_ = request_done_ = close_after_ = true;
  block_reading_ |= kBlockUpgrade;
  phase_ = Phase::kWaiting;
  req.begin_intercepted_tls(*this, client_);
}

// ---------------------------------------------------------------- requests

ProxyRequest& Http1Connection::new_request() {
  if (request_) w_.retire_request(std::move(request_));
  request_ = w_.take_request();
  // The exchange as this connection frames it.
  request_done_ = response_started_ = response_done_ = chunked_out_ = close_after_ = connect_ = upgrade_ = upgraded_ = false;
  http11_ = true;
  bytes_out_ = first_byte_ms_ = 0;
  return *request_;
}

void Http1Connection::release_request() {
  // Retired, not reused at once: the request's own code may still be on the stack (this
  // runs from its sink calls); the worker recycles it on the next loop turn.
  if (request_) w_.retire_request(std::move(request_));
}

void Http1Connection::fail_request(int status, const std::string& detail) {
  if (request_ && request_->active()) {
    if (response_started_) {
      abort();
      return;
    }
    request_done_ = true;
    request_->fail(status, detail);
    return;
  }
  std::string method = parser_.head().method;
  new_request();
  request_done_ = true;
  request_->begin_failed(std::move(method), *this, client_, status, detail);
}

// ---------------------------------------------------------------- reading

void Http1Connection::count_tls_handshake(bool done) {
  handshake_first_ = false;  // once
  auto& c = w_.counters();
  bool bump = !client_.authority.empty();
  if (!done) {
    ++(bump ? c.tls_bump_handshake_failures : c.tls_listener_handshake_failures);
    return;
  }
  ++(bump ? c.tls_bump_handshakes : c.tls_listener_handshakes);
  auto* t = dynamic_cast<tls::TlsStream*>(stream_.get());
  if (t && t->session_reused()) ++(bump ? c.tls_bump_resumed : c.tls_listener_resumed);
}

void Http1Connection::update_reading() {
  if (closing_ || !stream_) return;
  if (block_reading_ == 0) stream_->read_start();
  else stream_->read_stop();
}

void Http1Connection::on_read(Slice s) {
  if (closing_ || phase_ == Phase::kLingering) return;  // lingering: read and drop
  if (!any_input_ && handshake_first_) count_tls_handshake(true);
  any_input_ = true;
  const auto& cfg = w_.settings()->config.proxy;
  if (phase_ == Phase::kIdle) set_timer(ms(cfg.header_timeout), Phase::kHead);
  else if (phase_ == Phase::kBody) set_timer(ms(cfg.body_timeout), Phase::kBody);
  unparsed_bytes_ += s.size;
  unparsed_.push_back(std::move(s));
  pump();
  if (!closing_ && unparsed_bytes_ > kMaxUnparsed && !(block_reading_ & kBlockPipeline)) {
    block_reading_ |= kBlockPipeline;
    update_reading();
  }
}

void Http1Connection::on_eof() {
  if (closing_) return;
  if (!any_input_ && handshake_first_) count_tls_handshake(false);
  client_eof_ = true;
  if (phase_ == Phase::kLingering) {
    linger_when_drained();  // closes once our answer is written
    return;
  }
  if (request_ && request_->active() && request_done_ && !response_done_) {
    // The client half-closed after a complete request: answer, then close.
    close_after_ = true;
    block_reading_ |= kBlockDone;
    update_reading();
    return;
  }
  if (request_ && request_->active() && !request_done_)
    spdlog::debug("client {} closed the connection mid-request", client_.text);
  abort();
}

void Http1Connection::on_error(int, std::string_view what) {
  if (closing_) return;
  if (!any_input_ && handshake_first_) {
    count_tls_handshake(false);
    spdlog::debug("client {}: {}", client_.text, what);
  }
  if (request_ && request_->active() && phase_ != Phase::kLingering)
    spdlog::debug("client {}: {}", client_.text, what);
  abort();
}

void Http1Connection::pump() {
  if (in_pump_ || closing_) return;
  in_pump_ = true;
  while (!closing_ && !parser_paused_ && !upgraded_ && !unparsed_.empty()) {
    Slice s = std::move(unparsed_.front());
    unparsed_.pop_front();
    unparsed_bytes_ -= s.size;
    if (phase_ == Phase::kIdle) set_timer(ms(w_.settings()->config.proxy.header_timeout), Phase::kHead);
    auto r = parser_.feed(s.chunk, s.data, s.size);
    if (closing_) break;
    if (r.kind == http::ParseResult::kError) {
      spdlog::info("client {}: malformed request ({}): {}", client_.text, r.status, r.reason);
      fail_request(r.status, "malformed request: " + r.reason);
      break;
    }
    if (r.consumed < s.size) {
      Slice rest{s.chunk, s.data + r.consumed, s.size - r.consumed};
      unparsed_bytes_ += rest.size;
      unparsed_.push_front(std::move(rest));
    }
    if (r.kind == http::ParseResult::kUpgrade) {
      // CONNECT or an upgrade: whatever follows the request head belongs to the tunnel;
      // reading waits for it (the client's bytes then go straight to the origin), or for
      // the close after a refused upgrade's answer.
      upgraded_ = true;
      block_reading_ |= kBlockUpgrade;
      update_reading();
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

int Http1Connection::on_message_head(http::MessageHead& head) {
  if (closing_) return -1;
  const auto& cfg = w_.settings()->config.proxy;
  ProxyRequest& req = new_request();
  http11_ = head.major == 1 && head.minor >= 1;
  connect_ = head.is_connect;
  upgrade_ = head.upgrade && !head.is_connect;
  // A CONNECT or upgrade connection never carries another request after it (tunnel or
  // refusal).
  close_after_ = !head.keep_alive || w_.shutting_down() || head.is_connect || upgrade_;
  bool has_body = head.chunked || (head.has_length && head.content_length > 0);
  if (has_body && !head.is_connect) {
    set_timer(ms(cfg.body_timeout), Phase::kBody);
  } else {
    timer_.stop();
    phase_ = Phase::kWaiting;
  }
  req.begin(head, *this, client_);  // takes the head (the parser gets an empty one back)
  return closing_ ? -1 : 0;
}

int Http1Connection::on_message_body(Slice body) {
  if (closing_) return -1;
  if (request_ && request_->active()) request_->on_request_body(std::move(body));
  return closing_ ? -1 : 0;
}

int Http1Connection::on_message_end() {
  if (closing_) return -1;
  request_done_ = true;
  if (phase_ == Phase::kBody) {
    timer_.stop();
    phase_ = Phase::kWaiting;
  }
  bool connect = connect_ || upgrade_;
  if (request_ && request_->active()) request_->on_request_end();
  if (closing_) return -1;
  if (connect) return 0;  // llhttp stops with HPE_PAUSED_UPGRADE
  return HPE_PAUSED;      // the next pipelined request waits for this response (see pump)
}

// ---------------------------------------------------------------- the response sink

void Http1Connection::start(const http::ResponseHead& head, BodyFraming framing, std::string_view transfer_codings) {
  if (closing_) return;
  response_started_ = true;
  if (silent_) return;
  http::Http1Framing f;
  f.client_http10 = !http11_;
  switch (framing) {
    case BodyFraming::kNone:
    case BodyFraming::kLength:
      break;
    case BodyFraming::kUnknown:
      if (http11_) {
        chunked_out_ = f.chunked = true;
        f.transfer_codings = transfer_codings;
      } else {
        close_after_ = true;  // HTTP/1.0: the end of the body is the close
      }
      break;
    case BodyFraming::kTunnel:
      f.interim = true;  // "200 Connection established" and nothing about this hop
      break;
  }
  if (w_.shutting_down()) close_after_ = true;
  f.close = close_after_;
  write_head(head, f);
}

void Http1Connection::interim(http::ResponseHead head) {
  if (closing_ || !http11_ || silent_) return;  // HTTP/1.0 clients get no 1xx (RFC 9110 §15.2)
  http::Http1Framing f;
  f.interim = true;
  write_head(head, f);
}

void Http1Connection::write_head(const http::ResponseHead& head, const http::Http1Framing& f) {
  thread_local std::string text;  // reused: no allocation per head but the slice's own
  text.clear();
  http::append_response_head(text, head, f);
  write_out(slice_of(text));
}

void Http1Connection::send(Slice body) {
  if (closing_ || body.size == 0 || silent_) return;
  if (!chunked_out_) {
    write_out(std::move(body));
    return;
  }
  send(std::vector<Slice>{std::move(body)});  // the chunk framing is send()'s
}

void Http1Connection::send(std::vector<Slice> body) {
  if (closing_ || body.empty() || silent_) return;
  if (!chunked_out_) {
    write_out(std::move(body));
    return;
  }
  std::size_t n = 0;
  for (const auto& s : body) n += s.size;
  if (n == 0) return;  // an empty chunk would end the body
  std::vector<Slice> framed;
  framed.reserve(body.size() + 2);
  framed.push_back(http::chunk_size_line(n));
  for (auto& s : body) framed.push_back(std::move(s));
  framed.push_back(http::chunk_end());
  write_out(std::move(framed));
}

void Http1Connection::end() {
  if (closing_) return;
  if (chunked_out_) write_out(http::last_chunk());
  response_done_ = true;
  uncork();
  maybe_finish();
}

void Http1Connection::uncork() {
  corked_ = false;
  flush();
}

bool Http1Connection::congested() const {
  return out_bytes_ + (stream_ ? stream_->queued_bytes() : 0) > kStreamHighWater;
}

void Http1Connection::pause_request_body(bool paused) {
  if (paused) block_reading_ |= kBlockBackpressure;
  else block_reading_ &= ~kBlockBackpressure;
  update_reading();
}

StreamPtr Http1Connection::take_stream(std::vector<Slice>* early_bytes, bool* eof_seen) {
  corked_ = false;
  flush();  // the 200 goes first, on the stream the tunnel takes over
  if (closing_ || !stream_) return nullptr;
  phase_ = Phase::kTunnel;
  timer_.stop();
  if (write_timer_) uv_timer_stop(write_timer_);
  for (auto& s : unparsed_) early_bytes->push_back(std::move(s));
  unparsed_.clear();
  unparsed_bytes_ = 0;
  *eof_seen = client_eof_;
  stream_->set_handler(nullptr);
  return std::move(stream_);
}

// ---------------------------------------------------------------- writing

void Http1Connection::queue_out(Slice s) {
  bytes_out_ += s.size;
  out_bytes_ += s.size;
  out_.push_back(std::move(s));
}

void Http1Connection::write_out(std::vector<Slice> slices) {
  if (closing_ || !stream_) return;
  if (!first_byte_ms_) first_byte_ms_ = uv_now(w_.loop());
  for (auto& s : slices) queue_out(std::move(s));
  // Corked (inside one origin read): everything that read produced leaves in one write.
  if (!corked_ || out_bytes_ >= kStreamHighWater) flush();
}

void Http1Connection::write_out(Slice s) {
  if (closing_ || !stream_) return;
  if (!first_byte_ms_) first_byte_ms_ = uv_now(w_.loop());
  queue_out(std::move(s));
  if (!corked_ || out_bytes_ >= kStreamHighWater) flush();
}

void Http1Connection::flush() {
  if (closing_ || out_.empty() || !stream_) return;
  out_bytes_ = 0;
  // Usually the kernel takes it all at once: then nothing is queued, no completion follows,
  // and out_ keeps its capacity for the next response.
  int rc = stream_->write(std::move(out_));
  out_.clear();
  if (rc == 1) return;
  if (rc < 0) {
    abort();
    return;
  }
  watch_write_progress();
}

void Http1Connection::watch_write_progress() {
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
        auto* self = static_cast<Http1Connection*>(t->data);
        spdlog::info("client {}: read nothing of its response for {} s, closing", self->client_.text,
                     self->w_.settings()->config.proxy.write_timeout);
        self->abort();
      },
      ms(w_.settings()->config.proxy.write_timeout), 0);
}

void Http1Connection::on_write_done() {
  if (closing_ || !stream_) return;
  std::size_t queued = stream_->queued_bytes();
  if (write_timer_) {  // progress: the client read something
    uv_timer_stop(write_timer_);
    if (queued > 0) watch_write_progress();
  }
  if (phase_ == Phase::kLingering) {
    linger_when_drained();
    return;
  }
  if (queued < kStreamLowWater && request_ && request_->active()) request_->on_sink_drained();
}

// ---------------------------------------------------------------- ending

void Http1Connection::maybe_finish() {
  if (closing_ || !request_ || !request_->active()) return;
  if (!response_done_) return;
  if (!request_done_ && !close_after_) return;
  finish_exchange();
}

void Http1Connection::finish_exchange() {
  request_->finish();
  if (close_after_ || w_.shutting_down()) {
    close_after_flush();
    return;
  }
  release_request();
  enter_idle();
  if (parser_paused_) {
    parser_.resume();
    parser_paused_ = false;
  }
  pump();
}

void Http1Connection::close_after_flush() {
  if (closing_ || phase_ == Phase::kLingering) return;
  corked_ = false;
  flush();  // everything queued must precede our FIN
  if (closing_) return;
  release_request();
  if (!stream_) {  // handed to a tunnel, which has ended
    close_now();
    return;
  }
  // Lingering close: send our FIN after the queued response, then keep reading (and
  // discarding) for a moment so that unread request bytes do not make the kernel reset the
  // connection before the client has read the response.
  phase_ = Phase::kLingering;
  timer_.stop();
  if (stream_->shutdown_write() != 0) {
    close_now();
    return;
  }
  if (!client_eof_) {
    block_reading_ = 0;
    update_reading();
  }
  linger_when_drained();
}

void Http1Connection::linger_when_drained() {
  // The answer is still queued: closing now would drop it (a slow client, a large
  // close-delimited body). Wait for the queue to drain; the write timeout bounds the wait.
  if (stream_->queued_bytes() > 0) return;
  if (client_eof_) {  // nothing more to read: done
    close_now();
    return;
  }
  set_timer(kLingerMs, Phase::kLingering);
}

void Http1Connection::on_shutdown() {
  if (closing_) return;
  if ((!request_ || !request_->active()) && unparsed_.empty() && phase_ == Phase::kIdle) {
    close_now();
    return;
  }
  // A request in progress ends with Connection: close; one still arriving sees
  // shutting_down() when its head is parsed.
  close_after_ = true;
}

void Http1Connection::abort() {
  if (closing_) return;
  if (request_) {
    request_->on_client_gone();  // logged as aborted if unfinished
    release_request();
  }
  close_now();
}

void Http1Connection::close_now() {
  if (closing_) return;
  closing_ = true;
  release_request();
  stream_.reset();  // frees itself
  auto on_closed = [](uv_handle_t* h) {
    auto* self = static_cast<Http1Connection*>(h->data);
    if (h == reinterpret_cast<uv_handle_t*>(self->write_timer_)) delete self->write_timer_;
    if (--self->handles_open_ == 0) {
      self->w_.session_closed(self);
      delete self;
    }
  };
  timer_.close(on_closed);
  if (write_timer_) uv_close(reinterpret_cast<uv_handle_t*>(write_timer_), on_closed);
}

// ---------------------------------------------------------------- timers

void Http1Connection::enter_idle() {
  auto idle = ms(w_.settings()->config.proxy.idle_timeout);
  // The parser's head buffers (and, over TLS, the stream's record buffers) go back a moment
  // into the silence (not at once: the next request of a busy client would allocate them
  // again).
  trim_due_ = idle > Stream::kIdleMemoryDelayMs;
  set_timer(trim_due_ ? Stream::kIdleMemoryDelayMs : idle, Phase::kIdle);
}

void Http1Connection::set_timer(std::uint64_t ms, Phase phase) {
  phase_ = phase;
  timer_.arm(ms, [](void* self) { static_cast<Http1Connection*>(self)->on_timer(); });
}

void Http1Connection::on_timer() {
  if (closing_) return;
  switch (phase_) {
    case Phase::kHead:
      if (!any_input_) {
        // Nothing readable arrived: a TLS client that did not finish its handshake (or sent
        // no request after it). There is nobody to answer a 408 to.
        spdlog::info("client {}: no request (TLS handshake not finished) within the header timeout", client_.text);
        close_now();
        break;
      }
      spdlog::info("client {}: request header timeout", client_.text);
      fail_request(408, "The request header was not received in time.");
      break;
    case Phase::kBody:
      if (request_ && request_->active()) request_->on_request_timeout();
      else abort();
      break;
    case Phase::kIdle:
      if (trim_due_ && stream_) {
        trim_due_ = false;
        stream_->release_idle_memory();
        parser_.release_memory();
        set_timer(ms(w_.settings()->config.proxy.idle_timeout) - Stream::kIdleMemoryDelayMs, Phase::kIdle);
        break;
      }
      close_now();  // idle keep-alive timeout
      break;
    default:
      close_now();  // lingering close done
  }
}

std::string Http1Connection::describe(std::uint64_t now_ms) const {
  static constexpr std::string_view kPhase[] = {"idle", "head", "body", "waiting", "tunnel", "lingering"};
  static_assert(std::size(kPhase) == static_cast<std::size_t>(Phase::kLingering) + 1, "a name for every phase");
  std::string out;
  std::optional<SocketAddress> peer = stream_ ? stream_->peer_address() : std::nullopt;
  out += peer ? peer->to_string() : client_.text;
  out += " age=" + std::to_string((now_ms - opened_ms_) / 1000) + "s";
  out += " phase=";
  out += kPhase[static_cast<std::size_t>(phase_)];
  if (!client_.authority.empty()) out += " bumped=" + client_.authority;
  if (client_.original_dst) out += " intercepted=" + client_.original_dst->to_string();
  out += " sent=" + std::to_string(bytes_out_);
  if (request_ && request_->active()) out += " request=" + request_->describe(now_ms);
  return out;
}

}  // namespace outpost
