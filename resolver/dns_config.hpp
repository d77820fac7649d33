// The [dns] configuration section: its parser (registered with core's config, see
// core/config_section.hpp) and what is built from it, the resolver's shared context and
// the server options.
#pragma once
#include <memory>
#include <string>

#include "core/config.hpp"
#include "resolver/dns_server.hpp"
#include "resolver/resolver.hpp"

namespace outpost::dns {

// Registers the [dns] parser (Config::parse then fills config.dns). Once, before parsing.
void register_config_section();

// Loads the hints file and local zones, checks forward zones. The cache goes into `store`
// (namespace "dns") when given, else into a private memory cache of cfg.cache_entries.
// nullptr with *error (naming the file and line) when something cannot be used.
std::shared_ptr<ResolverContext> make_resolver_context(const Config::Dns& cfg, std::string* error,
                                                       std::shared_ptr<cache::Store> store = nullptr);
DnsServerOptions make_server_options(const Config::Dns& cfg);

}  // namespace outpost::dns
