// The admin endpoint ([admin]): Prometheus metrics at /metrics and a liveness answer at
// /health, the first Service (core/service.hpp).
//
// Off by default. When on, every worker listens on admin.listen (SO_REUSEPORT, through core's
// Acceptor, so it is as safe at the descriptor limit as the proxy). A connection carries one
// request (admin_http.hpp): clients outside admin.allow_clients get 403, bad requests 400,
// a client that has not sent its request within admin.timeout gets 408 and is closed, and an
// answer not read within admin.timeout again is cut. A scrape gathers every worker's figures
// (MetricsRegistry::gather: a collection task posted to each worker) and answers on the loop
// that accepted it; if a worker does not answer within admin.timeout the scrape gets 503.
// At most kMaxConnections admin connections per worker; more are closed at once.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/own_page.hpp"
#include "core/service.hpp"

namespace outpost::admin {

class AdminService final : public Service {
 public:
  static constexpr std::size_t kMaxConnections = 64;

  AdminService(MetricsRegistry& metrics, std::vector<Worker*> workers);
  ~AdminService() override;

  std::string_view name() const override { return "admin"; }
  bool configure(const Config& config, std::string* error) override;
  bool start(Worker& worker, std::string* error) override;
  void collect_metrics(Worker& worker, MetricsVisitor& out) override;
  std::vector<std::string> reload(const Config& config) override;
  void drain(Worker& worker, std::function<void()> done) override;
  // Pages other services add (the PAC script), per worker, called on that worker's thread:
  // set before start() there. A path no page answers stays a 404.
  void set_own_pages(unsigned worker, OwnPageFn fn) { pages_.at(worker) = std::move(fn); }

 private:
  class Local;  // one worker's listeners and connections
  Config::Admin config_;  // main thread's copy; workers hold their own snapshots
  MetricsRegistry& metrics_;
  std::vector<Worker*> workers_;
  std::vector<std::unique_ptr<Local>> locals_;
  std::vector<OwnPageFn> pages_;
};

}  // namespace outpost::admin
