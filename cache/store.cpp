#include "cache/store.hpp"

#include <ctime>

#include "cache/store_impl.hpp"

namespace outpost::cache {

using namespace detail;

std::string_view namespace_name(Namespace ns) {
  static constexpr std::string_view names[] = {"http", "dns", "cert", "ftp", "other"};
  auto i = static_cast<std::size_t>(ns);
  return i < kNamespaceCount ? names[i] : "?";
}

std::string_view status_name(Status s) {
  static constexpr std::string_view names[] = {"ok", "not found", "too large", "aborted", "busy", "closed"};
  return names[static_cast<std::size_t>(s)];
}

StoreOptions StoreOptions::from_config(const Config::Cache& c) {
  StoreOptions o;
  o.memory_size = c.memory_size;
  o.max_object_size = c.max_object_size;
  o.disk_dir = c.disk_dir;
  o.disk_size = c.disk_size;
  o.segment_size = c.segment_size;
  return o;
}

void NamespaceStats::add(const NamespaceStats& o) {
  objects_memory += o.objects_memory;
  objects_disk += o.objects_disk;
  bytes_memory += o.bytes_memory;
  bytes_disk += o.bytes_disk;
  lookups += o.lookups;
  hits += o.hits;
  disk_hits += o.disk_hits;
  misses += o.misses;
  admissions += o.admissions;
  evictions += o.evictions;
  rejected += o.rejected;
  disk_rejected += o.disk_rejected;
  disk_writes += o.disk_writes;
  disk_evictions += o.disk_evictions;
  corrupt_skipped += o.corrupt_skipped;
}

NamespaceStats StoreStats::total() const {
  NamespaceStats t;
  for (auto& n : ns) t.add(n);
  return t;
}

namespace detail {

StoreImpl::StoreImpl(const StoreOptions& opt)
    : opt_(opt),
      index_(opt.shards),
      policy_(S3Fifo::Options{opt.memory_size, opt.small_fraction, opt.move_to_main_threshold, opt.dead_after,
                              opt.ghost_fraction, opt.frequency_admission}) {}

// The disk tier goes first: its I/O thread reports into the index.
StoreImpl::~StoreImpl() { disk_.reset(); }

bool StoreImpl::open_disk(std::string* error) {
  if (opt_.disk_dir.empty()) return true;
  disk_ = open_disk_tier(opt_, this, error);
  return disk_ != nullptr;
}

std::int64_t StoreImpl::now() const { return opt_.clock ? opt_.clock() : static_cast<std::int64_t>(std::time(nullptr)); }

Object* StoreImpl::probe(Namespace ns, std::string_view key, DiskLoc* disk, bool count_disk) {
  HashedKey k{key, KeyHash{}(key)};
  Shard& sh = index_.shard_for(ns, k);
  ReadGuard lock(sh.lock);
  auto& c = sh.count(lock.slot(), ns);
  auto& m = sh.map(ns);
  auto it = m.find(k);
  if (it != m.end() && it->second.mem) {
    Object* o = hold_memory(it->second);
    bump(c.lookups);
    bump(c.hits);
    return o;
  }
  if (disk && it != m.end() && it->second.disk.valid() && disk_) {
    *disk = it->second.disk;  // counted as a disk hit or a miss once the read is done
    if (count_disk) {
      bump(c.lookups);
      mark_referenced(it->second);
    }
  } else {
    bump(c.lookups);
    bump(c.misses);
  }
  return nullptr;
}

Handle StoreImpl::lookup_memory(Namespace ns, std::string_view key, bool* on_disk) {
  DiskLoc loc;
  Object* o = probe(ns, key, &loc, false);
  *on_disk = loc.valid();
  return Handle(o);
}

Handle StoreImpl::lookup(Namespace ns, std::string_view key) { return Handle(probe(ns, key, nullptr)); }

void StoreImpl::lookup_async(Namespace ns, std::string_view key, Store::LookupDone done) {
  DiskLoc loc;
  Object* o = probe(ns, key, &loc);
  if (!loc.valid()) {
    done(Handle(o), false);
    return;
  }
  disk_->read(ns, std::string(key), loc, [this, ns, k = std::string(key), done = std::move(done)](ObjRef obj, DiskLoc at) {
    // No record any more: a new copy may have been committed to memory meanwhile.
    Handle h = obj ? promote(std::move(obj), at) : memory_copy(ns, k);
    disk_hits_[static_cast<std::size_t>(ns)].fetch_add(h ? 1 : 0, std::memory_order_relaxed);
    if (!h) bump(index_.shard(0).count(reader_slot(), ns).misses);  // counters are summed
    done(std::move(h), !obj && at.valid());  // a location read but nothing built: corrupt
  });
}

Handle StoreImpl::memory_copy(Namespace ns, std::string_view key) {
  Shard& sh = index_.shard_for(ns, key);
  ReadGuard lock(sh.lock);
  auto& m = sh.map(ns);
  auto it = m.find(key);
  if (it == m.end() || !it->second.mem) return {};
  return Handle(hold_memory(it->second));
}

bool StoreImpl::contains(Namespace ns, std::string_view key) {
  Shard& sh = index_.shard_for(ns, key);
  ReadGuard lock(sh.lock);
  auto& m = sh.map(ns);
  auto it = m.find(key);
  return it != m.end() && (it->second.mem || it->second.disk.valid());
}

bool StoreImpl::would_keep(Namespace ns, std::string_view key) {
  if (disk_ && !disk_->full()) return true;  // every commit is written to the disk FIFO
  std::lock_guard lock(policy_mu_);
  return policy_.would_keep(key_hash(ns, key));
}

void StoreImpl::note_request(Namespace ns, std::string_view key) {
  std::lock_guard lock(policy_mu_);
  policy_.note_request(key_hash(ns, key));
}

Handle StoreImpl::promote(ObjRef obj, DiskLoc loc) {
  Shard& sh = index_.shard_for(obj->ns, obj->key);
  {
    std::lock_guard lock(sh.lock);
    auto& m = sh.map(obj->ns);
    auto it = m.find(obj->key);
    if (it == m.end()) return {};
    Entry& e = it->second;
    if (e.mem) return Handle(ObjRef(e.mem).release());
    if (!(e.disk == loc)) return {};
    obj->version = e.version;
    e.mem = obj;
  }
  std::vector<ObjRef> victims;
  {
    std::lock_guard lock(policy_mu_);
    policy_.insert(obj.get(), now(), &victims);
  }
  drop_victims(victims);
  return Handle(obj.release());
}

void StoreImpl::set_disk(Entry& e, Namespace ns, DiskLoc loc) {
  auto i = static_cast<std::size_t>(ns);
  if (e.disk.valid()) {
    disk_objects_[i].fetch_sub(1, std::memory_order_relaxed);
    disk_bytes_[i].fetch_sub(e.disk.length, std::memory_order_relaxed);
  }
  e.disk = loc;
  if (loc.valid()) {
    disk_objects_[i].fetch_add(1, std::memory_order_relaxed);
    disk_bytes_[i].fetch_add(loc.length, std::memory_order_relaxed);
  }
}

void StoreImpl::unregister(Shard& sh, const Pending& p) {
  auto& w = sh.writers(p.ns);
  auto it = w.find(p.key);
  if (it != w.end() && it->second.get() == &p) w.erase(it);
}

Status StoreImpl::admit(ObjRef obj, const Pending* finished, bool write_disk) {
  Namespace ns = obj->ns;
  Shard& sh = index_.shard_for(ns, obj->key);
  if (obj->body_size > opt_.max_object_size || obj->charge > opt_.memory_size) {
    count_rejected(ns);
    if (finished) {
      std::lock_guard lock(sh.lock);
      unregister(sh, *finished);
    }
    return Status::kTooLarge;
  }
  bool to_disk = write_disk && disk_ && !disk_->full();
  if (write_disk && disk_ && !to_disk) disk_skipped_[static_cast<std::size_t>(ns)].fetch_add(1, std::memory_order_relaxed);
  ObjRef old;
  {
    std::lock_guard lock(sh.lock);
    Entry& e = sh.map(ns)[obj->key];
    old = std::move(e.mem);
    e.mem = obj;
    set_disk(e, ns, {});
    e.version = obj->version;
    e.write_pending = to_disk;
    e.referenced.store(false, std::memory_order_relaxed);
    if (finished) unregister(sh, *finished);
  }
  std::vector<ObjRef> victims;
  {
    std::lock_guard lock(policy_mu_);
    if (old) {
      if (old->queue != Queue::kNone && !obj->removed) {
        policy_.replace(old.get(), obj.get(), now(), &victims);  // popularity belongs to the key
      } else {
        victims.push_back(policy_.remove(old.get()));
        policy_.insert(obj.get(), now(), &victims);
      }
    } else {
      policy_.insert(obj.get(), now(), &victims);
    }
  }
  drop_victims(victims);
  if (to_disk) disk_->write(std::move(obj));
  return Status::kOk;
}

void StoreImpl::drop_victims(std::vector<ObjRef>& victims) {
  for (auto& v : victims) {
    if (!v) continue;
    Shard& sh = index_.shard_for(v->ns, v->key);
    std::lock_guard lock(sh.lock);
    auto& m = sh.map(v->ns);
    auto it = m.find(v->key);
    if (it == m.end() || it->second.mem.get() != v.get()) continue;
    it->second.mem = ObjRef();
    if (!it->second.disk.valid() && !it->second.write_pending) m.erase(it);
  }
  victims.clear();  // frees bodies outside every lock
}

Writer StoreImpl::writer(Namespace ns, std::string_view key, std::string_view meta, std::int64_t expiry,
                         WriterMode mode, Status* status) {
  auto p = std::make_shared<Pending>();
  p->ns = ns;
  p->key.assign(key);
  p->meta.assign(meta);
  p->expiry = expiry;
  Shard& sh = index_.shard_for(ns, key);
  {
    std::lock_guard lock(sh.lock);
    auto& w = sh.writers(ns);
    auto it = w.find(key);
    if (it == w.end()) {
      w.emplace(p->key, p);
    } else if (mode == WriterMode::kExclusive) {
      if (status) *status = Status::kBusy;
      return {};
    } else {
      it->second = p;
    }
  }
  if (status) *status = Status::kOk;
  return Writer(this, std::move(p));
}

Reader StoreImpl::attach(Namespace ns, std::string_view key) {
  Shard& sh = index_.shard_for(ns, key);
  Reader r;
  ObjRef obj;
  {
    ReadGuard lock(sh.lock);
    auto& w = sh.writers(ns);
    if (auto it = w.find(key); it != w.end()) {
      r.p_ = it->second;
      return r;
    }
    auto& m = sh.map(ns);
    auto it = m.find(key);
    if (it == m.end() || !it->second.mem) return r;
    obj = it->second.mem;
  }
  auto p = std::make_shared<Pending>();
  p->ns = ns;
  p->key = obj->key;
  p->meta = obj->meta;
  p->expiry = obj->expiry;
  p->slices = obj->body;
  p->size = obj->body_size;
  p->state = Pending::State::kComplete;
  r.p_ = std::move(p);
  return r;
}

Status StoreImpl::append(Pending& p, Slice s) {
  if (p.state != Pending::State::kOpen) return p.error == Status::kOk ? Status::kClosed : p.error;
  if (p.size + s.size > opt_.max_object_size) {
    count_rejected(p.ns);
    Shard& sh = index_.shard_for(p.ns, p.key);
    {
      std::lock_guard lock(sh.lock);
      unregister(sh, p);
    }
    p.finish(Pending::State::kFailed, Status::kTooLarge);
    return Status::kTooLarge;
  }
  if (s.size) p.publish(std::move(s));
  return Status::kOk;
}

// The whole object at once: no writer to register, nobody can attach to it.
Status StoreImpl::insert(Namespace ns, std::string_view key, std::string_view meta, std::string_view body,
                         std::int64_t expiry) {
  if (body.size() > opt_.max_object_size) {
    count_rejected(ns);
    return Status::kTooLarge;
  }
  std::vector<Slice> slices;
  if (!body.empty()) {
    ChunkRef c = ChunkRef::copy_of(body);
    const char* data = c->data();
    slices.push_back(Slice{std::move(c), data, body.size()});
  }
  ObjRef obj = build_object(opt_, ns, key, std::string(meta), std::move(slices), expiry);
  obj->version = next_version_.fetch_add(1, std::memory_order_relaxed);
  return admit(std::move(obj), nullptr, true);
}

Status StoreImpl::commit(const std::shared_ptr<Pending>& p) {
  if (p->state != Pending::State::kOpen) return p->error == Status::kOk ? Status::kClosed : p->error;
  ObjRef obj = build_object(opt_, p->ns, p->key, p->meta, p->slices, p->expiry);
  obj->version = next_version_.fetch_add(1, std::memory_order_relaxed);
  Status st = admit(std::move(obj), p.get(), true);
  p->finish(Pending::State::kComplete, Status::kOk);
  return st;
}

void StoreImpl::abort(const std::shared_ptr<Pending>& p, Status why) {
  if (p->state != Pending::State::kOpen) return;
  Shard& sh = index_.shard_for(p->ns, p->key);
  {
    std::lock_guard lock(sh.lock);
    unregister(sh, *p);
  }
  p->finish(Pending::State::kFailed, why);
}

// `want`: the version the caller revalidated (0 = whatever is current).
Status StoreImpl::update_metadata(Namespace ns, std::string_view key, std::string_view meta, std::int64_t expiry,
                                  std::uint64_t want) {
  Shard& sh = index_.shard_for(ns, key);
  ObjRef old;
  DiskLoc loc;
  {
    std::lock_guard lock(sh.lock);
    auto& m = sh.map(ns);
    auto it = m.find(key);
    if (it == m.end() || (want && it->second.version != want)) return Status::kNotFound;
    old = it->second.mem;
    loc = it->second.disk;
    want = it->second.version;
  }
  if (old) {
    ObjRef fresh = build_object(opt_, ns, key, std::string(meta), old->body, expiry);
    fresh->version = next_version_.fetch_add(1, std::memory_order_relaxed);
    bool to_disk = disk_ && !disk_->full();
    {
      std::lock_guard lock(sh.lock);
      auto& m = sh.map(ns);
      auto it = m.find(key);
      if (it == m.end() || it->second.mem.get() != old.get()) return Status::kNotFound;  // changed meanwhile
      Entry& e = it->second;
      e.mem = fresh;
      set_disk(e, ns, {});
      e.version = fresh->version;
      e.write_pending = to_disk;
    }
    std::vector<ObjRef> victims;
    {
      std::lock_guard lock(policy_mu_);
      policy_.replace(old.get(), fresh.get(), now(), &victims);
    }
    drop_victims(victims);
    if (to_disk) disk_->write(std::move(fresh));
    return Status::kOk;
  }
  if (!loc.valid() || !disk_) return Status::kNotFound;
  // Only on disk: read it (I/O thread), promote it, then update the memory copy.
  disk_->read(ns, std::string(key), loc,
              [this, ns, want, meta = std::string(meta), expiry](ObjRef obj, DiskLoc at) {
                if (!obj) return;
                std::string k = obj->key;
                if (promote(std::move(obj), at)) update_metadata(ns, k, meta, expiry, want);
              });
  return Status::kOk;
}

bool StoreImpl::erase(Namespace ns, std::string_view key) {
  Shard& sh = index_.shard_for(ns, key);
  ObjRef mem;
  bool on_disk = false;
  {
    std::lock_guard lock(sh.lock);
    auto& m = sh.map(ns);
    auto it = m.find(key);
    if (it == m.end()) return false;
    mem = std::move(it->second.mem);
    on_disk = it->second.disk.valid() || it->second.write_pending;
    set_disk(it->second, ns, {});
    m.erase(it);
  }
  ObjRef dropped;
  if (mem) {
    std::lock_guard lock(policy_mu_);
    dropped = policy_.remove(mem.get());
  }
  if (on_disk && disk_) disk_->write_tombstone(ns, std::string(key));
  return true;
}

void StoreImpl::purge(Namespace ns) {
  std::vector<ObjRef> mems;
  for (std::size_t i = 0; i < index_.size(); ++i) {
    Shard& sh = index_.shard(i);
    std::lock_guard lock(sh.lock);
    for (auto& [k, e] : sh.map(ns)) {
      if (e.mem) mems.push_back(std::move(e.mem));
      set_disk(e, ns, {});
    }
    sh.map(ns).clear();
  }
  std::vector<ObjRef> victims;
  {
    std::lock_guard lock(policy_mu_);
    for (auto& m : mems) victims.push_back(policy_.remove(m.get()));
  }
  if (disk_) disk_->write_purge(ns);
}

std::vector<std::string> StoreImpl::keys_matching(Namespace ns, const std::function<bool(std::string_view)>& match,
                                                  std::size_t limit) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < index_.size() && out.size() < limit; ++i) {
    Shard& sh = index_.shard(i);
    std::lock_guard lock(sh.lock);
    for (auto& [k, e] : sh.map(ns)) {
      if (out.size() >= limit) break;
      if (match(k)) out.push_back(k);
    }
  }
  return out;
}

StoreStats StoreImpl::stats() const {
  StoreStats s;
  for (std::size_t i = 0; i < index_.size(); ++i) {
    Shard& sh = const_cast<Index&>(index_).shard(i);
    for (std::size_t slot = 0; slot < kReaderSlots; ++slot)
      for (std::size_t n = 0; n < kNamespaceCount; ++n) {
        const ShardCounters& c = sh.count(slot, static_cast<Namespace>(n));
        s.ns[n].lookups += c.lookups.load(std::memory_order_relaxed);
        s.ns[n].hits += c.hits.load(std::memory_order_relaxed);
        s.ns[n].misses += c.misses.load(std::memory_order_relaxed);
      }
  }
  {
    std::lock_guard lock(policy_mu_);
    for (std::size_t n = 0; n < kNamespaceCount; ++n) {
      const auto& c = policy_.counters(static_cast<Namespace>(n));
      s.ns[n].objects_memory = c.objects;
      s.ns[n].bytes_memory = c.bytes;
      s.ns[n].admissions = c.admissions;
      s.ns[n].evictions = c.evictions;
    }
  }
  for (std::size_t n = 0; n < kNamespaceCount; ++n) {
    auto& o = s.ns[n];
    o.rejected = rejected_[n].load(std::memory_order_relaxed);
    o.disk_hits = disk_hits_[n].load(std::memory_order_relaxed);
    o.objects_disk = static_cast<std::uint64_t>(disk_objects_[n].load(std::memory_order_relaxed));
    o.bytes_disk = static_cast<std::uint64_t>(disk_bytes_[n].load(std::memory_order_relaxed));
    if (disk_) {
      DiskCounters d = disk_->counters(static_cast<Namespace>(n));
      o.disk_writes = d.writes;
      o.disk_evictions = d.evictions;
      o.corrupt_skipped = d.corrupt;
      o.disk_rejected = d.rejected + disk_skipped_[n].load(std::memory_order_relaxed);
    }
  }
  if (disk_) {
    s.disk_enabled = true;
    s.disk_full = disk_->full();
    s.segments = disk_->segments();
    s.recovered_records = disk_->recovered_records();
    s.recovery_seconds = disk_->recovery_seconds();
  }
  return s;
}

void StoreImpl::flush() {
  if (disk_) disk_->flush();
}

void StoreImpl::on_written(const Object& obj, DiskLoc loc) {
  Shard& sh = index_.shard_for(obj.ns, obj.key);
  std::lock_guard lock(sh.lock);
  auto& m = sh.map(obj.ns);
  auto it = m.find(obj.key);
  if (it == m.end() || it->second.version != obj.version) return;
  Entry& e = it->second;
  e.write_pending = false;
  if (loc.valid()) {
    set_disk(e, obj.ns, loc);
    e.referenced.store(false, std::memory_order_relaxed);
  } else if (!e.mem) {
    m.erase(it);
  }
}

void StoreImpl::on_recovered(Namespace ns, std::string_view key, DiskLoc loc) {
  Shard& sh = index_.shard_for(ns, key);
  std::lock_guard lock(sh.lock);
  Entry& e = sh.map(ns)[std::string(key)];
  set_disk(e, ns, loc);
  e.version = next_version_.fetch_add(1, std::memory_order_relaxed);
}

void StoreImpl::on_recovered_erase(Namespace ns, std::string_view key) {
  Shard& sh = index_.shard_for(ns, key);
  std::lock_guard lock(sh.lock);
  auto& m = sh.map(ns);
  if (auto it = m.find(key); it != m.end()) {
    set_disk(it->second, ns, {});
    m.erase(it);
  }
}

void StoreImpl::on_recovered_purge(Namespace ns) {
  for (std::size_t i = 0; i < index_.size(); ++i) {
    Shard& sh = index_.shard(i);
    std::lock_guard lock(sh.lock);
    for (auto& [k, e] : sh.map(ns)) set_disk(e, ns, {});
    sh.map(ns).clear();
  }
}

bool StoreImpl::is_live(Namespace ns, std::string_view key, DiskLoc loc, bool* referenced) {
  Shard& sh = index_.shard_for(ns, key);
  ReadGuard lock(sh.lock);
  auto& m = sh.map(ns);
  auto it = m.find(key);
  if (it == m.end() || !(it->second.disk == loc)) return false;
  if (referenced) *referenced = it->second.referenced.load(std::memory_order_relaxed);
  return true;
}

DiskLoc StoreImpl::live_loc(Namespace ns, std::string_view key) {
  Shard& sh = index_.shard_for(ns, key);
  ReadGuard lock(sh.lock);
  auto& m = sh.map(ns);
  auto it = m.find(key);
  return it == m.end() ? DiskLoc{} : it->second.disk;
}

void StoreImpl::on_moved(Namespace ns, std::string_view key, DiskLoc from, DiskLoc to) {
  Shard& sh = index_.shard_for(ns, key);
  std::lock_guard lock(sh.lock);
  auto& m = sh.map(ns);
  auto it = m.find(key);
  if (it == m.end() || !(it->second.disk == from)) return;
  set_disk(it->second, ns, to);
  it->second.referenced.store(false, std::memory_order_relaxed);
}

void StoreImpl::on_dropped(Namespace ns, std::string_view key, DiskLoc loc, bool) {
  Shard& sh = index_.shard_for(ns, key);
  std::lock_guard lock(sh.lock);
  auto& m = sh.map(ns);
  auto it = m.find(key);
  if (it == m.end() || !(it->second.disk == loc)) return;
  set_disk(it->second, ns, {});
  if (!it->second.mem && !it->second.write_pending) m.erase(it);
}

}  // namespace detail

// ---- Store facade ----

Store::Store(std::unique_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

std::unique_ptr<Store> Store::open(const StoreOptions& options, std::string* error) {
  auto impl = std::make_unique<StoreImpl>(options);
  if (!impl->open_disk(error)) return nullptr;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Handle Store::lookup(Namespace ns, std::string_view key) { return impl_->lookup(ns, key); }
void Store::lookup_async(Namespace ns, std::string_view key, LookupDone done) {
  impl_->lookup_async(ns, key, std::move(done));
}
bool Store::contains(Namespace ns, std::string_view key) { return impl_->contains(ns, key); }
bool Store::would_keep(Namespace ns, std::string_view key) { return impl_->would_keep(ns, key); }
void Store::note_request(Namespace ns, std::string_view key) { impl_->note_request(ns, key); }
Handle Store::lookup_memory(Namespace ns, std::string_view key, bool* on_disk) {
  return impl_->lookup_memory(ns, key, on_disk);
}
Writer Store::writer(Namespace ns, std::string_view key, std::string_view metadata, std::int64_t expiry_hint,
                     WriterMode mode, Status* status) {
  return impl_->writer(ns, key, metadata, expiry_hint, mode, status);
}
Reader Store::attach(Namespace ns, std::string_view key) { return impl_->attach(ns, key); }
Status Store::insert(Namespace ns, std::string_view key, std::string_view metadata, std::string_view body,
                     std::int64_t expiry_hint) {
  return impl_->insert(ns, key, metadata, body, expiry_hint);
}
Status Store::update_metadata(Namespace ns, std::string_view key, std::string_view metadata, std::int64_t expiry_hint,
                              const Handle& revalidated) {
  return impl_->update_metadata(ns, key, metadata, expiry_hint, impl_->version_of(revalidated));
}
bool Store::erase(Namespace ns, std::string_view key) { return impl_->erase(ns, key); }
void Store::purge(Namespace ns) { impl_->purge(ns); }
std::vector<std::string> Store::keys_matching(Namespace ns, const std::function<bool(std::string_view)>& match,
                                              std::size_t limit) {
  return impl_->keys_matching(ns, match, limit);
}
StoreStats Store::stats() const { return impl_->stats(); }
std::uint64_t Store::max_object_size() const { return impl_->options().max_object_size; }
void Store::flush() { impl_->flush(); }

}  // namespace outpost::cache
