// The [dns] configuration section: its parser (registered with core's config, see
// core/config_section.hpp) and what is built from it, the resolver's shared context and
// the server options.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "resolver/dns_server.hpp"
#include "resolver/resolver.hpp"

namespace outpost::dns {

// Registers the [dns] parser (Config::parse then fills config.dns). Once, before parsing.
void register_config_section();

// What the [dns] section sets that can change at run time, with the files it names read
// (hints, local zones): blocking, so a reload builds it off the loop (core/blocking_work.hpp).
struct ResolverSettings {
  ResolverConfig config;
  std::shared_ptr<const LocalZones> local_zones;  // null without local zones
  CacheLimits limits;
};
// cache_dir: [cache] disk_dir, where the RFC 5011 state of the built-in anchors is kept.
std::optional<ResolverSettings> load_resolver_settings(const Config::Dns& cfg, std::string* error,
                                                       const std::string& cache_dir = "");

// The [dns] keys changed from `running` to `fresh` that only a restart applies ("dns.listen",
// "dns.cache_entries"); everything else is applied live by a reload.
std::vector<std::string> restart_needed(const Config::Dns& running, const Config::Dns& fresh);

// Loads the hints file and local zones, checks forward zones. The cache goes into `store`
// (namespace "dns") when given, else into a private memory cache of cfg.cache_entries.
// nullptr with *error (naming the file and line) when something cannot be used.
std::shared_ptr<ResolverContext> make_resolver_context(const Config::Dns& cfg, std::string* error,
                                                       std::shared_ptr<cache::Store> store = nullptr,
                                                       const std::string& cache_dir = "");
DnsServerOptions make_server_options(const Config::Dns& cfg);

}  // namespace outpost::dns
