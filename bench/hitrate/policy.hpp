// Reference eviction policies for the hit-ratio simulator (bench/hitrate), each a small,
// single-threaded, byte-capacity implementation written for clarity, not speed. The store's
// own policy is not re-implemented here: the simulator replays traces through the real Store.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace outpost::hitrate {

class Policy {
 public:
  virtual ~Policy() = default;
  // One request for object `id` that costs `charge` bytes of cache; true on a hit. On a miss
  // the policy may admit the object (never one larger than the whole capacity).
  virtual bool access(std::uint64_t id, std::uint64_t charge) = 0;
  virtual bool contains(std::uint64_t id) const = 0;
  virtual std::uint64_t used() const = 0;  // bytes held
};

// Least recently used: the baseline.
std::unique_ptr<Policy> make_lru(std::uint64_t capacity);

// SIEVE (Zhang et al., NSDI'24): a FIFO with a visited bit and a hand that moves from the
// oldest towards the newest object, clearing bits, and evicts the first unvisited one.
std::unique_ptr<Policy> make_sieve(std::uint64_t capacity);

// ARC (Megiddo & Modha, FAST'03) in bytes: T1/T2 resident, B1/B2 ghosts, the target size of
// T1 (p) moved by ghost hits.
std::unique_ptr<Policy> make_arc(std::uint64_t capacity);

// GDSF (Cherkasova 1998): priority L + frequency / size (cost 1 per object), evict the
// lowest, L = the last evicted priority (inflation ages the cache).
std::unique_ptr<Policy> make_gdsf(std::uint64_t capacity);

// W-TinyLFU (Caffeine): an LRU window (1% to start), a TinyLFU admission filter (count-min
// sketch with a doorkeeper and periodic halving) in front of a segmented LRU main
// (probation + protected 80%), and the hill climber that resizes the window.
struct WTinyLfuOptions {
  std::uint64_t capacity = 0;          // bytes
  std::uint64_t expected_objects = 0;  // sizes the sketch (Caffeine: the maximum entry count)
  double window = 0.01;                // initial share of the capacity
  double protected_share = 0.80;       // of the main region
  bool climb = true;                   // hill-climbing window adaptation
};
std::unique_ptr<Policy> make_wtinylfu(const WTinyLfuOptions& o);

}  // namespace outpost::hitrate
