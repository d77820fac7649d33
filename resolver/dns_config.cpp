#include "resolver/dns_config.hpp"

#include "resolver/hints.hpp"
#include "resolver/memory_dns_cache.hpp"

namespace outpost::dns {

std::shared_ptr<ResolverContext> make_resolver_context(const Config::Dns& cfg, std::string* error) {
  ResolverConfig rc;
  if (cfg.hints.empty()) {
    rc.root_hints = builtin_root_hints();
  } else {
    auto h = load_root_hints_file(cfg.hints, error);
    if (!h) return nullptr;
    rc.root_hints = *h;
  }
  rc.qname_minimisation = cfg.qname_minimisation;
  for (auto& f : cfg.forward_zones) {
    ForwardZone fz;
    auto zone = Name::from_text(f.name);
    if (!zone) {
      *error = "dns.forward_zones: bad zone name " + f.name;
      return nullptr;
    }
    fz.zone = *zone;
    for (auto& ep : f.servers) {
      auto ip = IpAddress::parse(ep.host);
      if (!ip) {
        *error = "dns.forward_zones: not an IP address: " + ep.host;
        return nullptr;
      }
      // One port per forward zone: the first server's (they normally share 53).
      if (fz.servers.empty()) fz.port = ep.port;
      fz.servers.push_back(*ip);
    }
    rc.forward_zones.push_back(std::move(fz));
  }
  std::shared_ptr<LocalZones> local;
  if (!cfg.local_zones.empty()) {
    local = std::make_shared<LocalZones>();
    for (auto& z : cfg.local_zones) {
      auto apex = Name::from_text(z.name);
      if (!apex) {
        *error = "dns.local_zones: bad zone name " + z.name;
        return nullptr;
      }
      if (!local->load_file(z.file, *apex, error)) return nullptr;
    }
  }
  CacheLimits limits{cfg.min_ttl, cfg.max_ttl, cfg.servfail_ttl, cfg.negative_max_ttl};
  auto ctx = std::make_shared<ResolverContext>();
  ctx->config = std::make_shared<const ResolverConfig>(std::move(rc));
  ctx->cache = std::make_shared<MemoryDnsCache>(limits, cfg.cache_entries);
  ctx->local_zones = std::move(local);
  return ctx;
}

DnsServerOptions make_server_options(const Config::Dns& cfg) {
  DnsServerOptions o;
  o.listen = cfg.listen;
  o.allow_recursion = cfg.allow_recursion;
  return o;
}

}  // namespace outpost::dns
