// The SNMP agent ([snmp]; docs/SNMP.md), a Service (core/service.hpp) in two modes that may
// run together:
//  - standalone: a read-only SNMPv2c agent on UDP (core's UdpListener on every worker,
//    SO_REUSEPORT). A datagram from outside snmp.allow_clients, with another community, of
//    another version (v1, v3) or malformed is dropped without an answer, counted, and logged
//    at most once per 10 s per reason. GET, GETNEXT, GETBULK are answered (snmp_agent.hpp);
//    SET gets notWritable.
//  - AgentX: a subagent of the host's snmpd (agentx_subagent.hpp) on worker 0, so operators
//    keep snmpd's SNMPv3 users and access rules.
// Both answer from the same figures /metrics shows: each request waits for a gather
// (MetricsRegistry::gather, every worker's counters summed); requests arriving while one is
// in flight on a worker share it (at most kMaxPending waiting, more are dropped and counted).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/service.hpp"
#include "services/snmp/mib.hpp"

namespace outpost::snmp {

class SnmpService final : public Service {
 public:
  static constexpr std::size_t kMaxPending = 256;

  SnmpService(MetricsRegistry& metrics, std::vector<Worker*> workers, std::string version);
  ~SnmpService() override;

  std::string_view name() const override { return "snmp"; }
  bool configure(const Config& config, std::string* error) override;
  bool start(Worker& worker, std::string* error) override;
  void collect_metrics(Worker& worker, MetricsVisitor& out) override;
  std::vector<std::string> reload(const Config& config) override;
  void drain(Worker& worker, std::function<void()> done) override;

 private:
  class Local;  // one worker's listener, pending requests and (worker 0) subagent
  Config::Snmp config_;
  MibInfo info_;
  MetricsRegistry& metrics_;
  std::vector<Worker*> workers_;
  std::vector<std::unique_ptr<Local>> locals_;
};

}  // namespace outpost::snmp
