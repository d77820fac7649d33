// Replays a request trace through the cache store alone and through reference policies kept
// here (LRU, SIEVE, ARC, GDSF, W-TinyLFU), and prints object and byte miss ratios side by side
// for cache sizes given as fractions of the trace's footprint. The store's rows come from the
// real Store (lookup; on a miss a writer appends the body and commits), so its figures are
// the store's own.
//
//   hitrate --zipf 0.8 [--objects 100000] [--requests 1000000] [--seed 1]
//           [--scan EVERY,LENGTH] [--shift EVERY,BY]   (one-pass scans; popularity shifts)
//   hitrate --trace FILE          (plain text, one request per line: "timestamp key size")
//   common: [--sizes 0.001,0.01,...] [--policies lru,sieve,...] [--markdown out.md] [--plot out.png]
//           [--by-size 1]   (byte miss ratio per object size class too)
//           [--small FRACTION]   (Outpost's small queue)  [--threshold N] [--ghost FRACTION]   (S3-FIFO's)
// "Outpost" is the store as configured by default (S3-FIFO queues + sketch admission),
// "S3-FIFO" the same store with frequency_admission = false and a 10% small queue.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/hitrate/policy.hpp"
#include "bench/hitrate/traces.hpp"
#include "cache/store.hpp"

using namespace outpost;
using namespace outpost::hitrate;

namespace {

// The store as a Policy: body bytes come from one shared zero chunk (no memcpy: the bench
// measures the policy), and count_overhead = false charges key + body like the references.
class StorePolicy final : public Policy {
 public:
  StorePolicy(const Trace& t, const cache::StoreOptions& o, const ChunkRef& zeros)
      : trace_(t), store_(cache::Store::open(o)), zeros_(zeros) {}
  bool access(std::uint64_t id, std::uint64_t charge) override {
    const std::string& key = trace_.keys[id];
    if (store_->lookup(cache::Namespace::kHttp, key)) return true;
    cache::Writer w = store_->writer(cache::Namespace::kHttp, key, {}, 0);
    w.append(Slice{zeros_, zeros_->data(), charge - key.size()});
    w.commit();
    return false;
  }
  bool contains(std::uint64_t id) const override { return store_->contains(cache::Namespace::kHttp, trace_.keys[id]); }
  std::uint64_t used() const override { return store_->stats().total().bytes_memory; }

 private:
  const Trace& trace_;
  std::unique_ptr<cache::Store> store_;
  ChunkRef zeros_;
};

struct Options {
  double small = 0.01, ghost = 0.25;  // Outpost's small queue; S3-FIFO's ghost (its small queue: 10%)
  unsigned threshold = 1;
};

struct Contender {
  std::string name;
  std::function<std::unique_ptr<Policy>(const Trace&, std::uint64_t capacity)> make;
};

std::vector<Contender> contenders(const Options& opt, const ChunkRef& zeros) {
  auto store = [&opt, zeros](bool admission) {
    return [&opt, zeros, admission](const Trace& t, std::uint64_t cap) -> std::unique_ptr<Policy> {
    cache::StoreOptions o;
    o.frequency_admission = admission;
    o.memory_size = cap;
    o.max_object_size = cap;
    o.count_overhead = false;
    o.shards = 16;
    o.move_to_main_threshold = opt.threshold;
    o.small_fraction = admission ? opt.small : 0.10;
    o.ghost_fraction = opt.ghost;
    return std::make_unique<StorePolicy>(t, o, zeros);
    };
  };
  // The sketch is sized like Caffeine's: for the number of objects the cache can hold.
  auto wtinylfu = [](const Trace& t, std::uint64_t cap) {
    std::uint64_t mean = t.footprint / std::max<std::size_t>(t.keys.size(), 1);
    return make_wtinylfu({.capacity = cap, .expected_objects = cap / std::max<std::uint64_t>(mean, 1)});
  };
  return {
      {"Outpost", store(true)},
      {"S3-FIFO", store(false)},
      {"LRU", [](const Trace&, std::uint64_t cap) { return make_lru(cap); }},
      {"SIEVE", [](const Trace&, std::uint64_t cap) { return make_sieve(cap); }},
      {"ARC", [](const Trace&, std::uint64_t cap) { return make_arc(cap); }},
      {"GDSF", [](const Trace&, std::uint64_t cap) { return make_gdsf(cap); }},
      {"W-TinyLFU", wtinylfu},
  };
}

// Size classes of --by-size: under 8 KiB, 8-64 KiB, 64-256 KiB, 256 KiB-1 MiB, 1 MiB and over.
constexpr std::uint64_t kClassLimits[] = {8192, 65536, 262144, 1048576};
constexpr std::size_t kClasses = std::size(kClassLimits) + 1;
std::size_t size_class(std::uint64_t size) {
  std::size_t c = 0;
  while (c < std::size(kClassLimits) && size >= kClassLimits[c]) ++c;
  return c;
}

struct Result {
  std::uint64_t hits = 0, requests = 0, hit_bytes = 0, bytes = 0;
  std::uint64_t class_bytes[kClasses] = {}, class_hit_bytes[kClasses] = {};
  double miss() const { return 1.0 - static_cast<double>(hits) / static_cast<double>(requests); }
  double byte_miss() const { return 1.0 - static_cast<double>(hit_bytes) / static_cast<double>(bytes); }
};

Result replay(const Trace& t, Policy& p) {
  Result r;
  for (auto& q : t.requests) {
    ++r.requests;
    r.bytes += q.size;
    std::size_t c = size_class(q.size);
    r.class_bytes[c] += q.size;
    if (p.access(q.id, t.charge(q))) {
      ++r.hits;
      r.hit_bytes += q.size;
      r.class_hit_bytes[c] += q.size;
    }
  }
  return r;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string f; std::getline(ss, f, ',');) out.push_back(f);
  return out;
}

void write_plot(const std::string& plot, const Trace& t, const std::vector<Contender>& cs, const std::string& dat) {
  std::string script = plot + ".gp";
  std::FILE* gp = std::fopen(script.c_str(), "w");
  if (!gp) return;
  std::fprintf(gp,
               "set terminal pngcairo size 1400,600\nset output '%s'\nset logscale x\nset grid\n"
               "set multiplot layout 1,2 title 'Miss ratio by cache size: %s'\n"
               "set xlabel 'cache size (%% of footprint)'\nset key top right\n",
               plot.c_str(), t.name.c_str());
  for (int part = 0; part < 2; ++part) {
    std::fprintf(gp, "set title '%s miss ratio'\nplot ", part ? "byte" : "object");
    for (std::size_t i = 0; i < cs.size(); ++i)
      std::fprintf(gp, "%s'%s' u 1:%zu w lp lw 2 t '%s'", i ? ", " : "", dat.c_str(), 2 + i * 2 + part, cs[i].name.c_str());
    std::fprintf(gp, "\n");
  }
  std::fprintf(gp, "unset multiplot\n");
  std::fclose(gp);
  std::string cmd = "gnuplot " + script;
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "gnuplot failed (apt-get install gnuplot-nox)\n");
  else std::printf("plot: %s\n", plot.c_str());
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--zipf A --objects N --requests M --seed S --scan EVERY,LEN --shift EVERY,BY | --trace FILE]\n"
               "          [--sizes f,..] [--policies name,..] [--markdown out.md] [--plot out.png]\n"
               "          [--threshold N] [--small F] [--ghost F] [--by-size 1]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  SyntheticOptions syn;
  Options opt;
  std::string trace_file, plot, markdown;
  bool by_size = false;
  std::vector<std::string> only;
  std::vector<double> sizes = {0.001, 0.01, 0.05, 0.1};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    std::string v = argv[++i];
    if (a == "--zipf") syn.alpha = std::stod(v);
    else if (a == "--objects") syn.objects = std::stoull(v);
    else if (a == "--requests") syn.requests = std::stoull(v);
    else if (a == "--seed") syn.seed = std::stoull(v);
    else if (a == "--scan" && split(v).size() == 2) syn.scan_every = std::stoull(split(v)[0]), syn.scan_length = std::stoull(split(v)[1]);
    else if (a == "--shift" && split(v).size() == 2) syn.shift_every = std::stoull(split(v)[0]), syn.shift_by = std::stoull(split(v)[1]);
    else if (a == "--trace") trace_file = v;
    else if (a == "--plot") plot = v;
    else if (a == "--markdown") markdown = v;
    else if (a == "--policies") only = split(v);
    else if (a == "--small") opt.small = std::stod(v);
    else if (a == "--ghost") opt.ghost = std::stod(v);
    else if (a == "--by-size") by_size = v != "0";
    else if (a == "--threshold") opt.threshold = static_cast<unsigned>(std::stoul(v));
    else if (a == "--sizes") {
      sizes.clear();
      for (auto& f : split(v)) sizes.push_back(std::stod(f));
    } else {
      return usage(argv[0]);
    }
  }
  Trace t;
  if (!trace_file.empty()) {
    if (!read_trace(trace_file, &t)) {
      std::fprintf(stderr, "cannot read trace %s\n", trace_file.c_str());
      return 1;
    }
  } else {
    t = synthetic_trace(syn);
  }
  ChunkRef zeros = ChunkRef::make(t.max_size);
  zeros->set_size(t.max_size);
  std::vector<Contender> cs;
  for (auto& c : contenders(opt, zeros))
    if (only.empty() || std::find(only.begin(), only.end(), c.name) != only.end()) cs.push_back(c);

  std::printf("trace %s: %zu requests, %zu objects, footprint %.1f MiB\n", t.name.c_str(), t.requests.size(), t.keys.size(),
              static_cast<double>(t.footprint) / 1048576.0);
  std::string md = "| size | " , md_rule = "|---|";
  std::printf("%7s |", "size");
  for (const char* kind : {"miss", "bmiss"})
    for (auto& c : cs) {
      std::printf(" %10.10s", (c.name + (kind[0] == 'b' ? " B" : "")).c_str());
      md += c.name + (kind[0] == 'b' ? " byte miss" : " miss") + " | ";
      md_rule += "---|";
    }
  std::printf("\n");
  md += "\n" + md_rule + "\n";
  std::string dat = plot + ".dat";
  std::FILE* df = plot.empty() ? nullptr : std::fopen(dat.c_str(), "w");
  for (double f : sizes) {
    auto cap = static_cast<std::uint64_t>(static_cast<double>(t.footprint) * f);
    std::vector<Result> rs;
    for (auto& c : cs) {
      auto p = c.make(t, cap);
      rs.push_back(replay(t, *p));
    }
    char cell[64];
    std::snprintf(cell, sizeof cell, "%g%%", f * 100);
    std::printf("%7s |", cell);
    md += std::string("| ") + cell + " | ";
    if (df) std::fprintf(df, "%g", f * 100);
    for (int kind = 0; kind < 2; ++kind) {
      // The best figure of the row in bold in the Markdown table.
      double best = 2;
      for (auto& r : rs) best = std::min(best, kind ? r.byte_miss() : r.miss());
      for (auto& r : rs) {
        double m = kind ? r.byte_miss() : r.miss();
        std::printf(" %10.4f", m);
        std::snprintf(cell, sizeof cell, m == best ? "**%.4f** | " : "%.4f | ", m);
        md += cell;
      }
    }
    for (auto& r : rs)
      if (df) std::fprintf(df, " %g %g", r.miss(), r.byte_miss());
    std::printf("\n");
    if (by_size)
      for (std::size_t i = 0; i < cs.size(); ++i) {
        std::printf("        %-10.10s byte miss by size (<8K 8-64K 64-256K 256K-1M >=1M; share of bytes):", cs[i].name.c_str());
        for (std::size_t c = 0; c < kClasses; ++c)
          std::printf(" %.4f (%.2f)",
                      rs[i].class_bytes[c] ? 1.0 - static_cast<double>(rs[i].class_hit_bytes[c]) / static_cast<double>(rs[i].class_bytes[c]) : 0.0,
                      static_cast<double>(rs[i].class_bytes[c]) / static_cast<double>(rs[i].bytes));
        std::printf("\n");
      }
    md += "\n";
    if (df) std::fprintf(df, "\n");
    std::fflush(stdout);
  }
  if (!markdown.empty()) {
    std::FILE* mf = std::fopen(markdown.c_str(), "w");
    if (mf) {
      std::fprintf(mf, "Trace %s: %zu requests, %zu objects, footprint %.1f MiB\n\n%s", t.name.c_str(), t.requests.size(),
                   t.keys.size(), static_cast<double>(t.footprint) / 1048576.0, md.c_str());
      std::fclose(mf);
    }
  }
  if (df) {
    std::fclose(df);
    write_plot(plot, t, cs, dat);
  }
  return 0;
}
