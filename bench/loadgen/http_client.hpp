// One HTTP/1.1 client connection to a loopback server, at most one request outstanding.
// llhttp frames the responses: Content-Length, chunked, read-until-close, and 304 / HEAD
// answers without a body. Keep-alive is honoured: a response that ends the connection
// closes the socket, and the owner reconnects before its next request.
#pragma once
#include <llhttp.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace loadgen {

struct Response {
  int status = 0;
  std::uint64_t body_bytes = 0;
  std::string body;  // kept only with ClientConnection::keep_body
};

class ClientConnection {
 public:
  // `err` is 0 or a libuv error: a connect or socket error, UV_EOF / UV_ECONNRESET (closed
  // before the response was complete), UV_ETIMEDOUT, or UV_EPROTO (not a valid response).
  using ConnectDone = std::function<void(int err)>;
  using ResponseDone = std::function<void(int err, const Response& response)>;
  using PeerClosed = std::function<void(int err)>;

  explicit ClientConnection(uv_loop_t* loop);
  ~ClientConnection();  // closes what is open; safe at any time (handles free themselves)
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // The callbacks always run from the loop, never inside these calls. The timeout covers the
  // connect, or the whole exchange from the write to the end of the response.
  void connect(const sockaddr_in& to, std::uint64_t timeout_ms, ConnectDone done);
  void request(std::string bytes, bool head, std::uint64_t timeout_ms, ResponseDone done);
  // Drops the socket; an outstanding connect or request is forgotten, its callback not run.
  void close();

  // Runs when the server closes or breaks the connection while nothing is outstanding.
  void on_peer_closed(PeerClosed cb) { peer_closed_ = std::move(cb); }
  bool connected() const { return socket_ != nullptr && connected_; }

  bool keep_body = false;

 private:
  struct Socket;
  enum class Waiting { nothing, connect, response };

  static void on_connect(uv_connect_t* req, int status);
  static void on_written(uv_write_t* req, int status);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_timer(uv_timer_t* timer);
  static int on_message_begin(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t* settings();

  void parse(const char* data, std::size_t len);
  void end_of_stream(int err);
  void deliver();
  void fail(int err);
  void fail_soon(int err);
  void start_timer(std::uint64_t timeout_ms);

  uv_loop_t* loop_;
  uv_timer_t* timer_;  // heap: its close callback frees it, so the object may go first
  Socket* socket_ = nullptr;
  bool connected_ = false;
  Waiting waiting_ = Waiting::nothing;
  int deferred_err_ = 0;  // reported from the timer, so that no callback runs inside a call
  ConnectDone connect_done_;
  ResponseDone response_done_;
  PeerClosed peer_closed_;
  Response response_;
  bool head_ = false;
  bool complete_ = false;
  bool keep_alive_ = false;
};

}  // namespace loadgen
