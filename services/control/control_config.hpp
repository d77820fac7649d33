// The [control] configuration section (core/config_section.hpp): Config::parse fills
// config.control once this is registered.
#pragma once

namespace outpost::control {

// Registers the [control] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::control
