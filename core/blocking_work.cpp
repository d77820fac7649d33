#include "core/blocking_work.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace outpost {

struct BlockingWork::State {
  uv_work_t req;
  std::function<void()> work;
  std::function<void()> done;
  bool cancelled = false;
  std::shared_ptr<State> self;  // the request's own reference, until its completion has run
};

BlockingWork BlockingWork::start(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto s = std::make_shared<State>();
  s->work = std::move(work);
  s->done = std::move(done);
  s->req.data = s.get();
  s->self = s;
  int rc = uv_queue_work(
      loop, &s->req, [](uv_work_t* r) { static_cast<State*>(r->data)->work(); },
      [](uv_work_t* r, int status) {
        auto* st = static_cast<State*>(r->data);
        std::shared_ptr<State> keep = std::move(st->self);
        // Captures are released here, on the loop thread, whatever happened.
        st->work = nullptr;
        auto done = std::move(st->done);
        st->done = nullptr;
        if (status == 0 && !st->cancelled) done();
      });
  // uv_queue_work fails only without a work callback; keep the contract (done later or never)
  // rather than calling back here.
  if (rc != 0) s->self.reset();
  return BlockingWork(std::move(s));
}

void BlockingWork::cancel() {
  if (!state_) return;
  if (state_->self && !state_->cancelled) {
    state_->cancelled = true;
    // Succeeds only while the work is still queued: then it never starts.
    uv_cancel(reinterpret_cast<uv_req_t*>(&state_->req));
  }
  state_.reset();
}

bool BlockingWork::pending() const { return state_ && state_->self && !state_->cancelled; }

std::size_t blocking_pool_threads() {
  const char* v = std::getenv("UV_THREADPOOL_SIZE");
  long n = v ? std::strtol(v, nullptr, 10) : 4;
  return static_cast<std::size_t>(std::clamp(n, 1L, 1024L));
}

void reserve_blocking_threads(std::size_t extra) {
  if (std::getenv("UV_THREADPOOL_SIZE") || extra == 0) return;
  setenv("UV_THREADPOOL_SIZE", std::to_string(std::min<std::size_t>(4 + extra, 1024)).c_str(), 0);
}

}  // namespace outpost
