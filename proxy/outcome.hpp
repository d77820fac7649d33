// How an exchange ended, as one small enum: counting an outcome is an array increment, and the
// Squid names (TCP_HIT, TCP_MISS, ...) appear only where a line is logged or a metric labelled.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace outpost {

enum class Outcome : std::uint8_t {
  kHit,               // TCP_HIT: from the disk tier
  kMemHit,            // TCP_MEM_HIT
  kImsHit,            // TCP_IMS_HIT: a client conditional answered 304 from the cache
  kStaleHit,          // TCP_STALE_HIT: served stale with permission
  kCollapsedHit,      // TCP_CF_HIT: followed another request's fetch
  kCollapsedAborted,  // TCP_CF_HIT_ABORTED
  kMiss,              // TCP_MISS
  kMissAborted,       // TCP_MISS_ABORTED
  kSwapFailMiss,      // TCP_SWAPFAIL_MISS: the stored copy failed its check
  kRefreshModified,   // TCP_REFRESH_MODIFIED
  kRefreshUnmodified, // TCP_REFRESH_UNMODIFIED
  kRefreshFailOld,    // TCP_REFRESH_FAIL_OLD: stale-if-error
  kRefreshFailErr,    // TCP_REFRESH_FAIL_ERR
  kTunnel,            // TCP_TUNNEL
  kDenied,            // TCP_DENIED
  kNone,              // NONE_NONE: answered by the proxy itself (errors, local pages)
};
inline constexpr std::size_t kOutcomeCount = static_cast<std::size_t>(Outcome::kNone) + 1;

// The Squid access-log name.
constexpr std::string_view outcome_name(Outcome o) {
  constexpr std::string_view names[kOutcomeCount] = {
      "TCP_HIT",  "TCP_MEM_HIT",          "TCP_IMS_HIT",           "TCP_STALE_HIT",          "TCP_CF_HIT",
      "TCP_CF_HIT_ABORTED", "TCP_MISS",   "TCP_MISS_ABORTED",      "TCP_SWAPFAIL_MISS",      "TCP_REFRESH_MODIFIED",
      "TCP_REFRESH_UNMODIFIED", "TCP_REFRESH_FAIL_OLD", "TCP_REFRESH_FAIL_ERR", "TCP_TUNNEL", "TCP_DENIED",
      "NONE_NONE"};
  return names[static_cast<std::size_t>(o)];
}

}  // namespace outpost
