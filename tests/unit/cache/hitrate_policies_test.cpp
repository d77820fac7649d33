// The simulator's reference policies (bench/hitrate) on small hand-made traces whose hits and
// final contents were worked out by hand (the comments give the reasoning step by step).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "bench/hitrate/policy.hpp"

using namespace outpost::hitrate;

namespace {

// Replays `ids` (each charged `charge`) and returns the hit pattern as a string: H hit, . miss.
std::string run(Policy& p, const std::string& ids, std::uint64_t charge = 1) {
  std::string out;
  for (char id : ids) out += p.access(static_cast<std::uint64_t>(id), charge) ? 'H' : '.';
  return out;
}

std::string resident(const Policy& p, const std::string& ids) {
  std::string out;
  for (char id : ids)
    if (p.contains(static_cast<std::uint64_t>(id))) out += id;
  return out;
}

}  // namespace

TEST(LruPolicy, EvictsLeastRecentlyUsed) {
  auto p = make_lru(3);
  // ABC fill; A hit (order A C B); D evicts B; B evicts C; C evicts A; D hits.
  EXPECT_EQ(run(*p, "ABCADBCD"), "...H...H");
  EXPECT_EQ(resident(*p, "ABCD"), "BCD");
}

TEST(LruPolicy, SizeAware) {
  auto p = make_lru(10);
  p->access(1, 4);
  p->access(2, 4);
  p->access(3, 6);  // 14 > 10: only the oldest (1) has to go
  EXPECT_FALSE(p->contains(1));
  EXPECT_TRUE(p->contains(2));
  EXPECT_TRUE(p->contains(3));
  EXPECT_EQ(p->used(), 10u);
  EXPECT_FALSE(p->access(4, 11));  // larger than the cache: never admitted
  EXPECT_FALSE(p->contains(4));
}

TEST(SievePolicy, HandSkipsVisitedAndKeepsItsPlace) {
  auto p = make_sieve(3);
  // Queue newest..oldest after ABC: C B A. A hit sets A's bit.
  // D: hand at A (visited: clear, move on) -> B evicted, hand -> C.   queue D C A
  // E: hand at C -> C evicted, hand -> D.                             queue E D A
  // A hit (bit set again). F: hand at D -> D evicted, hand -> E.       queue F E A
  // B: hand at E -> E evicted.                                        queue B F A
  EXPECT_EQ(run(*p, "ABCADEAFB"), "...H..H..");
  EXPECT_EQ(resident(*p, "ABCDEF"), "ABF");
}

TEST(SievePolicy, HandWrapsToTheOldest) {
  auto p = make_sieve(2);
  // AB, both hit. C: hand at A (clear) -> B (clear) -> wraps to A -> A evicted.   queue C B
  // D: the hand had reached the newest end, so it restarts at the oldest: B (bit cleared
  // by the first pass) evicted.
  EXPECT_EQ(run(*p, "ABABCD"), "..HH..");
  EXPECT_EQ(resident(*p, "ABCD"), "CD");
}

TEST(ArcPolicy, GhostHitsMoveTheTarget) {
  auto p = make_arc(2);
  // A B: T1 = [B A]. A hit -> T2 = [A], T1 = [B].
  // C: full, T1 (1) > p (0): B -> B1.                     T1 [C] T2 [A] B1 [B]
  // B: B1 ghost hit, p = 1; T1 (1) is not > p: A -> B2.   T1 [C] T2 [B] B2 [A]
  // A: B2 ghost hit, p = 0; T1 (1) > 0: C -> B1.          T2 [A B] B1 [C]
  // C: B1 ghost hit, p = 1; T1 empty: T2's LRU B -> B2.   T2 [C A] B2 [B]
  // A: hit.
  EXPECT_EQ(run(*p, "ABACBACA"), "..H....H");
  EXPECT_EQ(resident(*p, "ABC"), "AC");
}

TEST(ArcPolicy, ScanDoesNotFlushFrequentObjects) {
  auto p = make_arc(4);
  // A and B are used twice (T2); a scan of new objects only cycles through T1 (p stays 0
  // without ghost hits in B1), so A and B survive it.
  EXPECT_EQ(run(*p, "ABABcdefghij"), "..HH........");
  EXPECT_EQ(resident(*p, "AB"), "AB");
}

TEST(GdsfPolicy, FrequencyOverSizeWithInflation) {
  auto p = make_gdsf(10);
  // Priorities (L + freq/size): A 1/2, B 1/4, C 1/4; A hit -> 2/2 = 1.
  EXPECT_EQ(run(*p, "A", 2), ".");
  EXPECT_EQ(run(*p, "BC", 4), "..");
  EXPECT_EQ(run(*p, "A", 2), "H");
  // D (2): full -> evict the lowest, B (1/4, older than C): L = 1/4, D = 1/4 + 1/2.
  EXPECT_FALSE(p->access('D', 2));
  EXPECT_EQ(resident(*p, "ABCD"), "ACD");
  // E (4): evict C (1/4); E = 1/4 + 1/4 = 1/2.
  EXPECT_FALSE(p->access('E', 4));
  EXPECT_EQ(resident(*p, "ABCDE"), "ADE");
  // B (4) again: evict E (1/2, the lowest): L = 1/2.
  EXPECT_FALSE(p->access('B', 4));
  EXPECT_EQ(resident(*p, "ABCDE"), "ABD");
  EXPECT_EQ(p->used(), 8u);
}

TEST(WTinyLfuPolicy, AdmissionByFrequency) {
  // 4 objects: a window of 1, main of 3. No hill climbing (hand-checkable).
  auto p = make_wtinylfu({.capacity = 4, .expected_objects = 4, .window = 0.25, .climb = false});
  // A A, B B, C C: each misses, then hits in the window; each later spills to probation
  // (estimates: 2 each = doorkeeper + one counter). D: window [D C], C to probation: 4 used.
  EXPECT_EQ(run(*p, "AABBCCD"), ".H.H.H.");
  // E: D spills as the candidate (estimate 1) against probation's oldest, A (2): D loses.
  // D again (estimate 2): E is the candidate (1) and loses to A.
  // F: D (2) is the candidate, A (2): a tie keeps the victim, D goes.
  // D again (3): F (1) loses.   G: D (3) beats A (2): A goes, D is admitted.
  EXPECT_EQ(run(*p, "EDFDG"), ".....");
  EXPECT_EQ(resident(*p, "ABCDEFG"), "BCDG");
  // A probation hit promotes to protected; the main region keeps B C D, the window G.
  EXPECT_EQ(run(*p, "BG"), "HH");
  EXPECT_EQ(p->used(), 4u);
}

TEST(WTinyLfuPolicy, HillClimberGrowsTheWindowForRecency) {
  // Each new object is requested a second time 1..60 requests later and never again: only a
  // window (LRU) larger than the gap catches the second request; the frequency filter keeps
  // rejecting the newcomers (estimate 1) in favour of the old twice-seen objects in main. A
  // fixed 1% window therefore hits almost nothing, the climber grows the window and hits.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> gap(1, 60);
  std::vector<std::pair<std::size_t, std::uint64_t>> schedule;  // (time, id)
  for (std::uint64_t id = 0; id < 40000; ++id) {
    schedule.push_back({2 * id, id});
    schedule.push_back({2 * id + static_cast<std::size_t>(gap(rng)), id});
  }
  std::stable_sort(schedule.begin(), schedule.end(), [](auto& a, auto& b) { return a.first < b.first; });
  auto ratio = [&](bool climb) {
    auto p = make_wtinylfu({.capacity = 100, .expected_objects = 100, .climb = climb});
    std::size_t hits = 0;
    for (auto& [t, id] : schedule) hits += p->access(id, 1);
    return static_cast<double>(hits) / static_cast<double>(schedule.size());
  };
  double fixed = ratio(false), climbing = ratio(true);
  EXPECT_LT(fixed, 0.05);
  EXPECT_GT(climbing, 0.30);
}
