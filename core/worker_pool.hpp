// Worker threads, each running its own libuv loop. Work reaches a worker only through
// post(), which wakes its loop with a uv_async_t; nothing else crosses threads.
#pragma once
#include <uv.h>

#include <sys/socket.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
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
int open_listen_socket(const Endpoint& ep, int backlog = 4096, bool transparent = false);
// The UDP counterpart: a bound non-blocking datagram socket with SO_REUSEPORT (one per
// worker; the kernel spreads datagrams over them by source). fd or -errno. UdpListener
// (core/udp_listener.hpp) reads and answers on it.
int open_udp_socket(const Endpoint& ep);
// Whether another socket already holds `ep` (TCP listening, or UDP bound): a bind without
// SO_REUSEPORT fails then. Call before the workers bind: with SO_REUSEPORT alone, a second
// Outpost (or another server of the same user) would share the port silently and get half
// the clients. 0 or -errno (-EADDRINUSE: busy).
int probe_address(const Endpoint& ep, bool tcp);

// Closes every handle still open on a loop (for orderly teardown).
void close_all_handles(uv_loop_t* loop);

// Accepts TCP connections on one worker's listening sockets, and stays well-behaved when the
// process runs out of file descriptors.
//
// Not uv_listen: libuv 1.44's uv__server_io calls accept() in a loop inside one callback. When
// accept() fails with EMFILE/ENFILE it tries its "emfile trick" with the loop's one spare
// descriptor, but that spare is lost as soon as another thread of the process takes the slot
// it freed (our workers share one descriptor table), and from then on every failure goes to
// the connection callback and the loop calls accept() again at once, forever: the thread spins
// at 100% CPU inside one callback and never returns to its loop (no timers, no closes, no
// shutdown). A listening uv_tcp_t cannot be paused either.
//
// Here accept4() runs from a level-triggered uv_poll_t, at most a batch per loop turn. When it
// fails for lack of descriptors (or memory), this worker (1) closes its own spare descriptor,
// accepts the pending connections, writes `shed_response` to each and closes it, then reopens
// the spare: clients learn at once that the proxy is overloaded instead of waiting in the
// backlog; and (2) stops polling every listener for a short pause before trying again. If the
// spare was taken by another thread, step (1) does nothing and step (2) still holds: the cost
// while descriptors are exhausted is one round per pause, never a spin.
class Acceptor {
 public:
  struct Callbacks {
    // A new connection (non-blocking, close-on-exec); the callee owns `fd`.
    std::function<void(int fd, const sockaddr_storage& peer)> accepted;
    // accept() failed with `error` (-errno); `shed` pending connections were answered with
    // the shed response and closed; accepting is paused. Called once per round; `first` for
    // the first round of an episode.
    std::function<void(int error, std::size_t shed, bool first)> exhausted;
    // The episode is over: a round of accepts emptied the backlog again.
    std::function<void()> recovered;
  };
  static constexpr std::uint64_t kPauseMs = 250;

  Acceptor(uv_loop_t* loop, std::string shed_response, Callbacks callbacks);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Opens a listening socket on `ep` (SO_REUSEPORT) and starts accepting; 0 or -errno.
  // `transparent`: IP_TRANSPARENT, for connections TPROXY hands over (their local address is
  // the destination the client asked for).
  int listen(const Endpoint& ep, bool transparent = false);
  // Stops accepting for good: listeners closed (their backlog is reset by the kernel).
  void close();

 private:
  struct Listener;
  void on_readable(Listener* l);
  void on_exhausted(int error);
  std::size_t shed_pending();
  void set_polling(bool on);

  uv_loop_t* loop_;
  std::string shed_response_;
  Callbacks cb_;
  std::vector<Listener*> listeners_;
  uv_timer_t* pause_timer_ = nullptr;
  int spare_fd_ = -1;
  bool exhausted_ = false;
  bool closed_ = false;
};

}  // namespace outpost
