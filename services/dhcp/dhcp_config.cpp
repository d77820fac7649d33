#include "services/dhcp/dhcp_config.hpp"

#include <net/if.h>

#include "core/config_section.hpp"
#include "services/dhcp/dhcp_packet.hpp"
#include "services/dhcp/dhcp_server.hpp"

namespace outpost::dhcp {

namespace {

std::string address(ConfigTable& t, const std::string& key, bool required) {
  std::string v = t.string(key, "");
  if (v.empty() && required) t.fail(key, "expected an IPv4 address");
  if (!v.empty() && !parse_ipv4(v)) t.fail(key, "expected an IPv4 address such as \"192.168.1.10\"");
  return v;
}

std::vector<std::string> addresses(ConfigTable& t, const std::string& key) {
  auto v = t.strings(key, {});
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!parse_ipv4(v[i])) t.fail(key, i, "expected an IPv4 address");
  return v;
}

void parse_section(ConfigTable& s, Config& config) {
  Config::Dhcp& d = config.dhcp;
  d = Config::Dhcp{};
  d.enabled = s.boolean("enabled", false);
  d.interface = s.string("interface", "");
  if (d.interface.size() >= IFNAMSIZ || d.interface.find_first_of("/ \t") != std::string::npos)
    s.fail("interface", "expected a network interface name such as \"eth1\"");
  if (d.enabled && d.interface.empty()) s.fail("interface", "the DHCP server needs the interface it serves");
  d.server_address = address(s, "server_address", false);
  d.port = static_cast<std::uint16_t>(s.integer("port", 67, 1, 65535));
  d.lease_file = s.string("lease_file", "/var/lib/outpost/dhcp.leases");
  if (d.lease_file.empty() || d.lease_file.front() != '/') s.fail("lease_file", "expected an absolute path");
  d.lease_time = s.number("lease_time", 3600, 5, 365 * 86400.0);
  d.offer_time = s.number("offer_time", 60, 1, 3600);
  d.decline_time = s.number("decline_time", 600, 1, 86400);
  d.dns_servers = addresses(s, "dns_servers");
  d.domain_name = s.string("domain_name", "");
  if (d.domain_name.size() > 255) s.fail("domain_name", "longer than 255 bytes");
  d.wpad_url = s.string("wpad_url", "");
  if (d.wpad_url.size() > 255) s.fail("wpad_url", "longer than 255 bytes");
  if (!d.wpad_url.empty() && d.wpad_url != "none" && d.wpad_url.rfind("http://", 0) != 0 &&
      d.wpad_url.rfind("https://", 0) != 0)
    s.fail("wpad_url", "expected an http:// URL, or \"none\" to send no option 252");
  for (auto& t : s.tables("pools", "expected an array of tables such as { subnet = \"10.0.0.0/24\", first = "
                                   "\"10.0.0.100\", last = \"10.0.0.199\" }")) {
    Config::Dhcp::Pool p;
    p.subnet = t.string("subnet", "");
    auto slash = p.subnet.find('/');
    if (slash == std::string::npos || !parse_ipv4(p.subnet.substr(0, slash)))
      t.fail("subnet", "expected an IPv4 network such as \"10.0.0.0/24\"");
    p.first = address(t, "first", true);
    p.last = address(t, "last", true);
    p.routers = addresses(t, "routers");
    p.dns_servers = addresses(t, "dns_servers");
    p.domain_name = t.string("domain_name", "");
    p.lease_time = t.number("lease_time", 0, 0, 365 * 86400.0);
    if (p.lease_time > 0 && p.lease_time < 5) t.fail("lease_time", "expected 0 (the section's) or at least 5");
    t.check_unknown();
    d.pools.push_back(std::move(p));
  }
  for (auto& t : s.tables("reservations", "expected an array of tables such as { mac = \"02:00:00:00:00:01\", "
                                          "address = \"10.0.0.10\" }")) {
    Config::Dhcp::Reservation r;
    r.mac = t.string("mac", "");
    r.client_id = t.string("client_id", "");
    if (!r.mac.empty() && !parse_hex_colon(r.mac)) t.fail("mac", "expected hex bytes such as \"02:00:00:00:00:01\"");
    if (!r.client_id.empty() && !parse_hex_colon(r.client_id))
      t.fail("client_id", "expected hex bytes such as \"01:02:00:00:00:00:01\"");
    if (r.mac.empty() == r.client_id.empty()) t.fail("mac", "a reservation names a mac or a client_id (one of them)");
    r.address = address(t, "address", true);
    t.check_unknown();
    d.reservations.push_back(std::move(r));
  }
  if (d.enabled && d.pools.empty()) s.fail("pools", "the DHCP server needs at least one pool");
  // Pools and reservations fitting together (overlaps, ranges inside subnets).
  Settings check;
  std::string error;
  if (!make_settings(d, 0, {}, "", &check, &error)) s.fail("pools", error);
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("dhcp", &parse_section); }

}  // namespace outpost::dhcp
