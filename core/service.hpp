// A service: a module beside the proxy and the DNS server (the admin endpoint today; an FTP
// gateway, an SNMP agent, DHCP/WPAD later) with its own config section, running on every
// worker. app/ drives each one through the same lifecycle, services in the order it lists
// them and stops them in reverse:
//
//   configure  main thread, once, before any worker starts: read its section of the (already
//              validated) Config and check what the schema cannot (files, combinations).
//   start      on each worker's loop thread, after the proxy and DNS server started there:
//              open listeners, timers. An error stops Outpost's start-up.
//   collect_metrics
//              on each worker's loop thread, at every scrape (MetricsRegistry::gather): this
//              worker's figures. Counters the service keeps per worker need no atomics.
//   reload     main thread, on SIGHUP, with the new Config: apply what can change at run time
//              (by posting to its workers: workers never read main-thread state) and name
//              the settings ("section.key") that need a restart; they keep their old value.
//   drain      on each worker's loop thread at shutdown, before the proxy drains: stop
//              taking work, finish or cut what is open, then call `done` on that thread once
//              nothing of the service is left on this loop. Also called after a failed start.
//
// Lifetime: the service object lives until every worker thread has been joined, so
// callbacks on worker loops may hold plain pointers to it.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/metrics.hpp"
#include "core/worker_pool.hpp"

namespace outpost {

class Service {
 public:
  virtual ~Service() = default;
  virtual std::string_view name() const = 0;
  virtual bool configure(const Config& config, std::string* error) = 0;
  virtual bool start(Worker& worker, std::string* error) = 0;
  virtual void collect_metrics(Worker& worker, MetricsVisitor& out) = 0;
  virtual std::vector<std::string> reload(const Config& config) = 0;
  virtual void drain(Worker& worker, std::function<void()> done) = 0;
};

}  // namespace outpost
