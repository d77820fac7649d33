// The [cache] configuration section (core/config_section.hpp): Config::parse fills
// config.cache once this is registered.
#pragma once

namespace outpost::cache {

// Registers the [cache] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::cache
