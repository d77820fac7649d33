// Internal: the committed object and the in-progress (pending) object shared with readers.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "cache/store.hpp"

namespace outpost::cache::detail {

// Hash of a namespaced key (index shard selection, ghost queue), from the key's plain hash.
inline std::uint64_t key_hash(Namespace ns, std::size_t plain) noexcept {
  std::uint64_t h = plain;
  h ^= (static_cast<std::uint64_t>(ns) + 1) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return h * 0xBF58476D1CE4E5B9ull;
}
inline std::uint64_t key_hash(Namespace ns, std::string_view key) noexcept {
  return key_hash(ns, std::hash<std::string_view>{}(key));
}

enum class Queue : std::uint8_t { kNone, kSmall, kMain };

struct Object {
  // What a hit touches (count, frequency) shares the first cache line.
  std::atomic<std::uint32_t> refs{1};
  std::atomic<std::uint8_t> freq{0};  // hits since the policy last looked (lock-free, max 15)
  Namespace ns = Namespace::kHttp;
  std::string key;
  std::string meta;
  std::vector<Slice> body;
  std::uint64_t body_size = 0;
  std::int64_t expiry = 0;
  std::uint64_t version = 0;  // unique per committed content (disk writes check it)
  std::uint64_t charge = 0;   // bytes charged to the memory budget

  // Eviction state, guarded by the policy mutex.
  Queue queue = Queue::kNone;
  bool removed = false;    // erased/replaced/evicted: must not be (re)linked
  std::uint8_t clock = 0;  // CLOCK bits in the main queue (0..3), from folded hits
  std::uint32_t seen = 0;  // policy time of the last folded hit or of admission (S3Fifo)
  Object* prev = nullptr;
  Object* next = nullptr;
  // (The policy's expiry set is keyed by (expiry, Object*): no iterator kept here. Without it
  // and its flag the object is 152 bytes, a 160-byte malloc chunk instead of 176.)

  void ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  void touch() noexcept {
    auto f = freq.load(std::memory_order_relaxed);
    if (f < 15) freq.store(static_cast<std::uint8_t>(f + 1), std::memory_order_relaxed);
  }
};
#if defined(__GLIBCXX__) && __SIZEOF_POINTER__ == 8
// Memory per cached object is a budget (issue 18: within 10% of the plain S3-FIFO store's):
// keep Object within a 160-byte malloc chunk.
static_assert(sizeof(Object) <= 152, "Object grew past a 160-byte malloc chunk");
#endif

// Intrusive owning pointer to an Object.
class ObjRef {
 public:
  ObjRef() = default;
  static ObjRef adopt(Object* o) noexcept { ObjRef r; r.o_ = o; return r; }
  static ObjRef share(Object* o) noexcept { if (o) o->ref(); return adopt(o); }
  ObjRef(const ObjRef& o) noexcept : o_(o.o_) { if (o_) o_->ref(); }
  ObjRef(ObjRef&& o) noexcept : o_(std::exchange(o.o_, nullptr)) {}
  ObjRef& operator=(ObjRef o) noexcept { std::swap(o_, o.o_); return *this; }
  ~ObjRef() { if (o_) o_->unref(); }
  Object* get() const noexcept { return o_; }
  Object* operator->() const noexcept { return o_; }
  Object& operator*() const noexcept { return *o_; }
  explicit operator bool() const noexcept { return o_ != nullptr; }
  Object* release() noexcept { return std::exchange(o_, nullptr); }

 private:
  Object* o_ = nullptr;
};

// An object being written; readers attach to it. Guarded by mu, except the writer-only fields.
struct Pending {
  enum class State : std::uint8_t { kOpen, kComplete, kFailed };
  Namespace ns = Namespace::kHttp;
  std::string key;
  std::string meta;
  std::int64_t expiry = 0;

  mutable std::mutex mu;
  std::vector<Slice> slices;
  std::uint64_t size = 0;
  std::uint64_t version = 0;
  State state = State::kOpen;
  Status error = Status::kOk;
  std::vector<std::function<void()>> waiters;

  // Writer thread only.
  ChunkRef tail;            // chunk being filled by append(string_view)

  // Publishes `s` (and wakes subscribers) if still open.
  void publish(Slice s);
  // Ends the object: kComplete, or kFailed with `why`. Wakes subscribers. False if not open.
  bool finish(State st, Status why);
};

// A committed object from its parts (merges adjacent slices, computes the memory charge).
// The version is left 0 for the caller to set.
ObjRef build_object(const StoreOptions& opt, Namespace ns, std::string_view key, std::string meta,
                    std::vector<Slice> body, std::int64_t expiry);

}  // namespace outpost::cache::detail
