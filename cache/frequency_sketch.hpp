// Internal: a count-min sketch of 4-bit counters that estimates how often a key was seen
// recently (TinyLFU: Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission
// Policy", 2017; the layout of Caffeine's FrequencySketch). Four counters per key, all in one
// 64-bit word (16 counters a word), so an update or estimate touches one cache line. After
// `sample_size()` additions every counter is halved, so old popularity fades. Optionally a
// doorkeeper (a Bloom filter) absorbs each key's first occurrence, so one-hit wonders never
// reach the counters. Not thread-safe: the store uses it under its policy mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace outpost::cache::detail {

class FrequencySketch {
 public:
  explicit FrequencySketch(bool doorkeeper = false);
  // Sizes the table for about `entries` keys (a power of two of words, at least 8); it only
  // grows, by doubling, and keeps every key's estimate when it does (the halving sample grows
  // with it).
  void ensure_capacity(std::size_t entries);
  // Records `n` occurrences of the key whose 64-bit hash is `hash`.
  void add(std::uint64_t hash, unsigned n = 1);
  // Occurrences since the last halvings (0..15, +1 for the doorkeeper).
  unsigned estimate(std::uint64_t hash) const;

  // Halves every counter now (also done after every sample_size() additions); the caller
  // uses it when it sees that the recorded popularity has gone stale.
  void halve();

  std::size_t words() const { return table_.size(); }
  std::uint64_t sample_size() const { return sample_size_; }
  std::size_t memory_bytes() const { return (table_.size() + door_.size()) * sizeof(std::uint64_t); }

 private:
  void resize(std::size_t words);
  std::size_t word_of(std::uint64_t h, unsigned row) const;
  bool door_test(std::uint64_t h) const;
  void door_set(std::uint64_t h);

  bool doorkeeper_;
  std::vector<std::uint64_t> table_;
  std::vector<std::uint64_t> door_;  // Bloom filter bits, empty without a doorkeeper
  std::uint64_t sample_size_ = 0, additions_ = 0;
};

}  // namespace outpost::cache::detail
