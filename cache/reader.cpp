#include "cache/object.hpp"

namespace outpost::cache {

using detail::Pending;

std::string_view Reader::key() const noexcept { return p_->key; }
std::string_view Reader::metadata() const noexcept { return p_->meta; }
std::int64_t Reader::expiry_hint() const noexcept { return p_->expiry; }

ReadResult Reader::read(std::vector<Slice>* out) {
  std::lock_guard lock(p_->mu);
  if (p_->state == Pending::State::kFailed) return ReadResult::kError;
  if (next_ < p_->slices.size()) {
    out->insert(out->end(), p_->slices.begin() + static_cast<std::ptrdiff_t>(next_), p_->slices.end());
    next_ = p_->slices.size();
    return ReadResult::kData;
  }
  return p_->state == Pending::State::kComplete ? ReadResult::kEnd : ReadResult::kWait;
}

void Reader::subscribe(std::function<void()> notify) {
  {
    std::lock_guard lock(p_->mu);
    if (p_->state == Pending::State::kOpen && next_ >= p_->slices.size()) {
      p_->waiters.push_back(std::move(notify));
      return;
    }
  }
  notify();
}

std::uint64_t Reader::version() const {
  std::lock_guard lock(p_->mu);
  return p_->version;
}

std::uint64_t Reader::bytes_available() const {
  std::lock_guard lock(p_->mu);
  return p_->size;
}

Status Reader::error() const {
  std::lock_guard lock(p_->mu);
  return p_->error;
}

}  // namespace outpost::cache
