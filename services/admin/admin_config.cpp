#include "services/admin/admin_config.hpp"

#include "core/config_section.hpp"

namespace outpost::admin {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Admin& a = config.admin;
  a.enabled = s.boolean("enabled", false);
  a.listen = s.endpoints("listen", {"127.0.0.1:9145"});
  if (a.enabled && a.listen.empty()) s.fail("listen", "expected at least one address:port");
  a.allow_clients = s.networks("allow_clients", {"127.0.0.0/8", "::1/128"});
  a.timeout = s.number("timeout", 10, 0.01, 3600);
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("admin", &parse_section); }

}  // namespace outpost::admin
