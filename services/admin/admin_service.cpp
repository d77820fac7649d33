#include "services/admin/admin_service.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <unordered_set>

#include "core/one_shot_connection.hpp"
#include "core/tcp_stream.hpp"
#include "services/admin/admin_http.hpp"

namespace outpost::admin {

namespace {

const char kBusyResponse[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\n"
    "Cache-Control: no-store\r\nConnection: close\r\n\r\n503 Service Unavailable\n";

constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

// Status codes counted per worker for outpost_admin_requests_total.
constexpr int kCountedStatuses[] = {200, 400, 403, 404, 405, 408, 431, 503, 505};

}  // namespace

class AdminService::Local {
 public:
  Local(AdminService& owner, Worker& worker, std::shared_ptr<const Config::Admin> settings)
      : owner_(owner),
        worker_(worker),
        settings_(std::move(settings)),
        acceptor_(worker.loop(), kBusyResponse,
                  {[this](int fd, const sockaddr_storage& peer) { on_accepted(fd, peer); },
                   [this](int error, std::size_t, bool first) {
                     if (first)
                       spdlog::warn("worker {}: admin endpoint cannot accept connections: {}", worker_.index(),
                                    uv_strerror(error));
                   },
                   [] {}}) {}

  bool start(std::string* error) {
    for (const auto& ep : settings_->listen) {
      if (int rc = acceptor_.listen(ep); rc != 0) {
        *error = "admin: cannot listen on " + ep.to_string() + ": " + uv_strerror(rc);
        return false;
      }
    }
    return true;
  }

  void update(std::shared_ptr<const Config::Admin> s) { settings_ = std::move(s); }

  // Listeners closed, open connections cut; `done` once the last one is gone.
  void drain(std::function<void()> done);

  void collect(MetricsVisitor& out) const {
    for (std::size_t i = 0; i < std::size(kCountedStatuses); ++i) {
      std::string code = std::to_string(kCountedStatuses[i]);
      out.counter("outpost_admin_requests_total", "Requests to the admin endpoint, by status answered",
                  {{"code", code}}, static_cast<double>(answered_[i]));
    }
  }

 private:
  class Connection;
  void on_accepted(int fd, const sockaddr_storage& peer);
  void count(int status) {
    for (std::size_t i = 0; i < std::size(kCountedStatuses); ++i)
      if (kCountedStatuses[i] == status) ++answered_[i];
  }
  void closed(Connection* c) {
    conns_.erase(c);
    maybe_drained();
  }
  void maybe_drained() {
    if (!draining_ || !conns_.empty() || !on_drained_) return;
    auto done = std::move(on_drained_);
    on_drained_ = nullptr;
    done();
  }

  AdminService& owner_;
  Worker& worker_;
  std::shared_ptr<const Config::Admin> settings_;
  Acceptor acceptor_;
  std::unordered_set<Connection*> conns_;
  std::uint64_t answered_[std::size(kCountedStatuses)] = {};
  bool draining_ = false;
  std::function<void()> on_drained_;
};

// One admin request (core/one_shot_connection.hpp): read the head (bounded, timed), answer,
// shut down, linger, close.
class AdminService::Local::Connection final : public OneShotConnection {
 public:
  Connection(Local& local, StreamPtr stream, bool allowed, std::string peer)
      : OneShotConnection(local.worker_.loop(), std::move(stream),
                          static_cast<std::uint64_t>(local.settings_->timeout * 1000)),
        local_(local),
        allowed_(allowed),
        peer_(std::move(peer)) {}

 private:
  void on_input(std::string& head, bool eof) override {
    if (eof) return;  // before the answer the client gave up: closed
    // Only the new bytes (and the three before them) can complete the blank line.
    std::size_t from = scanned_ < 3 ? 0 : scanned_ - 3;
    scanned_ = head.size();
    auto end = head.find("\r\n\r\n", from);
    if (end == std::string::npos) {
      if (head.size() > kMaxRequestHead) refuse(431, "request head over " + std::to_string(kMaxRequestHead) + " bytes");
      return;
    }
    if (end + 4 > kMaxRequestHead) {
      refuse(431, "request head over " + std::to_string(kMaxRequestHead) + " bytes");
      return;
    }
    stop_input();
    head.resize(end + 4);
    handle(head);
  }

  void handle(const std::string& head) {
    Request req = parse_request(head);
    if (!allowed_) {
      // Debug only: a flood of refused clients must not flood the log.
      spdlog::debug("admin: client {} is not in admin.allow_clients, answered 403", peer_);
      reply(403, error_response(403, req.head));
      return;
    }
    if (req.status == 404) {
      if (const auto& pages = local_.owner_.pages_[local_.worker_.index()]) {
        if (auto p = pages(req.path, req.host, false)) {
          reply(200, make_response(200, p->content_type, p->body, req.head));
          return;
        }
      }
    }
    if (req.status) {
      refuse(req.status, req.reason, req.head);
      return;
    }
    if (req.page == Page::kHealth) {
      reply(200, make_response(200, "text/plain; charset=utf-8", "ok\n", req.head));
      return;
    }
    gathering_ = true;
    bool head_only = req.head;
    local_.owner_.metrics_.gather(local_.worker_, [this, alive = alive(), head_only](MetricSet m) {
      if (!*alive) return;      // cut meanwhile; `this` is gone
      if (!gathering_) return;  // too late: already answered 503
      gathering_ = false;
      reply(200, make_response(200, kMetricsType, m.to_prometheus(), head_only));
    });
  }

  void refuse(int status, const std::string& why, bool head_only = false) {
    stop_input();
    spdlog::info("admin: {} from {}: {}", status, peer_, why);
    reply(status, error_response(status, head_only));
  }

  void on_deadline() override {
    if (gathering_) {
      gathering_ = false;
      spdlog::warn("admin: metrics not gathered within admin.timeout (a worker did not answer), 503 to {}", peer_);
      reply(503, error_response(503));
    } else {
      refuse(408, "no complete request within admin.timeout");
    }
  }

  void on_closed() override { local_.closed(this); }

  void reply(int status, std::string response) {
    local_.count(status);
    answer(std::move(response));
  }

  Local& local_;
  bool allowed_;
  std::string peer_;
  std::size_t scanned_ = 0;  // bytes of the head already searched
  bool gathering_ = false;
};

void AdminService::Local::on_accepted(int fd, const sockaddr_storage& peer) {
  if (draining_ || conns_.size() >= kMaxConnections) {
    ::send(fd, kBusyResponse, sizeof kBusyResponse - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
    count(503);
    return;
  }
  IpAddress ip = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
  auto* tcp = new TcpStream(worker_.loop());
  StreamPtr stream(tcp);
  if (int rc = tcp->open(fd); rc != 0) {
    spdlog::warn("admin: cannot use an accepted connection: {}", uv_strerror(rc));
    ::close(fd);
    return;
  }
  auto* c = new Connection(*this, std::move(stream), settings_->allow_clients.contains(ip), ip.to_string());
  conns_.insert(c);
  c->start();
}

void AdminService::Local::drain(std::function<void()> done) {
  draining_ = true;
  on_drained_ = std::move(done);
  acceptor_.close();
  std::vector<Connection*> open(conns_.begin(), conns_.end());
  for (auto* c : open) c->close();
  maybe_drained();
}

AdminService::AdminService(MetricsRegistry& metrics, std::vector<Worker*> workers)
    : metrics_(metrics), workers_(std::move(workers)), pages_(workers_.size()) {}

AdminService::~AdminService() = default;

bool AdminService::configure(const Config& config, std::string*) {
  config_ = config.admin;
  locals_.clear();
  locals_.resize(workers_.size());
  return true;
}

bool AdminService::start(Worker& worker, std::string* error) {
  if (!config_.enabled) return true;
  auto& local = locals_.at(worker.index());
  local = std::make_unique<Local>(*this, worker, std::make_shared<const Config::Admin>(config_));
  return local->start(error);
}

void AdminService::collect_metrics(Worker& worker, MetricsVisitor& out) {
  if (auto& local = locals_.at(worker.index())) local->collect(out);
}

std::vector<std::string> AdminService::reload(const Config& config) {
  std::vector<std::string> restart;
  const auto& fresh = config.admin;
  if (fresh.enabled != config_.enabled) restart.push_back("admin.enabled");
  bool listen_changed = fresh.listen.size() != config_.listen.size();
  for (std::size_t i = 0; !listen_changed && i < fresh.listen.size(); ++i)
    listen_changed = fresh.listen[i].to_string() != config_.listen[i].to_string();
  if (listen_changed) restart.push_back("admin.listen");
  // allow_clients and timeout apply at once, to new connections.
  config_.allow_clients = fresh.allow_clients;
  config_.timeout = fresh.timeout;
  if (config_.enabled) {
    auto snapshot = std::make_shared<const Config::Admin>(config_);
    for (auto* w : workers_)
      w->post([this, w, snapshot] {
        if (auto& local = locals_[w->index()]) local->update(snapshot);
      });
  }
  return restart;
}

void AdminService::drain(Worker& worker, std::function<void()> done) {
  auto& local = locals_.at(worker.index());
  if (!local) {
    done();
    return;
  }
  local->drain(std::move(done));
}

}  // namespace outpost::admin
