// The proxy's configuration sections, [proxy], [origin], [acl] and [http_cache]
// (core/config_section.hpp): Config::parse fills config.proxy, config.origin, config.acl and
// config.http_cache once these are registered.
#pragma once

namespace outpost::proxy {

// Registers the parsers of the proxy's sections. Once, before parsing.
void register_config_sections();

}  // namespace outpost::proxy
