// Many threads on one store at once (run under the tsan preset too, see docs/CACHE_STORE.md):
// every hit must be a complete, consistent object whatever races with it.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "cache/shard_lock.hpp"
#include "cache/store.hpp"
#include "cache_test_util.hpp"

using namespace outpost;
using namespace outpost::cache;
using outpost::cache::testing::numbered;

namespace {

// The body is derived from key and version, so a reader can check any object it sees.
std::string body_for(const std::string& key, unsigned version) {
  std::string b;
  std::size_t n = 50 + (std::hash<std::string>{}(key) + version * 131) % 3000;
  for (std::size_t i = 0; b.size() < n; ++i) b += key + ":" + std::to_string(version) + ";";
  b.resize(n);
  return b;
}

bool consistent(const Handle& h) {
  std::string meta(h.metadata());
  auto bar = meta.find('|');
  if (bar == std::string::npos) return false;
  unsigned version = static_cast<unsigned>(std::stoul(meta.substr(0, bar)));
  return h.body_string() == body_for(std::string(h.key()), version);
}

}  // namespace

TEST(CacheConcurrency, MixedOperationsStayConsistent) {
  StoreOptions o;
  o.memory_size = 512 << 10;  // small: constant eviction
  o.max_object_size = 64 << 10;
  o.shards = 8;
  auto s = Store::open(o);
  ASSERT_TRUE(s);
  constexpr int kThreads = 4, kOps = 20000, kKeys = 400;
  std::atomic<unsigned> next_version{1};
  std::atomic<int> bad{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u);
      for (int i = 0; i < kOps; ++i) {
        std::string key = numbered("key", rng() % kKeys);
        auto ns = static_cast<Namespace>(rng() % 2);
        unsigned op = rng() % 100;
        if (op < 60) {
          Handle h = s->lookup(ns, key);
          if (h) {
            ++hits;
            if (!consistent(h)) ++bad;
          }
        } else if (op < 85) {
          unsigned v = next_version++;
          std::string body = body_for(key, v);
          Writer w = s->writer(ns, key, std::to_string(v) + "|", 0);
          for (std::size_t off = 0; off < body.size(); off += 700) w.append(std::string_view(body).substr(off, 700));
          if (rng() % 10 == 0) w.abort(); else w.commit();
        } else if (op < 90) {
          s->erase(ns, key);
        } else if (op < 95) {
          Handle h = s->lookup(ns, key);
          if (h) {
            std::string meta(h.metadata());
            s->update_metadata(ns, key, meta.substr(0, meta.find('|') + 1) + "refreshed", 0, h);
          }
        } else if (op < 99) {
          Reader r = s->attach(ns, key);
          if (r) {
            std::vector<Slice> out;
            while (r.read(&out) == ReadResult::kData) {
            }
          }
        } else {
          s->purge(Namespace::kDns);
          (void)s->stats();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(hits.load(), 0);
  auto st = s->stats().total();
  EXPECT_LE(st.bytes_memory, o.memory_size);
  EXPECT_EQ(st.lookups, st.hits + st.misses);
  // Everything left must be consistent too.
  for (int k = 0; k < kKeys; ++k)
    for (int n = 0; n < 2; ++n)
      if (Handle h = s->lookup(static_cast<Namespace>(n), numbered("key", k))) {
        EXPECT_TRUE(consistent(h));
      }
}

TEST(CacheConcurrency, CollapsedForwardingManyReaders) {
  StoreOptions o;
  o.memory_size = 64 << 20;
  o.max_object_size = 16 << 20;
  auto s = Store::open(o);
  for (int round = 0; round < 20; ++round) {
    std::string key = numbered("obj", round);
    Status st;
    Writer w = s->writer(Namespace::kHttp, key, "m", 0, WriterMode::kExclusive, &st);
    ASSERT_TRUE(w);
    bool abort = round % 5 == 4;
    // While the writer is in progress a second exclusive writer is refused. (Readers must not
    // try this themselves: once the first writer has finished, one reader would get a writer,
    // another reader would attach to it, and its abort on scope exit would fail that reader.)
    Status busy = Status::kOk;
    EXPECT_FALSE(s->writer(Namespace::kHttp, key, "m", 0, WriterMode::kExclusive, &busy));
    EXPECT_EQ(busy, Status::kBusy);
    std::atomic<int> ok{0}, errors{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r) {
      readers.emplace_back([&] {
        Reader rd = s->attach(Namespace::kHttp, key);
        if (!rd) {  // the writer may already have finished
          ok++;
          return;
        }
        std::string got;
        std::vector<Slice> out;
        for (;;) {
          out.clear();
          ReadResult res = rd.read(&out);
          for (auto& sl : out) got += sl.view();
          if (res == ReadResult::kEnd) {
            if (got.size() == 200 * 512) ok++;
            return;
          }
          if (res == ReadResult::kError) {
            errors++;
            return;
          }
          if (res == ReadResult::kWait) {
            std::atomic<bool> flag{false};
            rd.subscribe([&flag] { flag = true; flag.notify_one(); });
            flag.wait(false);
          }
        }
      });
    }
    for (int i = 0; i < 200; ++i) w.append(std::string(512, 'x'));
    if (abort) w.abort(); else w.commit();
    for (auto& t : readers) t.join();
    EXPECT_EQ(ok + errors, 3);
    if (!abort) {
      EXPECT_EQ(errors.load(), 0);
    }
  }
}

// The shard lock itself: writers change two plain variables together; readers (several per
// slot too) must never see them differ, and writers must never interleave.
TEST(CacheConcurrency, ShardLockExcludesWritersFromReaders) {
  using namespace outpost::cache::detail;
  SharedShardLock lock;
  std::uint64_t a = 0, b = 0;  // guarded by `lock`
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<std::uint64_t> reads{0};
  std::atomic<int> readers_running{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&] {
      bool counted = false;
      while (!stop.load()) {
        {
          ReadGuard g(lock);
          if (a != b) ++torn;
          reads.fetch_add(1, std::memory_order_relaxed);
        }
        if (!counted) {
          counted = true;
          readers_running++;
        }
      }
    });
  }
  constexpr int kWrites = 20000;
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      // Start writing only once every reader is in its loop, so that they overlap (on a
      // loaded machine the writers could otherwise finish before a reader was scheduled).
      while (readers_running.load() < 3) std::this_thread::yield();
      for (int i = 0; i < kWrites; ++i) {
        std::lock_guard g(lock);
        ++a;
        ++b;
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(a, 2u * kWrites);
  EXPECT_EQ(b, 2u * kWrites);
  EXPECT_GT(reads.load(), 0u);
}
