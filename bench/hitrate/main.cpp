// Replays a request trace through the cache store alone and prints object and byte hit
// ratios for cache sizes from 0.1% to 20% of the trace's footprint, S3-FIFO (the store)
// side by side with an LRU baseline kept here. Optionally plots the curves with gnuplot.
//
//   hitrate --zipf 0.8 [--objects 200000] [--requests 2000000] [--seed 1]
//   hitrate --trace FILE          (plain text, one request per line: "timestamp key size")
//   common: [--sizes 0.001,0.002,...] [--plot out.png]
//           [--threshold N] [--small FRACTION] [--ghost FRACTION]   (S3-FIFO tuning)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/store.hpp"

using namespace outpost;
using namespace outpost::cache;

namespace {

double g_small = 0.10, g_ghost = 0.25;  // --small, --ghost

struct Request {
  std::uint32_t id;
  std::uint32_t size;
};

struct Trace {
  std::string name;
  std::vector<std::string> keys;  // id -> key
  std::vector<Request> requests;
  std::uint64_t footprint = 0;  // sum of distinct objects' sizes (+ key bytes, as charged)
  std::uint32_t max_size = 0;
};

void finish(Trace& t) {
  std::vector<std::uint32_t> size_of(t.keys.size(), 0);
  for (auto& r : t.requests) size_of[r.id] = r.size;
  for (std::size_t i = 0; i < size_of.size(); ++i)
    if (size_of[i]) t.footprint += size_of[i] + t.keys[i].size();
  for (auto& r : t.requests) t.max_size = std::max(t.max_size, r.size);
}

// Zipf(alpha) popularity over `objects` ids (shuffled), lognormal sizes (median 8 KiB,
// sigma 1.5: heavy tail), clamped to [64 B, 4 MiB].
Trace zipf_trace(double alpha, std::size_t objects, std::size_t requests, std::uint64_t seed) {
  Trace t;
  char name[64];
  std::snprintf(name, sizeof name, "zipf%.2f", alpha);
  t.name = name;
  std::mt19937_64 rng(seed);
  std::vector<double> cdf(objects);
  double sum = 0;
  for (std::size_t i = 0; i < objects; ++i) cdf[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), alpha);
  for (auto& c : cdf) c /= sum;
  std::vector<std::uint32_t> perm(objects);
  for (std::size_t i = 0; i < objects; ++i) perm[i] = static_cast<std::uint32_t>(i);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::lognormal_distribution<double> size_dist(std::log(8192.0), 1.5);
  std::vector<std::uint32_t> sizes(objects);
  for (auto& s : sizes) s = static_cast<std::uint32_t>(std::clamp(size_dist(rng), 64.0, 4194304.0));
  t.keys.reserve(objects);
  for (std::size_t i = 0; i < objects; ++i) t.keys.push_back("obj" + std::to_string(i));
  std::uniform_real_distribution<double> u(0, 1);
  t.requests.reserve(requests);
  for (std::size_t r = 0; r < requests; ++r) {
    auto rank = static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    std::uint32_t id = perm[std::min(rank, objects - 1)];
    t.requests.push_back({id, sizes[id]});
  }
  finish(t);
  return t;
}

bool read_trace(const std::string& path, Trace* t) {
  std::ifstream in(path);
  if (!in) return false;
  t->name = path.substr(path.find_last_of('/') + 1);
  std::unordered_map<std::string, std::uint32_t> ids;
  std::string line, ts, key;
  std::uint64_t size;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> ts >> key >> size) || size == 0) continue;
    auto [it, fresh] = ids.emplace(key, static_cast<std::uint32_t>(t->keys.size()));
    if (fresh) t->keys.push_back(key);
    t->requests.push_back({it->second, static_cast<std::uint32_t>(std::min<std::uint64_t>(size, UINT32_MAX))});
  }
  finish(*t);
  return !t->requests.empty();
}

struct Result {
  std::uint64_t hits = 0, requests = 0, hit_bytes = 0, bytes = 0;
  double miss_ratio() const { return 1.0 - static_cast<double>(hits) / static_cast<double>(requests); }
  double byte_miss_ratio() const { return 1.0 - static_cast<double>(hit_bytes) / static_cast<double>(bytes); }
};

// The store under test: lookup, and on a miss write the object (sharing one zero chunk, so
// the bench measures the policy, not memcpy). Charges key + body bytes, like the LRU below.
Result run_store(const Trace& t, std::uint64_t capacity, unsigned threshold, const ChunkRef& zeros) {
  StoreOptions o;
  o.memory_size = capacity;
  o.max_object_size = capacity;
  o.count_overhead = false;
  o.shards = 16;
  o.move_to_main_threshold = threshold;
  o.small_fraction = g_small;
  o.ghost_fraction = g_ghost;
  auto s = Store::open(o);
  Result r;
  for (auto& q : t.requests) {
    const std::string& key = t.keys[q.id];
    ++r.requests;
    r.bytes += q.size;
    if (s->lookup(Namespace::kHttp, key)) {
      ++r.hits;
      r.hit_bytes += q.size;
      continue;
    }
    Writer w = s->writer(Namespace::kHttp, key, {}, 0);
    w.append(Slice{zeros, zeros->data(), q.size});
    w.commit();
  }
  return r;
}

// Byte-capacity LRU: the baseline.
Result run_lru(const Trace& t, std::uint64_t capacity) {
  std::list<std::uint32_t> order;  // front = most recent
  struct Slot {
    std::list<std::uint32_t>::iterator pos;
    std::uint64_t charge;
  };
  std::unordered_map<std::uint32_t, Slot> map;
  std::uint64_t used = 0;
  Result r;
  for (auto& q : t.requests) {
    ++r.requests;
    r.bytes += q.size;
    auto it = map.find(q.id);
    if (it != map.end()) {
      ++r.hits;
      r.hit_bytes += q.size;
      order.splice(order.begin(), order, it->second.pos);
      continue;
    }
    std::uint64_t charge = q.size + t.keys[q.id].size();
    if (charge > capacity) continue;
    order.push_front(q.id);
    map[q.id] = Slot{order.begin(), charge};
    used += charge;
    while (used > capacity) {
      auto victim = map.find(order.back());
      used -= victim->second.charge;
      map.erase(victim);
      order.pop_back();
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double alpha = 0.8;
  std::size_t objects = 200000, requests = 2000000;
  std::uint64_t seed = 1;
  unsigned threshold = 1;
  std::string trace_file, plot;
  std::vector<double> sizes = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--zipf") alpha = std::stod(next());
    else if (a == "--objects") objects = std::stoull(next());
    else if (a == "--requests") requests = std::stoull(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--trace") trace_file = next();
    else if (a == "--plot") plot = next();
    else if (a == "--small") g_small = std::stod(next());
    else if (a == "--ghost") g_ghost = std::stod(next());
    else if (a == "--threshold") threshold = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--sizes") {
      sizes.clear();
      std::stringstream ss(next());
      for (std::string f; std::getline(ss, f, ',');) sizes.push_back(std::stod(f));
    } else {
      std::fprintf(stderr, "usage: %s [--zipf A --objects N --requests M --seed S | --trace FILE] [--sizes f,..] [--plot out.png]\n", argv[0]);
      return 2;
    }
  }
  Trace t;
  if (!trace_file.empty()) {
    if (!read_trace(trace_file, &t)) {
      std::fprintf(stderr, "cannot read trace %s\n", trace_file.c_str());
      return 1;
    }
  } else {
    t = zipf_trace(alpha, objects, requests, seed);
  }
  ChunkRef zeros = ChunkRef::make(t.max_size);
  zeros->set_size(t.max_size);
  std::printf("trace %s: %zu requests, %zu objects, footprint %.1f MiB\n", t.name.c_str(), t.requests.size(), t.keys.size(),
              static_cast<double>(t.footprint) / 1048576.0);
  std::printf("%8s %10s | %9s %9s %8s | %9s %9s %8s\n", "size", "bytes", "S3 miss", "LRU miss", "reduct.", "S3 bmiss",
              "LRU bmiss", "reduct.");
  std::string data_file = plot.empty() ? "" : plot + ".dat";
  std::FILE* dat = data_file.empty() ? nullptr : std::fopen(data_file.c_str(), "w");
  for (double f : sizes) {
    auto cap = static_cast<std::uint64_t>(static_cast<double>(t.footprint) * f);
    Result s3 = run_store(t, cap, threshold, zeros);
    Result lru = run_lru(t, cap);
    double red = 1 - s3.miss_ratio() / lru.miss_ratio();
    double bred = 1 - s3.byte_miss_ratio() / lru.byte_miss_ratio();
    std::printf("%7.1f%% %10llu | %9.4f %9.4f %7.1f%% | %9.4f %9.4f %7.1f%%\n", f * 100, static_cast<unsigned long long>(cap),
                s3.miss_ratio(), lru.miss_ratio(), red * 100, s3.byte_miss_ratio(), lru.byte_miss_ratio(), bred * 100);
    std::fflush(stdout);
    if (dat)
      std::fprintf(dat, "%g %g %g %g %g\n", f * 100, s3.miss_ratio(), lru.miss_ratio(), s3.byte_miss_ratio(),
                   lru.byte_miss_ratio());
  }
  if (dat) {
    std::fclose(dat);
    std::string script = plot + ".gp";
    std::FILE* gp = std::fopen(script.c_str(), "w");
    std::fprintf(gp,
                 "set terminal pngcairo size 900,600\nset output '%s'\nset logscale x\nset grid\n"
                 "set title 'Outpost cache store: %s'\nset xlabel 'cache size (%% of footprint)'\n"
                 "set ylabel 'miss ratio'\nset key top right\n"
                 "plot '%s' u 1:2 w lp lw 2 t 'S3-FIFO object', '%s' u 1:3 w lp lw 2 t 'LRU object', "
                 "'%s' u 1:4 w lp dt 2 t 'S3-FIFO byte', '%s' u 1:5 w lp dt 2 t 'LRU byte'\n",
                 plot.c_str(), t.name.c_str(), data_file.c_str(), data_file.c_str(), data_file.c_str(), data_file.c_str());
    std::fclose(gp);
    std::string cmd = "gnuplot " + script;
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "gnuplot failed (apt-get install gnuplot-nox)\n");
    else std::printf("plot: %s\n", plot.c_str());
  }
  return 0;
}
