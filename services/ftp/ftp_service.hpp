// The FTP gateway as a Service (core/service.hpp): [ftp] (ftp_config.cpp), one FtpGateway
// per worker handed to that worker's ProxyWorker, its counters in /metrics.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/service.hpp"
#include "services/ftp/ftp_gateway.hpp"

namespace outpost::ftp {

// Registers the [ftp] parser. Once, before parsing.
void register_config_section();

class FtpService final : public Service {
 public:
  // `proxy_of(i)`: worker i's ProxyWorker (exists when start() runs there); `store`: the
  // shared store (null: nothing cached).
  FtpService(std::vector<Worker*> workers, std::function<ProxyWorker*(unsigned)> proxy_of, cache::Store* store);
  ~FtpService() override;

  std::string_view name() const override { return "ftp"; }
  bool configure(const Config& config, std::string* error) override;
  bool start(Worker& worker, std::string* error) override;
  void collect_metrics(Worker& worker, MetricsVisitor& out) override;
  std::vector<std::string> reload(const Config& config) override;
  void drain(Worker& worker, std::function<void()> done) override;

 private:
  std::vector<Worker*> workers_;
  std::function<ProxyWorker*(unsigned)> proxy_of_;
  cache::Store* store_;
  std::vector<std::unique_ptr<FtpGateway>> gateways_;
};

}  // namespace outpost::ftp
