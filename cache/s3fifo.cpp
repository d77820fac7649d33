#include "cache/s3fifo.hpp"

#include <algorithm>

namespace outpost::cache::detail {

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
    : opt_(o), small_target_(static_cast<std::uint64_t>(static_cast<double>(o.capacity) * o.small_fraction)) {}

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
  link(o, ghost_take(key_hash(o->ns, o->key)) ? Queue::kMain : Queue::kSmall);
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
  if (t->freq.load(std::memory_order_relaxed) >= opt_.move_to_main_threshold) {
    unlink(t);
    t->freq.store(0, std::memory_order_relaxed);
    link(t, Queue::kMain);
    return;
  }
  ghost_add(key_hash(t->ns, t->key), t->charge);
  drop(t, victims);
}

void S3Fifo::evict_main(std::vector<ObjRef>* victims) {
  Object* t = main_.tail;
  auto f = t->freq.load(std::memory_order_relaxed);
  if (f > 0) {
    t->freq.store(static_cast<std::uint8_t>(f - 1), std::memory_order_relaxed);
    unlink(t);
    link(t, Queue::kMain);
    return;
  }
  drop(t, victims);
}

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
