// Internal: the memory tier's eviction policy. S3-FIFO (Yang et al., "FIFO queues are all you
// need for cache eviction", SOSP'23), size-aware: a small FIFO, a main FIFO with lazy
// re-insertion (CLOCK, 2-bit), and a ghost FIFO of recently evicted key hashes. Objects whose
// expiry hint is long past are evicted before anything else.
//
// With `admission` on (the store's default) the admission filter of W-TinyLFU (Caffeine)
// replaces the ghost: a count-min sketch (frequency_sketch.hpp) of every key's recent
// requests decides, at the small queue's tail, whether an object enters main: it must have
// been requested more often than the main victims it pushes out (a warm one may pass over
// stronger victims holding at most a sixth of its bytes, which stay; one seen only once never
// displaces anything, and takes main's free room at main's tail if it is large); otherwise it
// is evicted and the victims stay at main's tail. Warm
// candidates turned away repeatedly halve the sketch early, and a victim's estimate is halved
// in the duel for each quarter of the sketch's halving period since its last hit, so stale
// popularity fades after a shift.
// The sketch has a doorkeeper: a key's first request only sets Bloom filter bits. Hits never
// touch the sketch: they bump the object's own counter (Object::freq) lock-free, and the
// policy folds those counts into the sketch (and the CLOCK bits) when it next looks at the
// object. See docs/CACHE_STORE.md for the figures.
// Not thread-safe: the store calls it under its policy mutex.
#pragma once
#include <array>
#include <cstdint>
#include <deque>
#include <set>
#include <unordered_map>
#include <vector>

#include "cache/frequency_sketch.hpp"
#include "cache/object.hpp"

namespace outpost::cache::detail {

struct PolicyCounters {
  std::uint64_t objects = 0, bytes = 0, admissions = 0, evictions = 0;
};

class S3Fifo {
 public:
  struct Options {
    std::uint64_t capacity = 0;         // bytes
    double small_fraction = 0.10;       // small queue's share of the capacity
    unsigned move_to_main_threshold = 1;
    std::int64_t dead_after = 86400;
    double ghost_fraction = 0.25;  // ghost remembers evicted keys worth this share of capacity
    bool admission = false;        // frequency sketch admission instead of the ghost
  };
  explicit S3Fifo(const Options& o);
  S3Fifo(const S3Fifo&) = delete;
  ~S3Fifo();

  // Links `o` (the policy takes a reference) and evicts until everything fits; evicted objects
  // (possibly `o` itself) are appended to *victims with the policy's reference. No-op if
  // o->removed.
  void insert(Object* o, std::int64_t now, std::vector<ObjRef>* victims);
  // Marks `o` removed and unlinks it; returns the policy's reference (empty if not linked).
  ObjRef remove(Object* o);
  // `fresh` takes `old`'s place (same queue, position and frequency); `old` is removed.
  void replace(Object* old, Object* fresh, std::int64_t now, std::vector<ObjRef>* victims);

  std::uint64_t used() const { return small_.bytes + main_.bytes; }
  // Store::would_keep's memory half: room left (a sixteenth of the capacity free), or a key
  // whose sketch estimate already beats main's next victim (without admission: a ghost).
  bool would_keep(std::uint64_t hash) const;
  // Store::note_request: one request for the key, into the sketch (with admission on).
  void note_request(std::uint64_t hash);
  const PolicyCounters& counters(Namespace ns) const { return counters_[static_cast<std::size_t>(ns)]; }
  // Keys from the main queue's tail to its head, then the small queue's (tests).
  std::vector<std::string> order() const;
  std::size_t sketch_bytes() const { return opt_.admission ? sketch_.memory_bytes() : 0; }

 private:
  struct List {
    Object* head = nullptr;  // newest
    Object* tail = nullptr;  // oldest
    std::uint64_t bytes = 0, count = 0;
    void push_head(Object* o);
    void push_tail(Object* o);
    void unlink(Object* o);
  };
  List& list_of(Queue q) { return q == Queue::kSmall ? small_ : main_; }
  void link(Object* o, Queue q);
  void unlink(Object* o);
  void evict(std::int64_t now, std::vector<ObjRef>* victims);
  void evict_small(std::vector<ObjRef>* victims);
  void evict_main(std::vector<ObjRef>* victims);
  void admit_or_drop(Object* t, std::vector<ObjRef>* victims);
  // Main's tail after lazy re-insertion of the objects hit since their last pass.
  Object* main_victim();
  // Moves the hits counted on `o` since the last look into its CLOCK bits and the sketch.
  void fold(Object* o);
  // One request for the key into the sketch, grown first to the index's size.
  void count_request(std::uint64_t hash);
  // A main victim's estimate in a duel: the sketch's, halved once for every quarter of the
  // sketch's halving period that has passed since the victim's last folded hit.
  unsigned victim_estimate(const Object* v) const;
  void drop(Object* o, std::vector<ObjRef>* victims);
  // Counters and expiry map of an object already unlinked from its queue; the policy's
  // reference.
  ObjRef release(Object* o);
  void ghost_add(std::uint64_t hash, std::uint64_t bytes);
  bool ghost_take(std::uint64_t hash);

  Options opt_;
  const std::uint64_t small_target_;
  List small_, main_;
  // Objects with an expiry hint, earliest first (keyed by the object too, so that releasing
  // one needs no iterator stored in Object).
  std::set<std::pair<std::int64_t, Object*>> expiry_;
  struct Ghost {
    std::uint64_t hash, seq, bytes;
  };
  std::deque<Ghost> ghost_fifo_;
  std::uint64_t ghost_bytes_ = 0;
  std::unordered_map<std::uint64_t, std::uint64_t> ghost_;
  std::uint64_t ghost_seq_ = 0;
  FrequencySketch sketch_;
  std::vector<Object*> duel_;        // main's victims facing one candidate (reused)
  unsigned warm_rejections_ = 0;     // warm candidates turned away since the last halving
  // Policy time: misses plus folded hits (the sketch's additions, never halved; wraps).
  std::uint32_t now_ = 0;
  std::array<PolicyCounters, kNamespaceCount> counters_{};
};

}  // namespace outpost::cache::detail
