// The count-min sketch behind the store's admission and the simulator's W-TinyLFU: counts,
// 4-bit saturation, halving after the sample, the doorkeeper, growth.
#include "cache/frequency_sketch.hpp"

#include <gtest/gtest.h>

using outpost::cache::detail::FrequencySketch;

TEST(FrequencySketch, CountsAndSaturatesAtFifteen) {
  FrequencySketch s;
  s.ensure_capacity(1024);
  EXPECT_EQ(s.estimate(42), 0u);
  for (int i = 0; i < 3; ++i) s.add(42);
  EXPECT_EQ(s.estimate(42), 3u);
  s.add(42, 4);
  EXPECT_EQ(s.estimate(42), 7u);
  s.add(42, 100);
  EXPECT_EQ(s.estimate(42), 15u);
  EXPECT_EQ(s.estimate(43), 0u);
}

TEST(FrequencySketch, HalvesAfterTheSample) {
  FrequencySketch s;  // 8 words: a sample of 80 additions
  ASSERT_EQ(s.sample_size(), 80u);
  for (std::uint64_t k = 0; k < 5; ++k) s.add(k, 15);  // 75 additions
  EXPECT_EQ(s.estimate(0), 15u);
  s.add(5, 15);  // 90 >= 80: every counter halves
  EXPECT_EQ(s.estimate(0), 7u);
  EXPECT_EQ(s.estimate(5), 7u);
}

TEST(FrequencySketch, DoorkeeperTakesTheFirstOccurrence) {
  FrequencySketch s(true);
  s.ensure_capacity(1024);
  EXPECT_EQ(s.estimate(7), 0u);
  s.add(7);
  EXPECT_EQ(s.estimate(7), 1u);  // the doorkeeper bit only
  s.add(7);
  EXPECT_EQ(s.estimate(7), 2u);
  EXPECT_EQ(s.estimate(8), 0u);
}

TEST(FrequencySketch, GrowsToAPowerOfTwoAndKeepsTheCounts) {
  FrequencySketch s;
  s.add(1, 5);
  s.add(2, 3);
  s.ensure_capacity(1000);
  EXPECT_EQ(s.words(), 1024u);
  EXPECT_EQ(s.sample_size(), 10240u);
  EXPECT_EQ(s.estimate(1), 5u);  // each key's counters were copied to its new words
  EXPECT_EQ(s.estimate(2), 3u);
  s.add(1);
  EXPECT_EQ(s.estimate(1), 6u);
  s.ensure_capacity(10);  // never shrinks
  EXPECT_EQ(s.words(), 1024u);
  EXPECT_EQ(s.memory_bytes(), 8192u);
}
