// [pac]: the section's checks and the generated script's text (its logic is run in node and
// Chromium by tests/integration/test_pac.py).
#include <gtest/gtest.h>

#include "core/config.hpp"
#include "services/pac/pac_script.hpp"

using outpost::Config;
using outpost::ConfigError;
namespace pac = outpost::pac;

namespace {
struct RegisterSections : ::testing::Environment {
  void SetUp() override { pac::register_config_section(); }
};
const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new RegisterSections);

Config parse(const std::string& text) { return Config::parse(text, "t.toml"); }

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Pac, OffByDefaultAndNoPage) {
  Config c = parse("");
  EXPECT_FALSE(c.pac.enabled);
  EXPECT_FALSE(pac::page(c, "/proxy.pac", "127.0.0.1:3128", true));
  c = parse("[pac]\nenabled = true\n");
  EXPECT_TRUE(pac::page(c, "/proxy.pac", "", true));
  EXPECT_TRUE(pac::page(c, "/wpad.dat", "", false));
  EXPECT_FALSE(pac::page(c, "/proxy.pac/", "", true));
  EXPECT_EQ(pac::page(c, "/wpad.dat", "", true)->content_type, "application/x-ns-proxy-autoconfig");
}

TEST(Pac, BadEntriesAreConfigErrors) {
  EXPECT_NE(error_of("[pac]\nproxies = [\"nohost\"]\n").find("pac.proxies"), std::string::npos);
  EXPECT_NE(error_of("[pac]\nproxies = [\"a\\\"b:3128\"]\n").find("not host:port"), std::string::npos);
  EXPECT_NE(error_of("[pac]\nproxies = [\"a:0\"]\n").find("not host:port"), std::string::npos);
  EXPECT_NE(error_of("[pac]\ndirect_domains = [\"bad domain\"]\n").find("not a domain pattern"), std::string::npos);
  EXPECT_NE(error_of("[pac]\ndirect_domains = [\"*.\"]\n").find("not a domain pattern"), std::string::npos);
  EXPECT_NE(error_of("[pac]\ndirect_networks = [\"10.0.0.0/33\"]\n").find("not a network"), std::string::npos);
  EXPECT_NE(error_of("[pac]\nfallback = true\n").find("pac.fallback"), std::string::npos);
  EXPECT_EQ(error_of("[pac]\nproxies = [\"[::1]:3128\", \"front.example:8080\"]\n"), "");
}

TEST(Pac, ProxyNamedFromHostOrConfig) {
  Config c = parse("[pac]\nenabled = true\n");
  c.proxy.listen = {*outpost::Endpoint::parse("0.0.0.0:3130")};
  EXPECT_NE(pac::make_script(c, "proxy.lan:3130", true).find("\"PROXY proxy.lan:3130\""), std::string::npos);
  // On the admin listener the Host names the admin port: the proxy's port replaces it.
  EXPECT_NE(pac::make_script(c, "proxy.lan:9145", false).find("\"PROXY proxy.lan:3130\""), std::string::npos);
  EXPECT_NE(pac::make_script(c, "[::1]:9145", false).find("\"PROXY [::1]:3130\""), std::string::npos);
  // No usable Host: the listener (an unspecified address names loopback).
  EXPECT_NE(pac::make_script(c, "", true).find("\"PROXY 127.0.0.1:3130\""), std::string::npos);
  EXPECT_NE(pac::make_script(c, "\");alert(1);(\"", true).find("\"PROXY 127.0.0.1:3130\""), std::string::npos);
  EXPECT_EQ(pac::make_script(c, "\");alert(1);(\"", true).find("alert"), std::string::npos);
  c = parse("[pac]\nenabled = true\nproxies = [\"front.example:3128\", \"b.example:3128\"]\nfallback_direct = true\n");
  EXPECT_NE(pac::make_script(c, "proxy.lan:3130", true).find("\"PROXY front.example:3128; PROXY b.example:3128; DIRECT\""),
            std::string::npos);
}

TEST(Pac, RulesInTheScript) {
  Config c = parse(
      "[pac]\nenabled = true\ndirect_domains = [\"*.Corp.example\", \"one.example\"]\n"
      "direct_networks = [\"10.0.0.0/8\", \"192.0.2.7/32\", \"fd00::/8\"]\ndirect_plain_hosts = false\n");
  std::string s = pac::make_script(c, "", true);
  EXPECT_NE(s.find("[\".corp.example\", \"one.example\"]"), std::string::npos);
  EXPECT_NE(s.find("isInNet(ip, \"10.0.0.0\", \"255.0.0.0\")"), std::string::npos);
  EXPECT_NE(s.find("isInNet(ip, \"192.0.2.7\", \"255.255.255.255\")"), std::string::npos);
  EXPECT_NE(s.find("isInNetEx(ip, \"fd00::/8\")"), std::string::npos);
  EXPECT_EQ(s.find("isPlainHostName"), std::string::npos);
  EXPECT_EQ(s.find("dnsResolve"), std::string::npos);
  c = parse("[pac]\nenabled = true\nresolve_names = true\n");
  EXPECT_NE(pac::make_script(c, "", true).find("dnsResolve(host)"), std::string::npos);
}
