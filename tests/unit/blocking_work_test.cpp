// core/blocking_work: work on libuv's thread pool, results back on the loop thread, and
// owners that go away first (run under ASan in the asan preset).
#include "core/blocking_work.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace outpost;

namespace {

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop), 0);
  }
};

}  // namespace

TEST(BlockingWork, ResultComesBackOnTheLoopThread) {
  Loop l;
  auto loop_thread = std::this_thread::get_id();
  std::thread::id worked_on;
  std::string got;
  bool inside_call = true;
  auto task = run_blocking(
      &l.loop,
      [&worked_on] {
        worked_on = std::this_thread::get_id();
        return std::string("zone loaded");
      },
      [&](std::string r) {
        EXPECT_FALSE(inside_call);  // never from inside run_blocking()
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        got = std::move(r);
      });
  inside_call = false;
  EXPECT_TRUE(task.pending());
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_EQ(got, "zone loaded");
  EXPECT_NE(worked_on, loop_thread);
  EXPECT_FALSE(task.pending());
}

TEST(BlockingWork, VoidWork) {
  Loop l;
  std::atomic<bool> worked{false};
  bool done = false;
  auto task = run_blocking(&l.loop, [&] { worked = true; }, [&] { done = true; });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(worked);
  EXPECT_TRUE(done);
}

// The owner (here a heap object holding the BlockingWork) is destroyed while its work runs:
// the work finishes, its result is dropped, and `done` never touches the freed owner.
TEST(BlockingWork, OwnerDestroyedWhileWorkRuns) {
  Loop l;
  struct Owner {
    BlockingWork task;
    std::vector<int> results;
  };
  std::promise<void> started, release;
  auto release_f = release.get_future().share();
  auto result_alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = result_alive;
  auto owner = std::make_unique<Owner>();
  Owner* raw = owner.get();
  owner->task = run_blocking(
      &l.loop,
      [&started, release_f, result_alive] {
        started.set_value();
        release_f.wait();
        return result_alive;  // a result that must be freed even though nobody takes it
      },
      [raw](std::shared_ptr<int>) { raw->results.push_back(1); });
  result_alive.reset();
  started.get_future().wait();
  owner.reset();  // cancels: the work is running, so only `done` is called off
  release.set_value();
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(watch.expired());  // result and captures released on the loop
}

// Work still queued behind a busy pool is cancelled before it starts.
TEST(BlockingWork, CancelledBeforeItStartsNeverRuns) {
  Loop l;
  std::promise<void> release;
  auto release_f = release.get_future().share();
  std::atomic<int> busy{0};
  // Occupy every pool thread (UV_THREADPOOL_SIZE, 4 unless set).
  const char* env = std::getenv("UV_THREADPOOL_SIZE");
  int threads = env ? std::atoi(env) : 4;
  std::vector<BlockingWork> blockers;
  for (int i = 0; i < threads; ++i)
    blockers.push_back(run_blocking(
        &l.loop,
        [&busy, release_f] {
          ++busy;
          release_f.wait();
        },
        [] {}));
  while (busy < threads) std::this_thread::yield();
  std::atomic<bool> ran{false};
  bool done = false;
  auto queued = run_blocking(&l.loop, [&ran] { ran = true; }, [&done] { done = true; });
  queued.cancel();
  EXPECT_FALSE(queued.pending());
  release.set_value();
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(done);
}

// Moving the handle keeps the work; assigning over a pending handle cancels the old work.
TEST(BlockingWork, MoveKeepsAssignCancels) {
  Loop l;
  int first = 0, second = 0;
  std::promise<void> release;
  auto release_f = release.get_future().share();
  BlockingWork a = run_blocking(&l.loop, [release_f] { release_f.wait(); }, [&first] { ++first; });
  BlockingWork b = std::move(a);
  EXPECT_TRUE(b.pending());
  b = run_blocking(&l.loop, [] {}, [&second] { ++second; });
  release.set_value();
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}
