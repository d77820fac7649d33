// The AgentX subagent (RFC 2741): one connection to the master agent (net-snmp's snmpd with
// `master agentx`) over its Unix socket or TCP, on one worker's loop. It opens a session,
// registers Outpost's subtrees, and answers the master's Get, GetNext and GetBulk from a MIB
// snapshot asked for each request (the same gathered figures as /metrics); sets are refused
// (notWritable). When the master goes away (EOF, error, Close, no answer to Open or Register
// within the timeout) the connection is closed and tried again every `retry` seconds, so a
// restarted snmpd gets the registrations back without restarting Outpost.
//
// Lifetime: owned on its loop's thread; close() ends it (a Close PDU if a session is open,
// handles closed) and calls `done` once nothing of it is left on the loop.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "services/snmp/ber.hpp"
#include "services/snmp/mib.hpp"

namespace outpost::snmp {

struct SubagentStats {
  std::uint64_t sessions = 0;       // sessions opened with a master
  std::uint64_t requests = 0;       // Get/GetNext/GetBulk answered
  std::uint64_t sets_refused = 0;   // TestSet answered notWritable
  std::uint64_t protocol_errors = 0;
  std::uint64_t connect_failures = 0;
  bool connected = false;           // a session is open and registered
};

class Subagent {
 public:
  // Asks for a snapshot; the callback gets null if none could be made (it timed out).
  using ViewFn = std::function<void(std::function<void(const MibView*)>)>;
  struct Options {
    std::string address;   // "/path" or "tcp:ADDR:PORT"
    double timeout = 5;    // seconds for the master's answers; sent in Open as the session's timeout
    double retry = 5;      // seconds between attempts
    std::vector<Oid> subtrees;
    std::string description = "Outpost";
  };

  Subagent(uv_loop_t* loop, Options options, ViewFn view);
  ~Subagent();
  Subagent(const Subagent&) = delete;
  Subagent& operator=(const Subagent&) = delete;

  void start();
  void close(std::function<void()> done);
  const SubagentStats& stats() const { return stats_; }

 private:
  struct Conn;
  void connect();
  void on_connected(int status);
  void on_read(const char* data, std::size_t n);
  void handle(const std::vector<std::uint8_t>& pdu);
  void send(std::vector<std::uint8_t> bytes);
  void drop(const std::string& why, bool error);  // closes the connection, schedules a retry
  void arm(double seconds, void (*cb)(uv_timer_t*));
  void maybe_done();

  uv_loop_t* loop_;
  Options opt_;
  ViewFn view_;
  uv_timer_t timer_;
  bool timer_open_ = true;
  Conn* conn_ = nullptr;
  int conns_open_ = 0;
  enum class State { kIdle, kConnecting, kOpening, kRegistering, kReady } state_ = State::kIdle;
  std::uint32_t session_ = 0;
  std::uint32_t next_packet_ = 1;
  std::uint32_t open_packet_ = 0;
  std::size_t registers_pending_ = 0;
  std::vector<std::uint8_t> in_;
  SubagentStats stats_;
  bool closing_ = false;
  bool failed_logged_ = false;  // a refused connect is logged once until a session opens
  std::function<void()> on_closed_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace outpost::snmp
