#include "proxy/proxy_worker.hpp"

#include <sys/stat.h>

#include <tuple>

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "proxy/http1_connection.hpp"
#include "core/tcp_stream.hpp"
#include "proxy/leaf_store.hpp"
#include "tls/leaf_cache.hpp"
#include "tls/tls_stream.hpp"
#include "proxy/request.hpp"
#include "proxy/error_page.hpp"

namespace outpost {

namespace {
// Refused connections lingering at once per worker (beyond: answered and closed at once), how
// long one lingers and how much of its input is read and dropped.
constexpr std::size_t kMaxRefusals = 32;
constexpr std::uint64_t kRefusalLingerMs = 1000;
constexpr std::size_t kRefusalDiscardMax = 16 * 1024;

// Descriptors kept out of the connection cap: the process (stdio, log files, access log, cache
// store segment files, the main loop, libuv's thread pool) and each worker (its loop, libuv's
// spare descriptor and the acceptor's, listeners, lingering refusals).
constexpr std::uint64_t kProcessReserve = 64;
constexpr std::uint64_t kWorkerReserve = 32 + kMaxRefusals;
// The largest explicit proxy.max_connections_per_worker the configuration accepts.
constexpr std::uint64_t kMaxCap = 1 << 20;

const char kBusyResponse[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 35\r\n"
    "Connection: close\r\nRetry-After: 1\r\n\r\nThe proxy is busy; try again soon.\n";
}  // namespace

ConnectionCap connection_cap(unsigned configured, unsigned workers, std::uint64_t fd_limit,
                             std::uint64_t other_per_worker) {
  workers = std::max(1u, workers);
  std::uint64_t reserve = kProcessReserve + workers * (kWorkerReserve + other_per_worker);
  // A limit below the reserve leaves the cap a quarter of it rather than nothing.
  std::uint64_t left = fd_limit > reserve ? fd_limit - reserve : fd_limit / 4;
  ConnectionCap cap;
  cap.allowed = static_cast<unsigned>(std::clamp<std::uint64_t>(left / workers / 2, 1, kMaxCap));
  cap.derived = configured == 0;
  cap.clamped = !cap.derived && configured > cap.allowed;
  cap.value = cap.derived || cap.clamped ? cap.allowed : configured;
  return cap;
}

std::size_t RequestMetrics::method_index(std::string_view method) {
  for (std::size_t i = 0; i + 1 < kMethodCount; ++i)
    if (kMethods[i] == method) return i;
  return kMethodCount - 1;
}

void RequestMetrics::record(Outcome outcome, std::string_view method, int status, std::uint64_t bytes_out,
                            double elapsed_ms, double ttfb_ms) {
  ++requests[static_cast<std::size_t>(outcome)][method_index(method)];
  ++status_classes[status >= 100 && status <= 599 ? status / 100 : 0];
  bytes_to_clients += bytes_out;
  duration.observe(elapsed_ms / 1000);
  if (ttfb_ms >= 0) ttfb.observe(ttfb_ms / 1000);
}

void ProxyWorker::collect_metrics(MetricsVisitor& out) const {
  const auto& c = counters_;
  const char* conn_help = "Client connections accepted, or answered without a session: denied (403, acl.allow_clients), "
                          "refused (503, connection cap), shed (503, out of file descriptors)";
  out.counter("outpost_client_connections_total", conn_help, {{"result", "accepted"}},
              static_cast<double>(c.connections_accepted));
  out.counter("outpost_client_connections_total", conn_help, {{"result", "denied"}},
              static_cast<double>(c.connections_denied));
  out.counter("outpost_client_connections_total", conn_help, {{"result", "refused"}},
              static_cast<double>(c.connections_refused));
  out.counter("outpost_client_connections_total", conn_help, {{"result", "shed"}},
              static_cast<double>(c.connections_shed));
  out.counter("outpost_fd_exhaustion_episodes_total", "Episodes of accept() failing for lack of file descriptors", {},
              static_cast<double>(c.fd_exhaustions));
  out.gauge("outpost_client_connections", "Open client connections", {}, static_cast<double>(sessions_.size()));
  const auto& pc = settings_->config.proxy;
  const char* intercept_help =
      "Transparently intercepted connections, by listener: http: accepted with their original destination, or "
      "refused (not redirected); tls: what became of them (refused: not redirected; denied: CONNECT rules or "
      "authentication; not_tls: closed; spliced; bumped; failed: the client went before its hello, or no leaf)";
  if (!pc.intercept_tls_listen.empty()) {
    for (auto [result, n] : {std::pair<const char*, unsigned long long>{"refused", c.intercept_tls_refused},
                             {"denied", c.intercept_tls_denied},
                             {"not_tls", c.intercept_tls_not_tls},
                             {"spliced", c.intercept_tls_spliced},
                             {"bumped", c.intercept_tls_bumped},
                             {"failed", c.intercept_tls_failed}})
      out.counter("outpost_intercept_connections_total", intercept_help, {{"listener", "tls"}, {"result", result}},
                  static_cast<double>(n));
  }
  if (!pc.intercept_listen.empty()) {
    out.counter("outpost_intercept_connections_total", intercept_help, {{"listener", "http"}, {"result", "accepted"}},
                static_cast<double>(c.intercepted));
    out.counter("outpost_intercept_connections_total", intercept_help, {{"listener", "http"}, {"result", "refused"}},
                static_cast<double>(c.intercept_refused));
  }
  if (!pc.intercept_listen.empty() || !pc.intercept_tls_listen.empty()) {
    const char* help = "Intercepted requests by whether their Host resolves to the original destination (unverified: forwarded "
           "there, never cached)";
    out.counter("outpost_intercept_host_checks_total", help, {{"result", "verified"}},
                static_cast<double>(c.intercept_host_verified));
    out.counter("outpost_intercept_host_checks_total", help, {{"result", "unverified"}},
                static_cast<double>(c.intercept_host_unverified));
  }

  const auto& m = request_metrics_;
  for (std::size_t o = 0; o < kOutcomeCount; ++o)
    for (std::size_t k = 0; k < RequestMetrics::kMethodCount; ++k)
      if (m.requests[o][k])
        out.counter("outpost_http_requests_total", "Requests finished, by access-log outcome and method",
                    {{"outcome", outcome_name(static_cast<Outcome>(o))}, {"method", RequestMetrics::kMethods[k]}},
                    static_cast<double>(m.requests[o][k]));
  static constexpr std::string_view kClasses[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (std::size_t i = 0; i < std::size(kClasses); ++i)
    out.counter("outpost_http_responses_total", "Requests finished, by status class (none: no response was sent)",
                {{"code", kClasses[i]}}, static_cast<double>(m.status_classes[i]));
  out.counter("outpost_client_sent_bytes_total", "Bytes sent to clients, as counted in the access log", {},
              static_cast<double>(m.bytes_to_clients));
  out.histogram("outpost_http_request_duration_seconds", "Time from a request's start to the end of its exchange", {},
                m.duration);
  out.histogram("outpost_http_time_to_first_byte_seconds",
                "Time from a request's start to the first byte of its response sent to the client", {}, m.ttfb);
  out.counter("outpost_tunnels_total", "CONNECT tunnels established", {}, static_cast<double>(m.tunnels_opened));
  out.counter("outpost_tls_intercepted_total", "CONNECT tunnels whose TLS was peeked at, by decision",
              {{"decision", "bump"}}, static_cast<double>(counters_.tls_bumped));
  out.counter("outpost_tls_intercepted_total", "CONNECT tunnels whose TLS was peeked at, by decision",
              {{"decision", "splice"}}, static_cast<double>(counters_.tls_spliced));
  for (auto [kind, done, resumed, failed] :
       {std::tuple{"listener", counters_.tls_listener_handshakes, counters_.tls_listener_resumed,
                   counters_.tls_listener_handshake_failures},
        std::tuple{"bump", counters_.tls_bump_handshakes, counters_.tls_bump_resumed,
                   counters_.tls_bump_handshake_failures}}) {
    out.counter("outpost_client_tls_handshakes_total",
                "Clients' TLS handshakes with the proxy completed (its TLS listener; bumped tunnels)", {{"kind", kind}},
                static_cast<double>(done));
    out.counter("outpost_client_tls_resumed_total", "Clients' TLS handshakes with the proxy that resumed a session",
                {{"kind", kind}}, static_cast<double>(resumed));
    out.counter("outpost_client_tls_handshake_failures_total",
                "Clients' TLS handshakes with the proxy that failed or were abandoned", {{"kind", kind}},
                static_cast<double>(failed));
  }
  out.counter("outpost_tls_leaf_mints_total", "Leaf certificates minted for intercepted tunnels", {},
              static_cast<double>(counters_.tls_leaf_mints));
  out.counter("outpost_tls_leaf_cache_hits_total", "Intercepted tunnels that used a leaf minted before", {},
              static_cast<double>(counters_.tls_leaf_hits));
  out.gauge("outpost_tunnels", "Open CONNECT tunnels", {}, static_cast<double>(m.tunnels_opened - m.tunnels_closed));
  if (settings_->auth) {
    for (auto [result, n] : {std::pair<const char*, unsigned long long>{"ok", counters_.auth_ok},
                             {"missing", counters_.auth_missing},
                             {"bad", counters_.auth_bad},
                             {"unavailable", counters_.auth_unavailable},
                             {"denied", counters_.auth_denied}})
      out.counter("outpost_proxy_auth_total",
                  "Requests by what proxy authentication made of them (ok; missing or bad credentials: 407; "
                  "back end unavailable: 503; denied by the user rules: 403)",
                  {{"result", result}}, static_cast<double>(n));
    out.counter("outpost_proxy_auth_cached_total", "Credentials judged from the verdict cache (no back-end check)", {},
                static_cast<double>(counters_.auth_cached));
  }

  out.counter("outpost_origin_connections_opened_total", "Connections opened to origins (each a TCP connect)", {},
              static_cast<double>(pool_.connections_opened()));
  out.gauge("outpost_origin_idle_connections", "Idle keep-alive origin connections in the pool", {},
            static_cast<double>(pool_.idle_count()));
  out.counter("outpost_origin_connections_reused_total", "Requests sent on a pooled keep-alive origin connection", {},
              static_cast<double>(pool_.connections_reused()));
  out.counter("outpost_origin_received_bytes_total", "Bytes read from origins (responses and tunnels)", {},
              static_cast<double>(pool_.bytes_received()));
  out.counter("outpost_origin_tls_handshakes_total", "TLS handshakes with origins completed (https:// targets)", {},
              static_cast<double>(pool_.tls_handshakes()));
  out.counter("outpost_origin_tls_resumed_total", "TLS handshakes with origins that resumed a session", {},
              static_cast<double>(pool_.tls_resumed()));
  out.counter("outpost_origin_tls_verify_failures_total", "Origin certificates that failed verification", {},
              static_cast<double>(pool_.tls_verify_failures()));
}

// A connection answered without a session: a client outside acl.allow_clients (403) or one
// beyond max_connections_per_worker (503). The answer is written at once, before anything is
// read, and our side is shut down; then the client's input is read and dropped until it
// closes, kRefusalDiscardMax bytes arrived or kRefusalLingerMs passed. Closing a socket with
// unread input sends a reset, which can destroy the answer before the client reads it.
// Refusals hold no session slot, no read buffer, and at most kMaxRefusals linger per worker.
struct ProxyWorker::Refusal {
  ProxyWorker* owner;
  int fd;
  uv_poll_t poll;
  uv_timer_t timer;
  std::size_t discarded = 0;
  int open_handles = 2;
};

namespace {
// The leaf cache for the configured CA: the one in use when the CA files are unchanged (a
// reload keeps the leaves minted so far and the origins' names), else a new one. Called on
// the main thread only (start-up and reloads).
std::shared_ptr<tls::LeafCache> leaf_cache_for(const Config::Intercept& ic, std::shared_ptr<cache::Store> store) {
  static std::weak_ptr<tls::LeafCache> current;
  static std::string current_id;
  auto file_id = [](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return path + "?";
    return path + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  };
  std::string id = file_id(ic.ca_certificate) + "\n" + file_id(ic.ca_key);
  if (auto kept = current.lock(); kept && id == current_id) return kept;
  std::string why;
  auto leaves = tls::LeafCache::load(ic.ca_certificate, ic.ca_key, &why);
  if (!leaves) {  // the files changed since the configuration was checked
    spdlog::error("interception is off: cannot use the CA {} with key {}: {}", ic.ca_certificate, ic.ca_key, why);
    return nullptr;
  }
  if (store) leaves->use_store(make_leaf_store(std::move(store)));
  current = leaves;
  current_id = std::move(id);
  return leaves;
}
}  // namespace

std::shared_ptr<const ProxySettings> ProxySettings::make(Config c, std::shared_ptr<cache::Store> store,
                                                         std::shared_ptr<const auth::Authenticator> auth) {
  auto s = std::make_shared<ProxySettings>();
  s->auth = std::move(auth);
  s->user_rules = UserRules(c.auth);
  std::vector<Endpoint> own = c.proxy.listen;  // the loop guard: any of our listeners
  own.insert(own.end(), c.proxy.tls_listen.begin(), c.proxy.tls_listen.end());
  own.insert(own.end(), c.proxy.intercept_listen.begin(), c.proxy.intercept_listen.end());
  own.insert(own.end(), c.proxy.intercept_tls_listen.begin(), c.proxy.intercept_tls_listen.end());
  s->rules = AccessRules(c.acl, std::move(own));
  s->cache_policy = http::make_cache_policy(c.http_cache, c.cache.memory_size);
  const auto& ic = c.intercept;
  if (!ic.ca_certificate.empty() && !ic.bump.empty()) {
    s->intercept.leaves = leaf_cache_for(ic, std::move(store));
    for (const auto& p : ic.bump) s->intercept.bump.emplace_back(p);
    for (const auto& p : ic.splice) s->intercept.splice.emplace_back(p);
  }
  s->intercept.peek_timeout = ic.peek_timeout;  // intercepted TLS is peeked at (for its name) even without a CA
  s->config = std::move(c);
  return s;
}

void ProxyWorker::update_settings(std::shared_ptr<const ProxySettings> s) {
  settings_ = std::move(s);
  pool_.set_limits(settings_->config.origin.max_idle_per_host, settings_->config.origin.idle_timeout);
  pool_.set_tls_trust(settings_->config.origin.ca_file);
  load_tls_certificate();  // a renewed certificate, for new TLS clients
}

ProxyWorker::ProxyWorker(Worker& worker, std::shared_ptr<const ProxySettings> settings, NameResolver& resolver,
                         AccessLogFile& access_log, http::HttpCache* cache)
    : worker_(worker),
      settings_(std::move(settings)),
      resolver_(resolver),
      cache_(cache),
      pool_(worker.loop(), settings_->config.origin.max_idle_per_host, settings_->config.origin.idle_timeout),
      alog_(access_log, worker.loop()),
      acceptor_(worker.loop(), kBusyResponse, acceptor_callbacks(ListenerKind::kPlain)),
      // Shed connections on a TLS listener get no plaintext answer (a TLS client could not
      // read it): they are closed.
      tls_acceptor_(worker.loop(), "", acceptor_callbacks(ListenerKind::kTls)),
      intercept_acceptor_(worker.loop(), kBusyResponse, acceptor_callbacks(ListenerKind::kIntercept)),
      intercept_tls_acceptor_(worker.loop(), "", acceptor_callbacks(ListenerKind::kInterceptTls)) {
  pool_.set_tls_trust(settings_->config.origin.ca_file);
}

Acceptor::Callbacks ProxyWorker::acceptor_callbacks(ListenerKind kind) {
  return {[this, kind](int fd, const sockaddr_storage& peer) { on_accepted(fd, peer, kind); },
          [this](int error, std::size_t shed, bool first) { on_fd_exhausted(error, shed, first); },
          [this] {
            spdlog::info("worker {}: accepting connections again after running out of file descriptors",
                         worker_.index());
          }};
}

bool ProxyWorker::load_tls_certificate() {
  const auto& p = settings_->config.proxy;
  if (p.tls_listen.empty()) return true;
  std::string why;
  auto ctx = tls::ServerContext::create({p.tls_certificate, p.tls_key}, &why);
  if (!ctx) {
    spdlog::error("worker {}: cannot use the proxy's TLS certificate {} with key {}: {}{}", worker_.index(),
                  p.tls_certificate, p.tls_key, why, tls_contexts_.empty() ? "" : " (the previous one stays in use)");
    return false;
  }
  tls_contexts_.push_back(std::move(ctx));
  return true;
}

// The recycler handle is closed at the end of begin_shutdown(), which every owner runs
// before destroying the worker (the loop must not hold a handle into freed memory).
ProxyWorker::~ProxyWorker() = default;

std::unique_ptr<ProxyRequest> ProxyWorker::take_request() {
  if (free_requests_.empty()) return std::make_unique<ProxyRequest>(*this);
  auto r = std::move(free_requests_.back());
  free_requests_.pop_back();
  return r;
}

void ProxyWorker::retire_request(std::unique_ptr<ProxyRequest> r) {
  retired_requests_.push_back(std::move(r));
  if (!recycler_) {
    recycler_ = new uv_check_t;
    uv_check_init(loop(), recycler_);
    recycler_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(recycler_));
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(recycler_)))
    uv_check_start(recycler_, [](uv_check_t* h) { static_cast<ProxyWorker*>(h->data)->recycle_requests(); });
}

void ProxyWorker::recycle_requests() {
  constexpr std::size_t kFreeRequests = 256;  // kept per worker; beyond, freed
  auto retired = std::move(retired_requests_);
  retired_requests_.clear();
  for (auto& r : retired) {
    r->reset();
    if (free_requests_.size() < kFreeRequests) free_requests_.push_back(std::move(r));
  }
  if (retired_requests_.empty()) uv_check_stop(recycler_);
}

bool ProxyWorker::start(std::string* error) {
  for (const auto& ep : settings_->config.proxy.listen) {
    if (int rc = acceptor_.listen(ep); rc != 0) {
      *error = "cannot listen on " + ep.to_string() + ": " + uv_strerror(rc);
      return false;
    }
  }
  if (!settings_->config.proxy.tls_listen.empty() && !load_tls_certificate()) {
    *error = "cannot load the proxy's TLS certificate";
    return false;
  }
  for (const auto& ep : settings_->config.proxy.tls_listen) {
    if (int rc = tls_acceptor_.listen(ep); rc != 0) {
      *error = "cannot listen on " + ep.to_string() + " (TLS): " + uv_strerror(rc);
      return false;
    }
  }
  bool tproxy = settings_->config.proxy.intercept_mode == "tproxy";
  for (auto [eps, acceptor, what] : {std::tuple{&settings_->config.proxy.intercept_listen, &intercept_acceptor_, "intercept"},
                                      std::tuple{&settings_->config.proxy.intercept_tls_listen, &intercept_tls_acceptor_,
                                                 "intercept TLS"}}) {
    for (const auto& ep : *eps) {
      if (int rc = acceptor->listen(ep, tproxy); rc != 0) {
        *error = "cannot listen on " + ep.to_string() + " (" + what + (tproxy ? ", IP_TRANSPARENT" : "") +
                 "): " + uv_strerror(rc) + (tproxy && rc == UV_EPERM ? " (TPROXY needs CAP_NET_ADMIN)" : "");
        return false;
      }
    }
  }
  return true;
}

void ProxyWorker::on_accepted(int fd, const sockaddr_storage& peer, ListenerKind kind) {
  // No plaintext answer where the client speaks TLS (to the proxy, or to the destination it
  // thinks it reached): refusals there are closes.
  const bool tls = kind == ListenerKind::kTls || kind == ListenerKind::kInterceptTls;
  // The client check comes first: a refused client costs no session, buffer or slot.
  IpAddress ip = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
  if (!settings_->rules.client_allowed(ip)) {
    ++counters_.connections_denied;
    // Debug only: a flood of refused clients must not flood the log.
    spdlog::debug("worker {}: client {} is not in acl.allow_clients, answered 403", worker_.index(), ip.to_string());
    if (tls) ::close(fd);  // no handshake for a refused client; a plaintext answer would be noise
    else refuse(fd, http::simple_response(403, "text/plain; charset=utf-8",
                                          "Access denied: your address is not allowed to use this proxy.\n", true));
    return;
  }
  unsigned cap = settings_->config.proxy.max_connections_per_worker;
  if (sessions_.size() >= cap) {
    ++counters_.connections_refused;
    if (!at_limit_) {
      at_limit_ = true;
      spdlog::warn("worker {}: connection limit {} reached, refusing clients with 503 until connections close",
                   worker_.index(), cap);
    }
    if (tls) ::close(fd);
    else refuse(fd, kBusyResponse);
    return;
  }
  // Hysteresis: one session closing at the limit must not re-arm the warning.
  if (sessions_.size() < cap - cap / 4) at_limit_ = false;
  auto* tcp = new TcpStream(loop());
  StreamPtr stream(tcp);
  if (int rc = tcp->open(fd); rc != 0) {
    spdlog::warn("worker {}: cannot use an accepted connection: {}", worker_.index(), uv_strerror(rc));
    ::close(fd);
    return;  // the stream closes itself
  }
  ++counters_.connections_accepted;
  std::optional<SocketAddress> original_dst;
  if (kind == ListenerKind::kIntercept || kind == ListenerKind::kInterceptTls) {
    // A connection that was not redirected (a client that dialled the intercept port
    // itself) has no destination of its own: forwarding it would loop back here.
    std::string why;
    original_dst = original_destination(fd, settings_->config.proxy.intercept_mode == "tproxy", &why);
    if (original_dst && settings_->rules.is_own_listener(original_dst->ip, original_dst->port)) {
      original_dst.reset();
      why = "not redirected (addressed to this listener itself)";
    }
    if (!original_dst) {
      ++(kind == ListenerKind::kIntercept ? counters_.intercept_refused : counters_.intercept_tls_refused);
      spdlog::debug("worker {}: intercepted connection from {} refused: {}", worker_.index(), ip.to_string(), why);
      tcp->close();
      return;
    }
    if (kind == ListenerKind::kInterceptTls) {
      if (shutting_down_) return;
      auto* c = new Http1Connection(*this, std::move(stream), {}, {}, {}, original_dst);
      sessions_.insert(c);
      c->start_intercepted_tls();
      return;
    }
    ++counters_.intercepted;
  }
  if (tls) {
    stream = tls::make_server_stream(*tls_contexts_.back(), std::move(stream));
    if (!stream) return;
  }
  adopt(std::move(stream), tls, {}, {}, {}, original_dst);
}

tls::ServerContext* ProxyWorker::bump_context() {
  if (!bump_context_) {
    std::string why;
    bump_context_ = tls::ServerContext::create({}, &why);
    if (!bump_context_) spdlog::error("worker {}: cannot make the TLS context for interception: {}", worker_.index(), why);
  }
  return bump_context_.get();
}

void ProxyWorker::adopt(StreamPtr client, bool tls_handshake_first, std::string authority, std::string user,
                        std::vector<std::string> groups, std::optional<SocketAddress> original_dst) {
  if (shutting_down_) return;  // (a tunnel bumped just as the worker began to stop) closed
  auto* c = new Http1Connection(*this, std::move(client), std::move(authority), std::move(user),
                               std::move(groups), original_dst);
  sessions_.insert(c);
  c->start(tls_handshake_first);
}

void ProxyWorker::on_fd_exhausted(int error, std::size_t shed, bool first) {
  counters_.connections_shed += shed;
  if (!first) return;  // logged once per episode, not once per pause
  ++counters_.fd_exhaustions;
  spdlog::warn(
      "worker {}: cannot accept connections: {}; pausing accept for {} ms at a time and answering pending "
      "clients 503 until descriptors are free ({} client connection(s) on this worker)",
      worker_.index(), uv_strerror(error), Acceptor::kPauseMs, sessions_.size());
}

void ProxyWorker::refuse(int fd, std::string_view response) {
  ssize_t n = ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  auto* r = refusals_.size() < kMaxRefusals && n == static_cast<ssize_t>(response.size()) ? new Refusal{this, fd, {}, {}}
                                                                                          : nullptr;
  if (!r || uv_poll_init_socket(loop(), &r->poll, fd) != 0) {
    delete r;
    ::close(fd);
    return;
  }
  ::shutdown(fd, SHUT_WR);
  r->poll.data = r->timer.data = r;
  uv_timer_init(loop(), &r->timer);
  uv_timer_start(&r->timer, [](uv_timer_t* t) { auto* r = static_cast<Refusal*>(t->data); r->owner->finish_refusal(r); },
                 kRefusalLingerMs, 0);
  uv_poll_start(&r->poll, UV_READABLE, [](uv_poll_t* p, int status, int) {
    auto* r = static_cast<Refusal*>(p->data);
    char drop[4096];
    ssize_t got = 0;
    while (status == 0 && r->discarded < kRefusalDiscardMax && (got = ::recv(r->fd, drop, sizeof drop, MSG_DONTWAIT)) > 0)
      r->discarded += static_cast<std::size_t>(got);
    if (status == 0 && got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // more may come
    r->owner->finish_refusal(r);  // end of input, an error, or enough dropped
  });
  refusals_.insert(r);
}

void ProxyWorker::finish_refusal(Refusal* r) {
  refusals_.erase(r);
  auto closed = [](uv_handle_t* h) {
    auto* r = static_cast<Refusal*>(h->data);
    if (--r->open_handles > 0) return;
    ::close(r->fd);
    delete r;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&r->poll), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->timer), closed);
}

void ProxyWorker::session_closed(Http1Connection* s) {
  sessions_.erase(s);
  if (shutting_down_) maybe_done();
}

void ProxyWorker::begin_shutdown(double grace_s, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_done_ = std::move(done);
  acceptor_.close();
  tls_acceptor_.close();
  intercept_acceptor_.close();
  intercept_tls_acceptor_.close();
  std::vector<Refusal*> refusals(refusals_.begin(), refusals_.end());
  for (auto* r : refusals) finish_refusal(r);
  auto background = std::move(background_);
  background_.clear();
  for (auto& [task, abort] : background) abort();
  // Copy: closing a session removes it from the set.
  std::vector<Http1Connection*> all(sessions_.begin(), sessions_.end());
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
        std::vector<Http1Connection*> left(self->sessions_.begin(), self->sessions_.end());
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
  // No connection is left to hold a request: free them, and the recycler.
  retired_requests_.clear();
  free_requests_.clear();
  if (recycler_) {
    uv_close(reinterpret_cast<uv_handle_t*>(recycler_), [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
    recycler_ = nullptr;
  }
  auto done = std::move(on_done_);
  on_done_ = nullptr;
  done();
}

std::string ProxyWorker::describe_connections() const {
  std::uint64_t now = uv_now(worker_.loop());
  std::string out;
  for (const auto* c : sessions_) out += c->describe(now) + "\n";
  return out;
}

}  // namespace outpost
