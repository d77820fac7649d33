// The DHCP server with WPAD ([dhcp]): a Service (core/service.hpp) on worker 0 only.
//
// One UDP socket bound to 0.0.0.0:67 (broadcasts from clients without an address arrive
// there) with SO_BINDTODEVICE on dhcp.interface and SO_BROADCAST, on worker 0's loop: the
// lease table has one writer, so the service is not spread over workers with SO_REUSEPORT.
// Not core's UdpListener for that reason (and for the device binding and broadcast sends).
// Answers to clients without an address are broadcast on the interface (dnsmasq unicasts
// after writing an ARP entry; broadcasting needs no privilege beyond the socket and every
// client reads it); answers to relays go to giaddr:67, to clients with an address to
// ciaddr:68 (dhcp_server.hpp decides).
//
// Leases live in memory (dhcp_server.hpp) and in dhcp.lease_file, written whole to a
// temporary file, fsynced and renamed over the old one on the thread pool
// (core/blocking_work.hpp); an ACK leaves only once the file holding its lease is written
// (RFC 2131 §4.3.2: the binding is committed before the client hears of it). Writes are
// coalesced: ACKs arriving meanwhile wait for the next write. The file is read at start-up,
// so a restart keeps every client's address. Not the cache store: a store may evict, a lease
// must not be lost.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/service.hpp"

namespace outpost::dhcp {

struct DhcpMetrics {
  std::uint64_t received[9] = {};  // by message type (0: none)
  std::uint64_t sent[9] = {};
  std::uint64_t malformed = 0;
  std::uint64_t ignored = 0;
  std::uint64_t no_address = 0;
  std::uint64_t send_failed = 0;
  std::uint64_t file_writes = 0;
  std::uint64_t file_write_errors = 0;
};

class DhcpService final : public Service {
 public:
  DhcpService();
  ~DhcpService() override;

  std::string_view name() const override { return "dhcp"; }
  bool configure(const Config& config, std::string* error) override;
  bool start(Worker& worker, std::string* error) override;
  void collect_metrics(Worker& worker, MetricsVisitor& out) override;
  std::vector<std::string> reload(const Config& config) override;
  void drain(Worker& worker, std::function<void()> done) override;

 private:
  class Local;
  Config::Dhcp config_;
  std::unique_ptr<Local> local_;  // on worker 0 once started; made in configure
};

// The address of the interface `name` (its first IPv4 address), or 0.
std::uint32_t interface_address(const std::string& name);

}  // namespace outpost::dhcp
