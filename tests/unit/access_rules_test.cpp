#include "proxy/destination_acl.hpp"

#include <gtest/gtest.h>

using namespace outpost;

static Config::Acl acl_from(const std::string& toml) { return Config::parse(toml, "acl.toml").acl; }

TEST(HostPattern, ExactAndSubdomains) {
  HostPattern exact("Example.com");
  EXPECT_TRUE(exact.matches("example.COM"));
  EXPECT_TRUE(exact.matches("example.com."));
  EXPECT_FALSE(exact.matches("www.example.com"));
  HostPattern sub("*.example.com");
  EXPECT_TRUE(sub.matches("www.example.com"));
  EXPECT_TRUE(sub.matches("a.b.example.com"));
  EXPECT_TRUE(sub.matches("example.com"));
  EXPECT_FALSE(sub.matches("badexample.com"));
  EXPECT_FALSE(sub.matches("example.com.evil"));
  HostPattern dot(".test");
  EXPECT_TRUE(dot.matches("origin.test"));
  EXPECT_FALSE(dot.matches("origintest"));
}

TEST(AccessRules, DefaultsAreSafe) {
  AccessRules r(Config::load_default().acl, {*Endpoint::parse("127.0.0.1:3128")});
  EXPECT_TRUE(r.client_allowed(*IpAddress::parse("127.0.0.1")));
  EXPECT_TRUE(r.client_allowed(*IpAddress::parse("10.9.8.7")));
  EXPECT_TRUE(r.client_allowed(*IpAddress::parse("fd00::5")));
  EXPECT_FALSE(r.client_allowed(*IpAddress::parse("8.8.8.8")));
  EXPECT_FALSE(r.client_allowed(*IpAddress::parse("2001:db8::1")));
  EXPECT_TRUE(r.connect_port_allowed(443));
  EXPECT_FALSE(r.connect_port_allowed(25));
  EXPECT_TRUE(r.host_allowed("anything.example"));
  EXPECT_TRUE(r.address_allowed(*IpAddress::parse("192.0.2.1"), 80));
  // Loop prevention: our own listener.
  EXPECT_FALSE(r.address_allowed(*IpAddress::parse("127.0.0.1"), 3128));
  EXPECT_TRUE(r.address_allowed(*IpAddress::parse("127.0.0.1"), 8080));
}

TEST(AccessRules, WildcardListenerBlocksEveryLocalAddressOnItsPort) {
  AccessRules r(Config::load_default().acl, {*Endpoint::parse("0.0.0.0:3128")});
  EXPECT_FALSE(r.address_allowed(*IpAddress::parse("127.0.0.5"), 3128));
}

TEST(AccessRules, HostRulesDecidedByName) {
  AccessRules r(acl_from("[acl]\nallow_hosts=[\"localhost\", \"*.test\"]\ndeny_hosts=[\"bad.test\"]\n"), {});
  EXPECT_TRUE(r.host_allowed("localhost"));
  EXPECT_TRUE(r.host_allowed("origin.test"));
  EXPECT_FALSE(r.host_allowed("bad.test"));
  EXPECT_FALSE(r.host_allowed("update.googleapis.com"));
  EXPECT_TRUE(r.host_allowed("10.0.0.1"));  // literals are judged by address rules
}

TEST(AccessRules, NetworkRules) {
  AccessRules r(acl_from("[acl]\nallow_networks=[\"127.0.0.0/8\", \"::1\"]\ndeny_networks=[\"127.0.0.99\"]\n"), {});
  EXPECT_TRUE(r.address_allowed(*IpAddress::parse("127.0.0.1"), 80));
  EXPECT_TRUE(r.address_allowed(*IpAddress::parse("::1"), 80));
  EXPECT_FALSE(r.address_allowed(*IpAddress::parse("127.0.0.99"), 80));
  EXPECT_FALSE(r.address_allowed(*IpAddress::parse("10.0.0.1"), 80));
  EXPECT_FALSE(r.address_allowed(*IpAddress::parse("2001:db8::1"), 80));
}
