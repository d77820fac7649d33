#include "proxy/proxy_worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "proxy/client_session.hpp"

namespace outpost {

std::shared_ptr<const ProxySettings> ProxySettings::make(Config c) {
  auto s = std::make_shared<ProxySettings>();
  s->rules = AccessRules(c.acl, c.proxy.listen);
  s->config = std::move(c);
  return s;
}

ProxyWorker::ProxyWorker(Worker& worker, std::shared_ptr<const ProxySettings> settings, NameResolver& resolver,
                         AccessLogFile& access_log, http::HttpCache* cache)
    : worker_(worker),
      settings_(std::move(settings)),
      resolver_(resolver),
      cache_(cache),
      pool_(worker.loop(), settings_->config.origin.max_idle_per_host, settings_->config.origin.idle_timeout),
      alog_(access_log, worker.loop()) {}

ProxyWorker::~ProxyWorker() = default;

bool ProxyWorker::start(std::string* error) {
  for (const auto& ep : settings_->config.proxy.listen) {
    int fd = open_listen_socket(ep);
    if (fd < 0) {
      *error = "cannot listen on " + ep.to_string() + ": " + uv_strerror(fd);
      return false;
    }
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop(), tcp);
    tcp->data = this;
    uv_tcp_open(tcp, fd);
    int rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 4096, [](uv_stream_t* server, int status) {
      static_cast<ProxyWorker*>(server->data)->on_connection(server, status);
    });
    if (rc != 0) {
      *error = "listen " + ep.to_string() + ": " + uv_strerror(rc);
      uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      return false;
    }
    listeners_.push_back(tcp);
  }
  return true;
}

void ProxyWorker::on_connection(uv_stream_t* server, int status) {
  if (status < 0 || shutting_down_) return;
  auto* client = new uv_tcp_t;
  uv_tcp_init(loop(), client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  if (sessions_.size() >= settings_->config.proxy.max_connections_per_worker) {
    // Refuse cleanly: a short 503 the client can read, then close.
    ++counters_.connections_refused;
    static const char kBusy[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n";
    uv_buf_t b = uv_buf_init(const_cast<char*>(kBusy), sizeof(kBusy) - 1);
    uv_try_write(reinterpret_cast<uv_stream_t*>(client), &b, 1);
    spdlog::warn("worker {}: connection limit {} reached, refusing a client", worker_.index(),
                 settings_->config.proxy.max_connections_per_worker);
    uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  ++counters_.connections_accepted;
  auto* s = new ClientSession(*this, client);
  sessions_.insert(s);
  s->start();
}

void ProxyWorker::session_closed(ClientSession* s) {
  sessions_.erase(s);
  if (shutting_down_) maybe_done();
}

void ProxyWorker::begin_shutdown(double grace_s, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_done_ = std::move(done);
  for (auto* l : listeners_)
    uv_close(reinterpret_cast<uv_handle_t*>(l), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  listeners_.clear();
  auto background = std::move(background_);
  background_.clear();
  for (auto& [task, abort] : background) abort();
  // Copy: closing a session removes it from the set.
  std::vector<ClientSession*> all(sessions_.begin(), sessions_.end());
  for (auto* s : all) s->on_shutdown();
  grace_timer_ = new uv_timer_t;
  uv_timer_init(loop(), grace_timer_);
  grace_timer_->data = this;
  uv_timer_start(
      grace_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ProxyWorker*>(t->data);
        if (!self->sessions_.empty())
          spdlog::warn("worker {}: grace period over, closing {} connection(s)", self->worker_.index(),
                       self->sessions_.size());
        std::vector<ClientSession*> left(self->sessions_.begin(), self->sessions_.end());
        for (auto* s : left) s->abort();
      },
      static_cast<std::uint64_t>(grace_s * 1000), 0);
  maybe_done();
}

void ProxyWorker::maybe_done() {
  if (!shutting_down_ || !sessions_.empty() || !on_done_) return;
  if (grace_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(grace_timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    grace_timer_ = nullptr;
  }
  pool_.close_idle();
  alog_.close();
  auto done = std::move(on_done_);
  on_done_ = nullptr;
  done();
}

}  // namespace outpost
