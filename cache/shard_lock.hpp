// Internal: the per-shard reader-writer lock. A reader announces itself in its own cache line
// (one of kReaderSlots per shard, picked per thread) and checks the writer flag; a writer
// takes the writer mutex, raises the flag and waits until every slot is empty. Hits therefore
// write no cache line that another reader thread writes: they scale across worker threads.
// Writers (admission, eviction, erase) are short; readers never wait on each other.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace outpost::cache::detail {

inline constexpr std::size_t kReaderSlots = 16;

// Slots in use: one per CPU up to kReaderSlots (a writer scans every slot in use).
std::size_t reader_slots_in_use() noexcept;
// The calling thread's slot (threads are numbered round-robin; two threads sharing a slot
// stay correct, they just share a cache line).
std::size_t reader_slot() noexcept;
void spin_pause(unsigned& spins) noexcept;

struct alignas(64) ReaderSlot {
  std::atomic<std::uint32_t> active{0};
};

class SharedShardLock {
 public:
  void lock_shared(std::size_t slot) noexcept {
    ReaderSlot& s = slots_[slot];
    for (;;) {
      s.active.fetch_add(1, std::memory_order_seq_cst);
      if (!writing_.load(std::memory_order_seq_cst)) return;
      s.active.fetch_sub(1, std::memory_order_release);
      unsigned spins = 0;
      while (writing_.load(std::memory_order_acquire)) spin_pause(spins);
    }
  }
  void unlock_shared(std::size_t slot) noexcept { slots_[slot].active.fetch_sub(1, std::memory_order_release); }

  void lock() noexcept {
    writer_.lock();
    writing_.store(true, std::memory_order_seq_cst);
    for (std::size_t i = 0, n = reader_slots_in_use(); i < n; ++i) {
      unsigned spins = 0;
      while (slots_[i].active.load(std::memory_order_seq_cst) != 0) spin_pause(spins);
    }
  }
  void unlock() noexcept {
    writing_.store(false, std::memory_order_release);
    writer_.unlock();
  }

 private:
  std::array<ReaderSlot, kReaderSlots> slots_;
  alignas(64) std::atomic<bool> writing_{false};
  std::mutex writer_;
};

class ReadGuard {
 public:
  explicit ReadGuard(SharedShardLock& l) noexcept : l_(l), slot_(reader_slot()) { l_.lock_shared(slot_); }
  ~ReadGuard() { l_.unlock_shared(slot_); }
  ReadGuard(const ReadGuard&) = delete;
  std::size_t slot() const noexcept { return slot_; }

 private:
  SharedShardLock& l_;
  std::size_t slot_;
};

}  // namespace outpost::cache::detail
