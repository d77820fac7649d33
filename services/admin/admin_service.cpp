#include "services/admin/admin_service.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <unordered_set>

#include "services/admin/admin_http.hpp"

namespace outpost::admin {

namespace {

// After the answer: our side shut down, the client's leftovers are read and dropped for this
// long (or up to kMaxDiscard bytes) so that closing does not reset the connection under it.
constexpr std::uint64_t kLingerMs = 1000;
constexpr std::size_t kMaxDiscard = 64 * 1024;

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

// One admin request: read the head (bounded, timed), answer, shut down, linger, close.
class AdminService::Local::Connection {
 public:
  Connection(Local& local, bool allowed, std::string peer) : local_(local), allowed_(allowed), peer_(std::move(peer)) {}

  bool open(int fd) {
    uv_loop_t* loop = local_.worker_.loop();
    uv_tcp_init(loop, &tcp_);
    uv_timer_init(loop, &timer_);
    tcp_.data = timer_.data = this;
    if (int rc = uv_tcp_open(&tcp_, fd); rc != 0) {
      spdlog::warn("admin: cannot use an accepted connection: {}", uv_strerror(rc));
      ::close(fd);
      close();
      return false;
    }
    arm_timer(timeout_ms());
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&tcp_),
        [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
          auto* self = static_cast<Connection*>(h->data);
          *b = uv_buf_init(self->buf_, sizeof self->buf_);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) { static_cast<Connection*>(s->data)->on_read(n); });
    return true;
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    *alive_ = false;
    auto closed = [](uv_handle_t* h) {
      auto* self = static_cast<Connection*>(h->data);
      if (--self->handles_open_ > 0) return;
      self->local_.closed(self);
      delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closed);
  }

 private:
  std::uint64_t timeout_ms() const { return static_cast<std::uint64_t>(local_.settings_->timeout * 1000); }

  void arm_timer(std::uint64_t ms) {
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_timeout(); }, ms, 0);
  }

  void on_read(ssize_t n) {
    if (n == 0 || closing_) return;
    if (n < 0) {  // EOF or error: before an answer the client gave up; after it, lingering ends
      close();
      return;
    }
    if (answer_started_ || gathering_) {
      discarded_ += static_cast<std::size_t>(n);
      if (discarded_ > kMaxDiscard) close();
      return;
    }
    // Only the new bytes (and the three before them) can complete the blank line.
    std::size_t from = head_.size() < 3 ? 0 : head_.size() - 3;
    head_.append(buf_, static_cast<std::size_t>(n));
    auto end = head_.find("\r\n\r\n", from);
    if (end == std::string::npos) {
      if (head_.size() > kMaxRequestHead) refuse(431, "request head over " + std::to_string(kMaxRequestHead) + " bytes");
      return;
    }
    if (end + 4 > kMaxRequestHead) {
      refuse(431, "request head over " + std::to_string(kMaxRequestHead) + " bytes");
      return;
    }
    discarded_ = head_.size() - (end + 4);
    head_.resize(end + 4);
    handle();
  }

  void handle() {
    Request req = parse_request(head_);
    head_ = std::string();
    if (!allowed_) {
      // Debug only: a flood of refused clients must not flood the log.
      spdlog::debug("admin: client {} is not in admin.allow_clients, answered 403", peer_);
      answer(403, error_response(403, req.head));
      return;
    }
    if (req.status == 404) {
      if (const auto& pages = local_.owner_.pages_[local_.worker_.index()]) {
        if (auto p = pages(req.path, req.host, false)) {
          answer(200, make_response(200, p->content_type, p->body, req.head));
          return;
        }
      }
    }
    if (req.status) {
      refuse(req.status, req.reason, req.head);
      return;
    }
    if (req.page == Page::kHealth) {
      answer(200, make_response(200, "text/plain; charset=utf-8", "ok\n", req.head));
      return;
    }
    gathering_ = true;
    bool head_only = req.head;
    local_.owner_.metrics_.gather(local_.worker_, [this, alive = alive_, head_only](MetricSet m) {
      if (!*alive) return;  // cut meanwhile; `this` is gone
      if (!gathering_) return;  // too late: already answered 503
      gathering_ = false;
      answer(200, make_response(200, kMetricsType, m.to_prometheus(), head_only));
    });
  }

  void refuse(int status, const std::string& why, bool head_only = false) {
    spdlog::info("admin: {} from {}: {}", status, peer_, why);
    answer(status, error_response(status, head_only));
  }

  void on_timeout() {
    if (gathering_) {
      gathering_ = false;
      spdlog::warn("admin: metrics not gathered within admin.timeout (a worker did not answer), 503 to {}", peer_);
      answer(503, error_response(503));
    } else if (!answer_started_) {
      refuse(408, "no complete request within admin.timeout");
    } else {
      close();  // the answer was not read in time, or lingering is over
    }
  }

  // Writes the whole answer, then shuts our side down and lingers until the client closes.
  void answer(int status, std::string response) {
    local_.count(status);
    answer_started_ = true;
    out_ = std::move(response);
    arm_timer(timeout_ms());
    uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    write_.data = this;
    int rc = uv_write(&write_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, [](uv_write_t* w, int status) {
      auto* self = static_cast<Connection*>(w->data);
      if (status < 0 || self->closing_) {
        self->close();
        return;
      }
      self->out_ = std::string();
      self->shutdown_.data = self;
      if (uv_shutdown(&self->shutdown_, reinterpret_cast<uv_stream_t*>(&self->tcp_), [](uv_shutdown_t*, int) {}) != 0) {
        self->close();
        return;
      }
      self->arm_timer(std::min(kLingerMs, self->timeout_ms()));
    });
    if (rc != 0) close();
  }

  Local& local_;
  bool allowed_;
  std::string peer_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_write_t write_;
  uv_shutdown_t shutdown_;
  int handles_open_ = 2;
  char buf_[4096];
  std::string head_;
  std::string out_;
  std::size_t discarded_ = 0;
  bool gathering_ = false;
  bool answer_started_ = false;
  bool closing_ = false;
  // Read by a gather's completion, which may run after this connection is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void AdminService::Local::on_accepted(int fd, const sockaddr_storage& peer) {
  if (draining_ || conns_.size() >= kMaxConnections) {
    ::send(fd, kBusyResponse, sizeof kBusyResponse - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
    count(503);
    return;
  }
  IpAddress ip = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
  auto* c = new Connection(*this, settings_->allow_clients.contains(ip), ip.to_string());
  conns_.insert(c);
  c->open(fd);
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
