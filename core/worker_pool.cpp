#include "core/worker_pool.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

namespace outpost {

Worker::Worker(unsigned index) : index_(index) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, &Worker::on_async);
  async_.data = this;
}

Worker::~Worker() {
  join();
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

int open_listen_socket(const Endpoint& ep, int backlog) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ep.to_sockaddr(&ss, &len)) return -EINVAL;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
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
