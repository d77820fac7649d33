// Internal: the contract between the store and its disk tier. The tier owns the segment files
// and the I/O thread; it reports record locations back through DiskEvents (called on the I/O
// thread, or during open() for recovery) so that the store's index stays the one index.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "cache/index.hpp"

namespace outpost::cache::detail {

struct DiskEvents {
  virtual ~DiskEvents() = default;
  // A write finished: `loc` is where obj's record is now (invalid if it was not written).
  virtual void on_written(const Object& obj, DiskLoc loc) = 0;
  // Recovery, in log order: an object record, an erase (tombstone), a namespace purge.
  virtual void on_recovered(Namespace ns, std::string_view key, DiskLoc loc) = 0;
  virtual void on_recovered_erase(Namespace ns, std::string_view key) = 0;
  virtual void on_recovered_purge(Namespace ns) = 0;
  // Segment reclaim: is the record at `loc` the key's live copy? (*referenced: read since written)
  virtual bool is_live(Namespace ns, std::string_view key, DiskLoc loc, bool* referenced) = 0;
  // Where the key's live record is now (invalid if it has none): a read that finds its record
  // moved by a reclaim since the lookup follows it.
  virtual DiskLoc live_loc(Namespace ns, std::string_view key) = 0;
  // The live record moved (rewritten by reclaim), or was dropped (reclaim, corrupt on read).
  virtual void on_moved(Namespace ns, std::string_view key, DiskLoc from, DiskLoc to) = 0;
  virtual void on_dropped(Namespace ns, std::string_view key, DiskLoc loc, bool corrupt) = 0;
};

struct DiskCounters {
  std::uint64_t writes = 0, evictions = 0, corrupt = 0, rejected = 0;
};

class DiskBackend {
 public:
  virtual ~DiskBackend() = default;
  virtual void write(ObjRef obj) = 0;  // queued; on_written follows
  virtual void write_tombstone(Namespace ns, std::string key) = 0;
  virtual void write_purge(Namespace ns) = 0;
  // Reads and verifies the record on the I/O thread; `done` gets the object (version unset)
  // and where it was read, or nothing and that location if the record was corrupt
  // (on_dropped already reported it), or nothing and an invalid location if the key has no
  // record any more. A record moved by a reclaim since `loc` was looked up is read where it
  // is now.
  using ReadDone = std::function<void(ObjRef, DiskLoc)>;
  virtual void read(Namespace ns, std::string key, DiskLoc loc, ReadDone done) = 0;
  virtual void flush() = 0;
  virtual bool full() const = 0;
  virtual std::uint64_t segments() const = 0;
  virtual DiskCounters counters(Namespace ns) const = 0;
  virtual std::uint64_t recovered_records() const = 0;
  virtual double recovery_seconds() const = 0;
};

// Opens (creating if needed) and scans the directory; reports recovered records to `events`.
std::unique_ptr<DiskBackend> open_disk_tier(const StoreOptions& opt, DiskEvents* events, std::string* error);

}  // namespace outpost::cache::detail
