#include "core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "core/worker_pool.hpp"

namespace outpost {

Histogram::Histogram(std::span<const double> upper_bounds) : bounds_(upper_bounds) {
  if (bounds_.size() > kMaxBounds || !std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end() ||
      std::any_of(bounds_.begin(), bounds_.end(), [](double b) { return !std::isfinite(b); }))
    throw std::invalid_argument("histogram bounds must be finite, strictly ascending and at most 24");
}

bool Histogram::merge(const Histogram& other) {
  if (!std::equal(bounds_.begin(), bounds_.end(), other.bounds_.begin(), other.bounds_.end())) return false;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i] += other.counts_[i];
  sum_ += other.sum_;
  count_ += other.count_;
  return true;
}

std::uint64_t Histogram::cumulative(std::size_t i) const {
  std::uint64_t n = 0;
  for (std::size_t j = 0; j <= i && j <= bounds_.size(); ++j) n += counts_[j];
  return n;
}

namespace {

// Shortest text that reads back as the same double; Prometheus's spellings for the rest.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

std::string render_labels(std::initializer_list<Label> labels) {
  std::string s;
  for (const auto& l : labels) {
    if (!s.empty()) s += ',';
    s.append(l.name);
    s += "=\"";
    s += escape_label_value(l.value);
    s += '"';
  }
  return s;
}

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

// name{labels[,extra]} value
void append_sample(std::string& out, std::string_view name, std::string_view suffix, const std::string& labels,
                   std::string_view extra, double value) {
  out.append(name);
  out.append(suffix);
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out.append(extra);
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string s;
  s.reserve(v.size());
  for (char c : v) {
    if (c == '\\') s += "\\\\";
    else if (c == '"') s += "\\\"";
    else if (c == '\n') s += "\\n";
    else s += c;
  }
  return s;
}

MetricSet::Sample* MetricSet::sample(std::string_view name, std::string_view help, Type type,
                                     const std::string& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{type, std::string(help), {}}).first;
  if (it->second.type != type) return nullptr;
  return &it->second.samples[labels];
}

void MetricSet::counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                        double value) {
  if (auto* s = sample(name, help, Type::kCounter, render_labels(labels))) s->value += value;
}

void MetricSet::gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                      double value) {
  if (auto* s = sample(name, help, Type::kGauge, render_labels(labels))) s->value += value;
}

void MetricSet::histogram(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                          const Histogram& h) {
  auto* s = sample(name, help, Type::kHistogram, render_labels(labels));
  if (!s) return;
  if (!s->hist) s->hist.emplace(h);
  else s->hist->merge(h);
}

void MetricSet::merge(const MetricSet& other) {
  for (const auto& [name, fam] : other.families_) {
    auto it = families_.find(name);
    if (it == families_.end()) {
      families_.emplace(name, fam);
      continue;
    }
    if (it->second.type != fam.type) continue;
    for (const auto& [labels, s] : fam.samples) {
      auto& mine = it->second.samples[labels];
      mine.value += s.value;
      if (s.hist) {
        if (!mine.hist) mine.hist = s.hist;
        else mine.hist->merge(*s.hist);
      }
    }
  }
}

std::string MetricSet::to_prometheus() const {
  std::string out;
  for (const auto& [name, fam] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, fam.help);
    out += "\n# TYPE ";
    out += name;
    out += fam.type == Type::kCounter ? " counter\n" : fam.type == Type::kGauge ? " gauge\n" : " histogram\n";
    for (const auto& [labels, s] : fam.samples) {
      if (!s.hist) {
        append_sample(out, name, "", labels, "", s.value);
        continue;
      }
      const Histogram& h = *s.hist;
      for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
        std::string le = "le=\"";
        if (i < h.bounds().size()) append_number(le, h.bounds()[i]);
        else le += "+Inf";
        le += '"';
        append_sample(out, name, "_bucket", labels, le, static_cast<double>(h.cumulative(i)));
      }
      append_sample(out, name, "_sum", labels, "", h.sum());
      append_sample(out, name, "_count", labels, "", static_cast<double>(h.count()));
    }
  }
  return out;
}

std::optional<double> MetricSet::value(std::string_view name, std::initializer_list<Label> labels) const {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type == Type::kHistogram) return std::nullopt;
  auto s = it->second.samples.find(render_labels(labels));
  if (s == it->second.samples.end()) return std::nullopt;
  return s->second.value;
}

const Histogram* MetricSet::find_histogram(std::string_view name, std::initializer_list<Label> labels) const {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kHistogram) return nullptr;
  auto s = it->second.samples.find(render_labels(labels));
  return s == it->second.samples.end() || !s->second.hist ? nullptr : &*s->second.hist;
}

double MetricSet::sum(std::string_view name, std::initializer_list<Label> match) const {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type == Type::kHistogram) return 0;
  std::vector<std::string> wanted;
  for (const auto& l : match) wanted.push_back(render_labels({l}));
  double total = 0;
  for (const auto& [labels, sample] : it->second.samples) {
    bool ok = true;
    for (const auto& w : wanted) {
      // A rendered label is name="value" with the value escaped; it matches at the start or
      // after a comma, and ends at a comma or the end.
      std::size_t at = 0;
      bool found = false;
      while ((at = labels.find(w, at)) != std::string::npos) {
        bool starts = at == 0 || labels[at - 1] == ',';
        bool ends = at + w.size() == labels.size() || labels[at + w.size()] == ',';
        if (starts && ends) {
          found = true;
          break;
        }
        ++at;
      }
      if (!found) {
        ok = false;
        break;
      }
    }
    if (ok) total += sample.value;
  }
  return total;
}

// One scrape in progress: the sum so far and how many workers have not answered yet.
struct MetricsRegistry::Gathering {
  std::mutex mu;
  MetricSet sum;
  std::size_t remaining = 0;
  Worker* home = nullptr;
  std::function<void(MetricSet)> done;
};

MetricsRegistry::MetricsRegistry(std::vector<Worker*> workers)
    : workers_(std::move(workers)), per_worker_(workers_.size()) {}

void MetricsRegistry::add_worker_collector(unsigned index, Collector c) { per_worker_.at(index).push_back(std::move(c)); }

void MetricsRegistry::add_global_collector(Collector c) { global_.push_back(std::move(c)); }

void MetricsRegistry::gather(Worker& home, std::function<void(MetricSet)> done) {
  auto g = std::make_shared<Gathering>();
  g->remaining = workers_.size();
  g->home = &home;
  g->done = std::move(done);
  auto finish = [this](const std::shared_ptr<Gathering>& g) {
    for (auto& c : global_) c(g->sum);
    g->home->post([g] { g->done(std::move(g->sum)); });
  };
  if (workers_.empty()) {
    finish(g);
    return;
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->post([this, g, i, finish] {
      MetricSet mine;
      for (auto& c : per_worker_[i]) c(mine);
      bool last;
      {
        std::lock_guard lk(g->mu);
        g->sum.merge(mine);
        last = --g->remaining == 0;
      }
      // The last worker alone touches g->sum from here on.
      if (last) finish(g);
    });
  }
}

}  // namespace outpost
