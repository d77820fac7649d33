// The [dns] section of the configuration (resolver/dns_config.cpp).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "core/config.hpp"
#include "resolver/dns_config.hpp"
#include "resolver/dnssec_records.hpp"

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
  // A DNS listener on loopback only: nothing outside this host reaches it.
  ASSERT_EQ(c.dns.listen.size(), 1u);
  EXPECT_EQ(c.dns.listen[0].to_string(), "127.0.0.1:53");
  // The same without the embedded default: a file without [dns], or without the key.
  for (auto* text : {"", "[dns]\nhints = \"\"\n"}) {
    auto f = Config::parse(text, "t.toml");
    ASSERT_EQ(f.dns.listen.size(), 1u) << text;
    EXPECT_EQ(f.dns.listen[0].to_string(), "127.0.0.1:53") << text;
  }
  EXPECT_TRUE(Config::parse("[dns]\nlisten = []\n", "t.toml").dns.listen.empty());
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
  // Serve-stale, prefetch and 0x20.
  EXPECT_EQ(error_of("[dns]\nserve_stale = \"yes\"\n"), "dns.toml:2: dns.serve_stale: expected true or false");
  EXPECT_EQ(error_of("[dns]\n\nstale_answer_ttl = 0\n"), "dns.toml:3: dns.stale_answer_ttl: must be between 1 and 3600");
  EXPECT_EQ(error_of("[dns]\nstale_max_age = 0\n"), "dns.toml:2: dns.stale_max_age: must be between 1 and 604800");
  EXPECT_EQ(error_of("[dns]\nstale_client_timeout = 60000\n"),
            "dns.toml:2: dns.stale_client_timeout: must be between 0 and 10000");
  EXPECT_EQ(error_of("[dns]\nprefetch = 1\n"), "dns.toml:2: dns.prefetch: expected true or false");
  EXPECT_EQ(error_of("[dns]\nuse_0x20 = []\n"), "dns.toml:2: dns.use_0x20: expected true or false");
}

// Serve-stale, prefetch and 0x20: off by default (as Unbound), the RFC 8767 values when on,
// reaching the resolver's settings and the cache's limits.
TEST(DnsConfig, ServeStalePrefetchAnd0x20) {
  std::string err;
  auto d = Config::load_default().dns;
  EXPECT_FALSE(d.serve_stale);
  EXPECT_FALSE(d.prefetch);
  EXPECT_FALSE(d.use_0x20);
  EXPECT_EQ(d.stale_answer_ttl, 30u);
  EXPECT_EQ(d.stale_max_age, 86400u);
  EXPECT_EQ(d.stale_client_timeout, 1800u);
  auto off = outpost::dns::load_resolver_settings(d, &err);
  ASSERT_TRUE(off) << err;
  EXPECT_FALSE(off->config.serve_stale);
  EXPECT_EQ(off->limits.stale_max_age, 0u);  // nothing kept past its expiry unless serving stale

  auto c = Config::parse("[dns]\nserve_stale = true\nstale_answer_ttl = 10\nstale_max_age = 3600\n"
                         "stale_client_timeout = 0\nprefetch = true\nuse_0x20 = true\n",
                         "t.toml");
  auto on = outpost::dns::load_resolver_settings(c.dns, &err);
  ASSERT_TRUE(on) << err;
  EXPECT_TRUE(on->config.serve_stale);
  EXPECT_EQ(on->config.stale_answer_ttl, 10u);
  EXPECT_EQ(on->config.stale_client_timeout_ms, 0u);
  EXPECT_EQ(on->limits.stale_max_age, 3600u);
  EXPECT_TRUE(on->config.prefetch);
  EXPECT_TRUE(on->config.use_0x20);
}

TEST(DnsConfig, DnssecValidationOnByDefaultWithTheRootAnchorBuiltIn) {
  auto c = Config::load_default();
  EXPECT_TRUE(c.dns.dnssec_validation);
  EXPECT_TRUE(c.dns.trust_anchor_file.empty());
  // The same in a file that does not say (as Debian's Unbound), and off when it says so.
  for (auto* text : {"", "[dns]\nhints = \"\"\n"}) EXPECT_TRUE(Config::parse(text, "t.toml").dns.dnssec_validation) << text;
  EXPECT_FALSE(Config::parse("[dns]\ndnssec_validation = false\n", "t.toml").dns.dnssec_validation);
  std::string error;
  auto s = outpost::dns::load_resolver_settings(c.dns, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_TRUE(s->config.dnssec_validation);
  EXPECT_TRUE(s->config.anchor_tracker);  // the built-in anchors follow the root's rollovers (RFC 5011)
  // The root's KSK-2017 and KSK-2024 as DS records (KSK-2024 signs the root's keys since the
  // rollover of 2026-10-11).
  ASSERT_EQ(s->config.trust_anchors.size(), 2u);
  std::vector<std::uint16_t> tags;
  for (auto& rr : s->config.trust_anchors) {
    EXPECT_TRUE(rr.name.is_root());
    ASSERT_EQ(rr.type, outpost::dns::type::DS);
    auto ds = outpost::dns::parse_ds(rr.rdata);
    ASSERT_TRUE(ds);
    EXPECT_EQ(ds->algorithm, 8);
    EXPECT_EQ(ds->digest_type, 2);
    tags.push_back(ds->key_tag);
  }
  EXPECT_EQ(tags, (std::vector<std::uint16_t>{20326, 38696}));
}

TEST(DnsConfig, TrustAnchorFile) {
  char path[] = "/tmp/outpost-anchor-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "test. 3600 IN DS 12345 13 2 "
                     "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
                     "test. 3600 IN A 192.0.2.1\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto c = Config::parse(std::string("[dns]\ndnssec_validation = true\ntrust_anchor_file = \"") + path + "\"\n", "t.toml");
  EXPECT_TRUE(c.dns.dnssec_validation);
  std::string error;
  auto s = outpost::dns::load_resolver_settings(c.dns, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_TRUE(s->config.dnssec_validation);
  ASSERT_EQ(s->config.trust_anchors.size(), 1u);  // the A record is not an anchor
  EXPECT_EQ(s->config.trust_anchors[0].name.to_text(), "test.");
  // A file without anchors, or a bad one, stops the start with the file's name.
  std::ofstream(path) << "test. 3600 IN DS 1 2 3\n";
  EXPECT_FALSE(outpost::dns::load_resolver_settings(c.dns, &error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  std::ofstream(path) << "test. 3600 IN A 192.0.2.1\n";
  EXPECT_FALSE(outpost::dns::load_resolver_settings(c.dns, &error));
  EXPECT_NE(error.find("no DS or DNSKEY"), std::string::npos) << error;
  unlink(path);
}
