#include "resolver/dns_config.hpp"

#include "resolver/hints.hpp"

namespace outpost::dns {

std::shared_ptr<ResolverContext> make_resolver_context(const Config::Dns& cfg, std::string* error,
                                                       std::shared_ptr<cache::Store> store) {
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
  return ResolverContext::create(std::move(rc), limits, std::move(local), std::move(store), cfg.cache_entries);
}

DnsServerOptions make_server_options(const Config::Dns& cfg) {
  DnsServerOptions o;
  o.listen = cfg.listen;
  o.allow_recursion = cfg.allow_recursion;
  return o;
}

}  // namespace outpost::dns
