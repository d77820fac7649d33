#include "services/snmp/snmp_service.hpp"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <array>
#include <chrono>

#include "core/log.hpp"
#include "core/udp_listener.hpp"
#include "services/snmp/agentx_subagent.hpp"
#include "services/snmp/ber.hpp"
#include "services/snmp/snmp_agent.hpp"

namespace outpost::snmp {

namespace {

// Why a datagram got no answer (outpost_snmp_dropped_total{reason}).
enum Drop : std::size_t { kClient, kCommunity, kVersion, kMalformed, kNotRequest, kOverload, kTimeout, kDropCount };
constexpr std::string_view kDropNames[kDropCount] = {"client", "community", "version", "malformed",
                                                     "not_request", "overload", "timeout"};
// Answered requests by PDU (outpost_snmp_requests_total{pdu}).
enum Pdu : std::size_t { kGet, kGetNext, kGetBulk, kSet, kPduCount };
constexpr std::string_view kPduNames[kPduCount] = {"get", "getnext", "getbulk", "set"};

constexpr std::uint64_t kGatherTimeoutMs = 5000;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

class SnmpService::Local {
 public:
  Local(SnmpService& owner, Worker& worker, std::shared_ptr<const Config::Snmp> settings)
      : owner_(owner),
        worker_(worker),
        settings_(std::move(settings)),
        udp_(worker.loop(), [this](std::span<const std::uint8_t> d, const UdpPeer& from) { on_datagram(d, from); }) {
    uv_timer_init(worker.loop(), &timer_);
    timer_.data = this;
  }

  bool start(std::string* error) {
    for (const auto& ep : settings_->listen) {
      if (int rc = udp_.listen(ep); rc != 0) {
        *error = "snmp: cannot listen on " + ep.to_string() + " (UDP): " + uv_strerror(rc);
        return false;
      }
    }
    if (worker_.index() == 0 && !settings_->agentx.empty()) {
      Subagent::Options o;
      o.address = settings_->agentx;
      o.timeout = settings_->agentx_timeout;
      o.retry = settings_->agentx_retry;
      o.subtrees = {kSquidMib, kOutpostMib};
      o.description = "Outpost " + owner_.info_.version;
      subagent_ = std::make_unique<Subagent>(worker_.loop(), std::move(o),
                                             [this](std::function<void(const MibView*)> cb) { with_view(std::move(cb)); });
      subagent_->start();
    }
    return true;
  }

  void update(std::shared_ptr<const Config::Snmp> s) { settings_ = std::move(s); }

  void drain(std::function<void()> done) {
    draining_ = true;
    udp_.close();
    ++generation_;  // a gather still running is answered to nobody
    fail_waiters();
    pending_ = 0;
    auto finish = [this, done = std::move(done)]() mutable {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
      done();
    };
    if (subagent_)
      subagent_->close(std::move(finish));
    else
      finish();
  }

  void collect(MetricsVisitor& out) const {
    for (std::size_t i = 0; i < kPduCount; ++i)
      out.counter("outpost_snmp_requests_total", "SNMP requests answered (standalone agent), by PDU",
                  {{"pdu", kPduNames[i]}}, static_cast<double>(answered_[i]));
    for (std::size_t i = 0; i < kDropCount; ++i)
      out.counter("outpost_snmp_dropped_total", "SNMP datagrams dropped without an answer, by reason",
                  {{"reason", kDropNames[i]}}, static_cast<double>(dropped_[i]));
    if (subagent_) {
      const auto& s = subagent_->stats();
      out.gauge("outpost_snmp_agentx_connected", "1 while an AgentX session with the master is open", {},
                s.connected ? 1 : 0);
      out.counter("outpost_snmp_agentx_sessions_total", "AgentX sessions opened with the master", {},
                  static_cast<double>(s.sessions));
      out.counter("outpost_snmp_agentx_requests_total", "AgentX Get, GetNext and GetBulk PDUs answered", {},
                  static_cast<double>(s.requests));
      out.counter("outpost_snmp_agentx_errors_total", "AgentX PDUs from the master that could not be parsed", {},
                  static_cast<double>(s.protocol_errors));
    }
  }

  // Asks for a snapshot of the MIB; `cb` runs on this loop once every worker's figures are
  // in (null if they did not come within kGatherTimeoutMs). Requests in the meantime share it.
  void with_view(std::function<void(const MibView*)> cb) {
    waiters_.push_back(std::move(cb));
    if (gathering_) return;
    gathering_ = true;
    std::uint64_t gen = ++generation_;
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Local*>(t->data)->on_gather_timeout(); }, kGatherTimeoutMs, 0);
    owner_.metrics_.gather(worker_, [this, gen, alive = alive_](MetricSet m) {
      if (!*alive || gen != generation_) return;
      uv_timer_stop(&timer_);
      gathering_ = false;
      MibView view = build_mib(m, owner_.info_, unix_now());
      auto waiters = std::move(waiters_);
      waiters_.clear();
      pending_ = 0;
      for (auto& w : waiters) w(&view);
    });
  }

  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  ~Local() { *alive_ = false; }

 private:
  void on_gather_timeout() {
    ++generation_;
    gathering_ = false;
    spdlog::warn("snmp: worker {}: the figures did not come within {} ms; {} request(s) dropped", worker_.index(),
                 kGatherTimeoutMs, waiters_.size());
    fail_waiters();
    pending_ = 0;
  }

  void fail_waiters() {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiters) w(nullptr);
  }

  void drop(Drop reason, const UdpPeer& from, const std::string& detail) {
    ++dropped_[reason];
    std::uint64_t held = 0;
    if (!log_limits_[reason].allow(uv_now(worker_.loop()), &held)) return;
    std::string more = held ? " (" + std::to_string(held) + " more since the last line)" : "";
    spdlog::warn("snmp: dropped a datagram from {}: {}{}", from.ip().to_string(), detail, more);
  }

  void on_datagram(std::span<const std::uint8_t> data, const UdpPeer& from) {
    if (draining_) return;
    const auto& s = *settings_;
    if (!s.allow_clients.contains(from.ip())) {
      drop(kClient, from, "client not in snmp.allow_clients");
      return;
    }
    std::int64_t version = 0;
    std::string community, why;
    if (!peek_version_and_community(data, &version, &community, &why)) {
      drop(kMalformed, from, "malformed message: " + why);
      return;
    }
    if (version != 1) {
      drop(kVersion, from,
           "version " + std::to_string(version) + (version == 0 ? " (SNMPv1)" : version == 3 ? " (SNMPv3)" : "") +
               ": only SNMPv2c is served (SNMPv3 through snmpd and AgentX)");
      return;
    }
    if (community != s.community) {
      drop(kCommunity, from, "wrong community");
      return;
    }
    auto req = std::make_shared<Message>();
    if (!decode_message(data, req.get(), &why)) {
      drop(kMalformed, from, "malformed message: " + why);
      return;
    }
    Pdu pdu;
    switch (req->pdu) {
      case Tag::kGetRequest: pdu = kGet; break;
      case Tag::kGetNextRequest: pdu = kGetNext; break;
      case Tag::kGetBulkRequest: pdu = kGetBulk; break;
      case Tag::kSetRequest: pdu = kSet; break;
      default:
        drop(kNotRequest, from, "not a request (PDU type " + std::to_string(static_cast<int>(req->pdu)) + ")");
        return;
    }
    if (pdu == kSet) {  // read-only: no need for figures
      ++answered_[kSet];
      udp_.send(from, encode_message(answer(*req, MibView())));
      return;
    }
    if (pending_ >= kMaxPending) {
      drop(kOverload, from, "too many requests waiting for figures");
      return;
    }
    ++pending_;
    with_view([this, req, from, pdu](const MibView* view) {
      if (!view) {
        ++dropped_[kTimeout];
        return;
      }
      if (draining_) return;
      ++answered_[pdu];
      udp_.send(from, encode_message(answer(*req, *view)));
    });
  }

  SnmpService& owner_;
  Worker& worker_;
  std::shared_ptr<const Config::Snmp> settings_;
  UdpListener udp_;
  uv_timer_t timer_;
  std::unique_ptr<Subagent> subagent_;
  std::vector<std::function<void(const MibView*)>> waiters_;
  std::size_t pending_ = 0;  // UDP requests among the waiters
  bool gathering_ = false;
  bool draining_ = false;
  std::uint64_t generation_ = 0;
  std::array<std::uint64_t, kPduCount> answered_{};
  std::array<std::uint64_t, kDropCount> dropped_{};
  std::array<log::Limiter, kDropCount> log_limits_{};
};

SnmpService::SnmpService(MetricsRegistry& metrics, std::vector<Worker*> workers, std::string version)
    : metrics_(metrics), workers_(std::move(workers)) {
  info_.version = std::move(version);
}

SnmpService::~SnmpService() = default;

bool SnmpService::configure(const Config& config, std::string*) {
  config_ = config.snmp;
  info_.name = config.server.name;
  info_.memory_size = config.cache.memory_size;
  info_.disk_size = config.cache.disk_dir.empty() ? 0 : config.cache.disk_size;
  locals_.clear();
  locals_.resize(workers_.size());
  return true;
}

bool SnmpService::start(Worker& worker, std::string* error) {
  if (!config_.enabled) return true;
  auto& local = locals_.at(worker.index());
  local = std::make_unique<Local>(*this, worker, std::make_shared<const Config::Snmp>(config_));
  return local->start(error);
}

void SnmpService::collect_metrics(Worker& worker, MetricsVisitor& out) {
  if (auto& local = locals_.at(worker.index())) local->collect(out);
}

std::vector<std::string> SnmpService::reload(const Config& config) {
  std::vector<std::string> restart;
  const auto& fresh = config.snmp;
  if (fresh.enabled != config_.enabled) restart.push_back("snmp.enabled");
  bool listen_changed = fresh.listen.size() != config_.listen.size();
  for (std::size_t i = 0; !listen_changed && i < fresh.listen.size(); ++i)
    listen_changed = fresh.listen[i].to_string() != config_.listen[i].to_string();
  if (listen_changed) restart.push_back("snmp.listen");
  if (fresh.agentx != config_.agentx || fresh.agentx_timeout != config_.agentx_timeout ||
      fresh.agentx_retry != config_.agentx_retry)
    restart.push_back("snmp.agentx");
  // The community and the client networks apply at once.
  config_.community = fresh.community;
  config_.allow_clients = fresh.allow_clients;
  if (config_.enabled) {
    auto snapshot = std::make_shared<const Config::Snmp>(config_);
    for (auto* w : workers_)
      w->post([this, w, snapshot] {
        if (auto& local = locals_[w->index()]) local->update(snapshot);
      });
  }
  return restart;
}

void SnmpService::drain(Worker& worker, std::function<void()> done) {
  auto& local = locals_.at(worker.index());
  if (!local) {
    done();
    return;
  }
  local->drain(std::move(done));
}

}  // namespace outpost::snmp
