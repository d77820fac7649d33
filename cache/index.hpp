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
  bool referenced = false;       // read since it was written to disk (segment reclaim keeps it)
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

using EntryMap = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;
using PendingMap = std::unordered_map<std::string, std::shared_ptr<Pending>, KeyHash, std::equal_to<>>;

struct ShardCounters {
  std::uint64_t lookups = 0, hits = 0, misses = 0;
};

struct alignas(64) Shard {
  std::mutex mu;
  std::array<EntryMap, kNamespaceCount> entries;
  std::array<PendingMap, kNamespaceCount> pending;
  std::array<ShardCounters, kNamespaceCount> counters{};

  EntryMap& map(Namespace ns) { return entries[static_cast<std::size_t>(ns)]; }
  PendingMap& writers(Namespace ns) { return pending[static_cast<std::size_t>(ns)]; }
  ShardCounters& count(Namespace ns) { return counters[static_cast<std::size_t>(ns)]; }
};

class Index {
 public:
  explicit Index(unsigned shards);
  Shard& shard_for(Namespace ns, std::string_view key) {
    return shards_[key_hash(ns, key) >> 40 & mask_];
  }
  std::size_t size() const { return mask_ + 1; }
  Shard& shard(std::size_t i) { return shards_[i]; }

 private:
  std::size_t mask_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace outpost::cache::detail
