#include "services/sntp/sntp_config.hpp"

#include "core/config_section.hpp"
#include "services/sntp/ntp_packet.hpp"

namespace outpost::sntp {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Sntp& c = config.sntp;
  c.enabled = s.boolean("enabled", false);
  c.listen = s.endpoints("listen", {"127.0.0.1:123"});
  c.stratum = static_cast<unsigned>(s.integer("stratum", 10, 1, 15));
  c.reference_id = s.string("reference_id", "LOCL");
  std::uint32_t id = 0;
  if (!parse_reference_id(c.reference_id, &id))
    s.fail("reference_id", "expected 1-4 printable ASCII characters (\"GPS\", \"LOCL\") or an IPv4 address");
  c.allow_clients = s.networks("allow_clients", {"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                                                 "192.168.0.0/16", "fc00::/7"});
  c.rate = s.number("rate", 8, 0.01, 1e6);
  c.burst = s.number("burst", 16, 1, 1e6);
  c.root_delay = s.number("root_delay", 0, 0, 60);
  c.root_dispersion = s.number("root_dispersion", 0.01, 0, 60);
  if (c.enabled && c.listen.empty()) s.fail("listen", "no address to answer on (enabled = false turns it off)");
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("sntp", &parse_section); }

}  // namespace outpost::sntp
