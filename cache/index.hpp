// Internal: the sharded key index. Each shard has its own mutex and, per namespace, a map
// from key to Entry (memory copy and/or disk location) and a table of writers in progress.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/object.hpp"
#include "cache/shard_lock.hpp"

namespace outpost::cache::detail {

// Where a record lives on disk; segment 0 = nowhere.
struct DiskLoc {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // whole record
  bool valid() const noexcept { return segment != 0; }
  bool operator==(const DiskLoc&) const = default;
};

struct Entry {
  ObjRef mem;                    // committed copy in memory, or empty
  DiskLoc disk;                  // record of this version on disk, or invalid
  std::uint64_t version = 0;     // version of the latest committed content
  bool write_pending = false;    // a disk write of `version` is queued
  std::atomic<bool> referenced{false};  // used since written to disk (reclaim keeps it); set by readers
};

// A key with its hash already computed (the hit path hashes once for shard and map).
struct HashedKey {
  std::string_view key;
  std::size_t hash;
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  std::size_t operator()(const HashedKey& k) const noexcept { return k.hash; }
};

struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
  bool operator()(const HashedKey& a, std::string_view b) const noexcept { return a.key == b; }
  bool operator()(std::string_view a, const HashedKey& b) const noexcept { return a == b.key; }
};

using EntryMap = std::unordered_map<std::string, Entry, KeyHash, KeyEq>;
using PendingMap = std::unordered_map<std::string, std::shared_ptr<Pending>, KeyHash, KeyEq>;

// Lookup counters, one set per reader slot so that hits on different threads do not share
// a cache line.
struct ShardCounters {
  std::atomic<std::uint64_t> lookups{0}, hits{0}, misses{0};
};
struct alignas(64) SlotCounters {
  std::array<ShardCounters, kNamespaceCount> ns;
};

struct alignas(64) Shard {
  SharedShardLock lock;  // readers: lookups; writers: everything that changes the maps
  std::array<EntryMap, kNamespaceCount> entries;
  std::array<PendingMap, kNamespaceCount> pending;
  std::array<SlotCounters, kReaderSlots> counters;

  EntryMap& map(Namespace ns) { return entries[static_cast<std::size_t>(ns)]; }
  PendingMap& writers(Namespace ns) { return pending[static_cast<std::size_t>(ns)]; }
  ShardCounters& count(std::size_t slot, Namespace ns) { return counters[slot].ns[static_cast<std::size_t>(ns)]; }
};

inline void bump(std::atomic<std::uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

class Index {
 public:
  explicit Index(unsigned shards);
  Shard& shard_for(Namespace ns, std::string_view key) { return shard_for(ns, HashedKey{key, KeyHash{}(key)}); }
  Shard& shard_for(Namespace ns, const HashedKey& k) { return shards_[key_hash(ns, k.hash) >> 40 & mask_]; }
  std::size_t size() const { return mask_ + 1; }
  Shard& shard(std::size_t i) { return shards_[i]; }

 private:
  std::size_t mask_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace outpost::cache::detail
