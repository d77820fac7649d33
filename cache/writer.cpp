#include <algorithm>

#include "cache/store_impl.hpp"

namespace outpost::cache {

Writer::Writer(Writer&& o) noexcept : store_(o.store_), p_(std::move(o.p_)) {}

Writer& Writer::operator=(Writer&& o) noexcept {
  if (this != &o) {
    abort();
    store_ = o.store_;
    p_ = std::move(o.p_);
  }
  return *this;
}

Writer::~Writer() { abort(); }

Status Writer::append(std::string_view bytes) {
  if (!p_) return Status::kClosed;
  while (!bytes.empty()) {
    ChunkRef& tail = p_->tail;
    if (!tail || tail->room() == 0) {
      // First chunk fits the first append exactly (small objects waste nothing); later ones
      // grow with the object, up to 64 KiB.
      std::size_t cap = std::max<std::size_t>(bytes.size(), std::min<std::uint64_t>(p_->size, 64 * 1024));
      tail = ChunkRef::make(cap);
    }
    const char* at = tail->data() + tail->size();
    std::size_t n = tail->append(bytes.data(), bytes.size());
    Status st = store_->append(*p_, Slice{tail, at, n});
    if (st != Status::kOk) return st;
    bytes.remove_prefix(n);
  }
  return Status::kOk;
}

Status Writer::append(Slice slice) {
  if (!p_) return Status::kClosed;
  return store_->append(*p_, std::move(slice));
}

Status Writer::append(const ChunkRef& chunk) {
  if (!p_) return Status::kClosed;
  if (!chunk) return Status::kOk;
  return store_->append(*p_, Slice{chunk, chunk->data(), chunk->size()});
}

Status Writer::commit() {
  if (!p_) return Status::kClosed;
  Status st = store_->commit(p_);
  p_->tail = ChunkRef();
  p_.reset();
  return st;
}

void Writer::abort() {
  if (!p_) return;
  store_->abort(p_, Status::kAborted);
  p_->tail = ChunkRef();
  p_.reset();
}

std::uint64_t Writer::size() const noexcept { return p_ ? p_->size : 0; }

Reader Writer::reader() const {
  Reader r;
  r.p_ = p_;
  return r;
}

}  // namespace outpost::cache
