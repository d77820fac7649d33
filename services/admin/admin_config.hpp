// The [admin] configuration section (core/config_section.hpp): Config::parse fills
// config.admin once this is registered.
#pragma once

namespace outpost::admin {

// Registers the [admin] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::admin
