// The [dhcp] configuration section (core/config_section.hpp): Config::parse fills
// config.dhcp once this is registered.
#pragma once

namespace outpost::dhcp {

// Registers the [dhcp] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::dhcp
