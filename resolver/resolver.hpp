// Outpost's DNS resolver, public API.
//
// One ResolverContext per process (configuration, shared cache, local zones), one Resolver per
// worker loop. A Resolver is used only from its own loop's thread; every callback runs on that
// loop, never inside the call that started it. Results honour TTLs (cached answers are reused
// until they expire, then resolved again; with serve-stale an expired answer may stand in
// when resolving fails or is slow, Resolution::stale, and with prefetch a hit near expiry is
// re-resolved in the background: ResolverConfig).
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/net_address.hpp"
#include "resolver/dns_cache.hpp"
#include "resolver/local_zones.hpp"
#include "resolver/resolution.hpp"
#include "resolver/resolver_config.hpp"
#include "resolver/resolver_metrics.hpp"

namespace outpost::cache {
class Store;
}

namespace outpost::dns {

class ResolverCore;

// Everything workers share. Build once at start-up (or reload) and hand to each Resolver.
struct ResolverContext {
  std::shared_ptr<const ResolverConfig> config;
  std::shared_ptr<DnsCache> cache;
  std::shared_ptr<const LocalZones> local_zones;  // may be null

  // A context whose cache lives in the shared store (namespace "dns"), or, without a store,
  // in a private in-memory cache of at most max_entries entries.
  static std::shared_ptr<ResolverContext> create(ResolverConfig config, CacheLimits limits = {},
                                                 std::shared_ptr<const LocalZones> local_zones = nullptr,
                                                 std::shared_ptr<cache::Store> store = nullptr,
                                                 std::size_t max_entries = 1 << 20);
};

enum class ResolveStatus {
  ok,        // at least one address
  nxdomain,  // the name does not exist
  nodata,    // the name exists but has no A/AAAA
  servfail,  // resolution failed (no reachable server, limits, loops, ...)
  bad_name,  // not a valid host name
};
const char* to_string(ResolveStatus s);

class Resolver {
 public:
  using Handle = std::uint64_t;
  // addresses: IPv4 first, then IPv6; ttl: seconds the answer may be reused (0 on failure).
  using AddressCallback = std::function<void(ResolveStatus, std::vector<IpAddress> addresses, std::uint32_t ttl)>;

  Resolver(uv_loop_t* loop, std::shared_ptr<ResolverContext> context);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Host name -> addresses (A and AAAA in parallel). An IP literal answers itself.
  // The callback runs exactly once unless cancel(handle) is called first.
  Handle resolve(std::string_view host, AddressCallback cb);
  // Any question; the callback gets the full resolution (rcode, records).
  // checking_disabled: the client's CD bit (RFC 4035 section 3.2.2): no DNSSEC validation,
  // so bogus data is answered too.
  Handle query(const Question& q, ResolutionCallback cb, TraceSink trace = {}, bool checking_disabled = false);
  // After cancel() the callback is never called. Unknown or finished handles are ignored.
  void cancel(Handle h);
  // Local zones and cache only; nullopt if the network would be needed.
  std::optional<Resolution> answer_locally(const Question& q, bool checking_disabled = false);
  // Ends all work (no more callbacks) and closes this resolver's handles on the loop.
  void shutdown();
  // A reload: the context's settings and local zones from now on (its cache stays: the
  // cache is shared, and its limits are set once for all workers, DnsCache::set_limits).
  void update(const ResolverContext& context);
  // Forgets what this worker derived from the shared cache (`outpost ctl dns flush`): the
  // validator's keys, its aggressive-NSEC records and wildcards, and its bogus verdicts.
  void flush_worker_caches();
  // RFC 5011: this worker probes the trust points (one worker per process; ResolverCore).
  void track_trust_anchors();

  ResolverCore& core() { return *core_; }
  // This worker's resolution figures; the DNS server records its clients' resolutions here.
  ResolverMetrics& metrics() { return metrics_; }

 private:
  struct Pending;
  static constexpr Handle kResolveHandleBit = Handle{1} << 63;
  std::unique_ptr<ResolverCore> core_;
  Handle next_ = 1;
  std::unordered_map<Handle, std::shared_ptr<Pending>> pending_;
  ResolverMetrics metrics_;
};

// Runs one resolution on a private loop and writes each step (root, TLD, leaf, ...) the way
// `dig +trace` does, then the final answer. For `outpost query NAME TYPE [--trace]`.
// Returns the final rcode.
std::uint16_t run_query(const ResolverContext& context, const Question& q, bool trace, std::ostream& out);

}  // namespace outpost::dns
