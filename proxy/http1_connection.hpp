// One HTTP/1 client connection over a byte stream (core/stream.hpp; TcpStream in
// production): parsing (llhttp, strict), pipelining (the parser pauses after each message
// until its response is complete, so responses leave in order), keep-alive, the header,
// body, idle, write and linger timers, back-pressure both ways, and the HTTP/1 wire format
// of responses (status line, Connection, chunked framing: proxy/http1_writer). It creates one
// ProxyRequest per message and is that request's ResponseSink; an idle keep-alive connection
// holds no request object and no read buffer.
#pragma once
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "core/chunk.hpp"
#include "core/lazy_timer.hpp"
#include "core/stream.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/request.hpp"
#include "proxy/response_sink.hpp"

namespace outpost {

class ProxyWorker;

// Bytes read but not parsed yet, in order: a vector with a read index. It allocates nothing
// until the first read and keeps a few slots after (std::deque allocates about 600 bytes up
// front, which every idle keep-alive connection would carry).
class SliceQueue {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  Slice& front() noexcept { return items_[head_]; }
  void push_back(Slice s) { items_.push_back(std::move(s)); }
  void pop_front() {
    items_[head_++] = Slice{};
    if (empty()) {
      clear();
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      // A client that keeps pipelining may never let the queue run empty: drop the consumed
      // prefix now and then, so the vector does not grow with every read.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void push_front(Slice s) {
    if (head_ > 0) items_[--head_] = std::move(s);
    else items_.insert(items_.begin(), std::move(s));
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }
  auto begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() noexcept { return items_.end(); }
  std::size_t slots() const noexcept { return items_.size(); }  // live and consumed, for tests

 private:
  std::vector<Slice> items_;
  std::size_t head_ = 0;
};

class Http1Connection final : private http::ParserListener, private StreamHandler, private ResponseSink {
 public:
  // `authority`: inside an intercepted tunnel to this "host:port" (ClientInfo::authority).
  // `original_dst`: transparently intercepted, to this destination (ClientInfo::original_dst).
  Http1Connection(ProxyWorker& worker, StreamPtr stream, std::string authority = {}, std::string user = {},
                  std::vector<std::string> groups = {}, std::optional<SocketAddress> original_dst = {});
  Http1Connection(const Http1Connection&) = delete;
  Http1Connection& operator=(const Http1Connection&) = delete;

  // Starts serving. `handshake_first`: the stream is a server-side TLS stream whose handshake
  // is still to come; the header timeout then covers the handshake and the first head (no
  // client holds a connection for the idle timeout with a half-finished handshake).
  void start(bool handshake_first = false);
  // A connection of an intercept_tls_listen (original_dst set): no request is read; one
  // CONNECT to the original destination begins at once (ProxyRequest::begin_intercepted_tls)
  // and this connection writes nothing of its answer — the client speaks TLS to the server it
  // thinks it reached: a tunnel or a bump follows, or the connection closes.
  void start_intercepted_tls();
  // Graceful shutdown: an idle connection closes now, a busy one after its response.
  void on_shutdown();
  // Closes at once (grace period over, or a broken exchange).
  void abort() override;
  // For operators (`outpost ctl connections`): one line — the client's address and port, how
  // long it has been open, its phase, the bumped tunnel's authority, the request in flight.
  std::string describe(std::uint64_t now_ms) const;

 private:
  enum class Phase { kIdle, kHead, kBody, kWaiting, kTunnel, kLingering };
  ~Http1Connection();

  // http::ParserListener (the client's requests)
  int on_message_head(http::MessageHead& head) override;
  int on_message_body(Slice body) override;
  int on_message_end() override;
  // StreamHandler (the client)
  void on_read(Slice data) override;
  void on_eof() override;
  void on_error(int status, std::string_view what) override;
  void on_write_done() override;
  // ResponseSink (for the request in flight)
  void start(const http::ResponseHead& head, BodyFraming framing, std::string_view transfer_codings) override;
  void interim(http::ResponseHead head) override;
  void send(std::vector<Slice> body) override;
  void send(Slice body) override;
  void end() override;
  bool started() const override { return response_started_; }
  void cork() override { corked_ = true; }
  void uncork() override;
  bool congested() const override;
  void close_after() override { close_after_ = true; }
  bool client_http11() const override { return http11_; }
  void pause_request_body(bool paused) override;
  StreamPtr take_stream(std::vector<Slice>* early_bytes, bool* eof_seen) override;
  std::uint64_t bytes_sent() const override { return bytes_out_; }
  std::uint64_t first_byte_ms() const override { return first_byte_ms_; }

  ProxyRequest& new_request();  // request_ = a fresh request object
  void release_request();       // request_ back to the per-thread free list
  void fail_request(int status, const std::string& detail);
  void pump();
  void write_out(std::vector<Slice> slices);
  void write_out(Slice s);
  void queue_out(Slice s);  // without the flush decision
  void write_head(const http::ResponseHead& head, const http::Http1Framing& f);
  void flush();
  void watch_write_progress();
  void maybe_finish();
  void finish_exchange();
  // Our FIN after the queued answer; then read and drop the client's bytes for a moment
  // once the answer is written (a lingering close: unread input would make the kernel reset
  // the connection before the client has read the answer).
  void close_after_flush();
  void linger_when_drained();
  void update_reading();
  void set_timer(std::uint64_t ms, Phase phase);
  void enter_idle();  // between requests: the idle timeout, after a trim of the idle buffers
  void on_timer();
  void close_now();
  // The client's TLS handshake (TLS listener or bumped tunnel) ended: done or failed.
  void count_tls_handshake(bool done);

  ProxyWorker& w_;
  StreamPtr stream_;  // null once handed to a tunnel, or closed
  LazyTimer timer_;
  uv_timer_t* write_timer_ = nullptr;
  http::HttpParser parser_;
  ClientInfo client_;
  SliceQueue unparsed_;
  std::size_t unparsed_bytes_ = 0;
  Phase phase_ = Phase::kIdle;
  // The request in flight (and, after a Connection: close answer, the one that ended the
  // connection). Null between requests.
  std::unique_ptr<ProxyRequest> request_;
  unsigned block_reading_ = 0;  // reasons to stop reading the client (bit mask)
  bool parser_paused_ = false;
  bool in_pump_ = false;
  bool any_input_ = false;  // a byte of the client's has arrived (over TLS: the handshake is done)
  bool handshake_first_ = false;  // a TLS handshake comes first and is not counted yet
  bool trim_due_ = false;         // idle: the first timer trims the parser and stream, the next closes
  bool closing_ = false;
  bool client_eof_ = false;
  // The exchange in flight, as this connection frames it.
  bool request_done_ = false;
  bool response_started_ = false;
  bool response_done_ = false;
  bool chunked_out_ = false;
  bool close_after_ = false;
  bool http11_ = true;
  bool connect_ = false;   // the request is a CONNECT (its head went to the request)
  // The request asks for an upgrade (llhttp: Upgrade with "Connection: upgrade"): what
  // follows its head is not HTTP, whether the origin switches (a tunnel) or not (the
  // connection closes after the answer).
  bool upgrade_ = false;
  bool upgraded_ = false;  // CONNECT: the bytes after the head belong to the tunnel
  bool silent_ = false;    // start_intercepted_tls(): answers are not written
  std::uint64_t bytes_out_ = 0;
  std::uint64_t first_byte_ms_ = 0;
  bool corked_ = false;
  std::vector<Slice> out_;
  std::size_t out_bytes_ = 0;
  int handles_open_ = 0;
  std::uint64_t opened_ms_ = 0;  // uv_now when accepted (describe())
};

}  // namespace outpost
