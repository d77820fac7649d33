// The [snmp] configuration section (core/config_section.hpp).
#pragma once

namespace outpost::snmp {

// Registers the [snmp] parser. Once, before parsing.
void register_config_section();

}  // namespace outpost::snmp
