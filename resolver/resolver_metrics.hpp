// The resolver's figures for /metrics, kept per worker and exported by the resolver module
// itself (core/metrics.hpp: written and read only on the worker's loop thread, no locks).
//
// A resolution is one question asked of the resolver, from its arrival to its answer:
//   source "client": a DNS server query past its checks (ACL, class, type), answered from
//                    local zones, the cache or by iterating;
//   source "proxy":  an origin host lookup (A and AAAA together, as the proxy waits for both).
// It is a cache hit when it needed no upstream query (cache or local zone), else a miss.
#pragma once
#include <cstdint>

#include "core/metrics.hpp"

namespace outpost::dns {

class Resolver;
class DnsServer;

// Resolution time buckets (seconds): cache hits take microseconds, iterations milliseconds to
// the resolver's 10 s limit.
inline constexpr double kResolutionBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};

struct alignas(64) ResolverMetrics {
  enum Source { kClient, kProxy, kSourceCount };

  void record(Source s, bool cache_hit, bool servfail, double seconds) {
    ++resolutions[s];
    if (cache_hit) ++cache_hits[s];
    if (servfail) ++servfails[s];
    duration[s].observe(seconds);
  }

  std::uint64_t resolutions[kSourceCount] = {};
  std::uint64_t cache_hits[kSourceCount] = {};
  std::uint64_t servfails[kSourceCount] = {};
  Histogram duration[kSourceCount] = {Histogram{kResolutionBuckets}, Histogram{kResolutionBuckets}};
};

// Serve-stale and prefetch, counted by the worker's ResolverCore.
// DNSSEC validation (one worker's validator): verdicts on responses, and denials synthesized
// from cached NSEC/NSEC3 records (RFC 8198).
struct ValidationStats {
  std::uint64_t secure = 0, insecure = 0, bogus = 0;
  std::uint64_t synthesized = 0;
};

struct RefreshStats {
  std::uint64_t stale_answers = 0;  // answers given from expired records (RFC 8767)
  std::uint64_t prefetches = 0;     // background re-resolutions started by cache hits near expiry
};

// One worker's DNS figures: its resolver (resolutions, cache, upstream queries) and its DNS
// server if it has one. On that worker's loop thread.
void collect_metrics(Resolver& resolver, const DnsServer* server, MetricsVisitor& out);

}  // namespace outpost::dns
