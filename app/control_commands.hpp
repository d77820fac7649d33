// The commands of `outpost ctl` (services/control/ runs the channel; this file gives it the
// commands, which act on what app/ owns: metrics, the HTTP cache, the DNS cache, the proxy
// workers, reload).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "core/worker_pool.hpp"
#include "services/control/control_service.hpp"

namespace outpost {

namespace cache {
class Store;
}
namespace http {
class HttpCache;
}
namespace dns {
class DnsCache;
}

struct ControlTargets {
  std::vector<Worker*> workers;
  MetricsRegistry* metrics = nullptr;
  cache::Store* store = nullptr;
  http::HttpCache* http_cache = nullptr;  // null when [http_cache] is off
  std::shared_ptr<dns::DnsCache> dns_cache;
  // On worker i's loop thread: drop what it keeps from the DNS cache (kept replies, DNSSEC
  // keys, aggressive-NSEC records, bogus verdicts) after `dns flush`.
  std::function<void(unsigned)> dns_flush_worker;
  // Starts a reload (from any thread); `done(ok, text)` runs once it is applied or refused,
  // on any thread.
  std::function<void(std::function<void(bool, std::string)>)> reload;
  // On worker i's loop thread: its client connections, one line each; and how many.
  std::function<std::string(unsigned)> connections;
  std::function<std::size_t(unsigned)> connection_count;
  std::string version;
  std::string config_source;
  double start_time = 0;  // unix seconds
};

// Adds status, stats, reload, purge, dns flush, dns lookup, cache info, log level and
// connections to `control`.
void add_control_commands(control::ControlService& control, ControlTargets targets);

}  // namespace outpost
