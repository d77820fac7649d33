#include "resolver/secure_random.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdlib>

namespace outpost::dns {

std::uint32_t random_u32() {
  thread_local std::array<std::uint32_t, 256> pool;
  thread_local std::size_t next = pool.size();
  if (next == pool.size()) {
    std::size_t got = 0;
    auto* p = reinterpret_cast<unsigned char*>(pool.data());
    while (got < sizeof pool) {
      ssize_t n = getrandom(p + got, sizeof pool - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) std::abort();  // refuse to run with predictable query IDs
      got += static_cast<std::size_t>(n);
    }
    next = 0;
  }
  return pool[next++];
}

}  // namespace outpost::dns
