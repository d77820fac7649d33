#include "cache/s3fifo.hpp"

#include <algorithm>

namespace outpost::cache::detail {

namespace {
// The sketch's smallest table (32 KiB): a cache of a few hundred objects still gets a
// history of 40 000 requests.
constexpr std::size_t kSketchFloor = 4096;
// A candidate whose estimate is at least kWarm (half the counter range) and still loses its
// duel is evidence that main holds stale counts (a popularity shift: yesterday's hot objects
// keep their saturated counters until the next halving). After kWarmRejections of them the
// sketch is halved early. On stationary Zipf this fires rarely and costs nothing measurable;
// on the shift trace it took the byte miss ratio at 5% from 0.7744 to 0.6330. (10 until
// kMinDisplace below, 6 until kFirstTimerTail below: with it, 5 left the shift trace at 10%
// more margin on seeds 1-3, docs/CACHE_STORE.md, sixth round.)
constexpr unsigned kWarm = 7;
constexpr unsigned kWarmRejections = 5;
// A candidate with an estimate of at least kSkipEstimate may pass over the victims it does
// not beat (they stay at main's tail) as long as they hold at most 1/kSkipShare of its
// bytes; it then displaces only victims it beats, from deeper in main. Without this a large
// candidate had to beat the highest of the many estimates it would displace, so large
// objects were turned away far more often than their popularity warranted (byte misses of
// objects over 256 KiB 0.62 vs S3-FIFO's 0.57 on the shift trace at 10%). Lukewarm
// candidates (estimate below 4) still must beat every victim: letting them pass cost objects
// at 10% on Zipf. (The share was 1/4 until kMinDisplace below; 1/6 then did better on seeds
// 1-3 of every trace, 1/5 and 1/8 lost shift 10% bytes again.)
constexpr unsigned kSkipEstimate = 4;
constexpr std::uint64_t kSkipShare = 6;
// A candidate must have an estimate of at least kMinDisplace to displace any main victim:
// one seen once (estimate 1, the doorkeeper's bit alone) loses even to a victim whose aged
// estimate is 0. Without it per-victim ageing let first-timers push out objects that were
// requested repeatedly (on the scan trace at 10%, ~6 000 such displacements; scan objects
// are not the issue: the doorkeeper keeps all but ~100 of 200 000 out either way). With the
// two settings above it took scan 10% bytes from 0.3904 to 0.3895 and met shift 10% bytes
// on seeds 2 and 3 (docs/CACHE_STORE.md).
constexpr unsigned kMinDisplace = 2;
// A first-timer may still take room main has free, but one whose charge is at least
// kFirstTimerTail times main's mean object charge enters main at its tail, not its head: it
// is then main's next victim unless it is hit first (a hit sends it round once more, as for
// any victim). At the head a large object seen once held the room of several of main's
// objects for a whole pass on one request: on the scan trace at 10%, after warm-up, a fifth
// of the bytes entering main were first-timers taking free room, and half of those bytes
// left main unhit. With the rule, scan 10% bytes went from 0.3895 to 0.3877 (S3-FIFO 0.3888)
// and objects from 0.3904 to 0.3790: objects under 64 KiB miss fewer bytes (0.4135 -> 0.4007
// at 8-64 KiB), 64 KiB-1 MiB slightly more (0.3691 -> 0.3766, 0.3603 -> 0.3657). Every
// first-timer at the tail took scan 10% bytes to 0.3858 but lost Zipf 0.6 at 1% (0.8596 vs
// S3-FIFO's 0.8562): there small first-timers are worth their pass. Ratios 1-8 and a fixed
// 64 KiB were tried too (docs/CACHE_STORE.md, sixth round).
constexpr std::uint64_t kFirstTimerTail = 3;
// Per-victim ageing: a main victim's estimate is halved once for every 1/kAgeQuarters of the
// sketch's halving period (its sample) since the victim's last folded hit, at most
// kMaxAgeing times. The sketch halves every key at once only every sample (or early, above),
// so an object that stopped being requested kept its old count at main's tail for up to a
// whole sample and turned newcomers away; by its own last hit the policy sees that it is
// stale. With the doorkeeper (below) it took the byte miss ratio on the shift trace at 10%
// from 0.5674 to 0.5600 and at 5% from 0.6293 to 0.6259. A horizon of 0.35 or 0.5 of the
// sample lost shift 10% again, and without the early halving shift 10% was lost too
// (docs/CACHE_STORE.md).
constexpr std::uint64_t kAgeQuarters = 4;
constexpr unsigned kMaxAgeing = 4;
}  // namespace

void S3Fifo::List::push_head(Object* o) {
  o->prev = nullptr;
  o->next = head;
  if (head) head->prev = o;
  head = o;
  if (!tail) tail = o;
  bytes += o->charge;
  ++count;
}

void S3Fifo::List::push_tail(Object* o) {
  o->next = nullptr;
  o->prev = tail;
  if (tail) tail->next = o;
  tail = o;
  if (!head) head = o;
  bytes += o->charge;
  ++count;
}

void S3Fifo::List::unlink(Object* o) {
  if (o->prev) o->prev->next = o->next; else head = o->next;
  if (o->next) o->next->prev = o->prev; else tail = o->prev;
  o->prev = o->next = nullptr;
  bytes -= o->charge;
  --count;
}

// The doorkeeper keeps one-time requests (one-hit wonders, scans) out of the counters, so
// the sketch's 4-bit counters hold repeated requests only. It costs as many bits as the
// counters (16-32 more bytes per object) and bought the margin on Zipf that per-victim
// ageing spends (without it, ageing lost Zipf 0.6 at 1% in bytes by 0.0002).
S3Fifo::S3Fifo(const Options& o)
    : opt_(o),
      small_target_(static_cast<std::uint64_t>(static_cast<double>(o.capacity) * o.small_fraction)),
      sketch_(/*doorkeeper=*/true) {}

S3Fifo::~S3Fifo() {
  for (List* l : {&small_, &main_})
    while (l->tail) {
      Object* o = l->tail;
      l->unlink(o);
      o->unref();
    }
}

void S3Fifo::link(Object* o, Queue q) {
  o->queue = q;
  list_of(q).push_head(o);
}

void S3Fifo::unlink(Object* o) {
  list_of(o->queue).unlink(o);
  o->queue = Queue::kNone;
}

void S3Fifo::fold(Object* o) {
  unsigned hits = o->freq.load(std::memory_order_relaxed);
  if (!hits) return;
  o->freq.store(0, std::memory_order_relaxed);
  o->clock = static_cast<std::uint8_t>(std::min(o->clock + hits, 3u));
  now_ += hits;
  o->seen = now_;
  if (opt_.admission) sketch_.add(key_hash(o->ns, o->key), hits);
}

unsigned S3Fifo::victim_estimate(const Object* v) const {
  std::uint64_t horizon = std::max<std::uint64_t>(sketch_.sample_size() / kAgeQuarters, 1);
  std::uint32_t age = now_ - v->seen;  // wraps like now_
  auto halvings = static_cast<unsigned>(std::min<std::uint64_t>(age / horizon, kMaxAgeing));
  return sketch_.estimate(key_hash(v->ns, v->key)) >> halvings;
}

void S3Fifo::insert(Object* o, std::int64_t now, std::vector<ObjRef>* victims) {
  if (o->removed || o->queue != Queue::kNone) return;
  o->ref();
  auto& c = counters_[static_cast<std::size_t>(o->ns)];
  ++c.objects;
  c.bytes += o->charge;
  ++c.admissions;
  if (o->expiry != 0) expiry_.emplace(o->expiry, o);
  std::uint64_t h = key_hash(o->ns, o->key);
  o->seen = ++now_;
  if (opt_.admission) count_request(h);  // the miss is one request
  // Without admission a key in the ghost skips the small queue; with it the sketch, which
  // remembers more for less memory, decides at the small queue's tail instead.
  link(o, !opt_.admission && ghost_take(h) ? Queue::kMain : Queue::kSmall);
  evict(now, victims);
}

ObjRef S3Fifo::remove(Object* o) {
  o->removed = true;
  if (o->queue == Queue::kNone) return {};
  unlink(o);
  return release(o);
}

ObjRef S3Fifo::release(Object* o) {
  o->removed = true;
  auto& c = counters_[static_cast<std::size_t>(o->ns)];
  --c.objects;
  c.bytes -= o->charge;
  if (o->expiry != 0) expiry_.erase({o->expiry, o});
  return ObjRef::adopt(o);
}

void S3Fifo::replace(Object* old, Object* fresh, std::int64_t now, std::vector<ObjRef>* victims) {
  if (old->queue == Queue::kNone || fresh->removed) {
    old->removed = true;
    insert(fresh, now, victims);
    return;
  }
  Queue q = old->queue;
  List& l = list_of(q);
  // Splice `fresh` in right after `old` (towards the tail), then take `old` out.
  fresh->ref();
  fresh->queue = q;
  fresh->prev = old;
  fresh->next = old->next;
  if (old->next) old->next->prev = fresh; else l.tail = fresh;
  old->next = fresh;
  l.bytes += fresh->charge;
  ++l.count;
  fresh->freq.store(old->freq.load(std::memory_order_relaxed), std::memory_order_relaxed);
  fresh->clock = old->clock;
  fresh->seen = old->seen;
  auto& c = counters_[static_cast<std::size_t>(fresh->ns)];
  ++c.objects;
  c.bytes += fresh->charge;
  if (fresh->expiry != 0) expiry_.emplace(fresh->expiry, fresh);
  victims->push_back(remove(old));
  evict(now, victims);
}

void S3Fifo::drop(Object* o, std::vector<ObjRef>* victims) {
  ++counters_[static_cast<std::size_t>(o->ns)].evictions;
  victims->push_back(remove(o));
}

void S3Fifo::evict(std::int64_t now, std::vector<ObjRef>* victims) {
  while (used() > opt_.capacity && (small_.count || main_.count)) {
    if (!expiry_.empty() && expiry_.begin()->first + opt_.dead_after < now) {
      drop(expiry_.begin()->second, victims);
    } else if (small_.count && (main_.count == 0 || small_.bytes > small_target_)) {
      evict_small(victims);
    } else {
      evict_main(victims);
    }
  }
}

void S3Fifo::evict_small(std::vector<ObjRef>* victims) {
  Object* t = small_.tail;
  fold(t);
  if (opt_.admission) {
    admit_or_drop(t, victims);
    return;
  }
  if (t->clock >= opt_.move_to_main_threshold) {
    unlink(t);
    t->clock = 0;
    link(t, Queue::kMain);
    return;
  }
  ghost_add(key_hash(t->ns, t->key), t->charge);
  drop(t, victims);
}

// TinyLFU at the small queue's tail, size-aware: t enters main only if its estimate is
// higher than that of the victims (after lazy re-insertion) that must go to fit it in
// main's share (hits in small count: they were folded). The victims are taken out one by one
// until t fits; the first one t does not beat ends the duel (t loses), unless t is warm
// (estimate >= kSkipEstimate) and the victims it does not beat hold no more than
// 1/kSkipShare of its bytes: those are passed over and the search goes on. If t wins, the
// victims it beat are evicted and those passed over go back to main's tail; if it loses, t
// is evicted and every victim goes back to main's tail in its order, so they stay the next
// victims and face the next candidate. A one-hit wonder (estimate 1) loses every tie, so the
// small queue still filters them. t enters at main's head, unless it is a first-timer (it
// can only have taken free room) at least kFirstTimerTail times main's mean object: then at
// main's tail.
//
// Why "back to the tail": sending a winning victim to main's head (one more pass) and
// evicting the victims t had already beaten before it lost cost bytes: a large candidate
// destroyed small victims on its way to losing, and stale winners got another full pass.
// Comparing t with the victims' byte-weighted average instead let large lukewarm objects in
// and cost both objects and bytes (docs/CACHE_STORE.md has the figures).
void S3Fifo::admit_or_drop(Object* t, std::vector<ObjRef>* victims) {
  unsigned et = sketch_.estimate(key_hash(t->ns, t->key));
  std::uint64_t main_target = opt_.capacity - std::min(small_target_, opt_.capacity);
  duel_.clear();
  std::uint64_t passed_bytes = 0;  // victims t does not beat, passed over
  bool lost = false;
  while (main_.bytes + passed_bytes + t->charge > main_target && main_.count) {
    Object* v = main_victim();
    unlink(v);
    duel_.push_back(v);
    if (et < kMinDisplace || victim_estimate(v) >= et) {
      passed_bytes += v->charge;
      v->queue = Queue::kMain;  // marks "passed over" until the duel ends
      if (et < kSkipEstimate || passed_bytes * kSkipShare > t->charge) {
        lost = true;
        break;
      }
    }
  }
  // Main emptied with passed-over victims still in the way: t does not fit.
  if (!lost && passed_bytes && main_.bytes + passed_bytes + t->charge > main_target) lost = true;
  if (lost) {
    drop(t, victims);
    for (auto it = duel_.rbegin(); it != duel_.rend(); ++it) {
      (*it)->queue = Queue::kMain;
      main_.push_tail(*it);
    }
    if (et >= kWarm && ++warm_rejections_ >= kWarmRejections) {
      sketch_.halve();
      warm_rejections_ = 0;
    }
    return;
  }
  for (auto it = duel_.rbegin(); it != duel_.rend(); ++it)
    if ((*it)->queue == Queue::kMain) main_.push_tail(*it);
  for (Object* v : duel_) {
    if (v->queue == Queue::kMain) continue;
    ++counters_[static_cast<std::size_t>(v->ns)].evictions;
    victims->push_back(release(v));
  }
  unlink(t);
  t->clock = 0;
  t->queue = Queue::kMain;
  // Only free room takes a first-timer (below kMinDisplace every victim ends the duel).
  if (et < kMinDisplace && t->charge * main_.count >= kFirstTimerTail * main_.bytes)
    main_.push_tail(t);
  else
    main_.push_head(t);
}

Object* S3Fifo::main_victim() {
  for (;;) {
    Object* t = main_.tail;
    fold(t);
    if (t->clock == 0) return t;
    --t->clock;
    unlink(t);
    link(t, Queue::kMain);
  }
}

void S3Fifo::evict_main(std::vector<ObjRef>* victims) { drop(main_victim(), victims); }

void S3Fifo::ghost_add(std::uint64_t hash, std::uint64_t bytes) {
  std::uint64_t seq = ++ghost_seq_;
  ghost_[hash] = seq;
  ghost_fifo_.push_back(Ghost{hash, seq, bytes});
  ghost_bytes_ += bytes;
  auto limit = static_cast<std::uint64_t>(static_cast<double>(opt_.capacity) * opt_.ghost_fraction);
  while (ghost_bytes_ > limit && !ghost_fifo_.empty()) {
    Ghost g = ghost_fifo_.front();
    ghost_fifo_.pop_front();
    ghost_bytes_ -= g.bytes;
    auto it = ghost_.find(g.hash);
    if (it != ghost_.end() && it->second == g.seq) ghost_.erase(it);
  }
}

bool S3Fifo::ghost_take(std::uint64_t hash) { return ghost_.erase(hash) > 0; }

bool S3Fifo::would_keep(std::uint64_t hash) const {
  if (used() + opt_.capacity / 16 <= opt_.capacity) return true;  // room: nothing is evicted for it yet
  if (!opt_.admission) return ghost_.count(hash) > 0;               // a ghost enters main at once
  // It enters the small queue and meets main's next victim at its tail with its count plus
  // this request; it is worth fetching when its count alone already beats that victim's.
  // (Measured through the proxy, docs/CACHE_STORE.md: the duel itself, with this request's
  // count, fetched bodies that were evicted unread often enough to cost bytes.)
  return !main_.tail || sketch_.estimate(hash) > victim_estimate(main_.tail);
}

void S3Fifo::count_request(std::uint64_t hash) {
  // Two words (8 keys' counters) per object in memory, at least kSketchFloor words; it grows
  // by doubling, so rarely.
  sketch_.ensure_capacity(std::max<std::size_t>(2 * (small_.count + main_.count + 1), kSketchFloor));
  sketch_.add(hash);
}

void S3Fifo::note_request(std::uint64_t hash) {
  if (!opt_.admission) return;
  count_request(hash);
  ++now_;  // policy time counts the sketch's additions
}

std::vector<std::string> S3Fifo::order() const {
  std::vector<std::string> out;
  for (const List* l : {&main_, &small_})
    for (Object* o = l->tail; o; o = o->prev) out.push_back(o->key);
  return out;
}

}  // namespace outpost::cache::detail
