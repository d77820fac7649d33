// The disk tier: persistence across restarts, recovery of erase/purge/update, checksums on
// start-up and on read, segment reclaim, promotion of disk hits, a full disk.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>

#include "cache/crc32c.hpp"
#include "cache/disk_backend.hpp"
#include "cache/object.hpp"
#include "cache_test_util.hpp"

using namespace outpost;
using namespace outpost::cache;
using outpost::cache::testing::numbered;
using outpost::cache::testing::fetch;
using outpost::cache::testing::TempDir;
namespace fs = std::filesystem;

namespace {

StoreOptions disk_options(const std::string& dir, std::uint64_t memory = 4 << 20) {
  StoreOptions o;
  o.memory_size = memory;
  o.max_object_size = 32 << 10;
  o.disk_dir = dir;
  o.segment_size = 64 << 10;
  o.disk_size = 64 << 20;
  return o;
}

std::unique_ptr<Store> open_store(const StoreOptions& o) {
  std::string err;
  auto s = Store::open(o, &err);
  EXPECT_TRUE(s) << err;
  return s;
}

std::string body_of(int i) { return std::string(static_cast<std::size_t>(100 + i * 37 % 5000), static_cast<char>('a' + i % 26)) + std::to_string(i); }

std::vector<fs::path> segment_files(const std::string& dir) {
  std::vector<fs::path> v;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".seg") v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

// Flips one byte at `offset` of the first segment file that has content.
void flip_byte(const std::string& dir, std::uint64_t offset) {
  for (auto& p : segment_files(dir)) {
    if (fs::file_size(p) <= offset) continue;
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x5A));
    return;
  }
  FAIL() << "no segment with offset " << offset;
}

}  // namespace

TEST(CacheCrc32c, KnownVectorsAndPortableAgree) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  std::string s(1000, '\0');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 7);
  for (std::size_t n : {0, 1, 7, 8, 9, 63, 1000})
    EXPECT_EQ(crc32c_extend(0, s.data(), n), crc32c_extend_portable(0, s.data(), n));
  EXPECT_EQ(crc32c_extend(crc32c_extend(0, s.data(), 300), s.data() + 300, 700), crc32c(s));
}

TEST(CacheDisk, SurvivesRestart) {
  TempDir d;
  {
    auto s = open_store(disk_options(d.path()));
    for (int i = 0; i < 100; ++i)
      ASSERT_EQ(s->insert(Namespace::kHttp, numbered("k", i), numbered("m", i), body_of(i), 1000 + i), Status::kOk);
    s->insert(Namespace::kDns, "dns-a", "rrset", "1.2.3.4");
    s->insert(Namespace::kCert, "cert-a", "pem", "-----BEGIN");
    s->erase(Namespace::kHttp, "k5");
    s->purge(Namespace::kCert);
    s->update_metadata(Namespace::kHttp, "k7", "refreshed", 5000);
    s->insert(Namespace::kHttp, "k9", "v2", "second version");
    s->flush();
    auto st = s->stats();
    EXPECT_TRUE(st.disk_enabled);
    EXPECT_EQ(st.of(Namespace::kHttp).objects_disk, 99u);
    EXPECT_EQ(st.of(Namespace::kDns).objects_disk, 1u);
    EXPECT_EQ(st.of(Namespace::kCert).objects_disk, 0u);
    EXPECT_GE(st.of(Namespace::kHttp).disk_writes, 102u);
  }
  auto s = open_store(disk_options(d.path()));
  auto st = s->stats();
  EXPECT_EQ(st.of(Namespace::kHttp).objects_disk, 99u);
  EXPECT_EQ(st.of(Namespace::kHttp).objects_memory, 0u);
  EXPECT_EQ(st.total().corrupt_skipped, 0u);
  EXPECT_GT(st.recovered_records, 100u);
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "k1"));  // memory tier only: not there yet
  EXPECT_TRUE(s->contains(Namespace::kHttp, "k1"));
  for (int i = 0; i < 100; ++i) {
    Handle h = fetch(*s, Namespace::kHttp, numbered("k", i));
    if (i == 5) {
      EXPECT_FALSE(h);
      continue;
    }
    ASSERT_TRUE(h) << i;
    if (i == 7) {
      EXPECT_EQ(h.metadata(), "refreshed");
      EXPECT_EQ(h.expiry_hint(), 5000);
      EXPECT_EQ(h.body_string(), body_of(7));
    } else if (i == 9) {
      EXPECT_EQ(h.body_string(), "second version");
    } else {
      EXPECT_EQ(h.metadata(), numbered("m", i));
      EXPECT_EQ(h.expiry_hint(), 1000 + i);
      EXPECT_EQ(h.body_string(), body_of(i));
    }
  }
  EXPECT_EQ(fetch(*s, Namespace::kDns, "dns-a").body_string(), "1.2.3.4");
  EXPECT_FALSE(fetch(*s, Namespace::kCert, "cert-a"));
  // Disk hits were promoted to memory.
  EXPECT_EQ(s->lookup(Namespace::kHttp, "k1").body_string(), body_of(1));
  st = s->stats();
  EXPECT_EQ(st.of(Namespace::kHttp).disk_hits, 99u);
  EXPECT_EQ(st.of(Namespace::kHttp).objects_memory, 99u);
}

TEST(CacheDisk, MetadataUpdateOfDiskOnlyObject) {
  TempDir d;
  {
    auto s = open_store(disk_options(d.path()));
    s->insert(Namespace::kHttp, "x", "old", "body-x", 1);
    s->flush();
  }
  {
    auto s = open_store(disk_options(d.path()));
    EXPECT_EQ(s->update_metadata(Namespace::kHttp, "x", "new", 2), Status::kOk);
    EXPECT_EQ(s->update_metadata(Namespace::kHttp, "y", "new", 2), Status::kNotFound);
    s->flush();
    s->flush();  // the update is queued from the I/O thread itself
    Handle h = s->lookup(Namespace::kHttp, "x");
    ASSERT_TRUE(h);
    EXPECT_EQ(h.metadata(), "new");
  }
  auto s = open_store(disk_options(d.path()));
  Handle h = fetch(*s, Namespace::kHttp, "x");
  ASSERT_TRUE(h);
  EXPECT_EQ(h.metadata(), "new");
  EXPECT_EQ(h.expiry_hint(), 2);
  EXPECT_EQ(h.body_string(), "body-x");
}

TEST(CacheDisk, CorruptAndTornRecordsAreSkippedAndCounted) {
  TempDir d;
  {
    auto s = open_store(disk_options(d.path()));
    for (int i = 0; i < 5; ++i) s->insert(Namespace::kHttp, numbered("k", i), "m", body_of(i));
    s->flush();
  }
  // The first record starts at 0: flip a byte of its body (header stays intact).
  flip_byte(d.path(), 48 + 2 + 1 + 10);
  // Tear the last segment's tail: cut its last record in half.
  auto segs = segment_files(d.path());
  fs::path last;
  for (auto& p : segs)
    if (fs::file_size(p) > 0) last = p;
  auto size = fs::file_size(last);
  fs::resize_file(last, size - 60);
  auto s = open_store(disk_options(d.path()));
  auto st = s->stats();
  EXPECT_EQ(st.of(Namespace::kHttp).corrupt_skipped, 2u);
  EXPECT_EQ(st.of(Namespace::kHttp).objects_disk, 3u);
  EXPECT_FALSE(fetch(*s, Namespace::kHttp, "k0"));
  EXPECT_FALSE(fetch(*s, Namespace::kHttp, "k4"));
  for (int i = 1; i < 4; ++i) EXPECT_EQ(fetch(*s, Namespace::kHttp, numbered("k", i)).body_string(), body_of(i));
}

TEST(CacheDisk, CorruptionFoundOnReadIsNeverServed) {
  TempDir d;
  {
    auto s = open_store(disk_options(d.path()));
    s->insert(Namespace::kHttp, "victim", "m", std::string(1000, 'v'));
    s->flush();
  }
  auto s = open_store(disk_options(d.path()));
  flip_byte(d.path(), 48 + 6 + 1 + 500);  // after start-up's scan
  std::promise<std::pair<Handle, bool>> p;
  s->lookup_async(Namespace::kHttp, "victim", [&p](Handle h, bool corrupt) { p.set_value({std::move(h), corrupt}); });
  auto [h, corrupt] = p.get_future().get();
  EXPECT_FALSE(h);
  EXPECT_TRUE(corrupt);  // the proxy's TCP_SWAPFAIL_MISS
  EXPECT_FALSE(s->contains(Namespace::kHttp, "victim"));
  EXPECT_EQ(s->stats().of(Namespace::kHttp).corrupt_skipped, 1u);
}

TEST(CacheDisk, EvictedFromMemoryStillServedFromDisk) {
  TempDir d;
  auto s = open_store(disk_options(d.path(), 1 << 20));
  for (int i = 0; i < 600; ++i) s->insert(Namespace::kHttp, numbered("k", i), "", std::string(4000, 'x') + std::to_string(i));
  s->flush();
  auto st = s->stats();
  EXPECT_GT(st.of(Namespace::kHttp).evictions, 0u);
  EXPECT_EQ(st.of(Namespace::kHttp).objects_disk, 600u);
  // Which keys the policy evicted depends on its admission decisions: take the first one
  // that is no longer in memory.
  int gone = 0;
  while (gone < 600 && s->lookup(Namespace::kHttp, numbered("k", gone))) ++gone;
  ASSERT_LT(gone, 600);
  Handle h = fetch(*s, Namespace::kHttp, numbered("k", gone));
  ASSERT_TRUE(h);
  EXPECT_EQ(h.body_string(), std::string(4000, 'x') + std::to_string(gone));
  EXPECT_TRUE(s->lookup(Namespace::kHttp, numbered("k", gone)));  // promoted
  EXPECT_EQ(s->stats().of(Namespace::kHttp).disk_hits, 1u);
}

TEST(CacheDisk, SegmentsAreReclaimedOldestFirstKeepingReferencedObjects) {
  TempDir d;
  StoreOptions o = disk_options(d.path(), 1 << 20);
  o.disk_size = 4 * o.segment_size;  // 4 segments of 64 KiB
  auto s = open_store(o);
  s->insert(Namespace::kHttp, "keep", "", std::string(2000, 'K'));
  s->insert(Namespace::kHttp, "drop", "", std::string(2000, 'D'));
  s->flush();
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 10; ++i)
      s->insert(Namespace::kHttp, numbered("f", round * 10 + i), "", std::string(3000, 'f'));
    s->erase(Namespace::kHttp, "nothing");
    // "keep" is read (from memory or disk) now and then, which marks it referenced.
    EXPECT_TRUE(fetch(*s, Namespace::kHttp, "keep"));
    s->flush();
    EXPECT_LE(segment_files(d.path()).size(), 5u);
  }
  auto st = s->stats();
  EXPECT_LE(st.segments, 4u);
  EXPECT_GT(st.of(Namespace::kHttp).disk_evictions, 0u);
  EXPECT_LT(st.of(Namespace::kHttp).objects_disk, 402u);
  EXPECT_LE(st.of(Namespace::kHttp).bytes_disk, 4u * o.segment_size);
  s.reset();
  auto again = open_store(o);
  EXPECT_EQ(fetch(*again, Namespace::kHttp, "keep").body_string(), std::string(2000, 'K'));
  EXPECT_FALSE(fetch(*again, Namespace::kHttp, "drop"));  // never read: dropped with its segment
  EXPECT_FALSE(fetch(*again, Namespace::kHttp, "f0"));
  EXPECT_TRUE(fetch(*again, Namespace::kHttp, "f399"));
  EXPECT_EQ(again->stats().total().corrupt_skipped, 0u);
}

TEST(CacheDisk, FullDiskStopsAdmissionServingContinues) {
  TempDir d;
  if (::mount("tmpfs", d.path().c_str(), "tmpfs", 0, "size=256k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{d.path()};
  StoreOptions o = disk_options(d.path(), 8 << 20);
  o.disk_size = 16 << 20;  // the budget is larger than the file system
  auto s = open_store(o);
  int inserted = 0;
  for (; inserted < 200; ++inserted) {
    s->insert(Namespace::kHttp, numbered("k", inserted), "", std::string(4000, 'x'));
    s->flush();
    if (s->stats().disk_full) break;
  }
  auto st = s->stats();
  ASSERT_TRUE(st.disk_full);
  EXPECT_GT(st.of(Namespace::kHttp).disk_rejected, 0u);
  EXPECT_EQ(st.of(Namespace::kHttp).rejected, 0u);  // still admitted to memory
  std::uint64_t on_disk = st.of(Namespace::kHttp).objects_disk;
  EXPECT_GT(on_disk, 10u);
  EXPECT_LT(on_disk, 70u);
  // Admission to disk stops: new objects stay in memory only; everything is still served.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s->insert(Namespace::kHttp, numbered("late", i), "", "late"), Status::kOk);
  s->flush();
  EXPECT_EQ(s->stats().of(Namespace::kHttp).objects_disk, on_disk);
  EXPECT_GE(s->stats().of(Namespace::kHttp).disk_rejected, st.of(Namespace::kHttp).disk_rejected + 20);
  for (int i = 0; i <= inserted; ++i) EXPECT_TRUE(s->lookup(Namespace::kHttp, numbered("k", i))) << i;
  EXPECT_EQ(s->lookup(Namespace::kHttp, "late3").body_string(), "late");
  s.reset();
  // What did reach the disk is intact after a restart.
  auto again = open_store(o);
  EXPECT_EQ(again->stats().of(Namespace::kHttp).objects_disk, on_disk);
  EXPECT_EQ(again->stats().total().corrupt_skipped, 0u);
  EXPECT_EQ(fetch(*again, Namespace::kHttp, "k0").body_string(), std::string(4000, 'x'));
}

// A conditional miss is fetched whole when the store would keep the object: with a disk tier
// taking writes, every committed object is written to its FIFO, so always; memory alone, only
// while there is room or for a key that has come back.
TEST(CacheDisk, WouldKeepWhatTheDiskTierTakes) {
  TempDir d;
  std::string big(16 << 10, 'x');
  auto mem = open_store(disk_options("", 256 << 10));
  auto disk = open_store(disk_options(d.path(), 256 << 10));
  for (auto* s : {mem.get(), disk.get()}) {
    EXPECT_TRUE(s->would_keep(Namespace::kHttp, "stranger"));  // empty
    for (int i = 0; i < 64; ++i) ASSERT_EQ(s->insert(Namespace::kHttp, numbered("k", i), "m", big, 0), Status::kOk);
  }
  EXPECT_FALSE(mem->would_keep(Namespace::kHttp, "stranger"));  // full, and never seen
  EXPECT_TRUE(disk->would_keep(Namespace::kHttp, "stranger"));
  disk->flush();
}

namespace {

using detail::DiskLoc;
using detail::Object;
using detail::ObjRef;
using detail::build_object;

// The store's side of the disk contract, kept as a plain map: which record is each key's.
struct MapIndex : detail::DiskEvents {
  std::mutex mu;
  std::map<std::string, DiskLoc> where;
  int moved = 0, dropped = 0;
  void on_written(const Object& o, DiskLoc loc) override {
    std::lock_guard l(mu);
    if (loc.valid()) where[o.key] = loc;
  }
  void on_recovered(Namespace, std::string_view, DiskLoc) override {}
  void on_recovered_erase(Namespace, std::string_view) override {}
  void on_recovered_purge(Namespace) override {}
  bool is_live(Namespace, std::string_view key, DiskLoc loc, bool* referenced) override {
    std::lock_guard l(mu);
    auto it = where.find(std::string(key));
    if (it == where.end() || !(it->second == loc)) return false;
    if (referenced) *referenced = key == "keep";  // only "keep" was read since written
    return true;
  }
  DiskLoc live_loc(Namespace, std::string_view key) override {
    std::lock_guard l(mu);
    auto it = where.find(std::string(key));
    return it == where.end() ? DiskLoc{} : it->second;
  }
  void on_moved(Namespace, std::string_view key, DiskLoc, DiskLoc to) override {
    std::lock_guard l(mu);
    where[std::string(key)] = to;
    ++moved;
  }
  void on_dropped(Namespace, std::string_view key, DiskLoc, bool) override {
    std::lock_guard l(mu);
    where.erase(std::string(key));
    ++dropped;
  }
  DiskLoc at(const std::string& key) {
    std::lock_guard l(mu);
    return where.count(key) ? where[key] : DiskLoc{};
  }
};

}  // namespace

// A lookup takes a record's location, and its read runs later on the I/O thread: if a reclaim
// re-wrote the record meanwhile (records being read are the referenced ones it keeps), the read
// follows it instead of failing (it had come back empty, a TCP_SWAPFAIL_MISS with a warning
// that the stored copy failed its check). A record dropped meanwhile reads as nothing.
TEST(CacheDisk, AReadFollowsItsRecordMovedByAReclaim) {
  TempDir d;
  StoreOptions o = disk_options(d.path());
  o.disk_size = 4 * o.segment_size;  // 4 segments of 64 KiB
  o.count_overhead = false;
  MapIndex index;
  std::string err;
  auto tier = detail::open_disk_tier(o, &index, &err);
  ASSERT_TRUE(tier) << err;
  std::string keep(2000, 'K'), drop(2000, 'D'), filler(3000, 'f');
  auto object = [&](const std::string& key, const std::string& body) {
    return build_object(o, Namespace::kHttp, key, "meta", {Slice{ChunkRef(), body.data(), body.size()}}, 0);
  };
  tier->write(object("keep", keep));
  tier->write(object("drop", drop));
  tier->flush();
  DiskLoc keep_was = index.at("keep"), drop_was = index.at("drop");
  ASSERT_TRUE(keep_was.valid() && drop_was.valid());
  for (int i = 0; i < 120; ++i) tier->write(object(numbered("f", i), filler));  // 360 KB: a reclaim
  tier->flush();
  ASSERT_GT(index.moved, 0);
  ASSERT_FALSE(index.at("keep") == keep_was);
  ASSERT_FALSE(index.at("drop").valid());
  auto read = [&](const std::string& key, DiskLoc loc) {
    std::promise<std::pair<ObjRef, DiskLoc>> p;
    auto f = p.get_future();
    tier->read(Namespace::kHttp, key, loc, [&p](ObjRef obj, DiskLoc at) { p.set_value({std::move(obj), at}); });
    return f.get();
  };
  auto [obj, at] = read("keep", keep_was);
  ASSERT_TRUE(obj);
  EXPECT_TRUE(at == index.at("keep"));
  std::string body;
  for (auto& s : obj->body) body += s.view();
  EXPECT_EQ(body, keep);
  auto [gone, gone_at] = read("drop", drop_was);
  EXPECT_FALSE(gone);
  EXPECT_FALSE(gone_at.valid());  // no record any more: a miss, not a corrupt record
  EXPECT_EQ(tier->counters(Namespace::kHttp).corrupt, 0u);
}
