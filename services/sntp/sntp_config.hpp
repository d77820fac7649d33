// The [sntp] configuration section (core/config_section.hpp).
#pragma once

namespace outpost::sntp {

// Registers the [sntp] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::sntp
