#include "core/udp_listener.hpp"

#include <netinet/in.h>
#include <unistd.h>

#include <cstring>

#include "core/worker_pool.hpp"

namespace outpost {

namespace {

socklen_t sockaddr_size(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// A datagram libuv sends later (the socket buffer was full); freed by its completion, which
// libuv also runs (with UV_ECANCELED) when the socket closes first.
struct QueuedSend {
  uv_udp_send_t req;
  std::vector<std::uint8_t> data;
};

}  // namespace

struct UdpListener::Socket {
  uv_udp_t handle;
  UdpListener* owner;
  std::size_t index;
  std::vector<char> buf = std::vector<char>(kBatch * kMaxDatagram);
  // Inside a receive batch, answers wait here for one sendmmsg.
  bool in_batch = false;
  std::vector<std::pair<sockaddr_storage, std::vector<std::uint8_t>>> pending;
};

UdpListener::UdpListener(uv_loop_t* loop, OnDatagram on_datagram) : loop_(loop), on_datagram_(std::move(on_datagram)) {}

UdpListener::~UdpListener() { close(); }

int UdpListener::listen(const Endpoint& ep) {
  if (closed_) return -EBADF;
  int fd = open_udp_socket(ep);
  if (fd < 0) return fd;
  auto* s = new Socket;
  s->owner = this;
  s->index = sockets_.size();
  uv_udp_init_ex(loop_, &s->handle, AF_UNSPEC | UV_UDP_RECVMMSG);
  s->handle.data = s;
  if (int rc = uv_udp_open(&s->handle, fd); rc != 0) {
    ::close(fd);
    uv_close(reinterpret_cast<uv_handle_t*>(&s->handle), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    return rc;
  }
  sockets_.push_back(s);
  uv_udp_recv_start(
      &s->handle,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* s = static_cast<Socket*>(h->data);
        *buf = uv_buf_init(s->buf.data(), static_cast<unsigned>(s->buf.size()));
      },
      [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned flags) {
        auto* s = static_cast<Socket*>(h->data);
        // With recvmmsg, libuv calls once per datagram (MMSG_CHUNK), then once more with
        // MMSG_FREE at the end of the batch: that is where the batch's answers go out. A
        // single recv (no CHUNK flag) is a batch of one.
        // owner is null once closed (on_datagram may close the listener, or destroy it).
        if (flags & UV_UDP_MMSG_CHUNK) s->in_batch = true;
        if (n > 0 && from && s->owner) {
          UdpPeer peer;
          peer.socket = s->index;
          std::memcpy(&peer.address, from, from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
          ++s->owner->stats_.received;
          s->owner->on_datagram_({reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(n)}, peer);
        }
        if (!(flags & UV_UDP_MMSG_CHUNK) && s->owner) s->owner->flush(*s);
      });
  return 0;
}

void UdpListener::send(const UdpPeer& to, std::vector<std::uint8_t> data) {
  if (closed_ || to.socket >= sockets_.size() || data.empty()) return;
  Socket& s = *sockets_[to.socket];
  if (s.in_batch) s.pending.emplace_back(to.address, std::move(data));
  else send_now(s, to.address, std::move(data));
}

void UdpListener::send_now(Socket& s, const sockaddr_storage& to, std::vector<std::uint8_t> data) {
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  auto* sa = reinterpret_cast<const sockaddr*>(&to);
  if (uv_udp_try_send(&s.handle, &b, 1, sa) >= 0) {
    ++stats_.sent;
    return;
  }
  auto* q = new QueuedSend{{}, std::move(data)};
  b = uv_buf_init(reinterpret_cast<char*>(q->data.data()), static_cast<unsigned>(q->data.size()));
  q->req.data = q;
  if (uv_udp_send(&q->req, &s.handle, &b, 1, sa, [](uv_udp_send_t* r, int) { delete static_cast<QueuedSend*>(r->data); }) != 0) {
    delete q;
    ++stats_.send_failed;
    return;
  }
  ++stats_.sent;
}

void UdpListener::flush(Socket& s) {
  s.in_batch = false;
  if (s.pending.empty()) return;
  auto pending = std::move(s.pending);
  s.pending.clear();
  std::size_t sent = 0;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&s.handle), &fd) == 0) {
    std::vector<mmsghdr> msgs(pending.size());
    std::vector<iovec> iov(pending.size());
    for (std::size_t i = 0; i < pending.size(); ++i) {
      iov[i] = {pending[i].second.data(), pending[i].second.size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = &pending[i].first;
      msgs[i].msg_hdr.msg_namelen = sockaddr_size(pending[i].first);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(msgs.size()), MSG_DONTWAIT);
    if (r > 0) sent = static_cast<std::size_t>(r);
  }
  stats_.sent += sent;
  stats_.sent_batched += sent;
  // Whatever the batch call did not take goes out through libuv (which queues on EAGAIN).
  for (std::size_t i = sent; i < pending.size(); ++i) send_now(s, pending[i].first, std::move(pending[i].second));
}

void UdpListener::close() {
  if (closed_) return;
  closed_ = true;
  for (auto* s : sockets_) {
    s->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&s->handle), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
  }
  sockets_.clear();
}

Endpoint UdpListener::local_endpoint(std::size_t index) const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (index >= sockets_.size() ||
      uv_udp_getsockname(&sockets_[index]->handle, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return {};
  auto* sa = reinterpret_cast<const sockaddr*>(&ss);
  std::uint16_t port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port
                                                      : reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  return Endpoint{IpAddress::from_sockaddr(sa).to_string(), port};
}

}  // namespace outpost
