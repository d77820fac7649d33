// Reference-counted byte chunks: the unit in which bodies move through Outpost.
// A chunk is filled once by its producer, then shared read-only (socket writes, cache
// readers) without copying. The count is atomic so chunks may cross worker threads.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace outpost {

class Chunk {
  friend struct ChunkFreeList;

 public:
  // The socket read size. Chunks of exactly this capacity are recycled through a small
  // per-thread free list: I/O buffers are allocated and freed at a high rate, and going
  // back to malloc each time makes the allocator return pages to the kernel and fault
  // them in again.
  static constexpr std::size_t kIoSize = 64 * 1024;

  static Chunk* create(std::size_t capacity) {
    if (capacity == kIoSize) {
      if (Chunk* c = pool_take()) return c;
    }
    void* mem = std::malloc(sizeof(Chunk) + capacity);
    if (!mem) throw std::bad_alloc();
    return new (mem) Chunk(capacity);
  }
  void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if (capacity_ == kIoSize && pool_give(this)) return;
      this->~Chunk();
      std::free(this);
    }
  }
  // True when the caller holds the only reference (the chunk may then be refilled).
  bool unique() const noexcept { return refs_.load(std::memory_order_acquire) == 1; }
  char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
  const char* data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t room() const noexcept { return capacity_ - size_; }
  void set_size(std::size_t n) noexcept { size_ = n; }
  // Appends up to room() bytes; returns how many were copied.
  std::size_t append(const char* p, std::size_t n) noexcept {
    if (n > room()) n = room();
    std::memcpy(data() + size_, p, n);
    size_ += n;
    return n;
  }
  std::string_view view() const noexcept { return {data(), size_}; }

 private:
  explicit Chunk(std::size_t capacity) : capacity_(capacity) {}
  static Chunk* pool_take() noexcept;          // chunk.cpp
  static bool pool_give(Chunk* c) noexcept;   // chunk.cpp
  std::atomic<std::uint32_t> refs_{1};
  Chunk* next_free_ = nullptr;
  std::size_t capacity_;
  std::size_t size_ = 0;
};

// Owning handle to a Chunk (intrusive reference).
class ChunkRef {
 public:
  ChunkRef() = default;
  static ChunkRef adopt(Chunk* c) noexcept { ChunkRef r; r.c_ = c; return r; }
  static ChunkRef make(std::size_t capacity) { return adopt(Chunk::create(capacity)); }
  static ChunkRef copy_of(std::string_view s) {
    ChunkRef r = make(s.size());
    r->append(s.data(), s.size());
    return r;
  }
  ChunkRef(const ChunkRef& o) noexcept : c_(o.c_) { if (c_) c_->ref(); }
  ChunkRef(ChunkRef&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  ChunkRef& operator=(ChunkRef o) noexcept { std::swap(c_, o.c_); return *this; }
  ~ChunkRef() { if (c_) c_->unref(); }
  Chunk* get() const noexcept { return c_; }
  Chunk* operator->() const noexcept { return c_; }
  Chunk& operator*() const noexcept { return *c_; }
  explicit operator bool() const noexcept { return c_ != nullptr; }
  // Gives up ownership (for handing to C callbacks); pair with adopt().
  Chunk* release() noexcept { return std::exchange(c_, nullptr); }

 private:
  Chunk* c_ = nullptr;
};

// A byte range inside a chunk, keeping the chunk alive.
struct Slice {
  ChunkRef chunk;
  const char* data = nullptr;
  std::size_t size = 0;
  std::string_view view() const noexcept { return {data, size}; }
};

}  // namespace outpost
