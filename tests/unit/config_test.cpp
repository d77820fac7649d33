#include "core/config.hpp"

#include "core/config_section.hpp"

#include <gtest/gtest.h>

using namespace outpost;

TEST(Config, EmbeddedDefaultParsesAndIsSafe) {
  Config c = Config::load_default();
  ASSERT_EQ(c.proxy.listen.size(), 1u);
  EXPECT_EQ(c.proxy.listen[0].host, "127.0.0.1");
  EXPECT_EQ(c.proxy.listen[0].port, 3128);
  EXPECT_EQ(c.acl.connect_ports, std::vector<std::uint16_t>{443});
  EXPECT_TRUE(c.acl.allow_clients.contains(*IpAddress::parse("192.168.1.1")));
  EXPECT_FALSE(c.acl.allow_clients.contains(*IpAddress::parse("8.8.8.8")));
  EXPECT_EQ(c.proxy.max_header_size, 65536u);
}

TEST(Config, EmptyFileGivesDefaults) {
  Config c = Config::parse("", "empty.toml");
  EXPECT_EQ(c.server.name, "outpost");
  EXPECT_EQ(c.proxy.listen.at(0).port, 3128);
}

static ConfigError expect_error(const std::string& text) {
  try {
    Config::parse(text, "t.toml");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << text;
  return ConfigError("", 0, "");
}

TEST(Config, UnknownKeyNamesFileAndLine) {
  auto e = expect_error("[proxy]\nvia = true\n\nlisten_port = 3\n");
  EXPECT_EQ(e.file, "t.toml");
  EXPECT_EQ(e.line, 4u);
  EXPECT_NE(e.reason.find("proxy.listen_port"), std::string::npos);
  EXPECT_NE(e.reason.find("unknown"), std::string::npos);
}

TEST(Config, UnknownSection) {
  auto e = expect_error("x = 1\n[nosuch]\na=1\n");
  EXPECT_EQ(e.line, 1u);
}

TEST(Config, BadValues) {
  auto e = expect_error("[acl]\nallow_clients = [\"10.0.0.0/8\",\n  \"10.0.0.0/99\"]\n");
  EXPECT_EQ(e.line, 3u);
  EXPECT_NE(e.reason.find("10.0.0.0/99"), std::string::npos);
  EXPECT_EQ(expect_error("[server]\nworkers = -1\n").line, 2u);
  EXPECT_EQ(expect_error("[server]\nworkers = \"two\"\n").line, 2u);
  EXPECT_EQ(expect_error("[log]\nlevel = \"loud\"\n").line, 2u);
  EXPECT_EQ(expect_error("[acl]\nconnect_ports = [443, 0]\n").line, 2u);
  EXPECT_EQ(expect_error("[proxy]\nlisten = [\"localhost:3128\"]\n").line, 2u);
  EXPECT_EQ(expect_error("[acl]\ndeny_hosts = [\"a*b.com\"]\n").line, 2u);
}

TEST(Config, MaxConnectionsPerWorkerZeroMeansDerived) {
  // 0 = derived from the file descriptor limit at start-up (app/main.cpp).
  EXPECT_EQ(Config::load_default().proxy.max_connections_per_worker, 0u);
  EXPECT_EQ(Config::parse("[proxy]\nmax_connections_per_worker = 100\n", "t.toml").proxy.max_connections_per_worker,
            100u);
  EXPECT_EQ(expect_error("[proxy]\nmax_connections_per_worker = -1\n").line, 2u);
}

TEST(Config, SyntaxError) {
  auto e = expect_error("[proxy]\nvia = \n");
  EXPECT_EQ(e.line, 2u);
}

TEST(Config, Values) {
  Config c = Config::parse(
      "[proxy]\nlisten=[\"127.0.0.1:8080\",\"[::1]:8080\"]\nheader_timeout=0.5\n"
      "[acl]\nconnect_ports=[443,8443]\nallow_hosts=[\"*.test\",\"localhost\"]\n",
      "v.toml");
  EXPECT_EQ(c.proxy.listen.size(), 2u);
  EXPECT_DOUBLE_EQ(c.proxy.header_timeout, 0.5);
  EXPECT_EQ(c.acl.connect_ports.size(), 2u);
  EXPECT_EQ(c.acl.allow_hosts.size(), 2u);
}

TEST(Config, DestinationProtectionsOnByDefaultAndSwitchable) {
  for (const Config& c : {Config::load_default(), Config::parse("", "empty.toml")}) {
    EXPECT_TRUE(c.acl.deny_link_local);
    EXPECT_TRUE(c.acl.protect_local_services);
  }
  Config off = Config::parse("[acl]\ndeny_link_local = false\nprotect_local_services = false\n", "off.toml");
  EXPECT_FALSE(off.acl.deny_link_local);
  EXPECT_FALSE(off.acl.protect_local_services);
  auto e = expect_error("[acl]\ndeny_link_local = \"no\"\n");
  EXPECT_EQ(e.line, 2u);
  EXPECT_NE(e.reason.find("deny_link_local"), std::string::npos) << e.reason;
  EXPECT_EQ(expect_error("[acl]\n\nprotect_local_services = 1\n").line, 3u);
}

// A module's section: parsed by the function it registers, with the same strict reader.
TEST(ConfigSections, RegisteredSectionParsedWithFileLineErrors) {
  EXPECT_EQ(expect_error("[example]\nlabel = \"x\"\n").reason, "unknown section or key: example");
  register_config_section("example", [](ConfigTable& t, Config& c) {
    c.server.name = t.string("label", c.server.name);
    if (c.server.name == "bad") t.fail("label", "must not be bad");
    for (auto& item : t.tables("items")) {
      item.integer("n", 0, 0, 9);
      item.check_unknown();
    }
    t.check_unknown();
  });
  EXPECT_EQ(Config::parse("[example]\nlabel = \"from-module\"\n", "t.toml").server.name, "from-module");
  EXPECT_EQ(Config::parse("", "t.toml").server.name, "outpost");  // absent: the parser keeps defaults
  auto e = expect_error("[example]\n\nlabel = \"bad\"\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:3: example.label: must not be bad");
  e = expect_error("[example]\nitems = [\n  { n = 1 },\n  { n = 10 }]\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:4: example.items.n: must be between 0 and 9");
  e = expect_error("[example]\nitems = [{ n = 1, m = 2 }]\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:2: example.items.m: unknown key");
  e = expect_error("[example]\nlabel = \"x\"\nother = 1\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:3: example.other: unknown key");
  EXPECT_EQ(expect_error("example = 3\n").reason, "example: expected a table");
}

// [dns] and [admin] belong to modules this test does not link: their sections are accepted
// and keep Config's defaults (the embedded default has both), anything else is unknown.
TEST(ConfigSections, SectionsOfModulesNotLinkedKeepDefaults) {
  Config c = Config::parse("[dns]\nlisten = [\"127.0.0.1:53\"]\n[admin]\nenabled = true\n", "t.toml");
  EXPECT_TRUE(c.dns.listen.empty());
  EXPECT_FALSE(c.admin.enabled);
  EXPECT_EQ(expect_error("[dns]\n[dnss]\n").line, 2u);
}
