// Heap bytes per resident object of the store's memory tier, measured (glibc mallinfo2), for
// the default policy (S3-FIFO queues with frequency admission) and for plain S3-FIFO
// (frequency_admission = false, 10% small queue, ghost of 25% of the capacity: the store
// before issue 18). A Zipf 0.8 workload (lookup; on a miss a writer commits the body) runs
// until the cache has turned over several times, so the ghost and the sketch are in their
// steady state; then the heap in use, less what it was before the store was opened, is divided
// by the resident objects. Bodies come from one shared chunk (no copy), so the figure is the
// bookkeeping: Object, key, slice vector, index node and bucket, policy structures (ghost,
// sketch + doorkeeper, expiry set). Metadata empty, no expiry hint. (The store before issue 18
// was the plain row with an Object 16 bytes larger: a 176-byte malloc chunk, now 160.)
//
//   cache_memory_bench [objects=100000] [body=512] [cache_fraction=0.1] [requests=2000000]
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cache/store.hpp"

using namespace outpost;
using namespace outpost::cache;

namespace {

std::size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

struct Figures {
  std::uint64_t objects;
  double bytes_per_object;
  std::uint64_t misses;
};

Figures measure(bool admission, const std::vector<std::string>& keys, const std::vector<std::uint32_t>& trace,
                std::uint64_t body, std::uint64_t capacity, const ChunkRef& zeros) {
  malloc_trim(0);
  std::size_t before = heap_in_use();
  StoreOptions o;
  o.memory_size = capacity;
  o.max_object_size = capacity;
  o.count_overhead = false;
  o.frequency_admission = admission;
  o.small_fraction = admission ? 0.01 : 0.10;
  auto store = Store::open(o);
  std::uint64_t misses = 0;
  for (std::uint32_t id : trace) {
    if (store->lookup(Namespace::kHttp, keys[id])) continue;
    ++misses;
    Writer w = store->writer(Namespace::kHttp, keys[id], {}, 0);
    w.append(Slice{zeros, zeros->data(), body});
    w.commit();
  }
  std::size_t after = heap_in_use();
  std::uint64_t n = store->stats().total().objects_memory;
  return {n, static_cast<double>(after - before) / static_cast<double>(n), misses};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t objects = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  std::uint64_t body = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 512;
  double fraction = argc > 3 ? std::atof(argv[3]) : 0.1;
  std::size_t requests = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 2000000;

  std::vector<std::string> keys;
  keys.reserve(objects);
  char buf[64];
  for (std::size_t i = 0; i < objects; ++i) {
    std::snprintf(buf, sizeof buf, "http://example.com/object/%010zu", i);  // 36 bytes
    keys.emplace_back(buf);
  }
  std::mt19937_64 rng(1);
  std::vector<double> cdf(objects);
  double sum = 0;
  for (std::size_t i = 0; i < objects; ++i) cdf[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), 0.8);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<std::uint32_t> trace(requests);
  for (auto& r : trace)
    r = static_cast<std::uint32_t>(std::min<std::size_t>(
        static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin()), objects - 1));

  ChunkRef zeros = ChunkRef::make(body);
  zeros->set_size(body);
  auto capacity = static_cast<std::uint64_t>(fraction * static_cast<double>(objects) *
                                             static_cast<double>(body + keys[0].size()));
  std::printf("%zu objects (keys %zu bytes, bodies %llu bytes from one shared chunk), Zipf 0.8, %zu requests, "
              "cache %.1f%% of the footprint (%llu bytes)\n",
              objects, keys[0].size(), static_cast<unsigned long long>(body), requests, 100 * fraction,
              static_cast<unsigned long long>(capacity));
  Figures plain = measure(false, keys, trace, body, capacity, zeros);
  Figures adm = measure(true, keys, trace, body, capacity, zeros);
  std::printf("%-42s %10s %18s %10s\n", "policy", "resident", "heap bytes/object", "misses");
  std::printf("%-42s %10llu %18.1f %10llu\n", "plain S3-FIFO (10% small, 25% ghost)",
              static_cast<unsigned long long>(plain.objects), plain.bytes_per_object,
              static_cast<unsigned long long>(plain.misses));
  std::printf("%-42s %10llu %18.1f %10llu\n", "default (frequency admission, 1% small)",
              static_cast<unsigned long long>(adm.objects), adm.bytes_per_object,
              static_cast<unsigned long long>(adm.misses));
  std::printf("difference: %+.1f bytes per object (%+.1f%%)\n", adm.bytes_per_object - plain.bytes_per_object,
              100.0 * (adm.bytes_per_object / plain.bytes_per_object - 1.0));
  return 0;
}
