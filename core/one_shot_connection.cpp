#include "core/one_shot_connection.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace outpost {

OneShotConnection::OneShotConnection(uv_loop_t* loop, StreamPtr stream, std::uint64_t timeout_ms)
    : stream_(std::move(stream)), timeout_ms_(timeout_ms) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  stream_->set_handler(this);
}

void OneShotConnection::start() {
  arm(timeout_ms_);
  stream_->read_start();
}

void OneShotConnection::restart_deadline(std::uint64_t ms) {
  timeout_ms_ = ms;
  if (!closing_) arm(ms);
}

void OneShotConnection::arm(std::uint64_t ms) {
  uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<OneShotConnection*>(t->data)->fired(); }, ms, 0);
}

void OneShotConnection::fired() {
  if (closing_) return;
  if (answered_) {
    close();  // the answer was not read in time, or lingering is over
    return;
  }
  on_deadline();
  if (!answered_) close();
}

void OneShotConnection::on_read(Slice data) {
  if (closing_) return;
  if (answered_ || input_done_) {
    discarded_ += data.size;
    if (discarded_ > kMaxDiscard) close();
    return;
  }
  input_.append(data.data, data.size);
  on_input(input_, false);
}

void OneShotConnection::on_eof() {
  if (closing_) return;
  eof_ = true;
  if (lingering_) {
    close();  // the client has read the answer and closed
    return;
  }
  if (answered_ || input_done_) return;  // the answer is still wanted
  on_input(input_, true);
  if (!answered_ && !input_done_) close();  // the client gave up
}

void OneShotConnection::on_error(int status, std::string_view what) {
  if (closing_) return;
  if (!answered_) on_stream_error(status, what);
  close();
}

void OneShotConnection::answer(std::string bytes) {
  if (answered_ || closing_) return;
  answered_ = true;
  input_done_ = true;
  input_ = std::string();
  arm(timeout_ms_);
  std::vector<Slice> out;
  if (!bytes.empty()) {
    ChunkRef chunk = ChunkRef::copy_of(bytes);
    const char* p = chunk->data();
    out.push_back(Slice{std::move(chunk), p, bytes.size()});
  }
  if (out.empty()) {
    written();
    return;
  }
  int rc = stream_->write(std::move(out));
  if (rc < 0) {
    close();
    return;
  }
  if (rc == 1) written();  // else on_write_done()
}

void OneShotConnection::on_write_done() {
  if (!closing_ && answered_ && !lingering_) written();
}

void OneShotConnection::written() {
  lingering_ = true;
  if (stream_->shutdown_write() < 0) {
    close();
    return;
  }
  arm(std::min(kLingerMs, timeout_ms_));
}

void OneShotConnection::close() {
  if (closing_) return;
  closing_ = true;
  *alive_ = false;
  stream_.reset();  // closes it; it frees itself
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<OneShotConnection*>(h->data);
    self->on_closed();
    delete self;
  });
}

}  // namespace outpost
