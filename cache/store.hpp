// The shared cache store: one memory budget and one disk budget for every namespace (HTTP
// objects, DNS RRsets, minted certificates, FTP objects). It stores opaque metadata bytes plus
// a body held in reference-counted chunks; it never interprets either and never decides
// freshness (the caller's expiry hint only tells it which objects are long dead).
//
// Threading: every Store method may be called from any thread at once. Hits take one shard
// lock for a few instructions and no global lock; no lock is held while the caller uses a
// Handle (the body slices can be handed to uv_write as they are, keep the Handle alive until
// the write callback). Disk I/O runs only on the store's own I/O thread; callbacks that come
// from it run on that thread, so a loop-thread caller should bounce them (uv_async_send).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk.hpp"
#include "core/config.hpp"

namespace outpost::cache {

enum class Namespace : std::uint8_t { kHttp = 0, kDns = 1, kCert = 2, kFtp = 3, kOther = 4 };
inline constexpr std::size_t kNamespaceCount = 5;
std::string_view namespace_name(Namespace ns);

enum class Status : std::uint8_t {
  kOk,
  kNotFound,
  kTooLarge,  // over max_object_size (or the memory budget): not admitted
  kAborted,   // the writer aborted (readers attached to it see this)
  kBusy,      // WriterMode::kExclusive and another writer is in progress: attach() instead
  kClosed,    // writer already committed or aborted
};
std::string_view status_name(Status s);

namespace detail {
struct Object;
struct Pending;
class StoreImpl;
}  // namespace detail

// An immutable, reference-counted committed object. Cheap to copy (one atomic increment).
class Handle {
 public:
  Handle() = default;
  Handle(const Handle& o) noexcept;
  Handle(Handle&& o) noexcept;
  Handle& operator=(Handle o) noexcept;
  ~Handle();

  explicit operator bool() const noexcept { return obj_ != nullptr; }
  Namespace ns() const noexcept;
  std::string_view key() const noexcept;
  std::string_view metadata() const noexcept;
  const std::vector<Slice>& body() const noexcept;  // zero-copy; valid while the Handle lives
  std::uint64_t body_size() const noexcept;
  std::int64_t expiry_hint() const noexcept;  // unix seconds; 0 = none
  std::string body_string() const;            // copies (tests, small objects)

 private:
  friend class detail::StoreImpl;
  explicit Handle(detail::Object* adopted) noexcept : obj_(adopted) {}
  detail::Object* obj_ = nullptr;
};

// Follows one object's body as it is written (collapsed forwarding) or reads a committed one.
// A Reader belongs to one thread; it never blocks.
enum class ReadResult : std::uint8_t {
  kData,   // slices were appended to *out
  kWait,   // nothing new yet; subscribe() or poll version()
  kEnd,    // the object is complete and everything has been read
  kError,  // the writer aborted or the object was rejected; see error()
};

class Reader {
 public:
  Reader() = default;
  explicit operator bool() const noexcept { return p_ != nullptr; }
  std::string_view key() const noexcept;
  std::string_view metadata() const noexcept;  // as given to writer()
  std::int64_t expiry_hint() const noexcept;
  // Appends the slices that arrived since the last call. Never blocks.
  ReadResult read(std::vector<Slice>* out);
  // One-shot: `notify` runs once, as soon as there is something new for read() (data, end or
  // error); at once on this thread if there already is, else later on the writer's thread with
  // no store lock held. It must be thread-safe and cheap (e.g. uv_async_send).
  void subscribe(std::function<void()> notify);
  // Increases on every append, commit and abort (for polling).
  std::uint64_t version() const;
  std::uint64_t bytes_available() const;
  Status error() const;  // kOk unless read() returned kError

 private:
  friend class detail::StoreImpl;
  friend class Writer;
  std::shared_ptr<detail::Pending> p_;
  std::size_t next_ = 0;
};

// Writes one object. Nothing is visible to lookup() before commit(); abort() (or destroying
// an uncommitted Writer) leaves nothing. Belongs to one thread.
class Writer {
 public:
  Writer() = default;
  Writer(Writer&& o) noexcept;
  Writer& operator=(Writer&& o) noexcept;
  Writer(const Writer&) = delete;
  ~Writer();
  explicit operator bool() const noexcept { return p_ != nullptr; }
  Status append(std::string_view bytes);  // copies into store-owned chunks
  Status append(Slice slice);             // zero copy: those bytes must never change again
  Status append(const ChunkRef& chunk);   // zero copy: the chunk's first size() bytes
  Status commit();                        // kOk, kTooLarge (attached readers got kError), kClosed
  void abort();
  std::uint64_t size() const noexcept;
  // A Reader of this object from its first byte, like attach() gives followers (the writer's
  // own client reads through one when it falls behind). Empty after commit() or abort().
  Reader reader() const;

 private:
  friend class detail::StoreImpl;
  Writer(detail::StoreImpl* s, std::shared_ptr<detail::Pending> p) : store_(s), p_(std::move(p)) {}
  detail::StoreImpl* store_ = nullptr;
  std::shared_ptr<detail::Pending> p_;
};

struct StoreOptions {
  std::uint64_t memory_size = 256ull << 20;
  std::uint64_t max_object_size = 8ull << 20;
  std::string disk_dir;  // empty = memory only
  std::uint64_t disk_size = 1ull << 30;
  std::uint64_t segment_size = 16ull << 20;
  unsigned shards = 64;                  // index shards (rounded up to a power of two)
  double small_fraction = 0.01;          // small FIFO's share of memory_size (0.10 suits plain S3-FIFO)
  unsigned move_to_main_threshold = 1;   // accesses while in the small queue to reach main
  double ghost_fraction = 0.25;          // ghost queue: evicted keys worth this share of memory_size
  bool frequency_admission = true;       // sketch decides small -> main; false: plain S3-FIFO with ghost
  std::int64_t dead_after = 86400;       // expiry_hint + dead_after < now: evicted first
  bool count_overhead = true;            // charge chunk capacity + bookkeeping, not just bytes
  std::function<std::int64_t()> clock;   // unix seconds; default: system clock (tests inject)

  static StoreOptions from_config(const Config::Cache& c);
};

struct NamespaceStats {
  std::uint64_t objects_memory = 0, objects_disk = 0;
  std::uint64_t bytes_memory = 0, bytes_disk = 0;
  std::uint64_t lookups = 0, hits = 0, disk_hits = 0, misses = 0;
  std::uint64_t admissions = 0, evictions = 0;
  std::uint64_t rejected = 0;       // not admitted at all (over max_object_size / memory budget)
  std::uint64_t disk_writes = 0, disk_evictions = 0;
  std::uint64_t disk_rejected = 0;  // not written to disk (disk full, write error, too big)
  std::uint64_t corrupt_skipped = 0;
  void add(const NamespaceStats& o);
};

struct StoreStats {
  std::array<NamespaceStats, kNamespaceCount> ns{};
  bool disk_enabled = false;
  bool disk_full = false;
  std::uint64_t segments = 0;
  std::uint64_t recovered_records = 0;
  double recovery_seconds = 0;
  const NamespaceStats& of(Namespace n) const { return ns[static_cast<std::size_t>(n)]; }
  NamespaceStats total() const;
};

enum class WriterMode : std::uint8_t { kReplace, kExclusive };

class Store {
 public:
  // Opens the store; with a disk_dir, creates it if needed and rebuilds the index by scanning
  // the segment files (blocking: call at start-up, not on a loop). nullptr + *error on failure.
  static std::unique_ptr<Store> open(const StoreOptions& options, std::string* error = nullptr);
  ~Store();  // finishes queued disk writes

  // Memory tier only; never blocks. Counts a hit or a miss.
  Handle lookup(Namespace ns, std::string_view key);
  // Memory hit or miss: `done` runs inline before this returns. Disk hit: the object is read
  // and checked on the I/O thread, promoted to memory, and `done` runs there: an empty Handle
  // if the record turned out corrupt (`corrupt` true: a swap failure) or was dropped by a
  // reclaim meanwhile (an ordinary miss).
  using LookupDone = std::function<void(Handle, bool corrupt)>;
  void lookup_async(Namespace ns, std::string_view key, LookupDone done);
  bool contains(Namespace ns, std::string_view key);  // memory or disk; no counters
  // Whether an object stored under `key` now would likely be kept until it is asked for
  // again: a disk tier is taking writes, or the memory tier has room without evicting, or
  // the key is already requested more often than the main queue's next victim (without the
  // sketch: the ghost remembers it). Anything else in a full memory-only store goes to the
  // small queue and is mostly evicted unread. For callers deciding whether fetching a whole
  // object is worth its bytes (a conditional miss); no counters.
  bool would_keep(Namespace ns, std::string_view key);
  // A request for `key` that will store nothing (a conditional relayed to the origin as it
  // came): counted in the admission sketch as a miss that is stored is, so that a key asked
  // for again and again comes to be kept. No other counters.
  void note_request(Namespace ns, std::string_view key);
  // The memory half of lookup_async, for callers that answer at once when they can: a
  // memory hit or a miss is counted and returned; an object only on disk sets *on_disk,
  // counts nothing, and is for lookup_async to read.
  Handle lookup_memory(Namespace ns, std::string_view key, bool* on_disk);

  // Starts an object. kReplace: always returns a writer (the last commit wins). kExclusive:
  // returns an empty Writer and sets *status = kBusy when another writer for the key is in
  // progress, so that the caller can attach() to it instead.
  Writer writer(Namespace ns, std::string_view key, std::string_view metadata, std::int64_t expiry_hint,
                WriterMode mode = WriterMode::kReplace, Status* status = nullptr);
  // A writer in progress for the key (follows it), else the committed object in memory, else
  // an empty Reader.
  Reader attach(Namespace ns, std::string_view key);
  // Convenience: writer + append + commit.
  Status insert(Namespace ns, std::string_view key, std::string_view metadata, std::string_view body,
                std::int64_t expiry_hint = 0);
  // Replaces metadata and expiry hint, keeping the body (HTTP 304). kNotFound if absent, or
  // if `revalidated` is given (the object the caller revalidated) and the key has since been
  // replaced by other content: a 304 must never dress a newer body in older headers.
  Status update_metadata(Namespace ns, std::string_view key, std::string_view metadata, std::int64_t expiry_hint,
                         const Handle& revalidated = Handle());
  bool erase(Namespace ns, std::string_view key);  // true if something was removed
  void purge(Namespace ns);                        // drops every object of the namespace
  // The namespace's keys (memory or disk) for which `match` is true, at most `limit` of them,
  // in no order. Walks every shard under its lock: for operators' commands (`outpost ctl`),
  // never the request path. `match` must not call back into the store.
  std::vector<std::string> keys_matching(Namespace ns, const std::function<bool(std::string_view)>& match,
                                         std::size_t limit = SIZE_MAX);

  StoreStats stats() const;
  // The largest body admitted (StoreOptions::max_object_size): a writer for a bigger one
  // would only copy bytes to abort at the limit.
  std::uint64_t max_object_size() const;
  // Blocks until queued disk work is done (tests, shutdown; never on a loop thread).
  void flush();

 private:
  explicit Store(std::unique_ptr<detail::StoreImpl> impl);
  std::unique_ptr<detail::StoreImpl> impl_;
};

}  // namespace outpost::cache
