// The proxy's configuration sections, [proxy], [origin], [acl] and [http_cache]
// (proxy/proxy_config.cpp), read once registered, with core's strict file:line errors.
#include "proxy/proxy_config.hpp"

#include <gtest/gtest.h>

#include "core/config.hpp"
#include "tests/unit/proxy_config_sections.hpp"

using namespace outpost;

namespace {

ConfigError expect_error(const std::string& text) {
  try {
    Config::parse(text, "t.toml");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << text;
  return ConfigError("", 0, "");
}

std::string error_of(const std::string& text) { return expect_error(text).what(); }

}  // namespace

TEST(ProxyConfig, EmbeddedDefaultParsesAndIsSafe) {
  Config c = Config::load_default();
  ASSERT_EQ(c.proxy.listen.size(), 1u);
  EXPECT_EQ(c.proxy.listen[0].host, "127.0.0.1");
  EXPECT_EQ(c.proxy.listen[0].port, 3128);
  EXPECT_EQ(c.acl.connect_ports, std::vector<std::uint16_t>{443});
  EXPECT_TRUE(c.acl.allow_clients.contains(*IpAddress::parse("192.168.1.1")));
  EXPECT_FALSE(c.acl.allow_clients.contains(*IpAddress::parse("8.8.8.8")));
  EXPECT_EQ(c.proxy.max_header_size, 65536u);
}

TEST(ProxyConfig, EmptyFileGivesDefaults) {
  Config c = Config::parse("", "empty.toml");
  EXPECT_EQ(c.server.name, "outpost");
  EXPECT_EQ(c.proxy.listen.at(0).port, 3128);
  EXPECT_EQ(c.acl.connect_ports, std::vector<std::uint16_t>{443});
  EXPECT_TRUE(c.http_cache.enabled);
  EXPECT_EQ(c.http_cache.max_variants, 32u);
  EXPECT_EQ(Config::parse("[http_cache]\nmax_variants = 0\n", "t.toml").http_cache.max_variants, 0u);
  EXPECT_EQ(c.http_cache.range_offset_limit, 0u);  // Squid's default: ranges go as sent
  EXPECT_EQ(c.http_cache.range_max_parts, 32u);
  EXPECT_EQ(c.http_cache.range_parts_percent, 25);
  EXPECT_EQ(Config::parse("[http_cache]\nrange_offset_limit = 1048576\n", "t.toml").http_cache.range_offset_limit,
            1048576u);
  EXPECT_NE(error_of("[http_cache]\nrange_max_parts = 0\n"), "");
  EXPECT_EQ(c.http_cache.targeted_cache_control, "");
  EXPECT_EQ(Config::parse("[http_cache]\ntargeted_cache_control = \"CDN-Cache-Control\"\n", "t.toml")
                .http_cache.targeted_cache_control,
            "CDN-Cache-Control");
  EXPECT_EQ(error_of("[http_cache]\ntargeted_cache_control = \"CDN Cache\"\n"),
            "t.toml:2: http_cache.targeted_cache_control: must be a header field name, e.g. \"CDN-Cache-Control\"");
}

TEST(ProxyConfig, UnknownKeyNamesFileAndLine) {
  auto e = expect_error("[proxy]\nvia = true\n\nlisten_port = 3\n");
  EXPECT_EQ(e.file, "t.toml");
  EXPECT_EQ(e.line, 4u);
  EXPECT_NE(e.reason.find("proxy.listen_port"), std::string::npos);
  EXPECT_NE(e.reason.find("unknown"), std::string::npos);
}

TEST(ProxyConfig, BadValues) {
  auto e = expect_error("[acl]\nallow_clients = [\"10.0.0.0/8\",\n  \"10.0.0.0/99\"]\n");
  EXPECT_EQ(e.line, 3u);
  EXPECT_NE(e.reason.find("10.0.0.0/99"), std::string::npos);
  EXPECT_EQ(expect_error("[acl]\nconnect_ports = [443, 0]\n").line, 2u);
  EXPECT_EQ(expect_error("[proxy]\nlisten = [\"localhost:3128\"]\n").line, 2u);
  EXPECT_EQ(expect_error("[acl]\ndeny_hosts = [\"a*b.com\"]\n").line, 2u);
}

// The messages as core gave them before the sections moved to proxy/ (and [cache] to cache/),
// each at the line of the offending value, or array element.
TEST(ProxyConfig, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(error_of("[proxy]\nvia = true\n\nlisten_port = 3\n"), "t.toml:4: proxy.listen_port: unknown key");
  EXPECT_EQ(error_of("[proxy]\nforwarded_for = \"maybe\"\n"),
            "t.toml:2: proxy.forwarded_for: must be one of: delete, off, on, transparent");
  EXPECT_EQ(error_of("[proxy]\nlisten = [\"127.0.0.1:1\",\n \"localhost:3128\"]\n"),
            "t.toml:3: proxy.listen: not an address:port: \"localhost:3128\"");
  EXPECT_EQ(error_of("[proxy]\nintercept_mode = \"nat\"\n"),
            "t.toml:2: proxy.intercept_mode: must be one of: redirect, tproxy");
  EXPECT_EQ(error_of("[proxy]\nintercept_tls_listen = [\"127.0.0.1:3130\", \"any:443\"]\n"),
            "t.toml:2: proxy.intercept_tls_listen: not an address:port: \"any:443\"");
  EXPECT_EQ(error_of("[origin]\nconnect_timeout = 0\n"), "t.toml:2: origin.connect_timeout: must be between 0.01 and 3600");
  EXPECT_EQ(error_of("[origin]\nca_file = \"/nonexistent/ca.pem\"\n"), "t.toml:2: origin.ca_file: cannot read /nonexistent/ca.pem");
  EXPECT_EQ(error_of("[proxy]\ntls_listen = [\"127.0.0.1:3129\"]\n"),
            "t.toml:1: proxy.tls_certificate: tls_listen needs a certificate (PEM file)");
  EXPECT_EQ(error_of("[proxy]\ntls_listen = [\"127.0.0.1:3129\"]\ntls_certificate = \"/nonexistent.pem\"\n"
                     "tls_key = \"/nonexistent.key\"\n")
                .rfind("t.toml:3: proxy.tls_certificate: cannot use /nonexistent.pem with /nonexistent.key: ", 0),
            0u);
  EXPECT_EQ(error_of("[acl]\ndeny_hosts = [\"ok.test\",\n  \"a*b.com\"]\n"),
            "t.toml:3: acl.deny_hosts: not a host-name pattern: \"a*b.com\"");
  EXPECT_EQ(error_of("[acl]\nconnect_ports = [443,\n  0]\n"), "t.toml:3: acl.connect_ports: expected port numbers 1-65535");
  EXPECT_EQ(error_of("[acl]\nconnect_ports = 443\n"), "t.toml:2: acl.connect_ports: expected an array of port numbers");
  EXPECT_EQ(error_of("[http_cache]\nheuristic_percent = 101\n"),
            "t.toml:2: http_cache.heuristic_percent: must be between 0 and 100");
  EXPECT_EQ(error_of("[http_cache]\nrefresh_patterns = 1\n"),
            "t.toml:2: http_cache.refresh_patterns: expected an array of tables");
  EXPECT_EQ(error_of("[http_cache]\nrefresh_patterns = [\"x\"]\n"),
            "t.toml:2: http_cache.refresh_patterns: expected { pattern = \"...\", min = S, percent = P, max = S }");
  EXPECT_EQ(error_of("[http_cache]\nrefresh_patterns = [\n  { min = 1 }]\n"),
            "t.toml:3: http_cache.refresh_patterns.pattern: is required");
  EXPECT_EQ(error_of("[http_cache]\nrefresh_patterns = [{ pattern = \"(\" }]\n")
                .rfind("t.toml:2: http_cache.refresh_patterns.pattern: not a valid regular expression: ", 0),
            0u);
  EXPECT_EQ(error_of("[http_cache]\nrefresh_patterns = [{ pattern = \"a\", min = 10, max = 5 }]\n"),
            "t.toml:2: http_cache.refresh_patterns.max: must not be less than min");
  EXPECT_EQ(error_of("[http_cache]\nrefresh_patterns = [{ pattern = \"a\", other = 1 }]\n"),
            "t.toml:2: http_cache.refresh_patterns.other: unknown key");
  EXPECT_EQ(error_of("[cache]\nmemory_size = 2097152\nmax_object_size = 4194304\n"),
            "t.toml:3: cache.max_object_size: must not exceed memory_size");
  EXPECT_EQ(error_of("acl = [1]\n"), "t.toml:1: acl: expected a table");
}

TEST(ProxyConfig, MaxConnectionsPerWorkerZeroMeansDerived) {
  // 0 = derived from the file descriptor limit at start-up (app/main.cpp).
  EXPECT_EQ(Config::load_default().proxy.max_connections_per_worker, 0u);
  EXPECT_EQ(Config::parse("[proxy]\nmax_connections_per_worker = 100\n", "t.toml").proxy.max_connections_per_worker,
            100u);
  EXPECT_EQ(expect_error("[proxy]\nmax_connections_per_worker = -1\n").line, 2u);
}

TEST(ProxyConfig, Values) {
  Config c = Config::parse(
      "[proxy]\nlisten=[\"127.0.0.1:8080\",\"[::1]:8080\"]\nheader_timeout=0.5\n"
      "[acl]\nconnect_ports=[443,8443]\nallow_hosts=[\"*.test\",\"localhost\"]\n"
      "[origin]\nmax_idle_per_host = 3\n"
      "[http_cache]\nrefresh_patterns = [{ pattern = \"\\\\.img$\", ignore_case = true, min = 60, max = 600 }]\n",
      "v.toml");
  EXPECT_EQ(c.proxy.listen.size(), 2u);
  EXPECT_DOUBLE_EQ(c.proxy.header_timeout, 0.5);
  EXPECT_EQ(c.acl.connect_ports, (std::vector<std::uint16_t>{443, 8443}));
  EXPECT_EQ(c.acl.allow_hosts.size(), 2u);
  EXPECT_EQ(c.origin.max_idle_per_host, 3u);
  ASSERT_EQ(c.http_cache.refresh_patterns.size(), 1u);
  EXPECT_EQ(c.http_cache.refresh_patterns[0].pattern, "\\.img$");
  EXPECT_TRUE(c.http_cache.refresh_patterns[0].ignore_case);
  EXPECT_DOUBLE_EQ(c.http_cache.refresh_patterns[0].max, 600);
}

TEST(ProxyConfig, DestinationProtectionsOnByDefaultAndSwitchable) {
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

// This binary registers the proxy's and the cache's sections, not the resolver's or the admin
// endpoint's: a file that sets those is refused, the embedded default still loads.
TEST(ProxyConfig, OtherModulesSectionsAreRefusedInAFile) {
  EXPECT_EQ(error_of("[proxy]\nvia = false\n[dns]\nlisten = [\"127.0.0.1:53\"]\n"),
            "t.toml:3: [dns]: this program does not read this section");
  EXPECT_TRUE(Config::load_default().dns.listen.empty());
}
