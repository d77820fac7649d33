// Choice of the upstream address to ask (Unbound's infra cache + server selection): smoothed
// RTT per address (RFC 6298 style), exponential back-off after timeouts, lame marking, dead
// servers left out until their back-off ends (then one query probes them).
// One per worker loop; not thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "core/net_address.hpp"

namespace outpost::dns {

class ServerSelection {
 public:
  static constexpr std::uint32_t kUnknownRttMs = 376;  // as Unbound: a guess for new servers
  static constexpr std::uint32_t kMinTimeoutMs = 50;
  static constexpr std::uint32_t kMaxTimeoutMs = 3000;
  // Consecutive timeouts after which a server is dead until its back-off ends (2 s, then 4 s,
  // 8 s, ... up to 2 min while it stays silent).
  static constexpr std::uint32_t kDeadAfterTimeouts = 2;
  static constexpr std::uint32_t kProbeTimeoutMs = 1000;  // see timeout_ms()
  // 0x20: a server whose replies came back in the wrong case this many times in a row is
  // asked without 0x20 for kNo0x20Ms (it does not keep the case; Unbound's fallback).
  static constexpr std::uint32_t kCaseFallbackAfter = 2;
  static constexpr std::uint64_t kNo0x20Ms = 15 * 60 * 1000;

  // The best address among `candidates` not in `exclude` and not dead: lowest expected RTT,
  // backed-off and lame servers last, random tie-break. nullopt if none is left, so a zone
  // whose servers are all dead fails at once instead of timing out again for every name.
  std::optional<IpAddress> pick(const std::vector<IpAddress>& candidates, const std::vector<IpAddress>& exclude,
                                std::uint64_t now_ms);
  std::uint32_t timeout_ms(const IpAddress& a) const;
  void report_rtt(const IpAddress& a, std::uint32_t rtt_ms, std::uint64_t now_ms = 0);
  // sent_ms: when the query that timed out went out. A server that has answered another query
  // since then is alive — the datagram was lost (a busy server's full socket buffer, a busy
  // path): the timeout counts toward neither its back-off nor its death (as a timeout among
  // replies does not make Unbound give up on a server). Nor does a query sent before the last
  // timeout that counted: queries in flight together through one silence (a server or host
  // stalled for longer than the RTO) time out together, and count once, as Unbound doubles a
  // server's RTO once for the queries sent at the RTO that failed. True if it counted.
  bool report_timeout(const IpAddress& a, std::uint64_t now_ms, std::uint64_t sent_ms = 0);
  // Whether `a` has answered a query since sent_ms (then a timeout is a lost datagram).
  bool replied_since(const IpAddress& a, std::uint64_t sent_ms) const;
  void report_lame(const IpAddress& a, std::uint64_t now_ms);
  bool dead(const IpAddress& a, std::uint64_t now_ms) const;
  // 0x20 (ResolverConfig::use_0x20): whether to randomise the case of queries to `a`.
  bool use_0x20(const IpAddress& a, std::uint64_t now_ms) const;
  void report_case_mismatch(const IpAddress& a, std::uint64_t now_ms);
  // Expected RTT used for ranking (for tests and traces).
  std::uint32_t score(const IpAddress& a, std::uint64_t now_ms) const;

 private:
  struct Stats {
    double srtt = kUnknownRttMs;
    double rttvar = kUnknownRttMs / 2.0;
    bool measured = false;
    std::uint32_t timeouts = 0;          // consecutive
    std::uint64_t last_timeout_ms = 0;   // when the last one that counted came
    std::uint64_t last_reply_ms = 0;     // when the last reply came (report_rtt's now_ms)
    bool replied = false;
    std::uint64_t backoff_until_ms = 0;  // skip unless nothing else is left
    std::uint64_t lame_until_ms = 0;
    std::uint32_t case_mismatches = 0;  // consecutive (a good reply resets them)
    std::uint64_t no_0x20_until_ms = 0;
  };
  std::map<std::array<std::uint8_t, 16>, Stats> stats_;
};

}  // namespace outpost::dns
