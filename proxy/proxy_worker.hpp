// One worker's forward proxy: listeners (SO_REUSEPORT), its client sessions, its origin
// connection pool and access-log buffer. Everything here runs on the worker's loop thread.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/config.hpp"
#include "core/worker_pool.hpp"
#include "proxy/access_log.hpp"
#include "proxy/destination_acl.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/name_resolver.hpp"
#include "proxy/origin_pool.hpp"

namespace outpost {

class ClientSession;

// Immutable settings snapshot; SIGHUP builds a new one and hands it to every worker.
struct ProxySettings {
  Config config;
  AccessRules rules;
  static std::shared_ptr<const ProxySettings> make(Config c);
};

struct ProxyCounters {
  unsigned long long connections_accepted = 0;
  unsigned long long connections_refused = 0;
  unsigned long long requests = 0;
};

class ProxyWorker {
 public:
  ProxyWorker(Worker& worker, std::shared_ptr<const ProxySettings> settings, NameResolver& resolver,
              AccessLogFile& access_log, http::HttpCache* cache = nullptr);
  ~ProxyWorker();
  ProxyWorker(const ProxyWorker&) = delete;
  ProxyWorker& operator=(const ProxyWorker&) = delete;

  // Opens this worker's listeners; false with a message if any fails.
  bool start(std::string* error);
  void update_settings(std::shared_ptr<const ProxySettings> s) { settings_ = std::move(s); }
  // Stops accepting, closes idle clients, lets busy ones finish; after `grace_s` closes
  // everything. `done` runs on this loop once no session remains.
  void begin_shutdown(double grace_s, std::function<void()> done);

  const std::shared_ptr<const ProxySettings>& settings() const { return settings_; }
  uv_loop_t* loop() { return worker_.loop(); }
  OriginPool& pool() { return pool_; }
  AccessLogBuffer& access_log() { return alog_; }
  NameResolver& resolver() { return resolver_; }
  http::HttpCache* cache() { return cache_; }
  Worker& worker() { return worker_; }
  bool shutting_down() const { return shutting_down_; }
  ProxyCounters& counters() { return counters_; }
  std::size_t session_count() const { return sessions_.size(); }
  void session_closed(ClientSession* s);
  // Work without a client (background revalidation): aborted at shutdown.
  void add_background(void* task, std::function<void()> abort) { background_[task] = std::move(abort); }
  void remove_background(void* task) { background_.erase(task); }

 private:
  void on_connection(uv_stream_t* server, int status);
  void maybe_done();

  Worker& worker_;
  std::shared_ptr<const ProxySettings> settings_;
  NameResolver& resolver_;
  http::HttpCache* cache_;
  OriginPool pool_;
  AccessLogBuffer alog_;
  std::vector<uv_tcp_t*> listeners_;
  std::unordered_set<ClientSession*> sessions_;
  std::unordered_map<void*, std::function<void()>> background_;
  bool shutting_down_ = false;
  std::function<void()> on_done_;
  uv_timer_t* grace_timer_ = nullptr;
  ProxyCounters counters_;
};

}  // namespace outpost
