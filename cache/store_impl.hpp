// Internal: the store's machinery behind the Store facade.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>

#include "cache/disk_backend.hpp"
#include "cache/index.hpp"
#include "cache/s3fifo.hpp"

namespace outpost::cache::detail {

class StoreImpl final : public DiskEvents {
 public:
  explicit StoreImpl(const StoreOptions& opt);
  ~StoreImpl() override;
  bool open_disk(std::string* error);

  Handle lookup(Namespace ns, std::string_view key);
  void lookup_async(Namespace ns, std::string_view key, Store::LookupDone done);
  Handle lookup_memory(Namespace ns, std::string_view key, bool* on_disk);
  bool contains(Namespace ns, std::string_view key);
  // The key's memory copy, if any, for a disk read that found no record (not counted).
  Handle memory_copy(Namespace ns, std::string_view key);
  bool would_keep(Namespace ns, std::string_view key);
  void note_request(Namespace ns, std::string_view key);
  Writer writer(Namespace ns, std::string_view key, std::string_view meta, std::int64_t expiry, WriterMode mode,
                Status* status);
  Reader attach(Namespace ns, std::string_view key);
  Status insert(Namespace ns, std::string_view key, std::string_view meta, std::string_view body, std::int64_t expiry);
  Status update_metadata(Namespace ns, std::string_view key, std::string_view meta, std::int64_t expiry,
                         std::uint64_t want);
  static std::uint64_t version_of(const Handle& h) { return h.obj_ ? h.obj_->version : 0; }
  bool erase(Namespace ns, std::string_view key);
  void purge(Namespace ns);
  std::vector<std::string> keys_matching(Namespace ns, const std::function<bool(std::string_view)>& match,
                                         std::size_t limit);
  StoreStats stats() const;
  void flush();

  // Writer side.
  Status append(Pending& p, Slice s);
  Status commit(const std::shared_ptr<Pending>& p);
  void abort(const std::shared_ptr<Pending>& p, Status why);
  const StoreOptions& options() const { return opt_; }

  // DiskEvents.
  void on_written(const Object& obj, DiskLoc loc) override;
  void on_recovered(Namespace ns, std::string_view key, DiskLoc loc) override;
  void on_recovered_erase(Namespace ns, std::string_view key) override;
  void on_recovered_purge(Namespace ns) override;
  bool is_live(Namespace ns, std::string_view key, DiskLoc loc, bool* referenced) override;
  DiskLoc live_loc(Namespace ns, std::string_view key) override;
  void on_moved(Namespace ns, std::string_view key, DiskLoc from, DiskLoc to) override;
  void on_dropped(Namespace ns, std::string_view key, DiskLoc loc, bool corrupt) override;

 private:
  std::int64_t now() const;
  // Counts a lookup; returns the memory copy with a reference added, else nullptr and, when
  // `disk` is given and the key is on disk only, its location.
  // count_disk = false: a disk-only object is not counted (the read that follows counts it).
  Object* probe(Namespace ns, std::string_view key, DiskLoc* disk, bool count_disk = true);
  ObjRef make_object(Namespace ns, std::string_view key, std::string meta, std::vector<Slice> body,
                     std::uint64_t body_size, std::int64_t expiry);
  // Puts a committed object into the index and the policy; writes it to disk if asked.
  Status admit(ObjRef obj, const Pending* finished, bool write_disk);
  // A disk read came back: make it the memory copy if the entry still points at `loc`.
  Handle promote(ObjRef obj, DiskLoc loc);
  void drop_victims(std::vector<ObjRef>& victims);
  void set_disk(Entry& e, Namespace ns, DiskLoc loc);
  void unregister(Shard& sh, const Pending& p);
  // A reference to the entry's memory copy for a reader: touched (a hit for the policy) and
  // the entry marked referenced for the disk reclaim. The caller holds the shard lock.
  static Object* hold_memory(Entry& e) {
    Object* o = e.mem.get();
    o->ref();
    o->touch();
    mark_referenced(e);
    return o;
  }
  static void mark_referenced(Entry& e) {
    if (!e.referenced.load(std::memory_order_relaxed)) e.referenced.store(true, std::memory_order_relaxed);
  }
  void count_rejected(Namespace ns) { rejected_[static_cast<std::size_t>(ns)].fetch_add(1, std::memory_order_relaxed); }

  StoreOptions opt_;
  Index index_;
  mutable std::mutex policy_mu_;
  S3Fifo policy_;
  std::atomic<std::uint64_t> next_version_{1};
  std::array<std::atomic<std::uint64_t>, kNamespaceCount> rejected_{};
  std::array<std::atomic<std::int64_t>, kNamespaceCount> disk_objects_{}, disk_bytes_{};
  std::array<std::atomic<std::uint64_t>, kNamespaceCount> disk_hits_{};
  std::array<std::atomic<std::uint64_t>, kNamespaceCount> disk_skipped_{};  // disk full at commit
  std::unique_ptr<DiskBackend> disk_;
};

}  // namespace outpost::cache::detail
