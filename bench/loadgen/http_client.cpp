#include "bench/loadgen/http_client.hpp"

#include "bench/loadgen/net.hpp"

namespace loadgen {

// One TCP connection's lifetime. Closing detaches it from its owner (owner = nullptr) and
// its close callback frees it, so late libuv callbacks (cancelled writes, a cancelled
// connect) find no owner and do nothing.
struct ClientConnection::Socket {
  uv_tcp_t tcp;
  uv_connect_t connect;
  llhttp_t parser;
  ClientConnection* owner;
};

namespace {

struct RequestWrite {
  uv_write_t req;
  std::string bytes;
};

}  // namespace

ClientConnection::ClientConnection(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

ClientConnection::~ClientConnection() {
  close();
  uv_close(as_handle(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void ClientConnection::close() {
  uv_timer_stop(timer_);
  waiting_ = Waiting::nothing;
  connected_ = false;
  deferred_err_ = 0;
  if (!socket_) return;
  socket_->owner = nullptr;
  uv_close(as_handle(&socket_->tcp), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
  socket_ = nullptr;
}

void ClientConnection::start_timer(std::uint64_t timeout_ms) { uv_timer_start(timer_, on_timer, timeout_ms, 0); }

void ClientConnection::fail_soon(int err) {
  deferred_err_ = err;
  uv_timer_start(timer_, on_timer, 0, 0);
}

void ClientConnection::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<ClientConnection*>(timer->data);
  int err = self->deferred_err_ ? self->deferred_err_ : UV_ETIMEDOUT;
  self->deferred_err_ = 0;
  self->fail(err);
}

// Ends the socket and tells whoever waits: the connect or request callback, or the
// peer-closed callback when nothing was outstanding.
void ClientConnection::fail(int err) {
  Waiting was = waiting_;
  close();
  if (was == Waiting::connect) {
    auto done = std::move(connect_done_);
    done(err);
  } else if (was == Waiting::response) {
    auto done = std::move(response_done_);
    Response partial = std::move(response_);
    done(err, partial);
  } else if (peer_closed_) {
    peer_closed_(err);
  }
}

void ClientConnection::connect(const sockaddr_in& to, std::uint64_t timeout_ms, ConnectDone done) {
  close();
  socket_ = new Socket{};
  socket_->owner = this;
  uv_tcp_init(loop_, &socket_->tcp);
  socket_->tcp.data = socket_;
  connect_done_ = std::move(done);
  waiting_ = Waiting::connect;
  int rc = uv_tcp_connect(&socket_->connect, &socket_->tcp, reinterpret_cast<const sockaddr*>(&to), on_connect);
  if (rc != 0)
    fail_soon(rc);
  else
    start_timer(timeout_ms);
}

void ClientConnection::on_connect(uv_connect_t* req, int status) {
  auto* s = static_cast<Socket*>(req->handle->data);
  ClientConnection* self = s->owner;
  if (!self) return;  // closed meanwhile
  if (status < 0) {
    self->fail(status);
    return;
  }
  uv_timer_stop(self->timer_);
  uv_tcp_nodelay(&s->tcp, 1);
  llhttp_init(&s->parser, HTTP_RESPONSE, settings());
  s->parser.data = s;
  // Read from the start: a server closing an idle connection is noticed at once.
  uv_read_start(as_stream(&s->tcp), alloc_read_buffer, on_read);
  self->connected_ = true;
  self->waiting_ = Waiting::nothing;
  auto done = std::move(self->connect_done_);
  done(0);
}

void ClientConnection::request(std::string bytes, bool head, std::uint64_t timeout_ms, ResponseDone done) {
  response_ = Response{};
  head_ = head;
  complete_ = false;
  response_done_ = std::move(done);
  waiting_ = Waiting::response;
  if (!connected()) {
    fail_soon(UV_ENOTCONN);
    return;
  }
  auto* w = new RequestWrite{{}, std::move(bytes)};
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  if (int rc = uv_write(&w->req, as_stream(&socket_->tcp), &buf, 1, on_written); rc != 0) {
    delete w;
    fail_soon(rc);
    return;
  }
  start_timer(timeout_ms);
}

void ClientConnection::on_written(uv_write_t* req, int status) {
  auto* s = static_cast<Socket*>(req->handle->data);
  delete reinterpret_cast<RequestWrite*>(req);
  if (status < 0 && s->owner) s->owner->fail(status);
}

void ClientConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  ClientConnection* self = static_cast<Socket*>(stream->data)->owner;
  if (nread > 0)
    self->parse(buf->base, static_cast<std::size_t>(nread));
  else if (nread < 0)
    self->end_of_stream(static_cast<int>(nread));
}

void ClientConnection::parse(const char* data, std::size_t len) {
  if (waiting_ != Waiting::response) {
    fail(UV_EPROTO);  // bytes nobody asked for
    return;
  }
  llhttp_t* parser = &socket_->parser;
  llhttp_errno_t err = llhttp_execute(parser, data, len);
  if (complete_) {
    // Paused right after the response. Anything after it was not asked for: drop the
    // connection rather than lose track of the stream.
    if (llhttp_get_error_pos(parser) != data + len) keep_alive_ = false;
    llhttp_resume(parser);
    deliver();
  } else if (err != HPE_OK) {
    fail(UV_EPROTO);
  }
}

void ClientConnection::end_of_stream(int err) {
  // A response without a length ends with the connection.
  if (waiting_ == Waiting::response && err == UV_EOF) {
    llhttp_finish(&socket_->parser);
    if (complete_) {
      keep_alive_ = false;
      deliver();
      return;
    }
  }
  fail(err);
}

void ClientConnection::deliver() {
  waiting_ = Waiting::nothing;
  uv_timer_stop(timer_);
  if (!keep_alive_) close();
  auto done = std::move(response_done_);
  Response r = std::move(response_);
  done(0, r);
}

// ---- llhttp callbacks ----

int ClientConnection::on_message_begin(llhttp_t* p) {
  ClientConnection* self = static_cast<Socket*>(p->data)->owner;
  if (self->waiting_ != Waiting::response) return -1;
  self->response_.status = 0;
  self->response_.body_bytes = 0;
  self->response_.body.clear();
  return 0;
}

int ClientConnection::on_headers_complete(llhttp_t* p) {
  ClientConnection* self = static_cast<Socket*>(p->data)->owner;
  int status = p->status_code;
  self->response_.status = status;
  // 1 = no body, whatever Content-Length says: llhttp itself infers that for 1xx, 204 and
  // 304 only when there is no Content-Length, and a 304 may well carry one (RFC 9110 8.6).
  bool no_body = self->head_ || status < 200 || status == 204 || status == 304;
  return no_body ? 1 : 0;
}

int ClientConnection::on_body(llhttp_t* p, const char* at, std::size_t len) {
  ClientConnection* self = static_cast<Socket*>(p->data)->owner;
  self->response_.body_bytes += len;
  if (self->keep_body) self->response_.body.append(at, len);
  return 0;
}

int ClientConnection::on_message_complete(llhttp_t* p) {
  ClientConnection* self = static_cast<Socket*>(p->data)->owner;
  if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) return 0;  // interim
  self->complete_ = true;
  self->keep_alive_ = llhttp_should_keep_alive(p);
  return HPE_PAUSED;  // hand the response over before parsing anything else
}

const llhttp_settings_t* ClientConnection::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = on_message_begin;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  return &s;
}

}  // namespace loadgen
