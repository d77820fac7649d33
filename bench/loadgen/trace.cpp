#include "bench/loadgen/trace.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <unordered_map>

#include "bench/loadgen/options.hpp"

namespace loadgen {
namespace {

constexpr std::uint64_t kMaxObjectSize = 16u << 20;  // what the origin serves
constexpr std::uint64_t kDefaultSizeMax = 4u << 20;

// splitmix64: deterministic on every platform and standard library (std::*_distribution is
// implementation-defined), so a spec names the same requests everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  double normal() {  // Box-Muller; one of the pair is enough here
    double u1 = 1.0 - uniform();  // (0, 1]: log(0) never happens
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * uniform());
  }

 private:
  std::uint64_t state_;
};

struct SyntheticSpec {
  std::uint64_t objects = 0;
  std::uint64_t requests = 0;
  double alpha = 0.8;
  std::uint64_t seed = 1;
  double size_median = 8192;
  double size_sigma = 1.5;
  std::uint64_t size_max = kDefaultSizeMax;
  unsigned mix[6] = {80, 5, 10, 5, 0, 0};  // percent of objects of each kind, in kKindCodes order
  std::uint64_t big_min = 262144;  // kind r objects: sizes uniform in [big_min, size_max]
  std::uint64_t chunk = 65536;     // kind r requests: one chunk-aligned range of this size
  double reval = 10;                 // percent of repeat requests sent as revalidations
  bool scan = false;
};

constexpr char kKindCodes[6] = {'c', 'n', 's', 'v', 'r', 'l'};
constexpr unsigned kKinds = 6;

bool has_validators(char kind) { return kind != 'n'; }

std::uint64_t spec_integer(std::string_view key, std::string_view value, std::uint64_t min, std::uint64_t max) {
  return ranged_integer("trace spec: " + std::string(key), value, min, max);
}

double spec_real(std::string_view key, std::string_view value, double min, double max) {
  return ranged_real("trace spec: " + std::string(key), value, min, max);
}

// "c80/n5/s10/v5": percentages per kind, summing to 100; a kind left out gets 0.
void parse_mix(std::string_view text, unsigned (&mix)[6]) {
  std::fill(std::begin(mix), std::end(mix), 0u);
  unsigned total = 0;
  while (!text.empty()) {
    std::size_t slash = text.find('/');
    std::string_view part = text.substr(0, slash);
    const char* kind = part.empty() ? nullptr : std::find(kKindCodes, kKindCodes + kKinds, part[0]);
    auto pct = part.empty() ? std::nullopt : parse_u64(part.substr(1));
    if (!kind || kind == kKindCodes + kKinds || !pct || *pct > 100)
      throw UsageError("trace spec: mix wants parts like c80/n5/s10/v5, not '" + std::string(part) + "'");
    mix[kind - kKindCodes] += static_cast<unsigned>(*pct);
    total += static_cast<unsigned>(*pct);
    text = slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1);
  }
  if (total != 100) throw UsageError("trace spec: the mix percentages must add up to 100");
}

SyntheticSpec parse_synthetic(std::string_view text) {
  SyntheticSpec s;
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) throw UsageError("trace spec: '" + std::string(item) + "' is not key=value");
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "objects") s.objects = spec_integer(key, value, 1, 100'000'000);
    else if (key == "requests") s.requests = spec_integer(key, value, 1, 500'000'000);
    else if (key == "alpha") s.alpha = spec_real(key, value, 0, 5);
    else if (key == "seed") s.seed = spec_integer(key, value, 0, UINT64_MAX);
    else if (key == "size_median") s.size_median = spec_real(key, value, 1, kMaxObjectSize);
    else if (key == "size_sigma") s.size_sigma = spec_real(key, value, 0, 10);
    else if (key == "size_max") s.size_max = spec_integer(key, value, 64, kMaxObjectSize);
    else if (key == "mix") parse_mix(value, s.mix);
    else if (key == "reval") s.reval = spec_real(key, value, 0, 100);
    else if (key == "scan") s.scan = spec_integer(key, value, 0, 1) == 1;
    else if (key == "big_min") s.big_min = spec_integer(key, value, 64, kMaxObjectSize);
    else if (key == "chunk") s.chunk = spec_integer(key, value, 1, kMaxObjectSize);
    else throw UsageError("trace spec: unknown key '" + std::string(key) + "'");
  }
  if (s.objects == 0 || s.requests == 0) throw UsageError("trace spec: synthetic needs objects=N and requests=M");
  return s;
}

// Rank (0 = most popular) -> cumulative probability, for Zipf(alpha) over n ranks.
std::vector<double> zipf_cdf(std::uint64_t n, double alpha) {
  std::vector<double> cdf(n);
  double sum = 0;
  for (std::uint64_t i = 0; i < n; ++i) cdf[i] = sum += std::pow(static_cast<double>(i + 1), -alpha);
  for (double& c : cdf) c /= sum;
  return cdf;
}

Trace synthetic_trace(const SyntheticSpec& s) {
  // Objects first, from their own stream, so that the request count does not change them.
  Rng objects_rng(Rng(s.seed).next() ^ 1);
  std::vector<std::uint32_t> by_rank(s.objects);  // popularity rank -> object id (shuffled)
  for (std::uint64_t i = 0; i < s.objects; ++i) by_rank[i] = static_cast<std::uint32_t>(i);
  for (std::uint64_t i = s.objects - 1; i > 0; --i) std::swap(by_rank[i], by_rank[objects_rng.below(i + 1)]);
  std::vector<std::uint32_t> sizes(s.objects);
  std::vector<char> kinds(s.objects);
  for (std::uint64_t id = 0; id < s.objects; ++id) {
    double size = std::round(s.size_median * std::exp(s.size_sigma * objects_rng.normal()));
    sizes[id] = static_cast<std::uint32_t>(std::clamp(size, 64.0, static_cast<double>(s.size_max)));
    double pick = objects_rng.uniform() * 100;
    unsigned k = 0;
    double edge = s.mix[0];
    while (k < kKinds - 1 && pick >= edge) edge += s.mix[++k];
    kinds[id] = kKindCodes[k];
    if (kinds[id] == 'r') {  // large media: drawn from their own range of sizes
      std::uint64_t lo = std::min(s.big_min, s.size_max);
      sizes[id] = static_cast<std::uint32_t>(lo + objects_rng.below(s.size_max - lo + 1));
    }
  }

  Trace t;
  std::vector<double> cdf = s.scan ? std::vector<double>() : zipf_cdf(s.objects, s.alpha);
  std::vector<bool> seen(s.objects);
  Rng requests_rng(Rng(s.seed).next() ^ 2);
  t.requests.reserve(s.requests);
  for (std::uint64_t r = 0; r < s.requests; ++r) {
    std::uint32_t id;
    if (s.scan) {
      id = static_cast<std::uint32_t>(r % s.objects);
    } else {
      auto rank = std::lower_bound(cdf.begin(), cdf.end(), requests_rng.uniform()) - cdf.begin();
      id = by_rank[std::min(static_cast<std::uint64_t>(rank), s.objects - 1)];
    }
    // Drawn for every request, so the revalidation share does not shift the stream.
    bool revalidate = requests_rng.uniform() * 100 < s.reval && seen[id] && has_validators(kinds[id]);
    if (!seen[id]) {
      seen[id] = true;
      ++t.objects;
      t.footprint += sizes[id];
    }
    TraceRequest tr{id, sizes[id], kinds[id], revalidate};
    // Drawn for every request too, for the same reason.
    double where = requests_rng.uniform();
    auto spelling = static_cast<std::uint8_t>(requests_rng.below(kVariantSpellings));
    if (tr.kind == 'r') {
      // A player's chunk: the early chunks of a file are asked for most (u² skews to 0).
      std::uint64_t chunks = (sizes[id] + s.chunk - 1) / s.chunk;
      auto c = std::min<std::uint64_t>(static_cast<std::uint64_t>(where * where * static_cast<double>(chunks)), chunks - 1);
      tr.range_first = static_cast<std::uint32_t>(c * s.chunk);
      tr.range_last = static_cast<std::uint32_t>(std::min<std::uint64_t>((c + 1) * s.chunk, sizes[id]) - 1);
      tr.revalidate = false;
    } else if (tr.kind == 'l') {
      tr.variant = spelling;
    }
    t.requests.push_back(tr);
  }
  return t;
}

std::string_view next_field(std::string_view& line) {
  std::size_t start = line.find_first_not_of(" \t\r");
  if (start == std::string_view::npos) return line = {};
  std::size_t end = line.find_first_of(" \t\r", start);
  std::string_view field = line.substr(start, end - start);
  line = end == std::string_view::npos ? std::string_view() : line.substr(end);
  return field;
}

// One request per line, "timestamp key size"; keys become dense ids by first appearance and
// an object keeps the size of its first appearance (its URL carries it, so a changing size
// would make it another object).
Trace file_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read trace file '" + path + "'");
  Trace t;
  std::unordered_map<std::string, std::uint32_t> ids;
  std::vector<std::uint32_t> sizes;
  for (std::string text; std::getline(in, text);) {
    std::string_view line = text;
    std::string_view timestamp = next_field(line);
    if (timestamp.empty() || timestamp[0] == '#') continue;
    std::string_view key = next_field(line);
    auto size = parse_u64(next_field(line));
    if (key.empty() || !size) {
      ++t.malformed_lines;
      continue;
    }
    auto [it, fresh] = ids.emplace(std::string(key), static_cast<std::uint32_t>(sizes.size()));
    if (fresh) {
      sizes.push_back(static_cast<std::uint32_t>(std::clamp<std::uint64_t>(*size, 1, kDefaultSizeMax)));
      t.footprint += sizes.back();
    }
    t.requests.push_back({it->second, sizes[it->second], 'c', false});
  }
  t.objects = sizes.size();
  return t;
}

}  // namespace

Trace load_trace(std::string_view spec) {
  Trace t;
  if (spec.substr(0, 10) == "synthetic:")
    t = synthetic_trace(parse_synthetic(spec.substr(10)));
  else if (spec.substr(0, 5) == "file:")
    t = file_trace(std::string(spec.substr(5)));
  else
    throw UsageError("--trace wants synthetic:... or file:PATH");
  if (t.requests.empty()) throw UsageError("the trace has no requests");
  return t;
}

}  // namespace loadgen
