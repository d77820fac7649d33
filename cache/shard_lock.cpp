#include "cache/shard_lock.hpp"

#include <algorithm>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace outpost::cache::detail {

std::size_t reader_slots_in_use() noexcept {
  static const std::size_t n = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, kReaderSlots);
  return n;
}

std::size_t reader_slot() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t slot = next.fetch_add(1, std::memory_order_relaxed) % reader_slots_in_use();
  return slot;
}

void spin_pause(unsigned& spins) noexcept {
  if (++spins < 64) {
#if defined(__x86_64__)
    _mm_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

}  // namespace outpost::cache::detail
