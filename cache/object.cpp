#include "cache/object.hpp"

namespace outpost::cache::detail {

void Pending::publish(Slice s) {
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard lock(mu);
    if (state != State::kOpen) return;
    size += s.size;
    slices.push_back(std::move(s));
    ++version;
    wake.swap(waiters);
  }
  for (auto& w : wake) w();
}

bool Pending::finish(State st, Status why) {
  std::vector<std::function<void()>> wake;
  std::vector<Slice> drop;
  {
    std::lock_guard lock(mu);
    if (state != State::kOpen) return false;
    state = st;
    error = why;
    ++version;
    if (st == State::kFailed) drop.swap(slices);
    wake.swap(waiters);
  }
  for (auto& w : wake) w();
  return true;
}

ObjRef build_object(const StoreOptions& opt, Namespace ns, std::string_view key, std::string meta,
                    std::vector<Slice> body, std::int64_t expiry) {
  // Merge slices that continue each other inside one chunk.
  std::vector<Slice> merged;
  merged.reserve(body.size());
  std::uint64_t size = 0, chunk_bytes = 0;
  const Chunk* last_chunk = nullptr;
  for (auto& s : body) {
    size += s.size;
    if (s.chunk.get() != last_chunk) {
      chunk_bytes += s.chunk ? s.chunk->capacity() : s.size;
      last_chunk = s.chunk.get();
    }
    if (!merged.empty() && merged.back().chunk.get() == s.chunk.get() &&
        merged.back().data + merged.back().size == s.data) {
      merged.back().size += s.size;
    } else if (s.size) {
      merged.push_back(std::move(s));
    }
  }
  auto* o = new Object;
  o->ns = ns;
  o->key.assign(key);
  o->meta = std::move(meta);
  o->body = std::move(merged);
  o->body_size = size;
  o->expiry = expiry;
  o->charge = opt.count_overhead ? sizeof(Object) + o->key.size() + o->meta.size() + chunk_bytes +
                                       o->body.size() * sizeof(Slice)
                                 : o->key.size() + o->meta.size() + size;
  return ObjRef::adopt(o);
}

}  // namespace outpost::cache::detail
