#include "resolver/server_selection.hpp"

#include <algorithm>
#include <cmath>

#include "resolver/secure_random.hpp"

namespace outpost::dns {

std::uint32_t ServerSelection::score(const IpAddress& a, std::uint64_t now_ms) const {
  auto it = stats_.find(a.bytes);
  if (it == stats_.end()) return kUnknownRttMs;
  const Stats& s = it->second;
  double v = s.srtt;
  if (s.backoff_until_ms > now_ms) v += 100000;
  if (s.lame_until_ms > now_ms) v += 200000;
  return static_cast<std::uint32_t>(std::min(v, 1e9));
}

std::optional<IpAddress> ServerSelection::pick(const std::vector<IpAddress>& candidates,
                                               const std::vector<IpAddress>& exclude, std::uint64_t now_ms) {
  std::optional<IpAddress> best;
  std::uint64_t best_score = UINT64_MAX;
  for (auto& c : candidates) {
    if (std::find(exclude.begin(), exclude.end(), c) != exclude.end() || dead(c, now_ms)) continue;
    // A little noise spreads load over servers of about the same speed and makes the order
    // of equally unknown servers random.
    std::uint64_t s = score(c, now_ms) * 16ull + random_u32() % 16 * std::max<std::uint32_t>(1, score(c, now_ms) / 8);
    if (s < best_score) {
      best_score = s;
      best = c;
    }
  }
  return best;
}

std::uint32_t ServerSelection::timeout_ms(const IpAddress& a) const {
  auto it = stats_.find(a.bytes);
  if (it == stats_.end()) return kUnknownRttMs;
  const Stats& s = it->second;
  const double base = s.measured ? s.srtt + 4 * s.rttvar : kUnknownRttMs;
  double rto = base * std::pow(2.0, std::min<std::uint32_t>(s.timeouts, 6));
  // A probe of a dead server waits no longer than its usual RTO or kProbeTimeoutMs: a client
  // whose question happens to probe should not wait out the full back-off for a server that
  // is most likely still gone.
  if (s.timeouts >= kDeadAfterTimeouts) rto = std::min(rto, std::max(base, double(kProbeTimeoutMs)));
  return static_cast<std::uint32_t>(std::clamp(rto, double(kMinTimeoutMs), double(kMaxTimeoutMs)));
}

void ServerSelection::report_rtt(const IpAddress& a, std::uint32_t rtt_ms, std::uint64_t now_ms) {
  Stats& s = stats_[a.bytes];
  if (!s.measured) {
    s.srtt = rtt_ms;
    s.rttvar = rtt_ms / 2.0;
    s.measured = true;
  } else {
    s.rttvar = 0.75 * s.rttvar + 0.25 * std::abs(s.srtt - rtt_ms);
    s.srtt = 0.875 * s.srtt + 0.125 * rtt_ms;
  }
  s.timeouts = 0;
  s.backoff_until_ms = 0;
  s.case_mismatches = 0;
  s.last_reply_ms = std::max(s.last_reply_ms, now_ms);
  s.replied = true;
}

bool ServerSelection::replied_since(const IpAddress& a, std::uint64_t sent_ms) const {
  auto it = stats_.find(a.bytes);
  return sent_ms && it != stats_.end() && it->second.replied && it->second.last_reply_ms >= sent_ms;
}

bool ServerSelection::report_timeout(const IpAddress& a, std::uint64_t now_ms, std::uint64_t sent_ms) {
  if (replied_since(a, sent_ms)) return false;  // alive: a lost datagram
  Stats& s = stats_[a.bytes];
  if (sent_ms && s.timeouts > 0 && sent_ms < s.last_timeout_ms) return false;  // the same silence
  ++s.timeouts;
  s.last_timeout_ms = now_ms;
  s.srtt = std::min(s.srtt * 2 + 100, double(kMaxTimeoutMs) * 4);
  // Back off for longer after each consecutive timeout (1 s, 2 s, 4 s, ... up to 2 min).
  s.backoff_until_ms = now_ms + (1000ull << std::min<std::uint32_t>(s.timeouts - 1, 7));
  return true;
}

bool ServerSelection::dead(const IpAddress& a, std::uint64_t now_ms) const {
  auto it = stats_.find(a.bytes);
  return it != stats_.end() && it->second.timeouts >= kDeadAfterTimeouts && it->second.backoff_until_ms > now_ms;
}

bool ServerSelection::use_0x20(const IpAddress& a, std::uint64_t now_ms) const {
  auto it = stats_.find(a.bytes);
  return it == stats_.end() || it->second.no_0x20_until_ms <= now_ms;
}

void ServerSelection::report_case_mismatch(const IpAddress& a, std::uint64_t now_ms) {
  Stats& s = stats_[a.bytes];
  if (++s.case_mismatches < kCaseFallbackAfter) return;
  s.case_mismatches = 0;
  s.no_0x20_until_ms = now_ms + kNo0x20Ms;
}

void ServerSelection::report_lame(const IpAddress& a, std::uint64_t now_ms) {
  stats_[a.bytes].lame_until_ms = now_ms + 60000;
}

}  // namespace outpost::dns
