#include "core/testing/fake_stream.hpp"

#include <uv.h>

namespace outpost::testing {

bool FakeStream::complete_connect(int status) {
  if (!connecting_ || !live()) return false;
  connecting_ = false;
  if (status != 0) {
    fail(status, "connect: " + std::string(uv_strerror(status)));
    return true;
  }
  connected_ = true;
  if (handler_) handler_->on_connected();
  return true;
}

bool FakeStream::feed(std::string_view bytes) {
  if (!reading_ || !live()) return false;
  ChunkRef c = ChunkRef::make(bytes.size() <= Chunk::kIoSize ? Chunk::kIoSize : bytes.size());
  c->append(bytes.data(), bytes.size());
  const char* data = c->data();
  if (handler_) handler_->on_read(Slice{std::move(c), data, bytes.size()});
  return true;
}

bool FakeStream::feed_eof() {
  if (!reading_ || !live()) return false;
  reading_ = false;
  ended_ = true;
  if (handler_) handler_->on_eof();
  return true;
}

void FakeStream::fail(int status, std::string_view what) {
  if (!live()) return;
  failed_ = true;
  ended_ = true;
  reading_ = false;
  connecting_ = false;
  if (handler_) handler_->on_error(status, what);
}

std::size_t FakeStream::complete_writes(std::size_t n, int status) {
  std::size_t done = 0;
  while (done < n && !pending_.empty() && live()) {
    pending_.pop_front();
    ++done;
    if (status != 0) {
      fail(status, "write: " + std::string(uv_strerror(status)));
    } else if (handler_) {
      handler_->on_write_done();
    }
  }
  return done;
}

std::string FakeStream::take_written() {
  std::string s = written_.substr(taken_);
  taken_ = written_.size();
  return s;
}

int FakeStream::connect(const SocketAddress& to) {
  if (closed_) return UV_ECANCELED;
  if (connecting_ || connected_) return UV_EISCONN;
  connect_to_ = to;
  connecting_ = true;
  return 0;
}

void FakeStream::read_start() {
  if (ended_ || closed_) return;
  reading_ = true;
}

int FakeStream::write(std::vector<Slice>&& slices) {
  if (closed_) return UV_ECANCELED;
  if (shut_) return UV_EPIPE;
  if (slices.empty()) return UV_EINVAL;
  ++write_calls_;
  PendingWrite w;
  for (const auto& s : slices) {
    written_.append(s.data, s.size);
    w.bytes += s.size;
  }
  w.slices = std::move(slices);
  pending_.push_back(std::move(w));
  return 0;
}

std::size_t FakeStream::queued_bytes() const {
  if (queued_override_) return *queued_override_;
  std::size_t n = 0;
  for (const auto& w : pending_) n += w.bytes;
  return n;
}

int FakeStream::shutdown_write() {
  if (closed_) return UV_ECANCELED;
  if (shut_) return UV_ENOTCONN;  // as libuv answers a second shutdown
  shut_ = true;
  return 0;
}

void FakeStream::close() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  connecting_ = false;
  handler_ = nullptr;
  pending_.clear();  // dropped without completions, as the seam says
}

StreamPtr FakeStreamFactory::make() {
  streams_.push_back(std::make_unique<FakeStream>());
  return StreamPtr(streams_.back().get());
}

}  // namespace outpost::testing
