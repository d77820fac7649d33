// `loadgen replay`: replays a trace through a forward proxy on C keep-alive connections, one
// request outstanding on each, requests taken in trace order by whichever connection is
// free. The first F of the trace warms the cache and is left out of every figure; the
// origin's /__stats, read directly at the warm-up boundary and at the end, gives what
// reached the origin in between. Output: one JSON line on stdout.
#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/loadgen/http_client.hpp"
#include "bench/loadgen/modes.hpp"
#include "bench/loadgen/net.hpp"
#include "bench/loadgen/options.hpp"
#include "bench/loadgen/trace.hpp"

namespace loadgen {
namespace {

struct ReplayConfig {
  sockaddr_in proxy;
  sockaddr_in origin;
  std::string origin_text;  // host:port, as in the request URLs
  unsigned concurrency = 32;
  double warmup_fraction = 0;
  std::uint64_t timeout_ms = 30000;
};

struct OriginStats {
  std::uint64_t requests = 0, full = 0, not_modified = 0, body_bytes = 0;
};

// Figures over the measured part of the trace.
struct Figures {
  std::uint64_t requests = 0, errors = 0, client_body_bytes = 0;
  std::uint64_t timeouts = 0, connection_errors = 0, protocol_errors = 0, length_mismatches = 0, retries = 0;
  std::map<int, std::uint64_t> status;
  std::vector<float> latency_ms;  // successful requests only
};

std::optional<OriginStats> parse_origin_stats(const std::string& json) {
  auto field = [&](const char* name) -> std::optional<std::uint64_t> {
    std::string key = std::string("\"") + name + "\":";
    std::size_t at = json.find(key);
    if (at == std::string::npos) return std::nullopt;
    std::uint64_t v = 0;
    const char* begin = json.data() + at + key.size();
    auto [end, ec] = std::from_chars(begin, json.data() + json.size(), v);
    if (ec != std::errc() || end == begin) return std::nullopt;
    return v;
  };
  auto requests = field("requests"), full = field("full"), nm = field("not_modified"), bytes = field("body_bytes");
  if (!requests || !full || !nm || !bytes) return std::nullopt;
  return OriginStats{*requests, *full, *nm, *bytes};
}

double percentile(const std::vector<float>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

class Replay {
 public:
  Replay(uv_loop_t* loop, ReplayConfig cfg, Trace trace)
      : loop_(loop),
        cfg_(std::move(cfg)),
        trace_(std::move(trace)),
        warm_end_(static_cast<std::size_t>(cfg_.warmup_fraction * static_cast<double>(trace_.requests.size()))),
        stats_conn_(loop) {
    stats_conn_.keep_body = true;
    for (unsigned i = 0; i < cfg_.concurrency; ++i) slots_.push_back(std::make_unique<Slot>(loop));
    measured_.latency_ms.reserve(trace_.requests.size() - warm_end_);
  }

  int run();

 private:
  // One client connection and the request it carries.
  struct Slot {
    explicit Slot(uv_loop_t* loop) : conn(loop) {}
    ClientConnection conn;
    std::size_t index = 0;
    bool busy = false;
    bool retried = false;
    std::uint64_t write_start_ns = 0;
  };
  enum class Phase { warmup, draining, fetching_start, measuring, fetching_end, done };

  void next(Slot& s);
  void start(Slot& s);
  void send(Slot& s);
  void on_result(Slot& s, int err, const Response& r);
  void record(std::size_t index, int err, const Response& r, double latency_ms);
  void fetch_origin_stats(std::function<void(std::optional<OriginStats>)> done);
  void begin_measuring();
  void finish();
  void print_figures(const OriginStats& end) const;
  void progress() const;
  void stop(int exit_code);
  std::string request_text(const TraceRequest& r) const;

  uv_loop_t* loop_;
  ReplayConfig cfg_;
  Trace trace_;
  std::size_t warm_end_;
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t completed_ = 0;
  Phase phase_ = Phase::warmup;
  std::vector<std::unique_ptr<Slot>> slots_;
  ClientConnection stats_conn_;  // straight to the origin, never through the proxy
  OriginStats origin_start_;
  std::uint64_t measure_start_ns_ = 0, measure_end_ns_ = 0;
  Figures measured_;
  uv_timer_t progress_timer_;
  int exit_code_ = 0;
};

int Replay::run() {
  std::fprintf(stderr,
               "replay: %zu requests over %" PRIu64 " objects (footprint %.1f MiB), %zu warm-up, %u connections\n",
               trace_.requests.size(), trace_.objects, static_cast<double>(trace_.footprint) / (1 << 20), warm_end_,
               cfg_.concurrency);
  if (trace_.malformed_lines)
    std::fprintf(stderr, "replay: %" PRIu64 " malformed trace lines skipped\n", trace_.malformed_lines);
  uv_timer_init(loop_, &progress_timer_);
  progress_timer_.data = this;
  uv_timer_start(
      &progress_timer_, [](uv_timer_t* t) { static_cast<Replay*>(t->data)->progress(); }, 5000, 5000);
  uv_unref(as_handle(&progress_timer_));
  if (warm_end_ == 0) {
    begin_measuring();
  } else {
    for (auto& s : slots_) next(*s);
  }
  uv_run(loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

// Gives a free connection its next request, or parks it at the warm-up boundary and the end.
void Replay::next(Slot& s) {
  if (phase_ == Phase::warmup && next_ == warm_end_) phase_ = Phase::draining;
  if (phase_ == Phase::draining) {
    if (in_flight_ == 0) begin_measuring();
    return;
  }
  if (phase_ != Phase::warmup && phase_ != Phase::measuring) return;
  if (next_ == trace_.requests.size()) {
    if (in_flight_ == 0) finish();
    return;
  }
  s.index = next_++;
  s.busy = true;
  s.retried = false;
  ++in_flight_;
  start(s);
}

void Replay::start(Slot& s) {
  if (s.conn.connected()) {
    send(s);
    return;
  }
  s.conn.connect(cfg_.proxy, cfg_.timeout_ms, [this, &s](int err) {
    if (err)
      on_result(s, err, Response{});
    else
      send(s);
  });
}

std::string Replay::request_text(const TraceRequest& r) const {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "GET http://%s/o/%u/%u/%c HTTP/1.1\r\nHost: %s\r\n", cfg_.origin_text.c_str(),
                        r.id, r.size, r.kind, cfg_.origin_text.c_str());
  if (r.revalidate) n += std::snprintf(buf + n, sizeof buf - n, "If-None-Match: \"%u-1\"\r\n", r.id);
  if (r.kind == 'r') n += std::snprintf(buf + n, sizeof buf - n, "Range: bytes=%u-%u\r\n", r.range_first, r.range_last);
  if (r.kind == 'l') {
    // Browsers saying the same thing in different words (0-3: one preference, as Chrome,
    // Firefox and curl-ish clients spell it), and clients that prefer something else (4, 5).
    static const char* const kSpellings[kVariantSpellings][2] = {
        {"gzip, deflate, br", "en-US,en;q=0.9"},
        {"br, gzip, deflate", "en-US, en;q=0.9"},
        {"gzip,deflate,br", "en-us,en;q=0.9"},
        {"gzip, deflate, br;q=1.0", "en-US,en;q=0.8"},
        {"gzip, deflate", "en-US,en;q=0.9"},
        {"gzip, deflate, br", "de-DE,de;q=0.9,en;q=0.8"}};
    n += std::snprintf(buf + n, sizeof buf - n, "Accept-Encoding: %s\r\nAccept-Language: %s\r\n",
                       kSpellings[r.variant][0], kSpellings[r.variant][1]);
  }
  n += std::snprintf(buf + n, sizeof buf - n, "\r\n");
  return std::string(buf, static_cast<std::size_t>(n));
}

void Replay::send(Slot& s) {
  s.write_start_ns = uv_hrtime();
  s.conn.request(request_text(trace_.requests[s.index]), false, cfg_.timeout_ms,
                 [this, &s](int err, const Response& r) { on_result(s, err, r); });
}

void Replay::on_result(Slot& s, int err, const Response& r) {
  // The connection failed under the request (typically a keep-alive connection the proxy
  // had just closed): once more on a fresh connection. Timeouts and garbage are not retried.
  bool connection_failure = err != 0 && err != UV_ETIMEDOUT && err != UV_EPROTO;
  if (connection_failure && !s.retried) {
    s.retried = true;
    if (s.index >= warm_end_) ++measured_.retries;
    start(s);
    return;
  }
  record(s.index, err, r, static_cast<double>(uv_hrtime() - s.write_start_ns) / 1e6);
  s.busy = false;
  --in_flight_;
  if (next_ == trace_.requests.size() && in_flight_ == 0) measure_end_ns_ = uv_hrtime();
  next(s);
}

void Replay::record(std::size_t index, int err, const Response& r, double latency_ms) {
  ++completed_;
  if (index < warm_end_) return;
  Figures& f = measured_;
  ++f.requests;
  if (err) {
    ++f.errors;
    ++(err == UV_ETIMEDOUT ? f.timeouts : err == UV_EPROTO ? f.protocol_errors : f.connection_errors);
    return;
  }
  ++f.status[r.status];
  bool ok = (r.status >= 200 && r.status < 300) || r.status == 304;
  const TraceRequest& tr = trace_.requests[index];
  if (ok && r.status == 206 && (tr.kind != 'r' || r.body_bytes != tr.range_last - tr.range_first + 1)) {
    ok = false;  // a partial answer to the wrong range
    ++f.length_mismatches;
  }
  if (ok && r.status == 200 && r.body_bytes != trace_.requests[index].size) {
    ok = false;  // a truncated or padded body: the cheap integrity check
    ++f.length_mismatches;
  }
  if (!ok) {
    ++f.errors;
    return;
  }
  f.client_body_bytes += r.body_bytes;
  f.latency_ms.push_back(static_cast<float>(latency_ms));
}

void Replay::fetch_origin_stats(std::function<void(std::optional<OriginStats>)> done) {
  // Not held to a request timeout chosen short on purpose for the proxy.
  std::uint64_t timeout_ms = std::max<std::uint64_t>(cfg_.timeout_ms, 10000);
  stats_conn_.connect(cfg_.origin, timeout_ms, [this, done, timeout_ms](int err) {
    if (err) {
      std::fprintf(stderr, "replay: cannot connect to the origin at %s: %s\n", cfg_.origin_text.c_str(),
                   uv_strerror(err));
      done(std::nullopt);
      return;
    }
    std::string req = "GET /__stats HTTP/1.1\r\nHost: " + cfg_.origin_text + "\r\nConnection: close\r\n\r\n";
    stats_conn_.request(std::move(req), false, timeout_ms, [this, done](int err, const Response& r) {
      auto stats = err || r.status != 200 ? std::nullopt : parse_origin_stats(r.body);
      if (!stats)
        std::fprintf(stderr, "replay: no valid /__stats from the origin at %s (%s, status %d)\n",
                     cfg_.origin_text.c_str(), err ? uv_strerror(err) : "ok", r.status);
      done(stats);
    });
  });
}

void Replay::begin_measuring() {
  phase_ = Phase::fetching_start;
  fetch_origin_stats([this](std::optional<OriginStats> stats) {
    if (!stats) return stop(1);
    origin_start_ = *stats;
    phase_ = Phase::measuring;
    measure_start_ns_ = uv_hrtime();
    for (auto& s : slots_)
      if (!s->busy) next(*s);
  });
}

void Replay::finish() {
  phase_ = Phase::fetching_end;
  if (measure_end_ns_ == 0) measure_end_ns_ = uv_hrtime();
  fetch_origin_stats([this](std::optional<OriginStats> stats) {
    if (!stats) return stop(1);
    print_figures(*stats);
    stop(0);
  });
}

void Replay::print_figures(const OriginStats& end) const {
  const Figures& f = measured_;
  std::vector<float> lat = f.latency_ms;
  std::sort(lat.begin(), lat.end());
  double seconds = static_cast<double>(measure_end_ns_ - measure_start_ns_) / 1e9;
  std::uint64_t origin_requests = end.requests - origin_start_.requests;
  std::uint64_t origin_full = end.full - origin_start_.full;
  std::uint64_t origin_304 = end.not_modified - origin_start_.not_modified;
  std::uint64_t origin_bytes = end.body_bytes - origin_start_.body_bytes;
  double object_hit = f.requests ? 1.0 - static_cast<double>(origin_full) / static_cast<double>(f.requests) : 0;
  double byte_hit =
      f.client_body_bytes ? 1.0 - static_cast<double>(origin_bytes) / static_cast<double>(f.client_body_bytes) : 0;
  std::string status;
  for (auto [code, n] : f.status)
    status += (status.empty() ? "\"" : ",\"") + std::to_string(code) + "\":" + std::to_string(n);
  std::printf("{\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
              ",\"seconds\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,"
              "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"client_body_bytes\":%" PRIu64 ",\"origin_requests\":%" PRIu64
              ",\"origin_full\":%" PRIu64 ",\"origin_304\":%" PRIu64 ",\"origin_body_bytes\":%" PRIu64
              ",\"object_hit_ratio\":%.6f,\"byte_hit_ratio\":%.6f,\"origin_bytes_saved\":%" PRId64
              ",\"status\":{%s}}\n",
              f.requests, f.errors, seconds, seconds > 0 ? static_cast<double>(f.requests) / seconds : 0.0,
              percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99), f.client_body_bytes, origin_requests,
              origin_full, origin_304, origin_bytes, object_hit, byte_hit,
              static_cast<std::int64_t>(f.client_body_bytes - origin_bytes), status.c_str());
  std::fflush(stdout);
  if (f.errors || f.retries)
    std::fprintf(stderr,
                 "replay: %" PRIu64 " errors (%" PRIu64 " timeouts, %" PRIu64 " connection, %" PRIu64
                 " protocol, %" PRIu64 " body length mismatches), %" PRIu64 " retries\n",
                 f.errors, f.timeouts, f.connection_errors, f.protocol_errors, f.length_mismatches, f.retries);
}

void Replay::progress() const {
  std::fprintf(stderr, "replay: %zu/%zu requests done, %" PRIu64 " errors\n", completed_, trace_.requests.size(),
               measured_.errors);
}

// Closes every handle so that uv_run returns.
void Replay::stop(int exit_code) {
  exit_code_ = exit_code;
  phase_ = Phase::done;
  for (auto& s : slots_) s->conn.close();
  stats_conn_.close();
  uv_close(as_handle(&progress_timer_), nullptr);
}

}  // namespace

int run_replay(const Options& opts) {
  ReplayConfig cfg;
  cfg.proxy = opts.loopback("proxy");
  cfg.origin = opts.loopback("origin");
  cfg.origin_text = to_text(cfg.origin);
  cfg.concurrency = static_cast<unsigned>(opts.integer("concurrency", 32, 1, 100000));
  cfg.warmup_fraction = opts.real("warmup-fraction", 0, 0, 0.99);
  cfg.timeout_ms = opts.integer("timeout-ms", 30000, 1, 3'600'000);
  Trace trace = load_trace(opts.text("trace"));
  raise_fd_limit(cfg.concurrency + 100);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc;
  {
    Replay replay(&loop, std::move(cfg), std::move(trace));
    rc = replay.run();
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the connections' handles close and free themselves
  uv_loop_close(&loop);
  return rc;
}

}  // namespace loadgen
