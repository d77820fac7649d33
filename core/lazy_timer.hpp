// A timeout that is pushed back on every bit of progress (read, write, request) without
// touching libuv's timer heap each time — nginx's lazy timers. arm() only records the new
// deadline when the running uv timer is due no later than it; when the uv timer fires
// early for a deadline that moved, it re-arms itself for the rest. stop() only clears the
// deadline; a uv timer still running then fires once and does nothing.
//
// The owner embeds it, calls init() once and close() once at the end; the close callback
// gets the handle with data = the owner.
#pragma once
#include <uv.h>

#include <cstdint>

namespace outpost {

class LazyTimer {
 public:
  using Fn = void (*)(void* owner);

  void init(uv_loop_t* loop, void* owner) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    owner_ = owner;
  }
  // uv_close with handle->data pointing at the owner again, for `cb` to find it.
  void close(uv_close_cb cb) {
    timer_.data = owner_;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), cb);
  }

  // Calls fn(owner) once `ms` from now (loop time) unless stopped or re-armed first.
  void arm(std::uint64_t ms, Fn fn) {
    fn_ = fn;
    std::uint64_t now = uv_now(timer_.loop);
    deadline_ = now + ms;
    if (due_ != 0 && due_ <= deadline_) return;  // fires first and re-arms for the rest
    start(ms);
  }
  void stop() { deadline_ = 0; }
  bool armed() const { return deadline_ != 0; }

 private:
  void start(std::uint64_t ms) {
    due_ = uv_now(timer_.loop) + ms;
    uv_timer_start(&timer_, &LazyTimer::on_fire, ms, 0);
  }
  static void on_fire(uv_timer_t* t) {
    auto* self = static_cast<LazyTimer*>(t->data);
    self->due_ = 0;
    if (self->deadline_ == 0) return;
    std::uint64_t now = uv_now(t->loop);
    if (now < self->deadline_) {
      self->start(self->deadline_ - now);
      return;
    }
    self->deadline_ = 0;
    self->fn_(self->owner_);
  }

  uv_timer_t timer_{};
  void* owner_ = nullptr;
  Fn fn_ = nullptr;
  std::uint64_t deadline_ = 0;  // loop time; 0 = stopped
  std::uint64_t due_ = 0;       // when the uv timer fires; 0 = not running
};

}  // namespace outpost
