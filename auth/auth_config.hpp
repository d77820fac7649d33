// The [auth] configuration section (core/config_section.hpp): Config::parse fills
// config.auth once this is registered.
#pragma once

namespace outpost::auth {

// Registers the [auth] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::auth
