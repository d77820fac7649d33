// The SNTP server ([sntp]; docs/SNTP.md), a Service (core/service.hpp): answers NTPv3/v4
// client requests (RFC 4330 §5, RFC 5905) from the host clock, on every worker through core's
// UdpListener (SO_REUSEPORT), with the configured stratum and reference ID. Other modes and
// versions, short packets and clients outside sntp.allow_clients get nothing (counted; logged
// at most once per 10 s per reason). Each client address has a token bucket (sntp.rate per
// second, sntp.burst deep) on the worker its datagrams reach; over it the client gets a
// Kiss-o'-Death RATE (RFC 5905 §7.4) at most once per second, and nothing otherwise, so a
// flood is never amplified.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/service.hpp"

namespace outpost::sntp {

class SntpServer final : public Service {
 public:
  // Client addresses remembered per worker for the rate limit; past it, idle ones are forgotten.
  static constexpr std::size_t kMaxClients = 65536;

  explicit SntpServer(std::vector<Worker*> workers);
  ~SntpServer() override;

  std::string_view name() const override { return "sntp"; }
  bool configure(const Config& config, std::string* error) override;
  bool start(Worker& worker, std::string* error) override;
  void collect_metrics(Worker& worker, MetricsVisitor& out) override;
  std::vector<std::string> reload(const Config& config) override;
  void drain(Worker& worker, std::function<void()> done) override;

 private:
  class Local;
  Config::Sntp config_;
  std::vector<Worker*> workers_;
  std::vector<std::unique_ptr<Local>> locals_;
};

}  // namespace outpost::sntp
