#include "services/snmp/snmp_config.hpp"

#include "core/config_section.hpp"

namespace outpost::snmp {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Snmp& c = config.snmp;
  c.enabled = s.boolean("enabled", false);
  c.listen = s.endpoints("listen", {"127.0.0.1:3401"});
  c.community = s.string("community", "");
  for (char ch : c.community)
    if (ch < 0x21 || ch > 0x7e) s.fail("community", "expected printable ASCII without spaces");
  if (c.community.size() > 64) s.fail("community", "longer than 64 bytes");
  c.allow_clients = s.networks("allow_clients", {"127.0.0.0/8", "::1/128"});
  c.agentx = s.string("agentx", "");
  if (!c.agentx.empty() && c.agentx.front() != '/' && c.agentx.rfind("tcp:", 0) != 0)
    s.fail("agentx", "expected a Unix socket path (\"/var/agentx/master\") or \"tcp:ADDRESS:PORT\"");
  if (c.agentx.rfind("tcp:", 0) == 0 && !Endpoint::parse(c.agentx.substr(4)))
    s.fail("agentx", "expected \"tcp:ADDRESS:PORT\" with an IP literal, e.g. \"tcp:127.0.0.1:705\"");
  if (!c.agentx.empty() && c.agentx.front() == '/' && c.agentx.size() > 107) s.fail("agentx", "path longer than 107 bytes");
  c.agentx_timeout = s.number("agentx_timeout", 5, 0.1, 255);
  c.agentx_retry = s.number("agentx_retry", 5, 0.1, 3600);
  if (c.enabled && !c.listen.empty() && c.community.empty())
    s.fail("community", "required when the standalone agent listens (listen = [] for AgentX only)");
  if (c.enabled && c.listen.empty() && c.agentx.empty())
    s.fail("enabled", "nothing to serve: set listen (standalone SNMPv2c) or agentx (subagent of snmpd)");
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("snmp", &parse_section); }

}  // namespace outpost::snmp
