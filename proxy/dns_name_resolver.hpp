// The proxy's origin-name lookups through Outpost's own recursive resolver (in-process,
// no socket round trip, answers cached with their TTLs in the shared store).
#pragma once
#include "proxy/name_resolver.hpp"
#include "resolver/resolver.hpp"

namespace outpost {

class DnsNameResolver : public NameResolver {
 public:
  explicit DnsNameResolver(dns::Resolver& resolver) : resolver_(resolver) {}
  // "localhost" and "*.localhost" are answered with loopback without any query (RFC 6761
  // §6.3), as Unbound and systemd-resolved do.
  std::unique_ptr<ResolveRequest> resolve(uv_loop_t* loop, const std::string& host, ResolveCallback cb) override;

 private:
  dns::Resolver& resolver_;
};

}  // namespace outpost
