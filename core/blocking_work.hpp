// Blocking work off the loop: THE way to run something that blocks (file and disk I/O,
// fsync, parsing a big file, minting a certificate) without stalling a loop thread.
//
//   task_ = run_blocking(loop,
//       [path] { return load_zone_file(path); },         // libuv thread pool
//       [this](ZoneResult r) { apply(std::move(r)); });  // back on `loop`'s thread
//
// - `work` runs on a libuv thread-pool thread. It must only use what it captured by value
//   (or data that is immutable or thread-safe): never its owner's members. It must not
//   throw (catch inside and return an error value: an exception on a pool thread ends the
//   process).
// - `done` runs later on the loop's own thread, never inside run_blocking(), with work's
//   result moved in. It may use the owner freely: it runs only while the returned
//   BlockingWork is alive and not cancelled.
// - The owner keeps the BlockingWork as a member. Destroying it (with the owner) or calling
//   cancel() means `done` never runs; work that has not started yet does not start at all
//   (uv_cancel), work already running finishes on its pool thread and its result is
//   dropped on the loop thread. So an owner may go away at any time without a weak token
//   of its own.
// - work's captures and result are destroyed on the loop thread.
// - The loop does not end while work is queued or running (uv_run sees the request), so a
//   shutdown waits for the longest running job: keep each job short or make it interruptible.
//
// All BlockingWork methods, and run_blocking(), on the loop's thread only. The pool is
// libuv's, shared by every loop of the process (UV_THREADPOOL_SIZE threads, 4 by default).
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace outpost {

class BlockingWork {
 public:
  BlockingWork() = default;
  ~BlockingWork() { cancel(); }
  BlockingWork(BlockingWork&& other) noexcept = default;
  BlockingWork& operator=(BlockingWork&& other) noexcept {
    if (this != &other) {
      cancel();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  BlockingWork(const BlockingWork&) = delete;
  BlockingWork& operator=(const BlockingWork&) = delete;

  // `done` will not run; queued work will not start. Nothing happens if it is over already.
  void cancel();
  // Queued or running, and `done` still to come.
  bool pending() const;

  struct State;
  // For run_blocking(): `work` on the pool, then `done` on the loop (type-erased).
  static BlockingWork start(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

 private:
  explicit BlockingWork(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

// The pool's size as libuv sizes it (UV_THREADPOOL_SIZE, 4 unless set; 1 to 1024).
std::size_t blocking_pool_threads();
// Makes the pool 4 + `extra` threads unless UV_THREADPOOL_SIZE is set already (the
// operator's choice stands). libuv reads it once, at the pool's first use: call before any
// loop runs.
void reserve_blocking_threads(std::size_t extra);

template <class Work, class Done>
[[nodiscard]] BlockingWork run_blocking(uv_loop_t* loop, Work work, Done done) {
  using Result = std::invoke_result_t<Work&>;
  if constexpr (std::is_void_v<Result>) {
    return BlockingWork::start(loop, std::move(work), std::move(done));
  } else {
    // Written by the pool thread, read by the loop thread after libuv's completion (which
    // orders the two).
    auto result = std::make_shared<std::optional<Result>>();
    return BlockingWork::start(
        loop, [work = std::move(work), result]() mutable { result->emplace(work()); },
        [done = std::move(done), result]() mutable { done(std::move(**result)); });
  }
}

}  // namespace outpost
