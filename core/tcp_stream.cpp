#include "core/tcp_stream.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include "core/uv_write.hpp"

namespace outpost {

namespace {
// linux/netfilter_ipv4.h SO_ORIGINAL_DST and linux/netfilter_ipv6/ip6_tables.h
// IP6T_SO_ORIGINAL_DST (those headers clash with <netinet/in.h>).
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;
}  // namespace

std::optional<SocketAddress> original_destination(int fd, bool tproxy, std::string* error) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    *error = std::string("getsockname: ") + std::strerror(errno);
    return std::nullopt;
  }
  if (!tproxy) {
    bool v6 = ss.ss_family == AF_INET6;
    len = sizeof ss;
    if (::getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? kIp6tSoOriginalDst : kSoOriginalDst, &ss, &len) != 0) {
      *error = std::string("no original destination (SO_ORIGINAL_DST: ") + std::strerror(errno) + ")";
      return std::nullopt;
    }
  }
  auto a = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
  if (!a) *error = "original destination of an unknown address family";
  return a;
}

TcpStream::TcpStream(uv_loop_t* loop) {
  uv_tcp_init(loop, &h_.tcp);
  h_.tcp.data = this;
}

TcpStream::TcpStream(uv_loop_t* loop, UnixTag) : unix_(true) {
  uv_pipe_init(loop, &h_.pipe, 0);
  h_.pipe.data = this;
}

TcpStream* TcpStream::make_unix(uv_loop_t* loop) { return new TcpStream(loop, UnixTag{}); }

int TcpStream::open(int fd) {
  int rc = unix_ ? uv_pipe_open(&h_.pipe, fd) : uv_tcp_open(&h_.tcp, fd);
  if (rc == 0 && !unix_) uv_tcp_nodelay(&h_.tcp, 1);
  return rc;
}

int TcpStream::accept_from(uv_stream_t* listener) {
  int rc = uv_accept(listener, stream());
  if (rc == 0 && !unix_) uv_tcp_nodelay(&h_.tcp, 1);
  return rc;
}

void TcpStream::set_nodelay(bool on) {
  if (!unix_) uv_tcp_nodelay(&h_.tcp, on ? 1 : 0);
}

int TcpStream::connect(const SocketAddress& to) {
  if (closing_) return UV_ECANCELED;
  if (unix_) return UV_ENOTSUP;
  sockaddr_storage ss;
  socklen_t len;
  to.to_sockaddr(&ss, &len);
  // Allocated per attempt: an accepted stream never pays for a connect request.
  auto* req = new uv_connect_t;
  req->data = this;
  int rc = uv_tcp_connect(req, &h_.tcp, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* req, int status) {
    auto* self = static_cast<TcpStream*>(req->data);
    delete req;
    // A close() during the connect cancels it (UV_ECANCELED) before the close callback.
    if (self->closing_ || self->failed_) return;
    if (status != 0) {
      self->fail(status, "connect");
      return;
    }
    uv_tcp_nodelay(&self->h_.tcp, 1);
    if (self->handler_) self->handler_->on_connected();
  });
  if (rc != 0) delete req;
  return rc;
}

void TcpStream::read_start() {
  if (reading_ || ended_ || closing_) return;
  int rc = uv_read_start(
      stream(),
      [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
        auto* self = static_cast<TcpStream*>(h->data);
        // A warm chunk from the per-thread pool; on_read hands it on or gives it back.
        self->rbuf_ = ChunkRef::make(Chunk::kIoSize);
        *buf = uv_buf_init(self->rbuf_->data(), static_cast<unsigned>(self->rbuf_->capacity()));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) { static_cast<TcpStream*>(s->data)->on_read(nread); });
  reading_ = rc == 0;
}

void TcpStream::read_stop() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(stream());
}

void TcpStream::on_read(ssize_t nread) {
  // The stream keeps no buffer between reads: the chunk goes to the handler, or back to the
  // pool at once when there is nothing in it (EAGAIN after a full read, EOF, an error).
  ChunkRef chunk = std::move(rbuf_);
  if (nread == 0 || closing_) return;
  if (nread < 0) {
    read_stop();
    ended_ = true;
    if (nread == UV_EOF) {
      if (handler_ && !failed_) handler_->on_eof();
    } else {
      fail(static_cast<int>(nread), "read");
    }
    return;
  }
  const char* data = chunk->data();
  chunk->set_size(static_cast<std::size_t>(nread));
  if (handler_ && !failed_) handler_->on_read(Slice{std::move(chunk), data, static_cast<std::size_t>(nread)});
}

void TcpStream::fail(int status, const char* op) {
  if (failed_) return;
  failed_ = true;
  ended_ = true;
  read_stop();
  if (handler_) handler_->on_error(status, std::string(op) + ": " + uv_strerror(status));
}

int TcpStream::write(std::vector<Slice>&& slices) {
  if (closing_) return UV_ECANCELED;
  if (slices.empty()) return UV_EINVAL;
  return write_slices_now(
      stream(), slices,
      [](void* owner, int status) {
        auto* self = static_cast<TcpStream*>(owner);
        // Writes still queued at close() complete with UV_ECANCELED before the close callback.
        if (self->closing_ || self->failed_) return;
        if (status < 0) {
          self->fail(status, "write");
          return;
        }
        if (self->handler_) self->handler_->on_write_done();
      },
      this);
}

std::size_t TcpStream::queued_bytes() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&h_));
}

int TcpStream::shutdown_write() {
  if (closing_) return UV_ECANCELED;
  // Allocated on demand: most streams never half-close, and the request is ~100 bytes.
  auto* req = new uv_shutdown_t;
  int rc = uv_shutdown(req, stream(), [](uv_shutdown_t* req, int) { delete req; });
  if (rc != 0) delete req;
  return rc;
}

void TcpStream::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  handler_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h_), [](uv_handle_t* h) { delete static_cast<TcpStream*>(h->data); });
}

std::optional<SocketAddress> TcpStream::peer_address() const {
  if (unix_) return std::nullopt;
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&h_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
}

std::optional<SocketAddress> TcpStream::local_address() const {
  if (unix_) return std::nullopt;
  sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(&h_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace outpost
