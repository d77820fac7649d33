#include "services/sntp/sntp_server.hpp"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <array>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "core/log.hpp"
#include "core/udp_listener.hpp"
#include "services/sntp/ntp_packet.hpp"

namespace outpost::sntp {

namespace {

// What became of a datagram (outpost_sntp_requests_total{result}).
enum Result : std::size_t { kAnswered, kKod, kRateDropped, kWrongMode, kVersion, kMalformed, kClient, kResultCount };
constexpr std::string_view kResultNames[kResultCount] = {"answered", "kod", "rate_dropped", "ignored_mode",
                                                         "bad_version", "malformed", "client"};
constexpr std::uint64_t kKodIntervalMs = 1000;  // at most one KoD per client per second

Timestamp now_ntp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return to_ntp(ts.tv_sec, static_cast<std::uint32_t>(ts.tv_nsec));
}

// log2 of the clock's resolution, or of the time one reading takes if that is coarser (RFC
// 5905 §7.3 "precision"), measured once.
std::int8_t measure_precision() {
  timespec res{};
  clock_getres(CLOCK_REALTIME, &res);
  double r = static_cast<double>(res.tv_sec) + static_cast<double>(res.tv_nsec) / 1e9;
  timespec a{}, b{}, t{};
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < 1000; ++i) clock_gettime(CLOCK_REALTIME, &t);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double read = (static_cast<double>(b.tv_sec - a.tv_sec) + static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e9) / 1000;
  double p = std::max({r, read, 1e-9});
  return static_cast<std::int8_t>(std::clamp(std::ceil(std::log2(p)), -30.0, 0.0));
}

struct Bucket {
  double tokens = 0;
  std::uint64_t last_ms = 0;
  std::uint64_t last_kod_ms = 0;
  bool kod_sent = false;
};

}  // namespace

class SntpServer::Local {
 public:
  Local(Worker& worker, std::shared_ptr<const Config::Sntp> settings)
      : worker_(worker),
        settings_(std::move(settings)),
        udp_(worker.loop(), [this](std::span<const std::uint8_t> d, const UdpPeer& from) { on_datagram(d, from); }) {
    precision_ = measure_precision();
  }

  bool start(std::string* error) {
    for (const auto& ep : settings_->listen) {
      if (int rc = udp_.listen(ep); rc != 0) {
        *error = "sntp: cannot listen on " + ep.to_string() + " (UDP): " + uv_strerror(rc);
        return false;
      }
    }
    return true;
  }

  void update(std::shared_ptr<const Config::Sntp> s) { settings_ = std::move(s); }
  void drain() { udp_.close(); }

  void collect(MetricsVisitor& out) const {
    for (std::size_t i = 0; i < kResultCount; ++i)
      out.counter("outpost_sntp_requests_total", "SNTP datagrams by what became of them", {{"result", kResultNames[i]}},
                  static_cast<double>(results_[i]));
    out.gauge("outpost_sntp_clients", "Client addresses the SNTP rate limit remembers", {},
              static_cast<double>(buckets_.size()));
  }

 private:
  void count_drop(Result r, const UdpPeer& from, const std::string& why) {
    ++results_[r];
    std::uint64_t held = 0;
    if (!log_limits_[r].allow(uv_now(worker_.loop()), &held)) return;
    std::string more = held ? " (" + std::to_string(held) + " more since the last line)" : "";
    spdlog::warn("sntp: ignored a datagram from {}: {}{}", from.ip().to_string(), why, more);
  }

  // Token bucket per client address: true if this request may be answered.
  bool take_token(const IpAddress& ip, Bucket** out) {
    std::uint64_t now = uv_now(worker_.loop());
    auto key = ip.to_string();
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      if (buckets_.size() >= kMaxClients) forget_idle(now);
      it = buckets_.emplace(key, Bucket{settings_->burst, now, 0, false}).first;
    }
    Bucket& b = it->second;
    b.tokens = std::min(settings_->burst, b.tokens + static_cast<double>(now - b.last_ms) / 1000.0 * settings_->rate);
    b.last_ms = now;
    *out = &b;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    return false;
  }

  // Drops the buckets that have refilled (their clients were quiet); all of them if none has.
  void forget_idle(std::uint64_t now) {
    const auto& s = *settings_;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double t = it->second.tokens + static_cast<double>(now - it->second.last_ms) / 1000.0 * s.rate;
      it = t >= s.burst ? buckets_.erase(it) : std::next(it);
    }
    if (buckets_.size() >= kMaxClients) buckets_.clear();
  }

  void on_datagram(std::span<const std::uint8_t> data, const UdpPeer& from) {
    Timestamp receive = now_ntp();
    const auto& s = *settings_;
    if (!s.allow_clients.contains(from.ip())) {
      count_drop(kClient, from, "client not in sntp.allow_clients");
      return;
    }
    Request req;
    std::string why;
    switch (parse_request(data, &req, &why)) {
      case Verdict::kAnswer: break;
      case Verdict::kWrongMode: count_drop(kWrongMode, from, why); return;
      case Verdict::kVersion: count_drop(kVersion, from, why); return;
      case Verdict::kMalformed: count_drop(kMalformed, from, why); return;
    }
    ServerInfo info;
    info.stratum = static_cast<std::uint8_t>(s.stratum);
    info.precision = precision_;
    info.root_delay = to_short(s.root_delay);
    info.root_dispersion = to_short(s.root_dispersion);
    parse_reference_id(s.reference_id, &info.reference_id);
    Bucket* bucket = nullptr;
    if (!take_token(from.ip(), &bucket)) {
      std::uint64_t now = uv_now(worker_.loop());
      if (bucket->kod_sent && now - bucket->last_kod_ms < kKodIntervalMs) {
        ++results_[kRateDropped];
        return;
      }
      bucket->kod_sent = true;
      bucket->last_kod_ms = now;
      ++results_[kKod];
      auto kod = make_kod(req, info, "RATE", receive, now_ntp());
      udp_.send(from, std::vector<std::uint8_t>(kod.begin(), kod.end()));
      return;
    }
    Timestamp transmit = now_ntp();
    info.reference = transmit & ~std::uint64_t{0xffffffff};  // this second: the clock is read now
    auto p = make_response(req, info, receive, transmit);
    ++results_[kAnswered];
    udp_.send(from, std::vector<std::uint8_t>(p.begin(), p.end()));
  }

  Worker& worker_;
  std::shared_ptr<const Config::Sntp> settings_;
  UdpListener udp_;
  std::int8_t precision_ = -20;
  std::unordered_map<std::string, Bucket> buckets_;
  std::array<std::uint64_t, kResultCount> results_{};
  std::array<log::Limiter, kResultCount> log_limits_{};
};

SntpServer::SntpServer(std::vector<Worker*> workers) : workers_(std::move(workers)) {}
SntpServer::~SntpServer() = default;

bool SntpServer::configure(const Config& config, std::string*) {
  config_ = config.sntp;
  locals_.clear();
  locals_.resize(workers_.size());
  return true;
}

bool SntpServer::start(Worker& worker, std::string* error) {
  if (!config_.enabled) return true;
  auto& local = locals_.at(worker.index());
  local = std::make_unique<Local>(worker, std::make_shared<const Config::Sntp>(config_));
  return local->start(error);
}

void SntpServer::collect_metrics(Worker& worker, MetricsVisitor& out) {
  if (auto& local = locals_.at(worker.index())) local->collect(out);
}

std::vector<std::string> SntpServer::reload(const Config& config) {
  std::vector<std::string> restart;
  const auto& fresh = config.sntp;
  if (fresh.enabled != config_.enabled) restart.push_back("sntp.enabled");
  bool listen_changed = fresh.listen.size() != config_.listen.size();
  for (std::size_t i = 0; !listen_changed && i < fresh.listen.size(); ++i)
    listen_changed = fresh.listen[i].to_string() != config_.listen[i].to_string();
  if (listen_changed) restart.push_back("sntp.listen");
  auto listen = config_.listen;
  bool enabled = config_.enabled;
  config_ = fresh;  // stratum, reference ID, clients, rate and dispersion apply at once
  config_.listen = listen;
  config_.enabled = enabled;
  if (config_.enabled) {
    auto snapshot = std::make_shared<const Config::Sntp>(config_);
    for (auto* w : workers_)
      w->post([this, w, snapshot] {
        if (auto& local = locals_[w->index()]) local->update(snapshot);
      });
  }
  return restart;
}

void SntpServer::drain(Worker& worker, std::function<void()> done) {
  if (auto& local = locals_.at(worker.index())) local->drain();
  done();
}

}  // namespace outpost::sntp
