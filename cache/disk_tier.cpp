// The disk tier: log-structured segment files written and read by one I/O thread.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include "cache/crc32c.hpp"
#include "cache/disk_backend.hpp"
#include "cache/record.hpp"
#include "cache/segment_file.hpp"

namespace outpost::cache::detail {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kFullRetry = std::chrono::seconds(30);

// Walks the records of one segment image. on_record(header, offset, payload) for every
// record whose checksums match; on_corrupt(ns or nullopt) for each bad one. A bad header ends
// the walk (its length cannot be trusted); a bad payload skips just that record. Returns
// where the walk stopped: the end of the last well-formed record.
template <typename OnRecord, typename OnCorrupt>
std::size_t scan_records(const std::vector<unsigned char>& buf, OnRecord on_record, OnCorrupt on_corrupt) {
  std::size_t off = 0, n = buf.size();
  while (off < n) {
    std::size_t avail = n - off;
    if (avail < kRecordHeaderSize) {
      on_corrupt(std::nullopt);  // torn header
      return off;
    }
    auto h = decode_header(buf.data() + off);
    if (!h) {
      bool zero = std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(off), buf.end(), [](unsigned char c) { return c == 0; });
      if (!zero) on_corrupt(std::nullopt);
      return off;
    }
    if (h->record_len() > avail) {
      on_corrupt(h->ns);  // torn payload
      return off;
    }
    const unsigned char* payload = buf.data() + off + kRecordHeaderSize;
    if (crc32c_extend(0, payload, h->payload_len()) != h->payload_crc) {
      on_corrupt(h->ns);
    } else {
      on_record(*h, off, payload);
    }
    off += h->record_len();
  }
  return off;
}

class DiskTier final : public DiskBackend {
 public:
  DiskTier(const StoreOptions& opt, DiskEvents* events)
      : opt_(opt), events_(events), max_segments_(std::max<std::uint64_t>(opt.disk_size / opt.segment_size, 2)) {}

  ~DiskTier() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  bool open(std::string* error) {
    std::error_code ec;
    std::filesystem::create_directories(opt_.disk_dir, ec);  // errors show up in list() below
    std::vector<std::uint64_t> ids;
    if (!SegmentFile::list(opt_.disk_dir, &ids, error)) return false;
    auto t0 = SteadyClock::now();
    std::vector<unsigned char> buf;
    std::size_t last_end = 0;
    for (auto id : ids) {
      int err = 0;
      auto f = SegmentFile::open(opt_.disk_dir, id, &err);
      if (!f || !f->read_all(&buf)) {
        if (error) *error = SegmentFile::path_for(opt_.disk_dir, id) + ": " + std::strerror(err ? err : EIO);
        return false;
      }
      last_end = recover_segment(id, buf);
      segments_[id] = f->size();
    }
    recovery_seconds_ = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    // Keep appending to the newest segment, after its last well-formed record (a torn tail is
    // cut off), so that restarts do not leave a trail of part-filled segments.
    int err = 0;
    if (!ids.empty() && last_end + kRecordHeaderSize < opt_.segment_size) {
      active_ = SegmentFile::resume(opt_.disk_dir, ids.back(), last_end, &err);
    } else {
      std::uint64_t next = ids.empty() ? 1 : ids.back() + 1;
      active_ = SegmentFile::create(opt_.disk_dir, next, &err);
    }
    if (!active_) {
      if (error) *error = opt_.disk_dir + ": cannot open the active segment: " + std::strerror(err);
      return false;
    }
    segments_[active_->id()] = active_->size();
    while (segments_.size() > max_segments_) reclaim(segments_.begin()->first);  // budget shrank
    segment_count_ = segments_.size();
    spdlog::info("cache: disk tier {}: {} segments, {} records recovered, {} corrupt skipped, {:.3f}s",
                 opt_.disk_dir, ids.size(), recovered_records_.load(), corrupt_total_, recovery_seconds_.load());
    thread_ = std::thread([this] { run(); });
    return true;
  }

  void write(ObjRef obj) override { push_write(Task{RecordKind::kObject, obj->ns, {}, std::move(obj)}); }
  void write_tombstone(Namespace ns, std::string key) override { push_write(Task{RecordKind::kErase, ns, std::move(key)}); }
  void write_purge(Namespace ns) override { push_write(Task{RecordKind::kPurge, ns, {}}); }

  void read(Namespace ns, std::string key, DiskLoc loc, ReadDone done) override {
    {
      std::lock_guard lock(mu_);
      reads_.push_back(ReadTask{ns, std::move(key), loc, std::move(done)});
    }
    cv_.notify_one();
  }

  void flush() override {
    std::promise<void> done;
    auto f = done.get_future();
    Task t{RecordKind::kObject, Namespace::kHttp, {}};
    t.barrier = &done;
    push_write(std::move(t));
    f.wait();
  }

  bool full() const override {
    if (!full_.load(std::memory_order_relaxed)) return false;
    std::lock_guard lock(full_mu_);
    return SteadyClock::now() - full_since_ < kFullRetry;  // after a while, let writes try again
  }
  std::uint64_t segments() const override { return segment_count_.load(); }
  DiskCounters counters(Namespace ns) const override {
    auto& c = counters_[static_cast<std::size_t>(ns)];
    return DiskCounters{c.writes.load(), c.evictions.load(), c.corrupt.load(), c.rejected.load()};
  }
  std::uint64_t recovered_records() const override { return recovered_records_.load(); }
  double recovery_seconds() const override { return recovery_seconds_.load(); }

 private:
  struct Task {
    RecordKind kind;
    Namespace ns;
    std::string key;
    ObjRef obj;
    std::promise<void>* barrier = nullptr;
  };
  struct ReadTask {
    Namespace ns;
    std::string key;
    DiskLoc loc;
    ReadDone done;
  };
  struct AtomicCounters {
    std::atomic<std::uint64_t> writes{0}, evictions{0}, corrupt{0}, rejected{0};
  };

  void push_write(Task t) {
    {
      std::lock_guard lock(mu_);
      writes_.push_back(std::move(t));
    }
    cv_.notify_one();
  }

  AtomicCounters& count(Namespace ns) { return counters_[static_cast<std::size_t>(ns)]; }
  std::int64_t wall_now() const {
    return opt_.clock ? opt_.clock() : static_cast<std::int64_t>(std::time(nullptr));
  }

  std::size_t recover_segment(std::uint64_t id, const std::vector<unsigned char>& buf) {
    return scan_records(
        buf,
        [&](const RecordHeader& h, std::size_t off, const unsigned char* payload) {
          std::string_view key(reinterpret_cast<const char*>(payload), h.key_len);
          switch (h.kind) {
            case RecordKind::kObject:
              events_->on_recovered(h.ns, key, DiskLoc{id, off, static_cast<std::uint32_t>(h.record_len())});
              break;
            case RecordKind::kErase: events_->on_recovered_erase(h.ns, key); break;
            case RecordKind::kPurge: events_->on_recovered_purge(h.ns); break;
          }
          next_seq_ = std::max(next_seq_, h.seq + 1);
          recovered_records_.fetch_add(1, std::memory_order_relaxed);
        },
        [&](std::optional<Namespace> ns) {
          count(ns.value_or(Namespace::kOther)).corrupt.fetch_add(1, std::memory_order_relaxed);
          ++corrupt_total_;
        });
  }

  // I/O thread.
  void run() {
    for (;;) {
      std::optional<ReadTask> r;
      std::optional<Task> w;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !reads_.empty() || !writes_.empty(); });
        if (!reads_.empty()) {
          r.emplace(std::move(reads_.front()));
          reads_.pop_front();
        } else if (!writes_.empty()) {
          w.emplace(std::move(writes_.front()));
          writes_.pop_front();
        } else {
          return;  // stopping and drained
        }
      }
      if (r) do_read(*r);
      if (w) do_write(*w);
    }
  }

  void do_write(Task& t) {
    if (t.barrier) {
      t.barrier->set_value();
      return;
    }
    RecordHeader h;
    h.kind = t.kind;
    h.ns = t.ns;
    std::string_view key = t.obj ? std::string_view(t.obj->key) : std::string_view(t.key);
    std::vector<iovec> iov;
    unsigned char header[kRecordHeaderSize];
    iov.push_back({header, kRecordHeaderSize});
    iov.push_back({const_cast<char*>(key.data()), key.size()});
    std::uint32_t crc = crc32c_extend(0, key.data(), key.size());
    if (t.obj) {
      const Object& o = *t.obj;
      h.body_len = o.body_size;
      h.expiry = o.expiry;
      h.meta_len = static_cast<std::uint32_t>(o.meta.size());
      iov.push_back({const_cast<char*>(o.meta.data()), o.meta.size()});
      crc = crc32c_extend(crc, o.meta.data(), o.meta.size());
      for (auto& s : o.body) {
        iov.push_back({const_cast<char*>(s.data), s.size});
        crc = crc32c_extend(crc, s.data, s.size);
      }
    }
    h.key_len = static_cast<std::uint16_t>(key.size());
    h.payload_crc = crc;
    h.seq = next_seq_++;
    encode_header(h, header);
    DiskLoc loc;
    bool ok = h.record_len() <= opt_.segment_size && key.size() <= 0xFFFF && !full() && append(iov, h.record_len(), &loc);
    if (t.obj) {
      if (ok) {
        count(t.ns).writes.fetch_add(1, std::memory_order_relaxed);
      } else {
        count(t.ns).rejected.fetch_add(1, std::memory_order_relaxed);
      }
      events_->on_written(*t.obj, loc);
    }
  }

  // Appends one record to the active segment (rolling and reclaiming as needed).
  bool append(const std::vector<iovec>& iov, std::uint64_t len, DiskLoc* loc) {
    if (active_->size() + len > opt_.segment_size && !roll()) return false;
    std::uint64_t off = 0;
    int err = active_->append(iov.data(), static_cast<int>(iov.size()), &off);
    if (err) {
      set_full(err);
      return false;
    }
    segments_[active_->id()] = active_->size();
    *loc = DiskLoc{active_->id(), off, static_cast<std::uint32_t>(len)};
    if (full_.load(std::memory_order_relaxed)) {
      full_ = false;
      spdlog::info("cache: disk tier {} writable again", opt_.disk_dir);
    }
    return true;
  }

  void set_full(int err) {
    {
      std::lock_guard lock(full_mu_);
      full_since_ = SteadyClock::now();
    }
    if (!full_.exchange(true))
      spdlog::warn("cache: disk tier {}: {}; admission to disk stopped, serving continues", opt_.disk_dir,
                   std::strerror(err));
  }

  bool roll() {
    int err = 0;
    std::uint64_t next = active_->id() + 1;
    auto f = SegmentFile::create(opt_.disk_dir, next, &err);
    if (!f) {
      set_full(err);
      return false;
    }
    active_ = std::move(f);
    segments_[next] = 0;
    while (segments_.size() > max_segments_) reclaim(segments_.begin()->first);
    segment_count_ = segments_.size();
    return true;
  }

  // Oldest-first reclaim: live records read since they were written (and not long dead) are
  // re-written to the active segment, up to half a segment; the rest are dropped.
  void reclaim(std::uint64_t id) {
    int err = 0;
    std::vector<unsigned char> buf;
    auto f = SegmentFile::open(opt_.disk_dir, id, &err);
    if (f && f->read_all(&buf)) {
      std::uint64_t budget = opt_.segment_size / 2;
      std::int64_t now = wall_now();
      scan_records(
          buf,
          [&](const RecordHeader& h, std::size_t off, const unsigned char* payload) {
            if (h.kind != RecordKind::kObject) return;
            std::string_view key(reinterpret_cast<const char*>(payload), h.key_len);
            DiskLoc from{id, off, static_cast<std::uint32_t>(h.record_len())};
            bool referenced = false;
            if (!events_->is_live(h.ns, key, from, &referenced)) return;
            bool dead = h.expiry != 0 && h.expiry + opt_.dead_after < now;
            if (referenced && !dead && h.record_len() <= budget) {
              iovec one{const_cast<unsigned char*>(buf.data() + off), h.record_len()};
              std::uint64_t to_off = 0;
              if (active_->append(&one, 1, &to_off) == 0) {
                budget -= h.record_len();
                events_->on_moved(h.ns, key, from, DiskLoc{active_->id(), to_off, from.length});
                return;
              }
            }
            count(h.ns).evictions.fetch_add(1, std::memory_order_relaxed);
            events_->on_dropped(h.ns, key, from, false);
          },
          [](std::optional<Namespace>) {});
    }
    active_->sync();  // re-written copies are durable before the originals go
    f.reset();
    SegmentFile::remove(opt_.disk_dir, id);
    segments_.erase(id);
    segments_[active_->id()] = active_->size();
  }

  void do_read(ReadTask& r) {
    if (!events_->is_live(r.ns, r.key, r.loc, nullptr)) {
      // Moved by a reclaim since the lookup (a record being read is a referenced one, the kind
      // a reclaim re-writes), or replaced, erased or dropped meanwhile: read it where it is now.
      r.loc = events_->live_loc(r.ns, r.key);
      if (!r.loc.valid()) {
        r.done(ObjRef(), r.loc);
        return;
      }
    }
    int err = 0;
    std::unique_ptr<SegmentFile> other;
    const SegmentFile* f = active_.get();
    if (r.loc.segment != active_->id()) {
      other = SegmentFile::open(opt_.disk_dir, r.loc.segment, &err);
      f = other.get();
    }
    ChunkRef chunk = ChunkRef::make(r.loc.length);
    std::optional<RecordHeader> h;
    bool ok = f && f->read(r.loc.offset, chunk->data(), r.loc.length);
    if (ok) {
      chunk->set_size(r.loc.length);
      const auto* p = reinterpret_cast<const unsigned char*>(chunk->data());
      h = decode_header(p);
      ok = h && h->kind == RecordKind::kObject && h->ns == r.ns && h->record_len() == r.loc.length &&
           std::string_view(chunk->data() + kRecordHeaderSize, h->key_len) == r.key &&
           crc32c_extend(0, p + kRecordHeaderSize, h->payload_len()) == h->payload_crc;
    }
    if (!ok) {
      spdlog::warn("cache: corrupt record for {} key {} in segment {:x}; dropped", namespace_name(r.ns), r.key,
                   r.loc.segment);
      count(r.ns).corrupt.fetch_add(1, std::memory_order_relaxed);
      events_->on_dropped(r.ns, r.key, r.loc, true);
      r.done(ObjRef(), r.loc);
      return;
    }
    const char* meta = chunk->data() + kRecordHeaderSize + h->key_len;
    const char* body = meta + h->meta_len;
    std::vector<Slice> slices;
    if (h->body_len) slices.push_back(Slice{chunk, body, h->body_len});
    r.done(build_object(opt_, r.ns, r.key, std::string(meta, h->meta_len), std::move(slices), h->expiry), r.loc);
  }

  StoreOptions opt_;
  DiskEvents* events_;
  std::uint64_t max_segments_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> writes_;
  std::deque<ReadTask> reads_;
  bool stop_ = false;
  std::thread thread_;

  // I/O thread only (and open() before the thread starts).
  std::map<std::uint64_t, std::uint64_t> segments_;  // id -> bytes
  std::unique_ptr<SegmentFile> active_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t corrupt_total_ = 0;

  std::atomic<bool> full_{false};
  mutable std::mutex full_mu_;
  SteadyClock::time_point full_since_;
  std::atomic<std::uint64_t> segment_count_{0};
  std::atomic<std::uint64_t> recovered_records_{0};
  std::atomic<double> recovery_seconds_{0};
  std::array<AtomicCounters, kNamespaceCount> counters_;
};

}  // namespace

std::unique_ptr<DiskBackend> open_disk_tier(const StoreOptions& opt, DiskEvents* events, std::string* error) {
  if (opt.segment_size < 4096) {
    if (error) *error = "segment_size too small";
    return nullptr;
  }
  auto t = std::make_unique<DiskTier>(opt, events);
  if (!t->open(error)) return nullptr;
  return t;
}

}  // namespace outpost::cache::detail
