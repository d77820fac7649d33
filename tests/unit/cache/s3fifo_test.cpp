// Eviction order of the S3-FIFO policy: quick demotion of one-hit wonders from the small
// queue, promotion of re-accessed objects to main, ghost re-admission, lazy re-insertion in
// main, long-dead objects first, size awareness; with frequency admission, the duel at the
// small queue's tail and where first-timers enter main.
#include "cache/s3fifo.hpp"
#include "cache_test_util.hpp"

#include <gtest/gtest.h>

using namespace outpost;
using namespace outpost::cache;
using outpost::cache::testing::numbered;
using namespace outpost::cache::detail;

namespace {

class S3FifoTest : public ::testing::Test {
 protected:
  explicit S3FifoTest(double ghost = 1.0, bool admission = false)
      : policy_(S3Fifo::Options{1000, 0.10, 1, 5, ghost, admission}) {
    opt_.count_overhead = false;
  }
  // Objects of exactly `charge` bytes: 2-byte key + body.
  Object* add(const std::string& key, std::uint64_t charge = 100, std::int64_t expiry = 0) {
    ObjRef o = build_object(opt_, Namespace::kHttp, key, "", {Slice{ChunkRef(), filler_.data(), charge - key.size()}}, expiry);
    EXPECT_EQ(o->charge, charge);
    Object* raw = o.get();
    policy_.insert(raw, now_, &victims_);
    held_.push_back(std::move(o));
    return raw;
  }
  std::vector<std::string> evicted() {
    std::vector<std::string> keys;
    for (auto& v : victims_) keys.push_back(v->key);
    victims_.clear();
    return keys;
  }
  using V = std::vector<std::string>;
  StoreOptions opt_;
  S3Fifo policy_;
  std::string filler_ = std::string(4096, 'x');
  std::vector<ObjRef> held_, victims_;
  std::int64_t now_ = 100;
};

}  // namespace

TEST_F(S3FifoTest, OneHitWondersLeaveFromSmallAccessedMoveToMain) {
  Object* o[10];
  for (int i = 0; i < 10; ++i) o[i] = add(numbered("k", i));
  EXPECT_EQ(policy_.used(), 1000u);
  EXPECT_TRUE(evicted().empty());
  o[0]->touch();
  o[1]->touch();
  add("kA");
  EXPECT_EQ(evicted(), V{"k2"});  // k0 and k1 were accessed: moved to main, not evicted
  EXPECT_EQ(o[0]->queue, Queue::kMain);
  EXPECT_EQ(o[1]->queue, Queue::kMain);
  add("kB");
  EXPECT_EQ(evicted(), V{"k3"});
  EXPECT_EQ(policy_.order(), (V{"k0", "k1", "k4", "k5", "k6", "k7", "k8", "k9", "kA", "kB"}));
  EXPECT_EQ(policy_.used(), 1000u);
}

TEST_F(S3FifoTest, GhostHitGoesStraightToMain) {
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  add("kA");
  EXPECT_EQ(evicted(), V{"k0"});
  Object* again = add("k0");  // remembered by the ghost queue
  EXPECT_EQ(again->queue, Queue::kMain);
  EXPECT_EQ(evicted(), V{"k1"});
  Object* fresh = add("kZ");
  EXPECT_EQ(fresh->queue, Queue::kSmall);
}

class S3FifoSmallGhostTest : public S3FifoTest {
 protected:
  S3FifoSmallGhostTest() : S3FifoTest(0.2) {}
};

TEST_F(S3FifoSmallGhostTest, GhostForgetsBeyondItsByteBudget) {
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  for (int i = 0; i < 3; ++i) add(numbered("n", i));
  EXPECT_EQ(evicted(), (V{"k0", "k1", "k2"}));  // ghost holds 200 bytes: k1, k2
  EXPECT_EQ(add("k0")->queue, Queue::kSmall);   // forgotten
  EXPECT_EQ(add("k2")->queue, Queue::kMain);    // remembered
}

TEST_F(S3FifoTest, MainReinsertsAccessedObjectsLazily) {
  // Fill main with m0..m8 (accessed once in small), then small with s0.
  Object* m[9];
  for (int i = 0; i < 9; ++i) {
    m[i] = add(numbered("m", i));
    m[i]->touch();
  }
  add("s0");
  add("s1");  // forces small to drain: m0..m8 move to main, then s0 (cold) leaves
  EXPECT_EQ(evicted(), V{"s0"});
  for (int i = 0; i < 9; ++i) EXPECT_EQ(m[i]->queue, Queue::kMain);
  m[0]->touch();  // main's tail is hot: re-inserted at the head, next one goes
  add("s2");      // small (s1, s2) = 200 > 100: s1 is cold and leaves first
  EXPECT_EQ(evicted(), V{"s1"});
  add("s3");
  EXPECT_EQ(evicted(), V{"s2"});
  // Small holds s3 only (100 = its target), so the next eviction comes from main; a ghost
  // hit (s0) enters main directly.
  Object* back = add("s0");
  EXPECT_EQ(back->queue, Queue::kMain);
  EXPECT_EQ(evicted(), V{"m1"});  // m0 was hot: re-inserted at main's head with freq 0
  EXPECT_EQ(m[0]->freq.load(), 0);
  EXPECT_EQ(policy_.order(), (V{"m2", "m3", "m4", "m5", "m6", "m7", "m8", "s0", "m0", "s3"}));
}

TEST_F(S3FifoTest, LongDeadObjectsAreEvictedFirst) {
  Object* hot = add("h0", 100, 0);
  hot->touch();
  add("d0", 100, 90);   // dead at 90: 90 + 5 < 100 → long dead
  add("f0", 100, 200);  // fresh expiry
  for (int i = 0; i < 7; ++i) add(numbered("k", i));
  EXPECT_TRUE(evicted().empty());
  add("kX");
  EXPECT_EQ(evicted(), V{"d0"});  // not h0/f0, the FIFO tail
  now_ = 300;                      // f0 is long dead now
  add("kY");
  EXPECT_EQ(evicted(), V{"f0"});
}

// The expiry set is keyed by (expiry, object): objects sharing an expiry second leave it one
// by one as they are removed or replaced, and only the ones still there are evicted as dead.
TEST_F(S3FifoTest, ObjectsSharingAnExpiryLeaveTheExpirySetOneByOne) {
  Object* a = add("e0", 100, 90);
  add("e1", 100, 90);
  Object* c = add("e2", 100, 90);
  Object* d = add("e3", 100, 90);
  for (int i = 0; i < 6; ++i) add(numbered("k", i));
  EXPECT_TRUE(policy_.remove(a));
  ObjRef fresh = build_object(opt_, Namespace::kHttp, "e2", "", {Slice{ChunkRef(), filler_.data(), 98}}, 0);
  policy_.replace(c, fresh.get(), now_, &victims_);  // the new e2 has no expiry
  EXPECT_EQ(evicted(), V{"e2"});                     // the replaced object, not a victim
  EXPECT_TRUE(policy_.remove(d));
  add("kX");
  add("kY");
  EXPECT_TRUE(evicted().empty());  // they fit in the room of the two removed
  add("kZ");
  EXPECT_EQ(evicted(), V{"e1"});  // the one long-dead object left (not e0 or e3, removed)
  add("kW");
  EXPECT_EQ(evicted(), V{"e2"});  // then the small queue's tail: the new e2, not dead
  EXPECT_EQ(policy_.counters(Namespace::kHttp).objects, 10u);
}

TEST_F(S3FifoTest, SizeAwareLargeColdObjectLeavesQuickly) {
  for (int i = 0; i < 8; ++i) {
    Object* o = add(numbered("k", i));
    o->touch();
  }
  add("LL", 300);  // 1100 bytes: small drains its hot objects to main, then the cold large one goes
  auto ev = evicted();
  ASSERT_FALSE(ev.empty());
  EXPECT_LE(policy_.used(), 1000u);
  EXPECT_EQ(ev.back(), "LL");
}

TEST_F(S3FifoTest, RemoveAndReplace) {
  Object* a = add("a1");
  Object* b = add("b1");
  ObjRef gone = policy_.remove(a);
  EXPECT_TRUE(gone);
  EXPECT_TRUE(a->removed);
  EXPECT_FALSE(policy_.remove(a));  // twice is harmless
  EXPECT_EQ(policy_.used(), 100u);
  policy_.insert(a, now_, &victims_);  // removed objects are never re-linked
  EXPECT_EQ(policy_.used(), 100u);
  b->touch();
  ObjRef fresh = build_object(opt_, Namespace::kHttp, "b1", "", {Slice{ChunkRef(), filler_.data(), 148}}, 0);
  policy_.replace(b, fresh.get(), now_, &victims_);
  EXPECT_EQ(policy_.used(), 150u);
  EXPECT_EQ(fresh->queue, Queue::kSmall);
  EXPECT_EQ(fresh->freq.load(), 1);
  EXPECT_TRUE(b->removed);
  EXPECT_EQ(policy_.counters(Namespace::kHttp).objects, 1u);
  EXPECT_EQ(policy_.counters(Namespace::kHttp).evictions, 0u);
}

// Frequency admission (the store's default): small -> main only by beating main's victims
// on the sketch's estimate; no ghost.
class AdmissionTest : public S3FifoTest {
 protected:
  AdmissionTest() : S3FifoTest(1.0, true) {}
  // One more request for `key`, then a filler that pushes it to small's tail, where it meets
  // main's victims; returns what was evicted (the filler is removed again).
  V duel(const std::string& key, int round) {
    add(key);
    Object* filler = add(numbered("f", round));
    V out = evicted();
    policy_.remove(filler);
    return out;
  }
};

TEST_F(AdmissionTest, OneHitWondersLoseToMainAndHitsWin) {
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  // kA: 1100 bytes. Small drains into main while main (target 900) has room: k0..k8. k9
  // (estimate 1) then meets main's victim k0 (1): a tie keeps the victim, which stays at
  // main's tail; k9 is evicted.
  Object* a = add("kA");
  EXPECT_EQ(evicted(), V{"k9"});
  EXPECT_EQ(policy_.order(), (V{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "kA"}));
  // kA is hit twice in small (estimate 3): it beats main's victim k0 (1) and takes its place.
  a->touch();
  a->touch();
  add("kB");
  EXPECT_EQ(evicted(), V{"k0"});
  EXPECT_EQ(a->queue, Queue::kMain);
  // kB, never hit (1), loses to k1 (1), which stays the next victim.
  add("kC");
  EXPECT_EQ(evicted(), V{"kB"});
  EXPECT_EQ(policy_.order(), (V{"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "kA", "kC"}));
  EXPECT_EQ(policy_.used(), 1000u);
}

TEST_F(AdmissionTest, TheSketchRemembersEvictedKeys) {
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  add("kA");
  EXPECT_EQ(evicted(), V{"k9"});
  // k9 comes back: its second request (estimate 2) beats main's victim k0 (1) once k9
  // reaches the small queue's tail; kA (1) lost to k0 just before.
  Object* again = add("k9");
  EXPECT_EQ(evicted(), V{"kA"});
  EXPECT_EQ(again->queue, Queue::kSmall);  // no ghost: everything enters small
  add("kB");
  EXPECT_EQ(evicted(), (V{"k0"}));  // k0 won kA's duel and stayed at main's tail
  EXPECT_EQ(again->queue, Queue::kMain);
}

TEST_F(AdmissionTest, HitsInMainAreFoldedIntoClockAndSketch) {
  Object* o[10];
  for (int i = 0; i < 10; ++i) o[i] = add(numbered("k", i));
  add("kA");  // k0..k8 in main, k9 evicted
  evicted();
  o[0]->touch();  // main's tail is k0, then k1: both hit, so both are re-inserted
  for (int i = 0; i < 3; ++i) o[1]->touch();
  add("kB");  // kA (1) meets the next victim, k2 (1): the tie keeps k2
  EXPECT_EQ(evicted(), V{"kA"});
  EXPECT_EQ(o[0]->freq.load(), 0);  // folded
  EXPECT_EQ(o[0]->clock, 0);        // and spent on the re-insertion
  EXPECT_EQ(o[1]->clock, 2);        // 3 hits, one pass
  EXPECT_EQ(policy_.order(), (V{"k2", "k3", "k4", "k5", "k6", "k7", "k8", "k0", "k1", "kB"}));
}

// A lukewarm large candidate (estimate below 4) must be more frequent than each victim it
// would push out; the first it does not beat ends the duel, and none of them is evicted.
TEST_F(AdmissionTest, ALargeCandidateMustBeatEveryVictimItDisplaces) {
  Object* o[10];
  for (int i = 0; i < 10; ++i) o[i] = add(numbered("k", i));
  add("kA");
  EXPECT_EQ(evicted(), V{"k9"});
  o[1]->touch();  // k1 will pass main's tail once (estimate 2), then be an ordinary victim
  add("kL", 300);  // kA (1) loses to k0; kL (1) ties with k0, its first victim, and loses
  EXPECT_EQ(evicted(), (V{"kA", "kL"}));
  EXPECT_EQ(policy_.order(), (V{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"}));
  add("kL", 300);  // estimate 2: beats k0, k2 and k3 (1 each; k1 passes once), which all go
  EXPECT_EQ(evicted(), (V{"k0", "k2", "k3"}));
  EXPECT_EQ(policy_.order(), (V{"k4", "k5", "k6", "k7", "k8", "k1", "kL"}));
  // kM (600 bytes) needs k4..k8 and k1 out. At estimate 2 it ties with k1 (2) and loses,
  // although it beats the other five; the six stay, in their order, at main's tail.
  add("kM", 600);
  EXPECT_EQ(evicted(), V{"kM"});
  add("kM", 600);
  EXPECT_EQ(evicted(), V{"kM"});
  EXPECT_EQ(policy_.order(), (V{"k4", "k5", "k6", "k7", "k8", "k1", "kL"}));
  add("kM", 600);  // estimate 3
  EXPECT_EQ(evicted(), (V{"k4", "k5", "k6", "k7", "k8", "k1"}));
  EXPECT_EQ(policy_.order(), (V{"kL", "kM"}));
}

// A warm candidate (estimate >= 4) passes over victims it does not beat if they hold at most
// a sixth of its bytes: it evicts only the victims it beats, and those passed over stay at
// main's tail in their order. More than a sixth and it loses, evicting nothing.
TEST_F(AdmissionTest, AWarmLargeCandidatePassesOverAFewStrongerVictims) {
  // Requests while the cache is empty only count: k2 will have estimate 6, kW and kX 4.
  for (int i = 0; i < 5; ++i) policy_.remove(add("k2"));
  for (int i = 0; i < 3; ++i) {
    policy_.remove(add("kW", 600));
    policy_.remove(add("kX", 200));
  }
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  add("kA");
  EXPECT_EQ(evicted(), V{"k9"});
  // kA (1) loses to k0. kW (600 bytes, estimate 4) beats k0 and k1, passes over k2 (6; 100
  // bytes, a sixth of kW), and beats k3..k6: those six go, k2 stays at main's tail.
  add("kW", 600);
  EXPECT_EQ(evicted(), (V{"kA", "k0", "k1", "k3", "k4", "k5", "k6"}));
  EXPECT_EQ(policy_.order(), (V{"k2", "k7", "k8", "kW"}));
  // kX (200 bytes, estimate 4) meets k2 first: 100 bytes is more than a sixth of kX, so it
  // loses and nothing else is evicted.
  add("kX", 200);
  EXPECT_EQ(evicted(), V{"kX"});
  EXPECT_EQ(policy_.order(), (V{"k2", "k7", "k8", "kW"}));
}

// After a popularity shift main's victims keep their stale counts until the sketch halves;
// warm candidates (estimate >= 7) turned away 5 times halve it early.
TEST_F(AdmissionTest, WarmCandidatesTurnedAwayAgeTheSketch) {
  // Each request counts; the first sets the doorkeeper's bits, the next 15 the counters.
  for (int i = 0; i < 15; ++i) policy_.remove(add("v"));
  add("v");  // estimate 16, the most there is
  for (int i = 1; i < 10; ++i) add(numbered("k", i));
  add("kA");  // small drains: v and k1..k8 enter main, v at its tail; k9 loses to v
  EXPECT_EQ(evicted(), V{"k9"});
  policy_.remove(held_.back().get());  // kA: small is empty, main full (900 of 900)
  // Each round, c is requested once more and then meets v (16). From round 7 on its
  // estimate is warm; the 5th warm rejection (round 11, c at 11) halves the sketch and clears
  // the doorkeeper: v 16 -> 7, c 11 -> 5. Round 12: c 6 (its doorkeeper bit again) loses;
  // round 13: 7, a tie, loses; round 14: c (8) beats v.
  for (int round = 1; round <= 14; ++round) {
    add("c");
    Object* filler = add(numbered("f", round));  // pushes c to small's tail
    if (round < 14) {
      EXPECT_EQ(evicted(), V{"c"}) << "round " << round;
      policy_.remove(filler);
    } else {
      EXPECT_EQ(evicted(), V{"v"});
    }
  }
}

// A main victim's estimate is halved in the duel once for every quarter of the sketch's
// halving period (its sample: 10 x 4096 words here, so 10 240 misses and folded hits) since
// its own last hit, so an object that stopped being requested stops turning newcomers away
// long before the sketch halves every key.
TEST_F(AdmissionTest, AVictimsEstimateAgesFromItsOwnLastHit) {
  for (int i = 0; i < 14; ++i) policy_.remove(add("v"));  // estimate 14
  add("v");                                                // 15, last seen now
  for (int i = 0; i < 3; ++i) policy_.remove(add("c"));    // c: 3
  for (int i = 1; i < 10; ++i) add(numbered("k", i));
  add("kA");  // small drains: v and k1..k8 enter main, v at its tail; k9 loses to v
  EXPECT_EQ(evicted(), V{"k9"});
  policy_.remove(held_.back().get());  // kA: small is empty, main full (900 of 900)
  // Policy time goes on: requests for another key (saturated at 15: no sketch additions
  // after the first 15, so the sketch does not halve).
  auto advance = [&](int n) {
    for (int i = 0; i < n; ++i) policy_.remove(add("x"));
  };
  advance(9000);  // v last seen ~9 000 ago: less than a quarter of the sample
  EXPECT_EQ(duel("c", 1), V{"c"});  // c (4) loses to v (15)
  advance(12000);  // now more than two quarters: v counts 15 >> 2 = 3
  EXPECT_EQ(duel("c", 2), V{"v"});  // c (5) beats v
  EXPECT_EQ(policy_.order().back(), "c");
}

// A candidate seen once (estimate 1: the doorkeeper's bit alone) never displaces a main
// victim, even one whose aged estimate is 0; seen twice, it does.
TEST_F(AdmissionTest, AFirstTimerNeverDisplacesAVictim) {
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  add("kA");  // small drains: k0..k8 enter main; k9 (1) loses to k0 (1)
  EXPECT_EQ(evicted(), V{"k9"});
  policy_.remove(held_.back().get());  // kA: small is empty, main full (900 of 900)
  // More than a quarter of the sketch's sample (10 240) since k0 entered main: k0 counts
  // 1 >> 1 = 0 in a duel.
  for (int i = 0; i < 11000; ++i) policy_.remove(add("x"));
  EXPECT_EQ(duel("kN", 1), V{"kN"});  // kN (1) does not displace k0 (0)
  EXPECT_EQ(policy_.order().front(), "k0");
  EXPECT_EQ(duel("kN", 2), V{"k0"});  // kN (2) does
  EXPECT_EQ(policy_.order().back(), "kN");
}

// A first-timer may take room main has free; one of at least three times main's mean object
// charge enters at main's tail (its next victim unless hit), a smaller one at main's head.
TEST_F(AdmissionTest, ALargeFirstTimerTakesFreeRoomAtMainsTail) {
  Object* o[10];
  for (int i = 0; i < 10; ++i) o[i] = add(numbered("k", i));
  add("kA");  // small drains: k0..k8 enter main; k9 (1) loses to k0 (1)
  EXPECT_EQ(evicted(), V{"k9"});
  policy_.remove(held_.back().get());  // kA: small is empty
  for (int i = 3; i <= 6; ++i) policy_.remove(o[i]);  // main: 500 bytes, mean 100
  Object* large = add("kL", 400);  // seen once, 4 x the mean: into the free room, at main's tail
  add("f", 200);   // f (1) meets kL (1) and loses
  EXPECT_EQ(evicted(), V{"f"});
  EXPECT_EQ(policy_.order(), (V{"kL", "k0", "k1", "k2", "k7", "k8"}));
  policy_.remove(o[7]);  // main: 800 bytes in 5 objects, mean 160
  add("kS");             // seen once, 100 bytes: into the free room, at main's head
  add("g", 200);         // g (1) meets kL and loses
  EXPECT_EQ(evicted(), V{"g"});
  EXPECT_EQ(policy_.order(), (V{"kL", "k0", "k1", "k2", "k8", "kS"}));
  // A hit sends kL round once more, as any victim: the next first-timer meets k0 instead.
  large->touch();
  add("h", 200);
  EXPECT_EQ(evicted(), V{"h"});
  EXPECT_EQ(policy_.order(), (V{"k0", "k1", "k2", "k8", "kS", "kL"}));
}

// The store's sketch has a doorkeeper: a Bloom filter as large as the counter table.
TEST_F(AdmissionTest, TheSketchHasADoorkeeper) {
  add("k0");
  EXPECT_EQ(policy_.sketch_bytes(), 2u * 4096 * sizeof(std::uint64_t));
}

// Store::would_keep's memory half: whether a conditional miss is worth fetching whole.
TEST_F(S3FifoTest, WouldKeepWhileThereIsRoomOrTheGhostRemembers) {
  auto h = [](const char* k) { return key_hash(Namespace::kHttp, std::string_view(k)); };
  for (int i = 0; i < 9; ++i) add(numbered("k", i));
  EXPECT_TRUE(policy_.would_keep(h("kZ")));  // 900 of 1000: room
  add("k9");
  EXPECT_FALSE(policy_.would_keep(h("kZ")));  // full: a stranger goes to small and leaves
  add("kA");
  EXPECT_EQ(evicted(), V{"k0"});
  EXPECT_TRUE(policy_.would_keep(h("k0")));  // a ghost: it would enter main at once
  EXPECT_FALSE(policy_.would_keep(h("kZ")));
}

TEST_F(AdmissionTest, WouldKeepAKeyThatAlreadyBeatsMainsVictim) {
  auto h = [](const char* k) { return key_hash(Namespace::kHttp, std::string_view(k)); };
  EXPECT_TRUE(policy_.would_keep(h("kX")));  // empty
  for (int i = 0; i < 10; ++i) add(numbered("k", i));
  add("kA");  // k0..k8 in main (each 1), k9 evicted
  EXPECT_EQ(evicted(), V{"k9"});
  EXPECT_FALSE(policy_.would_keep(h("kZ")));  // 0: never seen
  EXPECT_FALSE(policy_.would_keep(h("k9")));  // 1 (the doorkeeper) does not beat k0's 1
  policy_.remove(add("k9"));  // k9 (2): kA lost its duel meanwhile
  add("kB");                  // full again
  EXPECT_EQ(policy_.used(), 1000u);
  EXPECT_TRUE(policy_.would_keep(h("k9")));  // 2 beats k0's 1
  // Requests that stored nothing (conditionals relayed as they came) count too.
  policy_.note_request(h("kZ"));
  EXPECT_FALSE(policy_.would_keep(h("kZ")));
  policy_.note_request(h("kZ"));
  EXPECT_TRUE(policy_.would_keep(h("kZ")));
}
