// Google Benchmark: cache store lookup hit / miss, insert and erase, on 1 and 2 threads.
// Small objects (40-byte keys, 100-byte bodies), 100k per thread.
#include <benchmark/benchmark.h>

#include <mutex>

#include "cache/store.hpp"

using namespace outpost::cache;

namespace {

constexpr std::size_t kKeys = 100000;

std::string key_of(int thread, std::size_t i) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "http://example.com/t%d/object/%08zu", thread, i);
  return buf;
}

std::vector<std::string> keys_for(int thread) {
  std::vector<std::string> k;
  k.reserve(kKeys);
  for (std::size_t i = 0; i < kKeys; ++i) k.push_back(key_of(thread, i));
  return k;
}

std::unique_ptr<Store> make_store() {
  StoreOptions o;
  o.memory_size = 1ull << 30;
  o.max_object_size = 1 << 20;
  return Store::open(o);
}

const std::string kBody(100, 'b');

// One populated store shared by the hit/miss benchmarks (every thread's key set inserted).
Store& populated() {
  static std::unique_ptr<Store> s = [] {
    auto st = make_store();
    for (int t = 0; t < 2; ++t)
      for (auto& k : keys_for(t)) st->insert(Namespace::kHttp, k, "meta", kBody);
    return st;
  }();
  return *s;
}

// Looks up the first state.range(0) keys of key set `first_set + thread` in turn: 1k keys
// measure the CPU cost (hot in cache), 100k keys include DRAM misses on the index.
void lookups(benchmark::State& state, int first_set) {
  Store& s = populated();
  auto keys = keys_for(state.thread_index() + first_set);
  auto n = static_cast<std::size_t>(state.range(0));
  std::size_t i = 0;
  for (auto _ : state) {
    Handle h = s.lookup(Namespace::kHttp, keys[i]);
    benchmark::DoNotOptimize(h);
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_LookupHit(benchmark::State& state) { lookups(state, 0); }
BENCHMARK(BM_LookupHit)->Arg(1000)->Arg(kKeys)->Threads(1)->Threads(2)->UseRealTime();

void BM_LookupMiss(benchmark::State& state) { lookups(state, 10); }  // sets 10, 11: never inserted
BENCHMARK(BM_LookupMiss)->Arg(1000)->Arg(kKeys)->Threads(1)->Threads(2)->UseRealTime();

Store& scratch() {
  static std::unique_ptr<Store> s = make_store();
  return *s;
}

void BM_Insert(benchmark::State& state) {
  Store& s = scratch();
  auto keys = keys_for(state.thread_index() + 20);
  std::size_t i = 0;
  for (auto _ : state) {
    s.insert(Namespace::kHttp, keys[i], "meta", kBody);
    if (++i == kKeys) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Insert)->Threads(1)->Threads(2)->UseRealTime();

void BM_Erase(benchmark::State& state) {
  Store& s = scratch();
  auto keys = keys_for(state.thread_index() + 30);
  auto refill = [&] {
    for (auto& k : keys) s.insert(Namespace::kHttp, k, "meta", kBody);
  };
  refill();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.erase(Namespace::kHttp, keys[i]));
    if (++i == kKeys) {
      i = 0;
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Erase)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
