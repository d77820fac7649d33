#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <future>
#include <limits>
#include <stdexcept>
#include <thread>

#include "core/worker_pool.hpp"

using namespace outpost;

namespace {
constexpr double kBounds[] = {0.1, 0.5, 1};
}

TEST(Histogram, BucketsAreUpperBoundsInclusive) {
  Histogram h(kBounds);
  for (double v : {0.05, 0.1, 0.2, 0.5, 0.7, 1.0, 3.0}) h.observe(v);
  EXPECT_EQ(h.count(), 7u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.05 + 0.1 + 0.2 + 0.5 + 0.7 + 1.0 + 3.0);
  EXPECT_EQ(h.cumulative(0), 2u);  // le=0.1: 0.05, 0.1
  EXPECT_EQ(h.cumulative(1), 4u);  // le=0.5: + 0.2, 0.5
  EXPECT_EQ(h.cumulative(2), 6u);  // le=1: + 0.7, 1.0
  EXPECT_EQ(h.cumulative(3), 7u);  // +Inf
}

TEST(Histogram, NaNIsIgnoredAndNegativeGoesFirst) {
  Histogram h(kBounds);
  h.observe(std::numeric_limits<double>::quiet_NaN());
  h.observe(-1);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.cumulative(0), 1u);
}

TEST(Histogram, MergeAddsOnlyWithTheSameBounds) {
  Histogram a(kBounds), b(kBounds);
  a.observe(0.2);
  b.observe(2);
  b.observe(0.01);
  EXPECT_TRUE(a.merge(b));
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.cumulative(0), 1u);
  EXPECT_EQ(a.cumulative(1), 2u);
  EXPECT_EQ(a.cumulative(3), 3u);
  constexpr double other[] = {0.1, 0.5};
  Histogram c(other);
  EXPECT_FALSE(a.merge(c));
  EXPECT_EQ(a.count(), 3u);
}

TEST(Histogram, RejectsBadBounds) {
  constexpr double unsorted[] = {1, 0.5};
  constexpr double repeated[] = {1, 1};
  constexpr double infinite[] = {1, std::numeric_limits<double>::infinity()};
  EXPECT_THROW(Histogram{unsorted}, std::invalid_argument);
  EXPECT_THROW(Histogram{repeated}, std::invalid_argument);
  EXPECT_THROW(Histogram{infinite}, std::invalid_argument);
}

TEST(MetricSet, PrometheusTextFormat) {
  MetricSet m;
  m.counter("outpost_requests_total", "Requests\nby outcome \\ method", {{"outcome", "TCP_HIT"}, {"method", "GET"}}, 3);
  m.counter("outpost_requests_total", "ignored: the first help wins", {{"outcome", "TCP_MISS"}, {"method", "GET"}}, 2);
  m.gauge("outpost_open", "Open things", {}, 1.5);
  Histogram h(kBounds);
  h.observe(0.25);
  h.observe(4);
  m.histogram("outpost_latency_seconds", "Latency", {{"kind", "a\"b"}}, h);
  EXPECT_EQ(m.to_prometheus(),
            "# HELP outpost_latency_seconds Latency\n"
            "# TYPE outpost_latency_seconds histogram\n"
            "outpost_latency_seconds_bucket{kind=\"a\\\"b\",le=\"0.1\"} 0\n"
            "outpost_latency_seconds_bucket{kind=\"a\\\"b\",le=\"0.5\"} 1\n"
            "outpost_latency_seconds_bucket{kind=\"a\\\"b\",le=\"1\"} 1\n"
            "outpost_latency_seconds_bucket{kind=\"a\\\"b\",le=\"+Inf\"} 2\n"
            "outpost_latency_seconds_sum{kind=\"a\\\"b\"} 4.25\n"
            "outpost_latency_seconds_count{kind=\"a\\\"b\"} 2\n"
            "# HELP outpost_open Open things\n"
            "# TYPE outpost_open gauge\n"
            "outpost_open 1.5\n"
            "# HELP outpost_requests_total Requests\\nby outcome \\\\ method\n"
            "# TYPE outpost_requests_total counter\n"
            "outpost_requests_total{outcome=\"TCP_HIT\",method=\"GET\"} 3\n"
            "outpost_requests_total{outcome=\"TCP_MISS\",method=\"GET\"} 2\n");
}

TEST(MetricSet, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  MetricSet m;
  m.counter("x_total", "x", {{"v", "line1\nline2"}}, 1);
  EXPECT_NE(m.to_prometheus().find("x_total{v=\"line1\\nline2\"} 1\n"), std::string::npos);
}

TEST(MetricSet, LargeAndSpecialValues) {
  MetricSet m;
  m.counter("big_total", "b", {}, 1e300);
  m.gauge("inf", "i", {}, std::numeric_limits<double>::infinity());
  m.counter("exact_total", "e", {}, 9007199254740992.0);  // 2^53 stays exact
  auto text = m.to_prometheus();
  EXPECT_NE(text.find("big_total 1e+300\n"), std::string::npos) << text;
  EXPECT_NE(text.find("inf +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("exact_total 9007199254740992\n"), std::string::npos) << text;
}

TEST(MetricSet, SameSampleIsSummedAndMergeAddsWorkers) {
  MetricSet a, b;
  Histogram h(kBounds);
  h.observe(0.3);
  a.counter("c_total", "c", {{"k", "1"}}, 2);
  a.counter("c_total", "c", {{"k", "1"}}, 3);
  a.histogram("h_seconds", "h", {}, h);
  b.counter("c_total", "c", {{"k", "1"}}, 10);
  b.counter("c_total", "c", {{"k", "2"}}, 1);
  b.gauge("g", "g", {}, 4);
  b.histogram("h_seconds", "h", {}, h);
  a.merge(b);
  EXPECT_EQ(a.value("c_total", {{"k", "1"}}), 15);
  EXPECT_EQ(a.value("c_total", {{"k", "2"}}), 1);
  EXPECT_EQ(a.value("g"), 4);
  ASSERT_NE(a.find_histogram("h_seconds"), nullptr);
  EXPECT_EQ(a.find_histogram("h_seconds")->count(), 2u);
  EXPECT_EQ(a.find_histogram("h_seconds")->cumulative(1), 2u);
  EXPECT_FALSE(a.value("c_total", {{"k", "3"}}));
}

TEST(MetricSet, TypeConflictDropsTheLaterSample) {
  MetricSet m;
  m.counter("x", "first", {}, 1);
  m.gauge("x", "second", {{"a", "b"}}, 7);
  Histogram h(kBounds);
  m.histogram("x", "third", {}, h);
  EXPECT_EQ(m.to_prometheus(), "# HELP x first\n# TYPE x counter\nx 1\n");
}

TEST(MetricsRegistry, GathersEveryWorkerOnItsOwnThreadAndSums) {
  Worker w0(0), w1(1);
  MetricsRegistry reg({&w0, &w1});
  std::thread::id t0, t1, done_thread;
  std::uint64_t per_worker[2] = {5, 7};  // touched only by their own worker's thread
  reg.add_worker_collector(0, [&](MetricsVisitor& out) {
    t0 = std::this_thread::get_id();
    out.counter("work_total", "w", {}, static_cast<double>(per_worker[0]));
    out.gauge("open", "o", {{"w", "any"}}, 1);
  });
  reg.add_worker_collector(1, [&](MetricsVisitor& out) {
    t1 = std::this_thread::get_id();
    out.counter("work_total", "w", {}, static_cast<double>(per_worker[1]));
    out.gauge("open", "o", {{"w", "any"}}, 2);
  });
  int global_runs = 0;
  reg.add_global_collector([&](MetricsVisitor& out) {
    ++global_runs;
    out.gauge("process", "p", {}, 1);
  });
  std::promise<std::thread::id> id0, id1;
  w0.start([&](Worker&) { id0.set_value(std::this_thread::get_id()); });
  w1.start([&](Worker&) { id1.set_value(std::this_thread::get_id()); });
  auto thread0 = id0.get_future().get(), thread1 = id1.get_future().get();
  std::promise<MetricSet> result;
  w1.post([&] {
    reg.gather(w1, [&](MetricSet m) {
      done_thread = std::this_thread::get_id();
      result.set_value(std::move(m));
    });
  });
  MetricSet m = result.get_future().get();
  w0.stop();
  w1.stop();
  w0.join();
  w1.join();
  EXPECT_EQ(t0, thread0);
  EXPECT_EQ(t1, thread1);
  EXPECT_EQ(done_thread, thread1);  // answered on the home worker's loop
  EXPECT_EQ(m.value("work_total"), 12);
  EXPECT_EQ(m.value("open", {{"w", "any"}}), 3);
  EXPECT_EQ(m.value("process"), 1);
  EXPECT_EQ(global_runs, 1);
}
