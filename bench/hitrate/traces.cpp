#include "bench/hitrate/traces.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

namespace outpost::hitrate {

namespace {

void finish(Trace& t) {
  std::vector<std::uint32_t> size_of(t.keys.size(), 0);
  for (auto& r : t.requests) size_of[r.id] = r.size;
  for (std::size_t i = 0; i < size_of.size(); ++i)
    if (size_of[i]) t.footprint += size_of[i] + t.keys[i].size();
  for (auto& r : t.requests) t.max_size = std::max(t.max_size, r.size);
}

}  // namespace

Trace synthetic_trace(const SyntheticOptions& o) {
  Trace t;
  char name[96];
  int n = std::snprintf(name, sizeof name, "zipf%.2f", o.alpha);
  if (o.scan_every) n += std::snprintf(name + n, sizeof name - n, "+scan%zu/%zu", o.scan_length, o.scan_every);
  if (o.shift_every) std::snprintf(name + n, sizeof name - n, "+shift%zu/%zu", o.shift_by, o.shift_every);
  t.name = name;
  std::mt19937_64 rng(o.seed);
  std::vector<double> cdf(o.objects);
  double sum = 0;
  for (std::size_t i = 0; i < o.objects; ++i) cdf[i] = sum += 1.0 / std::pow(static_cast<double>(i + 1), o.alpha);
  for (auto& c : cdf) c /= sum;
  std::vector<std::uint32_t> perm(o.objects);
  for (std::size_t i = 0; i < o.objects; ++i) perm[i] = static_cast<std::uint32_t>(i);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::lognormal_distribution<double> size_dist(std::log(8192.0), 1.5);
  auto draw_size = [&] { return static_cast<std::uint32_t>(std::clamp(size_dist(rng), 64.0, 4194304.0)); };
  std::vector<std::uint32_t> sizes(o.objects);
  for (auto& s : sizes) s = draw_size();
  t.keys.reserve(o.objects);
  for (std::size_t i = 0; i < o.objects; ++i) t.keys.push_back("obj" + std::to_string(i));
  std::uniform_real_distribution<double> u(0, 1);
  t.requests.reserve(o.requests);
  std::size_t shift = 0;
  for (std::size_t r = 0; r < o.requests; ++r) {
    if (o.shift_every && r && r % o.shift_every == 0) shift += o.shift_by;
    if (o.scan_every && r && r % o.scan_every == 0)
      for (std::size_t i = 0; i < o.scan_length; ++i) {
        auto id = static_cast<std::uint32_t>(t.keys.size());
        t.keys.push_back("scan" + std::to_string(id));
        t.requests.push_back({id, draw_size()});
      }
    auto rank = static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    std::uint32_t id = perm[(std::min(rank, o.objects - 1) + shift) % o.objects];
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

}  // namespace outpost::hitrate
