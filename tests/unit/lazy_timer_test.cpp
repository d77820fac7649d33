// LazyTimer: a pushed-back deadline is honoured without restarting the uv timer, stop()
// silences it, an earlier deadline restarts it, and it can be armed again after firing.
#include "core/lazy_timer.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace outpost;

namespace {
struct Owner {
  uv_loop_t* loop;
  LazyTimer t;
  std::vector<std::uint64_t> fired;  // loop time of each call
  static void on(void* o) {
    auto* self = static_cast<Owner*>(o);
    self->fired.push_back(uv_now(self->loop));
  }
};

// Runs `fn` on the loop after `ms`.
void after(uv_loop_t* loop, std::uint64_t ms, void (*fn)(uv_timer_t*), void* data) {
  auto* t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = data;
  uv_timer_start(t, fn, ms, 0);
}

void close_all(uv_loop_t* loop) {
  uv_walk(loop, [](uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }, nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
}
}  // namespace

TEST(LazyTimer, PushedBackDeadlineFiresOnceAtTheNewDeadline) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Owner o{&loop, {}, {}};
  o.t.init(&loop, &o);
  uv_update_time(&loop);
  std::uint64_t start = uv_now(&loop);
  o.t.arm(40, &Owner::on);
  static std::uint64_t rearmed_at;
  after(&loop, 25, [](uv_timer_t* h) {
    auto* ow = static_cast<Owner*>(h->data);
    rearmed_at = uv_now(ow->loop);
    ow->t.arm(40, &Owner::on);  // the first uv timer (due at +40) must not fire the callback
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
  }, &o);
  uv_run(&loop, UV_RUN_DEFAULT);  // runs until the timer stops re-arming
  ASSERT_EQ(o.fired.size(), 1u);
  EXPECT_GE(o.fired[0], rearmed_at + 40);
  EXPECT_GE(rearmed_at, start + 25);
  EXPECT_FALSE(o.t.armed());
  // Armed again after firing, it fires again.
  o.t.arm(5, &Owner::on);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(o.fired.size(), 2u);
  o.t.close(nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(LazyTimer, StopSilencesAndAnEarlierDeadlineRestarts) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Owner o{&loop, {}, {}};
  o.t.init(&loop, &o);
  o.t.arm(30, &Owner::on);
  o.t.stop();
  uv_run(&loop, UV_RUN_DEFAULT);  // the uv timer runs out without calling back
  EXPECT_TRUE(o.fired.empty());

  uv_update_time(&loop);
  std::uint64_t start = uv_now(&loop);
  o.t.arm(10000, &Owner::on);
  o.t.arm(10, &Owner::on);  // earlier: must not wait for the 10 s timer
  uv_run(&loop, UV_RUN_ONCE);
  while (o.fired.empty()) uv_run(&loop, UV_RUN_ONCE);
  EXPECT_LT(o.fired[0], start + 10000);
  EXPECT_GE(o.fired[0], start + 10);
  close_all(&loop);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}
