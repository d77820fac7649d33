#include "cache/object.hpp"

namespace outpost::cache {

Handle::Handle(const Handle& o) noexcept : obj_(o.obj_) {
  if (obj_) obj_->ref();
}
Handle::Handle(Handle&& o) noexcept : obj_(std::exchange(o.obj_, nullptr)) {}
Handle& Handle::operator=(Handle o) noexcept {
  std::swap(obj_, o.obj_);
  return *this;
}
Handle::~Handle() {
  if (obj_) obj_->unref();
}

Namespace Handle::ns() const noexcept { return obj_->ns; }
std::string_view Handle::key() const noexcept { return obj_->key; }
std::string_view Handle::metadata() const noexcept { return obj_->meta; }
const std::vector<Slice>& Handle::body() const noexcept { return obj_->body; }
std::uint64_t Handle::body_size() const noexcept { return obj_->body_size; }
std::int64_t Handle::expiry_hint() const noexcept { return obj_->expiry; }

std::string Handle::body_string() const {
  std::string s;
  if (!obj_) return s;
  s.reserve(obj_->body_size);
  for (auto& sl : obj_->body) s.append(sl.data, sl.size);
  return s;
}

}  // namespace outpost::cache
