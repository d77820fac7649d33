// One worker's forward proxy: listeners (SO_REUSEPORT), its client sessions, its origin
// connection pool and access-log buffer. Everything here runs on the worker's loop thread.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/authenticator.hpp"
#include "core/config.hpp"
#include "core/metrics.hpp"
#include "core/own_page.hpp"
#include "core/worker_pool.hpp"
#include "proxy/access_log.hpp"
#include "proxy/destination_acl.hpp"
#include "proxy/gateway.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/intercept.hpp"
#include "proxy/name_resolver.hpp"
#include "proxy/origin_pool.hpp"
#include "proxy/outcome.hpp"
#include "proxy/user_rules.hpp"
#include "tls/tls_context.hpp"

namespace outpost {

class Http1Connection;
class ProxyRequest;

// Immutable settings snapshot; SIGHUP builds a new one and hands it to every worker.
struct ProxySettings {
  Config config;
  // Proxy authentication ([auth]): null when off. Shared by every worker (thread-safe), new
  // with each snapshot; and the rules by user and group.
  std::shared_ptr<const auth::Authenticator> auth;
  UserRules user_rules;
  AccessRules rules;
  http::CachePolicyConfig cache_policy;  // from config.http_cache
  InterceptRules intercept;              // from config.intercept
  // `store`: where minted interception leaves are kept (none: memory of this process only).
  // `auth`: the authenticator [auth] describes (auth::load_authenticator reads its files,
  // so the caller runs it where blocking is fine); null: none.
  static std::shared_ptr<const ProxySettings> make(Config c, std::shared_ptr<cache::Store> store = nullptr,
                                                   std::shared_ptr<const auth::Authenticator> auth = nullptr);
};

struct ProxyCounters {
  unsigned long long connections_accepted = 0;
  unsigned long long connections_refused = 0;  // 503: max_connections_per_worker reached
  unsigned long long connections_denied = 0;   // 403: client address not in acl.allow_clients
  unsigned long long connections_shed = 0;     // 503 and closed while out of file descriptors
  unsigned long long fd_exhaustions = 0;       // episodes of accept() failing for lack of descriptors
  unsigned long long requests = 0;
  unsigned long long tls_bumped = 0;   // CONNECT tunnels intercepted
  unsigned long long tls_spliced = 0;  // CONNECT tunnels peeked at and passed through
  unsigned long long tls_leaf_mints = 0;  // leaf certificates minted for bumped tunnels
  unsigned long long tls_leaf_hits = 0;   // bumped tunnels served a leaf minted before
  // Proxy authentication, by what became of a request's credentials.
  unsigned long long auth_ok = 0, auth_missing = 0, auth_bad = 0, auth_unavailable = 0, auth_denied = 0;
  unsigned long long auth_cached = 0;  // verdicts taken from the cache (no back-end check)
  // Clients' TLS handshakes with the proxy: on its TLS listener, and inside bumped tunnels.
  unsigned long long tls_listener_handshakes = 0, tls_listener_resumed = 0, tls_listener_handshake_failures = 0;
  unsigned long long tls_bump_handshakes = 0, tls_bump_resumed = 0, tls_bump_handshake_failures = 0;
  // Transparent interception: connections taken with their original destination, refused
  // (no original destination: not redirected), and requests whose Host was or was not
  // that destination's (unverified ones are forwarded there but never cached).
  unsigned long long intercepted = 0, intercept_refused = 0;
  unsigned long long intercept_host_verified = 0, intercept_host_unverified = 0;
  // Intercepted TLS connections (intercept_tls_listen), by what became of them: refused (not
  // redirected), denied (the CONNECT rules, or [auth] on), not TLS (closed), spliced, bumped,
  // failed (the client went before its hello; no leaf could be had).
  unsigned long long intercept_tls_refused = 0, intercept_tls_denied = 0, intercept_tls_not_tls = 0;
  unsigned long long intercept_tls_spliced = 0, intercept_tls_bumped = 0, intercept_tls_failed = 0;
};

// Per-request figures of one worker, for the metrics. Written and read only on the worker's
// loop thread (a scrape posts its collection to every worker; see core/metrics.hpp): plain
// integers, no atomics, and a block of its own so no other thread's data shares its lines.
struct alignas(64) RequestMetrics {
  // Outcomes are the access log's codes; a code not listed counts as "OTHER".
  static constexpr std::string_view kMethods[] = {"GET",   "HEAD",    "POST",  "PUT",   "DELETE", "OPTIONS",
                                                  "PATCH", "CONNECT", "TRACE", "PURGE", "OTHER"};
  static constexpr std::size_t kMethodCount = std::size(kMethods);
  static std::size_t method_index(std::string_view method);

  // One finished exchange: its outcome, method and status, the bytes sent to the client, and
  // the milliseconds from the request's start to its end and to the first byte of the
  // response sent to the client (ttfb_ms < 0: nothing was sent).
  void record(Outcome outcome, std::string_view method, int status, std::uint64_t bytes_out,
              double elapsed_ms, double ttfb_ms);
  // A CONNECT tunnel established / finished (after record() or not: only the pair counts).
  void tunnel_opened() { ++tunnels_opened; }
  void tunnel_closed() { ++tunnels_closed; }

  std::uint64_t requests[kOutcomeCount][kMethodCount] = {};
  std::uint64_t status_classes[6] = {};  // no status, 1xx, 2xx, 3xx, 4xx, 5xx
  std::uint64_t bytes_to_clients = 0;
  std::uint64_t tunnels_opened = 0;
  std::uint64_t tunnels_closed = 0;
  Histogram duration{kLatencyBuckets};
  Histogram ttfb{kLatencyBuckets};
};

// proxy.max_connections_per_worker as applied for a file-descriptor limit.
struct ConnectionCap {
  unsigned value = 0;    // the cap in force
  unsigned allowed = 0;  // the most the descriptor limit leaves room for
  bool derived = false;  // configured as 0 ("auto")
  bool clamped = false;  // configured above `allowed`
};
// Each client connection may hold an origin connection (or a DNS socket) too, and the
// process needs descriptors of its own (listeners, loops, logs, cache segment files, lingering
// refusals, plus `other_per_worker`, e.g. the DNS server's TCP clients), so a worker gets
// (fd_limit - reserve) / workers / 2.
ConnectionCap connection_cap(unsigned configured, unsigned workers, std::uint64_t fd_limit,
                             std::uint64_t other_per_worker = 0);

class ProxyWorker {
 public:
  ProxyWorker(Worker& worker, std::shared_ptr<const ProxySettings> settings, NameResolver& resolver,
              AccessLogFile& access_log, http::HttpCache* cache = nullptr);
  ~ProxyWorker();
  ProxyWorker(const ProxyWorker&) = delete;
  ProxyWorker& operator=(const ProxyWorker&) = delete;

  // Opens this worker's listeners; false with a message if any fails.
  bool start(std::string* error);
  // Serves HTTP/1 on a connected client stream (an accepted socket; a TLS stream or a
  // FakeStream in tests): the worker owns the connection until it closes.
  // `authority`: the connection is inside an intercepted tunnel to this "host:port", which
  // `user` opened (authenticated; empty without proxy authentication).
  // `original_dst`: a transparently intercepted connection, to this destination.
  void adopt(StreamPtr client, bool tls_handshake_first = false, std::string authority = {}, std::string user = {},
             std::vector<std::string> groups = {}, std::optional<SocketAddress> original_dst = {});
  // The server context of intercepted tunnels (no certificate of its own: each stream
  // brings its minted leaf); made at first use. nullptr if OpenSSL cannot make one.
  tls::ServerContext* bump_context();
  // A reload: new requests use `s`; the origin pool takes its new limits.
  void update_settings(std::shared_ptr<const ProxySettings> s);
  // Stops accepting, closes idle clients, lets busy ones finish; after `grace_s` closes
  // everything. `done` runs on this loop once no session remains.
  void begin_shutdown(double grace_s, std::function<void()> done);

  const std::shared_ptr<const ProxySettings>& settings() const { return settings_; }
  uv_loop_t* loop() { return worker_.loop(); }
  OriginPool& pool() { return pool_; }
  AccessLogBuffer& access_log() { return alog_; }
  NameResolver& resolver() { return resolver_; }
  // Pages the services add to the proxy's own (the PAC script): set by app/ before start().
  void set_own_pages(OwnPageFn fn) { own_pages_ = std::move(fn); }
  const OwnPageFn& own_pages() const { return own_pages_; }
  // The FTP gateway (services/ftp) of this worker, set by it at start; null: none.
  void set_ftp_gateway(Gateway* g) { ftp_gateway_ = g; }
  Gateway* ftp_gateway() const { return ftp_gateway_; }
  http::HttpCache* cache() { return cache_; }
  Worker& worker() { return worker_; }
  bool shutting_down() const { return shutting_down_; }
  ProxyCounters& counters() { return counters_; }
  RequestMetrics& request_metrics() { return request_metrics_; }
  // This worker's figures (on its loop thread, at each scrape).
  void collect_metrics(MetricsVisitor& out) const;
  std::size_t session_count() const { return sessions_.size(); }
  // One line per client connection (Http1Connection::describe), for `outpost ctl connections`.
  std::string describe_connections() const;
  std::size_t refusal_count() const { return refusals_.size(); }
  void session_closed(Http1Connection* s);
  // Request objects, recycled per worker: an idle connection holds none, and a request
  // costs no allocation once the worker is warm. A finished request is retired, not reused
  // at once (its own code may still be on the stack); a check handle recycles it after the
  // current loop turn's callbacks.
  std::unique_ptr<ProxyRequest> take_request();
  void retire_request(std::unique_ptr<ProxyRequest> r);
  // Work without a client (background revalidation): aborted at shutdown.
  void add_background(void* task, std::function<void()> abort) { background_[task] = std::move(abort); }
  void remove_background(void* task) { background_.erase(task); }

 private:
  struct Refusal;
  enum class ListenerKind { kPlain, kTls, kIntercept, kInterceptTls };
  // A new client on one of the listeners.
  void on_accepted(int fd, const sockaddr_storage& peer, ListenerKind kind);
  Acceptor::Callbacks acceptor_callbacks(ListenerKind kind);
  // The context of the TLS listeners, made from the settings (again at a reload: a renewed
  // certificate takes effect for new connections); false and a log line if it cannot be.
  bool load_tls_certificate();
  void on_fd_exhausted(int error, std::size_t shed, bool first);
  // Answers a connection without a session and closes it (see Refusal).
  void refuse(int fd, std::string_view response);
  void finish_refusal(Refusal* r);
  void maybe_done();
  void recycle_requests();

  Worker& worker_;
  std::shared_ptr<const ProxySettings> settings_;
  NameResolver& resolver_;
  OwnPageFn own_pages_;
  Gateway* ftp_gateway_ = nullptr;
  http::HttpCache* cache_;
  OriginPool pool_;
  AccessLogBuffer alog_;
  Acceptor acceptor_;
  Acceptor tls_acceptor_;
  Acceptor intercept_acceptor_;  // transparent interception ([proxy] intercept_listen)
  Acceptor intercept_tls_acceptor_;  // the same for TLS ([proxy] intercept_tls_listen)
  // The current one is back(); older ones stay while their connections may use them.
  std::vector<std::unique_ptr<tls::ServerContext>> tls_contexts_;
  std::unique_ptr<tls::ServerContext> bump_context_;
  std::unordered_set<Http1Connection*> sessions_;
  std::vector<std::unique_ptr<ProxyRequest>> free_requests_;
  std::vector<std::unique_ptr<ProxyRequest>> retired_requests_;
  uv_check_t* recycler_ = nullptr;
  std::unordered_set<Refusal*> refusals_;
  bool at_limit_ = false;  // refusing at max_connections_per_worker (warned once per episode)
  std::unordered_map<void*, std::function<void()>> background_;
  bool shutting_down_ = false;
  std::function<void()> on_done_;
  uv_timer_t* grace_timer_ = nullptr;
  ProxyCounters counters_;
  RequestMetrics request_metrics_;
};

}  // namespace outpost
