#include "cache/s3fifo.hpp"

#include <algorithm>

namespace outpost::cache::detail {

namespace {
// The sketch's smallest table (32 KiB): a cache of a few hundred objects still gets a
// history of 40 000 requests.
constexpr std::size_t kSketchFloor = 4096;
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

void S3Fifo::List::unlink(Object* o) {
  if (o->prev) o->prev->next = o->next; else head = o->next;
  if (o->next) o->next->prev = o->prev; else tail = o->prev;
  o->prev = o->next = nullptr;
  bytes -= o->charge;
  --count;
}

S3Fifo::S3Fifo(const Options& o)
    : opt_(o),
      small_target_(static_cast<std::uint64_t>(static_cast<double>(o.capacity) * o.small_fraction)) {}

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
  if (opt_.admission) sketch_.add(key_hash(o->ns, o->key), hits);
}

void S3Fifo::insert(Object* o, std::int64_t now, std::vector<ObjRef>* victims) {
  if (o->removed || o->queue != Queue::kNone) return;
  o->ref();
  auto& c = counters_[static_cast<std::size_t>(o->ns)];
  ++c.objects;
  c.bytes += o->charge;
  ++c.admissions;
  if (o->expiry != 0) {
    o->expiry_pos = expiry_.emplace(o->expiry, o);
    o->in_expiry = true;
  }
  std::uint64_t h = key_hash(o->ns, o->key);
  if (opt_.admission) {
    // Two words (8 keys' counters) per object in memory, at least kSketchFloor words; it
    // grows by doubling, so rarely. The miss is one request.
    sketch_.ensure_capacity(std::max<std::size_t>(2 * (small_.count + main_.count + 1), kSketchFloor));
    sketch_.add(h);
  }
  // Without admission a key in the ghost skips the small queue; with it the sketch, which
  // remembers more for less memory, decides at the small queue's tail instead.
  link(o, !opt_.admission && ghost_take(h) ? Queue::kMain : Queue::kSmall);
  evict(now, victims);
}

ObjRef S3Fifo::remove(Object* o) {
  o->removed = true;
  if (o->queue == Queue::kNone) return {};
  unlink(o);
  auto& c = counters_[static_cast<std::size_t>(o->ns)];
  --c.objects;
  c.bytes -= o->charge;
  if (o->in_expiry) {
    expiry_.erase(o->expiry_pos);
    o->in_expiry = false;
  }
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
  auto& c = counters_[static_cast<std::size_t>(fresh->ns)];
  ++c.objects;
  c.bytes += fresh->charge;
  if (fresh->expiry != 0) {
    fresh->expiry_pos = expiry_.emplace(fresh->expiry, fresh);
    fresh->in_expiry = true;
  }
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

// TinyLFU at the small queue's tail: t enters main only by beating, one by one, as many of
// main's victims (after lazy re-insertion) as must go to fit it in main's share, each on
// the sketch's estimate (hits in small count: they were folded). A one-hit wonder (estimate
// 1) loses to nearly anything. A victim that wins moves to main's head: it has one more
// pass to be hit, and the next candidate meets the next victim, so one object with a large
// stale count cannot turn every newcomer away.
void S3Fifo::admit_or_drop(Object* t, std::vector<ObjRef>* victims) {
  unsigned et = sketch_.estimate(key_hash(t->ns, t->key));
  std::uint64_t main_target = opt_.capacity - std::min(small_target_, opt_.capacity);
  while (main_.bytes + t->charge > main_target && main_.count) {
    Object* v = main_victim();
    if (et <= sketch_.estimate(key_hash(v->ns, v->key))) {
      drop(t, victims);
      unlink(v);
      link(v, Queue::kMain);
      return;
    }
    drop(v, victims);
  }
  unlink(t);
  t->clock = 0;
  link(t, Queue::kMain);
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

std::vector<std::string> S3Fifo::order() const {
  std::vector<std::string> out;
  for (const List* l : {&main_, &small_})
    for (Object* o = l->tail; o; o = o->prev) out.push_back(o->key);
  return out;
}

}  // namespace outpost::cache::detail
