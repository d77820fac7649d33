// Memory-tier operations of the cache store: visibility, erase/purge, metadata updates,
// limits, collapsed-forwarding readers and statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "cache/cache_config.hpp"
#include "cache/store.hpp"
#include "cache_test_util.hpp"

using namespace outpost;
using namespace outpost::cache;
using outpost::cache::testing::numbered;

namespace {

std::unique_ptr<Store> memory_store(std::uint64_t memory = 1 << 20, std::uint64_t max_object = 64 << 10) {
  StoreOptions o;
  o.memory_size = memory;
  o.max_object_size = max_object;
  std::string err;
  auto s = Store::open(o, &err);
  EXPECT_TRUE(s) << err;
  return s;
}

std::string read_all(Reader& r, ReadResult* last = nullptr) {
  std::vector<Slice> out;
  ReadResult res;
  while ((res = r.read(&out)) == ReadResult::kData) {
  }
  if (last) *last = res;
  std::string s;
  for (auto& sl : out) s += sl.view();
  return s;
}

}  // namespace

TEST(CacheStore, InsertLookupAndMiss) {
  auto s = memory_store();
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "a"));
  ASSERT_EQ(s->insert(Namespace::kHttp, "a", "meta-a", "body-a", 1234), Status::kOk);
  Handle h = s->lookup(Namespace::kHttp, "a");
  ASSERT_TRUE(h);
  EXPECT_EQ(h.key(), "a");
  EXPECT_EQ(h.ns(), Namespace::kHttp);
  EXPECT_EQ(h.metadata(), "meta-a");
  EXPECT_EQ(h.body_string(), "body-a");
  EXPECT_EQ(h.body_size(), 6u);
  EXPECT_EQ(h.expiry_hint(), 1234);
  // Namespaces are separate.
  EXPECT_FALSE(s->lookup(Namespace::kDns, "a"));
  auto st = s->stats();
  EXPECT_EQ(st.of(Namespace::kHttp).lookups, 2u);
  EXPECT_EQ(st.of(Namespace::kHttp).hits, 1u);
  EXPECT_EQ(st.of(Namespace::kHttp).misses, 1u);
  EXPECT_EQ(st.of(Namespace::kDns).misses, 1u);
  EXPECT_EQ(st.of(Namespace::kHttp).objects_memory, 1u);
  EXPECT_EQ(st.of(Namespace::kHttp).admissions, 1u);
  EXPECT_GT(st.of(Namespace::kHttp).bytes_memory, 6u);
  EXPECT_FALSE(st.disk_enabled);
}

TEST(CacheStore, NothingVisibleBeforeCommitAndAbortLeavesNothing) {
  auto s = memory_store();
  {
    Writer w = s->writer(Namespace::kHttp, "k", "m", 0);
    ASSERT_TRUE(w);
    EXPECT_EQ(w.append("hello "), Status::kOk);
    EXPECT_EQ(w.append("world"), Status::kOk);
    EXPECT_EQ(w.size(), 11u);
    EXPECT_FALSE(s->lookup(Namespace::kHttp, "k"));
    EXPECT_FALSE(s->contains(Namespace::kHttp, "k"));
    EXPECT_EQ(w.commit(), Status::kOk);
    EXPECT_EQ(w.commit(), Status::kClosed);
  }
  EXPECT_EQ(s->lookup(Namespace::kHttp, "k").body_string(), "hello world");
  {
    Writer w = s->writer(Namespace::kHttp, "k", "m2", 0);
    w.append("replacement");
    w.abort();
    EXPECT_EQ(w.append("x"), Status::kClosed);
  }
  {
    Writer w = s->writer(Namespace::kHttp, "gone", "m", 0);
    w.append("abandoned");  // destroyed without commit = abort
  }
  EXPECT_EQ(s->lookup(Namespace::kHttp, "k").body_string(), "hello world");
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "gone"));
  EXPECT_FALSE(s->attach(Namespace::kHttp, "gone"));
  EXPECT_EQ(s->stats().of(Namespace::kHttp).objects_memory, 1u);
}

TEST(CacheStore, ReplaceKeepsOldHandleValid) {
  auto s = memory_store();
  s->insert(Namespace::kHttp, "k", "v1", "one");
  Handle old = s->lookup(Namespace::kHttp, "k");
  s->insert(Namespace::kHttp, "k", "v2", "two");
  EXPECT_EQ(old.body_string(), "one");
  EXPECT_EQ(old.metadata(), "v1");
  EXPECT_EQ(s->lookup(Namespace::kHttp, "k").body_string(), "two");
  EXPECT_EQ(s->stats().of(Namespace::kHttp).objects_memory, 1u);
}

TEST(CacheStore, ZeroCopyChunksAreShared) {
  auto s = memory_store();
  ChunkRef c = ChunkRef::copy_of("0123456789");
  Writer w = s->writer(Namespace::kFtp, "f", "", 0);
  ASSERT_EQ(w.append(c), Status::kOk);
  ASSERT_EQ(w.append(Slice{c, c->data() + 2, 3}), Status::kOk);
  ASSERT_EQ(w.commit(), Status::kOk);
  Handle h = s->lookup(Namespace::kFtp, "f");
  ASSERT_EQ(h.body().size(), 2u);
  EXPECT_EQ(h.body()[0].data, c->data());  // the very same bytes, not a copy
  EXPECT_EQ(h.body()[0].chunk.get(), c.get());
  EXPECT_EQ(h.body_string(), "0123456789234");
}

TEST(CacheStore, AdjacentAppendsAreMergedIntoOneSlice) {
  auto s = memory_store();
  Writer w = s->writer(Namespace::kHttp, "m", "", 0);
  w.append(std::string(100, 'a'));
  w.append(std::string(50, 'b'));  // fits in the second chunk's room? no: new chunk of 100
  w.append(std::string(10, 'c'));
  w.commit();
  Handle h = s->lookup(Namespace::kHttp, "m");
  EXPECT_EQ(h.body_size(), 160u);
  EXPECT_EQ(h.body().size(), 2u);
  EXPECT_EQ(h.body_string(), std::string(100, 'a') + std::string(50, 'b') + std::string(10, 'c'));
}

TEST(CacheStore, EraseAndPurge) {
  auto s = memory_store();
  s->insert(Namespace::kHttp, "a", "", "1");
  s->insert(Namespace::kHttp, "b", "", "2");
  s->insert(Namespace::kDns, "a", "", "3");
  Handle held = s->lookup(Namespace::kHttp, "a");
  EXPECT_TRUE(s->erase(Namespace::kHttp, "a"));
  EXPECT_FALSE(s->erase(Namespace::kHttp, "a"));
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "a"));
  EXPECT_EQ(held.body_string(), "1");  // a holder keeps its object
  s->purge(Namespace::kHttp);
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "b"));
  EXPECT_EQ(s->lookup(Namespace::kDns, "a").body_string(), "3");
  auto st = s->stats();
  EXPECT_EQ(st.of(Namespace::kHttp).objects_memory, 0u);
  EXPECT_EQ(st.of(Namespace::kHttp).bytes_memory, 0u);
  EXPECT_EQ(st.of(Namespace::kDns).objects_memory, 1u);
}

TEST(CacheStore, UpdateMetadataKeepsBody) {
  auto s = memory_store();
  EXPECT_EQ(s->update_metadata(Namespace::kHttp, "x", "m", 1), Status::kNotFound);
  s->insert(Namespace::kHttp, "x", "old-headers", "the body", 100);
  Handle before = s->lookup(Namespace::kHttp, "x");
  ASSERT_EQ(s->update_metadata(Namespace::kHttp, "x", "new-headers", 200), Status::kOk);
  Handle after = s->lookup(Namespace::kHttp, "x");
  EXPECT_EQ(after.metadata(), "new-headers");
  EXPECT_EQ(after.expiry_hint(), 200);
  EXPECT_EQ(after.body_string(), "the body");
  EXPECT_EQ(after.body()[0].chunk.get(), before.body()[0].chunk.get());  // body not rewritten
  EXPECT_EQ(before.metadata(), "old-headers");                         // handles are immutable
  EXPECT_EQ(s->stats().of(Namespace::kHttp).objects_memory, 1u);
  // Conditional on the revalidated object: the current one (after an update) qualifies...
  EXPECT_EQ(s->update_metadata(Namespace::kHttp, "x", "newer-headers", 300, after), Status::kOk);
  Handle current = s->lookup(Namespace::kHttp, "x");
  EXPECT_EQ(current.metadata(), "newer-headers");
  // ...but not once other content replaced it.
  s->insert(Namespace::kHttp, "x", "v2", "another body");
  EXPECT_EQ(s->update_metadata(Namespace::kHttp, "x", "stale-304", 400, current), Status::kNotFound);
  EXPECT_EQ(s->lookup(Namespace::kHttp, "x").metadata(), "v2");
}

TEST(CacheStore, OversizedObjectsAreRejected) {
  auto s = memory_store(1 << 20, 1000);
  EXPECT_EQ(s->insert(Namespace::kHttp, "big", "", std::string(1001, 'x')), Status::kTooLarge);
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "big"));
  Writer w = s->writer(Namespace::kHttp, "big2", "", 0);
  Reader r = s->attach(Namespace::kHttp, "big2");
  ASSERT_TRUE(r);
  EXPECT_EQ(w.append(std::string(600, 'x')), Status::kOk);
  EXPECT_EQ(w.append(std::string(600, 'x')), Status::kTooLarge);
  EXPECT_EQ(w.commit(), Status::kTooLarge);
  std::vector<Slice> out;
  EXPECT_EQ(r.read(&out), ReadResult::kError);
  EXPECT_EQ(r.error(), Status::kTooLarge);
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "big2"));
  EXPECT_EQ(s->stats().of(Namespace::kHttp).rejected, 2u);
  EXPECT_EQ(s->insert(Namespace::kHttp, "fits", "", std::string(1000, 'x')), Status::kOk);
}

TEST(CacheStore, ReaderFollowsWriterAndSeesCommit) {
  auto s = memory_store();
  Writer w = s->writer(Namespace::kHttp, "stream", "hdrs", 77);
  Reader r = s->attach(Namespace::kHttp, "stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r.metadata(), "hdrs");
  EXPECT_EQ(r.expiry_hint(), 77);
  std::vector<Slice> out;
  EXPECT_EQ(r.read(&out), ReadResult::kWait);
  int notified = 0;
  r.subscribe([&] { ++notified; });
  EXPECT_EQ(notified, 0);
  auto v0 = r.version();
  w.append("part1");
  EXPECT_EQ(notified, 1);  // one-shot
  EXPECT_GT(r.version(), v0);
  w.append("part2");
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(r.read(&out), ReadResult::kData);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(r.read(&out), ReadResult::kWait);
  r.subscribe([&] { ++notified; });
  Reader late = s->attach(Namespace::kHttp, "stream");  // a second reader starts from 0
  EXPECT_EQ(w.commit(), Status::kOk);
  EXPECT_EQ(notified, 2);
  EXPECT_EQ(r.read(&out), ReadResult::kEnd);
  ReadResult last;
  EXPECT_EQ(read_all(late, &last), "part1part2");
  EXPECT_EQ(last, ReadResult::kEnd);
  // Subscribing when something is pending fires at once.
  r.subscribe([&] { ++notified; });
  EXPECT_EQ(notified, 3);
  // After the commit, attach() reads the committed object.
  Reader done = s->attach(Namespace::kHttp, "stream");
  EXPECT_EQ(read_all(done, &last), "part1part2");
  EXPECT_EQ(last, ReadResult::kEnd);
}

TEST(CacheStore, WritersOwnReaderOutlivesTheCommit) {
  // The writer's own client reads through writer.reader() when it falls behind; that reader
  // sees every byte from the first, then the end, even though commit() released the writer.
  auto s = memory_store();
  Writer w = s->writer(Namespace::kHttp, "own", "", 0);
  w.append("early");
  Reader r = w.reader();
  ASSERT_TRUE(r);
  w.append("late");
  EXPECT_EQ(w.commit(), Status::kOk);
  EXPECT_FALSE(w.reader());  // nothing left to follow through the writer
  ReadResult last;
  EXPECT_EQ(read_all(r, &last), "earlylate");
  EXPECT_EQ(last, ReadResult::kEnd);
}

TEST(CacheStore, AbortGivesAttachedReadersACleanError) {
  auto s = memory_store();
  Writer w = s->writer(Namespace::kHttp, "s", "", 0);
  w.append("partial");
  Reader r = s->attach(Namespace::kHttp, "s");
  bool woke = false;
  std::vector<Slice> out;
  EXPECT_EQ(r.read(&out), ReadResult::kData);
  r.subscribe([&] { woke = true; });
  w.abort();
  EXPECT_TRUE(woke);
  EXPECT_EQ(r.read(&out), ReadResult::kError);
  EXPECT_EQ(r.error(), Status::kAborted);
  EXPECT_FALSE(s->lookup(Namespace::kHttp, "s"));
  EXPECT_FALSE(s->attach(Namespace::kHttp, "s"));
}

TEST(CacheStore, ExclusiveWriterReportsBusy) {
  auto s = memory_store();
  Status st;
  Writer a = s->writer(Namespace::kHttp, "k", "", 0, WriterMode::kExclusive, &st);
  ASSERT_TRUE(a);
  EXPECT_EQ(st, Status::kOk);
  Writer b = s->writer(Namespace::kHttp, "k", "", 0, WriterMode::kExclusive, &st);
  EXPECT_FALSE(b);
  EXPECT_EQ(st, Status::kBusy);
  a.commit();
  Writer c = s->writer(Namespace::kHttp, "k", "", 0, WriterMode::kExclusive, &st);
  EXPECT_TRUE(c);
}

TEST(CacheStore, MemoryBudgetIsShared) {
  auto s = memory_store(256 << 10, 16 << 10);
  std::string body(4000, 'z');
  for (int i = 0; i < 200; ++i) {
    s->insert(Namespace::kHttp, numbered("h", i), "", body);
    s->insert(Namespace::kDns, numbered("d", i), "", body);
  }
  auto st = s->stats();
  EXPECT_LE(st.total().bytes_memory, 256u << 10);
  EXPECT_GT(st.of(Namespace::kHttp).evictions, 0u);
  EXPECT_GT(st.of(Namespace::kDns).evictions, 0u);
  EXPECT_EQ(st.total().admissions, 400u);
  EXPECT_EQ(st.total().admissions - st.total().evictions, st.total().objects_memory);
}

TEST(CacheStore, ReaderAcrossThreadsWithNotification) {
  auto s = memory_store(8 << 20, 4 << 20);
  Writer w = s->writer(Namespace::kHttp, "big", "", 0);
  Reader r = s->attach(Namespace::kHttp, "big");
  std::atomic<int> wakeups{0};
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) w.append(std::string(100, static_cast<char>('a' + i % 26)));
    w.commit();
  });
  std::string got;
  std::vector<Slice> out;
  for (;;) {
    out.clear();
    ReadResult res = r.read(&out);
    for (auto& sl : out) got += sl.view();
    if (res == ReadResult::kEnd || res == ReadResult::kError) break;
    if (res == ReadResult::kWait) {
      std::atomic<bool> flag{false};
      r.subscribe([&] { flag = true; wakeups.fetch_add(1); flag.notify_one(); });
      flag.wait(false);
    }
  }
  producer.join();
  ASSERT_EQ(got.size(), 100000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i) * 100], 'a' + i % 26);
  EXPECT_EQ(s->lookup(Namespace::kHttp, "big").body_string(), got);
}

TEST(CacheStore, OptionsFromConfig) {
  cache::register_config_section();  // [cache] is read once registered (core/config_section.hpp)
  Config c = Config::parse("[cache]\nmemory_size = 2097152\nmax_object_size = 1000\n", "c.toml");
  StoreOptions o = StoreOptions::from_config(c.cache);
  EXPECT_EQ(o.memory_size, 2097152u);
  EXPECT_EQ(o.max_object_size, 1000u);
  EXPECT_TRUE(o.disk_dir.empty());
  auto s = Store::open(o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->insert(Namespace::kDns, "example.com/A", "", std::string(1001, 'x')), Status::kTooLarge);
  EXPECT_FALSE(s->stats().disk_enabled);
  // The embedded default configuration opens a memory-only store.
  EXPECT_TRUE(Store::open(StoreOptions::from_config(Config::load_default().cache)));
}

TEST(CacheStore, BadDiskDirFailsToOpen) {
  StoreOptions o;
  o.disk_dir = "/proc/no-such-dir/cache";
  std::string err;
  EXPECT_FALSE(Store::open(o, &err));
  EXPECT_NE(err.find("/proc/no-such-dir/cache"), std::string::npos) << err;
  EXPECT_EQ(namespace_name(Namespace::kCert), "cert");
  EXPECT_EQ(status_name(Status::kBusy), "busy");
}

TEST(StoreKeys, KeysMatchingWalksTheNamespaceOnly) {
  auto s = memory_store();
  for (auto k : {"http://a/1", "http://a/2", "http://b/1"}) ASSERT_EQ(s->insert(Namespace::kHttp, k, "m", "body"), Status::kOk);
  ASSERT_EQ(s->insert(Namespace::kDns, "http://a/3", "m", "body"), Status::kOk);
  auto keys = s->keys_matching(Namespace::kHttp, [](std::string_view k) { return k.starts_with("http://a/"); });
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"http://a/1", "http://a/2"}));
  EXPECT_EQ(s->keys_matching(Namespace::kHttp, [](std::string_view) { return true; }, 2).size(), 2u);
  EXPECT_TRUE(s->keys_matching(Namespace::kCert, [](std::string_view) { return true; }).empty());
  for (const auto& k : keys) EXPECT_TRUE(s->erase(Namespace::kHttp, k));
  EXPECT_EQ(s->keys_matching(Namespace::kHttp, [](std::string_view) { return true; }),
            (std::vector<std::string>{"http://b/1"}));
}
