// Metrics: per-worker counters and histograms, gathered on each scrape and written in the
// Prometheus text format (version 0.0.4).
//
// The hot path takes no lock and shares no cache line: every figure belongs to one worker
// (a counter block inside that worker's own objects, e.g. ProxyWorker's RequestMetrics) and
// only that worker's loop thread writes it, as plain integers. Nothing reads them from another
// thread either: a scrape asks MetricsRegistry::gather(), which posts a collection task to
// every worker (Worker::post); each worker runs its collectors on its own loop thread into a
// MetricSet of its own, and the sets are summed on the way back. So the counters need no
// atomics, reads never tear, and the existing plain counters of the proxy, the DNS server and
// the store can be exported as they are. Process-wide sources that are thread-safe already
// (the cache store's stats) are read once per scrape on the gathering thread.
//
// Collectors see a MetricsVisitor (CacheLib's getCounters(visitor) shape): they name each
// sample with its family, help text, type and labels. Samples of the same family and labels
// from different workers are added up, gauges too (every gauge here counts things: open
// connections, idle connections, objects).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost {

class Worker;

struct Label {
  std::string_view name;
  std::string_view value;
};

// Bucket upper bounds (seconds) for request and time-to-first-byte histograms: 1 ms to 60 s.
inline constexpr double kLatencyBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10,   30, 60};

// A fixed-bucket histogram as Prometheus counts it: a value v falls in the first bucket whose
// upper bound le satisfies v <= le, else in +Inf. Counts are kept per bucket and made
// cumulative only when written. observe() is a short scan and three additions.
class Histogram {
 public:
  static constexpr std::size_t kMaxBounds = 24;
  // `upper_bounds`: ascending, finite, at most kMaxBounds; must outlive the histogram (a
  // static array such as kLatencyBuckets). +Inf is implicit.
  explicit Histogram(std::span<const double> upper_bounds);

  void observe(double v) {
    if (v != v) return;  // NaN belongs nowhere
    std::size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += v;
    ++count_;
  }
  // Adds another histogram's counts; false (nothing added) if its bounds differ.
  bool merge(const Histogram& other);

  std::span<const double> bounds() const { return bounds_; }
  // Observations with v <= bounds()[i]; i == bounds().size() is +Inf (= count()).
  std::uint64_t cumulative(std::size_t i) const;
  double sum() const { return sum_; }
  std::uint64_t count() const { return count_; }

 private:
  std::span<const double> bounds_;
  std::array<std::uint64_t, kMaxBounds + 1> counts_{};
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// What collectors report to. Names follow Prometheus conventions (outpost_ prefix, _total on
// counters, base units: seconds, bytes); label names are fixed by the code, label values may
// come from data and are escaped when written.
class MetricsVisitor {
 public:
  virtual ~MetricsVisitor() = default;
  virtual void counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                       double value) = 0;
  virtual void gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                     double value) = 0;
  virtual void histogram(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                         const Histogram& h) = 0;
};

// Samples by family and label set, summed when the same one is reported again (by another
// worker, or merged from another set). A family keeps the type and help of its first sample;
// a later sample of another type (a collector bug) is dropped, as is a histogram whose
// bounds differ from the family's.
class MetricSet final : public MetricsVisitor {
 public:
  void counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
               double value) override;
  void gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
             double value) override;
  void histogram(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                 const Histogram& h) override;
  void merge(const MetricSet& other);

  // Prometheus text format: families sorted by name, each with HELP and TYPE lines.
  std::string to_prometheus() const;

  // A counter's or gauge's value (for tests and checks); nullopt if never reported.
  std::optional<double> value(std::string_view name, std::initializer_list<Label> labels = {}) const;
  const Histogram* find_histogram(std::string_view name, std::initializer_list<Label> labels = {}) const;
  // The sum of a counter or gauge family's samples whose labels include every one of `match`
  // (all of them when empty); 0 if none (the SNMP agent's view of /metrics' figures).
  double sum(std::string_view name, std::initializer_list<Label> match = {}) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Sample {
    double value = 0;
    std::optional<Histogram> hist;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Sample> samples;  // by rendered label set: a="x",b="y"
  };
  Sample* sample(std::string_view name, std::string_view help, Type type, const std::string& labels);
  std::map<std::string, Family, std::less<>> families_;
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string escape_label_value(std::string_view v);

// Where the metrics come from, and the gathering of them for a scrape.
class MetricsRegistry {
 public:
  using Collector = std::function<void(MetricsVisitor&)>;
  explicit MetricsRegistry(std::vector<Worker*> workers);

  // A collector that runs on worker `index`'s loop thread at each gather. Add it before the
  // worker starts, or on that worker's own thread before it can serve a scrape (its list is
  // only ever touched by that thread once it runs).
  void add_worker_collector(unsigned index, Collector c);
  // A process-wide collector; it must be thread-safe (it runs on whichever worker finishes a
  // gather last). Add before any worker starts.
  void add_global_collector(Collector c);

  // Runs every worker's collectors on its own loop, then the global ones, and hands the sum
  // to `done` on `home`'s loop thread. The registry must outlive the gather. A worker whose
  // loop has stopped never answers, so `done` may never run: callers keep their own timeout.
  void gather(Worker& home, std::function<void(MetricSet)> done);

  std::size_t worker_count() const { return workers_.size(); }

 private:
  struct Gathering;
  std::vector<Worker*> workers_;
  std::vector<std::vector<Collector>> per_worker_;
  std::vector<Collector> global_;
};

}  // namespace outpost
