// The [dns] section of the configuration (resolver/dns_config.cpp).
#include <gtest/gtest.h>

#include "core/config.hpp"
#include "resolver/dns_config.hpp"

using outpost::Config;
using outpost::ConfigError;

namespace {
// [dns] is parsed once its module registers it (core/config_section.hpp).
struct RegisterSections : ::testing::Environment {
  void SetUp() override { outpost::dns::register_config_section(); }
};
const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new RegisterSections);
}  // namespace

TEST(DnsConfig, DefaultIsSafe) {
  auto c = Config::load_default();
  EXPECT_TRUE(c.dns.listen.empty());  // no DNS listener unless configured
  EXPECT_TRUE(c.dns.allow_recursion.contains(*outpost::IpAddress::parse("127.0.0.1")));
  EXPECT_TRUE(c.dns.allow_recursion.contains(*outpost::IpAddress::parse("192.168.1.1")));
  EXPECT_FALSE(c.dns.allow_recursion.contains(*outpost::IpAddress::parse("8.8.8.8")));
  EXPECT_TRUE(c.dns.hints.empty());
  EXPECT_TRUE(c.dns.qname_minimisation);
  EXPECT_EQ(c.dns.min_ttl, 0u);
  EXPECT_EQ(c.dns.max_ttl, 86400u);
}

TEST(DnsConfig, StrictMinimisationReachesTheResolver) {
  auto c = Config::parse("[dns]\nqname_minimisation_strict = true\n", "t.toml");
  std::string err;
  auto settings = outpost::dns::load_resolver_settings(c.dns, &err);
  ASSERT_TRUE(settings) << err;
  EXPECT_TRUE(settings->config.qname_minimisation_strict);
  EXPECT_FALSE(outpost::dns::load_resolver_settings(Config::parse("", "t.toml").dns, &err)->config.qname_minimisation_strict);
}

TEST(DnsConfig, FullSection) {
  auto c = Config::parse(R"(
[dns]
listen = ["127.0.0.1:5353", "[::1]:5353"]
allow_recursion = ["10.0.0.0/8"]
hints = "/tmp/root.hints"
qname_minimisation = false
qname_minimisation_strict = true
min_ttl = 5
max_ttl = 600
local_zones = [{ name = "networkutopia.com", file = "/tmp/nu.zone" }]
forward_zones = [{ name = ".", servers = ["192.0.2.53:53"] }, { name = "corp.example", servers = ["10.1.1.1:53", "10.1.1.2:5353"] }]
)", "t.toml");
  EXPECT_EQ(c.dns.listen.size(), 2u);
  EXPECT_FALSE(c.dns.qname_minimisation);
  EXPECT_TRUE(c.dns.qname_minimisation_strict);
  EXPECT_EQ(c.dns.min_ttl, 5u);
  ASSERT_EQ(c.dns.local_zones.size(), 1u);
  EXPECT_EQ(c.dns.local_zones[0].file, "/tmp/nu.zone");
  ASSERT_EQ(c.dns.forward_zones.size(), 2u);
  EXPECT_EQ(c.dns.forward_zones[1].servers[1].port, 5353);
}

TEST(DnsConfig, StrictErrors) {
  auto fails = [](const char* text, const char* needle) {
    try {
      Config::parse(text, "t.toml");
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      return;
    }
    ADD_FAILURE() << "accepted: " << text;
  };
  fails("[dns]\nlisten = [\"nowhere\"]\n", "dns.listen");
  fails("[dns]\nbogus = 1\n", "dns.bogus: unknown key");
  fails("[dns]\nmin_ttl = 100\nmax_ttl = 10\n", "must not exceed max_ttl");
  fails("[dns]\nlocal_zones = [{ name = \"x\" }]\n", "dns.local_zones.file");
  fails("[dns]\nlocal_zones = [{ name = \"x\", file = \"f\", extra = 1 }]\n", "dns.local_zones.extra: unknown key");
  fails("[dns]\nforward_zones = [{ name = \"a..b\", servers = [\"1.2.3.4:53\"] }]\n", "dns.forward_zones.name");
  fails("[dns]\nforward_zones = [{ name = \".\", servers = [\"resolver.example:53\"] }]\n", "dns.forward_zones.servers");
  fails("[dns]\nallow_recursion = [\"300.0.0.0/8\"]\n", "dns.allow_recursion");
}

// Errors from the module's own parser carry the file, the line of the offending value (of the
// table when the key is absent) and section.key, like core's sections.
TEST(DnsConfig, ErrorsNameFileAndLine) {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      Config::parse(text, "dns.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_EQ(error_of("[server]\nworkers = 1\n[dns]\nqname_minimisation = true\n\nmax_ttl = 0\n"),
            "dns.toml:6: dns.max_ttl: must be between 1 and 604800");
  EXPECT_EQ(error_of("[dns]\nmin_ttl = 100\nmax_ttl = 10\n"), "dns.toml:2: dns.min_ttl: must not exceed max_ttl");
  EXPECT_EQ(error_of("[dns]\nlisten = [\"127.0.0.1:53\",\n  \"nowhere\"]\n"),
            "dns.toml:3: dns.listen: not an address:port: \"nowhere\"");
  EXPECT_EQ(error_of("[dns]\nforward_zones = [\n  { name = \".\", servers = [\"192.0.2.1:53\"] },\n"
                     "  { name = \"x\", servers = [] }]\n"),
            "dns.toml:4: dns.forward_zones.servers: expected at least one address:port");
  EXPECT_EQ(error_of("[dns]\nlocal_zones = [{ file = \"z\" }]\n"), "dns.toml:2: dns.local_zones.name: expected a zone name");
  EXPECT_EQ(error_of("[dns]\nlocal_zones = 3\n"), "dns.toml:2: dns.local_zones: expected an array of tables");
  EXPECT_EQ(error_of("\n[dns]\n\nstray = true\n"), "dns.toml:4: dns.stray: unknown key");
  EXPECT_EQ(error_of("dns = 1\n"), "dns.toml:1: dns: expected a table");
}
