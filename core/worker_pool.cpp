#include "core/worker_pool.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace outpost {

Worker::Worker(unsigned index) : index_(index) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, &Worker::on_async);
  async_.data = this;
}

Worker::~Worker() {
  join();
  // A worker whose loop never ran (or never got its stop()) still has its async handle open,
  // and uv_loop_close() would fail and leave the loop's own allocations behind.
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  uv_loop_close(&loop_);
}

void Worker::post(std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void Worker::on_async(uv_async_t* a) {
  auto* w = static_cast<Worker*>(a->data);
  std::vector<std::function<void()>> q;
  {
    std::lock_guard lk(w->mu_);
    q.swap(w->queue_);
  }
  for (auto& fn : q) fn();
}

void Worker::start(std::function<void(Worker&)> init) {
  thread_ = std::thread([this, init = std::move(init)] {
    init(*this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Drain handles closed during the last iteration.
    uv_run(&loop_, UV_RUN_NOWAIT);
  });
}

void Worker::stop() {
  post([this] {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_)))
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

namespace {
// A socket of `type` bound to `ep`, or -errno. `share`: SO_REUSEPORT (one socket per worker)
// and SO_REUSEADDR, non-blocking; without it only TCP gets SO_REUSEADDR (an earlier run's
// TIME_WAIT is no conflict; on UDP it would let the socket share the port).
int bind_socket(const Endpoint& ep, int type, bool share, bool transparent = false) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ep.to_sockaddr(&ss, &len)) return -EINVAL;
  int fd = ::socket(ss.ss_family, type | SOCK_CLOEXEC | (share ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (share || type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (share) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  // TPROXY: accept connections addressed to other hosts (needs CAP_NET_ADMIN).
  if (transparent &&
      (ss.ss_family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                                : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}
}  // namespace

int open_listen_socket(const Endpoint& ep, int backlog, bool transparent) {
  int fd = bind_socket(ep, SOCK_STREAM, true, transparent);
  if (fd >= 0 && ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

int probe_address(const Endpoint& ep, bool tcp) {
  int fd = bind_socket(ep, tcp ? SOCK_STREAM : SOCK_DGRAM, false);
  if (fd < 0) return fd;
  ::close(fd);
  return 0;
}

int open_udp_socket(const Endpoint& ep) { return bind_socket(ep, SOCK_DGRAM, true); }

struct Acceptor::Listener {
  uv_poll_t poll;
  int fd;
  Acceptor* owner;
};

Acceptor::Acceptor(uv_loop_t* loop, std::string shed_response, Callbacks callbacks)
    : loop_(loop), shed_response_(std::move(shed_response)), cb_(std::move(callbacks)) {
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Acceptor::~Acceptor() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

int Acceptor::listen(const Endpoint& ep, bool transparent) {
  int fd = open_listen_socket(ep, 4096, transparent);
  if (fd < 0) return fd;
  auto* l = new Listener{{}, fd, this};
  if (int rc = uv_poll_init_socket(loop_, &l->poll, fd); rc != 0) {
    ::close(fd);
    delete l;
    return rc;
  }
  l->poll.data = l;
  listeners_.push_back(l);
  if (!pause_timer_) {
    pause_timer_ = new uv_timer_t;
    uv_timer_init(loop_, pause_timer_);
    pause_timer_->data = this;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(pause_timer_))) set_polling(true);
  return 0;
}

void Acceptor::close() {
  if (closed_) return;
  closed_ = true;
  // The close callbacks only free their own handle: the Acceptor may be gone by then.
  for (auto* l : listeners_)
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), [](uv_handle_t* h) {
      auto* l = static_cast<Listener*>(h->data);
      ::close(l->fd);
      delete l;
    });
  listeners_.clear();
  if (pause_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(pause_timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    pause_timer_ = nullptr;
  }
}

void Acceptor::set_polling(bool on) {
  for (auto* l : listeners_) {
    if (!on) {
      uv_poll_stop(&l->poll);
      continue;
    }
    // A poll error (status < 0) is not acted on here: accept4() reports the same condition.
    uv_poll_start(&l->poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* l = static_cast<Listener*>(p->data);
      l->owner->on_readable(l);
    });
  }
}

void Acceptor::on_readable(Listener* l) {
  // A batch per turn keeps one busy listener from starving the loop's other work; the poll is
  // level-triggered, so whatever is left is reported again on the next turn.
  constexpr int kBatch = 64;
  for (int i = 0; i < kBatch && !closed_; ++i) {
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = ::accept4(l->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      cb_.accepted(fd, peer);
      continue;
    }
    int e = errno;
    // The kernel already dequeued the connection (aborted by the peer, refused by a filter).
    if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      // Only an emptied backlog ends an episode. At the limit every connection that closes
      // lets one accept through, and ending the episode there would make the report flap.
      if (exhausted_) {
        exhausted_ = false;
        cb_.recovered();
      }
      return;
    }
    // EMFILE/ENFILE/ENOBUFS/ENOMEM, or anything unexpected: accept() would fail the same way
    // on the next turn, so pause instead of retrying.
    on_exhausted(-e);
    return;
  }
}

void Acceptor::on_exhausted(int error) {
  std::size_t shed = error == -EMFILE || error == -ENFILE ? shed_pending() : 0;
  set_polling(false);
  uv_timer_start(
      pause_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Acceptor*>(t->data);
        if (self->spare_fd_ < 0) self->spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        self->set_polling(true);
      },
      kPauseMs, 0);
  bool first = !exhausted_;
  exhausted_ = true;
  cb_.exhausted(error, shed, first);
}

std::size_t Acceptor::shed_pending() {
  if (spare_fd_ < 0) return 0;
  ::close(spare_fd_);
  spare_fd_ = -1;
  // Bounded: a flood that keeps the backlog full is shed again after the next pause.
  constexpr std::size_t kMaxShed = 4096;
  std::size_t shed = 0;
  for (auto* l : listeners_) {
    while (shed < kMaxShed) {
      int fd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM) continue;
        break;  // drained, or the freed slot went to another thread
      }
      ++shed;
      // Best effort: the answer, then drop what the client already sent so that close()
      // is less likely to turn into a reset that discards the answer.
      (void)::send(fd, shed_response_.data(), shed_response_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::shutdown(fd, SHUT_WR);
      char drain[1024];
      (void)::recv(fd, drain, sizeof drain, MSG_DONTWAIT);
      ::close(fd);
    }
  }
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return shed;
}

void close_all_handles(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
}

}  // namespace outpost
