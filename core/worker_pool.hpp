// Worker threads, each running its own libuv loop. Work reaches a worker only through
// post(), which wakes its loop with a uv_async_t; nothing else crosses threads.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/net_address.hpp"

namespace outpost {

class Worker {
 public:
  explicit Worker(unsigned index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  unsigned index() const { return index_; }
  uv_loop_t* loop() { return &loop_; }
  // Runs fn on this worker's loop thread (thread-safe, may be called from any thread).
  void post(std::function<void()> fn);
  // Starts the thread: runs `init` on the loop thread, then the loop until stop().
  void start(std::function<void(Worker&)> init);
  // Asks the loop to finish (closes the wake-up handle; the loop ends when nothing else is open).
  void stop();
  void join();

 private:
  static void on_async(uv_async_t* a);
  unsigned index_;
  uv_loop_t loop_;
  uv_async_t async_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  std::thread thread_;
};

// Creates a non-blocking listening TCP socket with SO_REUSEPORT (one per worker) and returns
// its fd, or -errno.
int open_listen_socket(const Endpoint& ep, int backlog = 4096);

// Closes every handle still open on a loop (for orderly teardown).
void close_all_handles(uv_loop_t* loop);

}  // namespace outpost
