#include "proxy/destination_acl.hpp"

#include <gtest/gtest.h>
#include <ifaddrs.h>

#include "tests/unit/proxy_config_sections.hpp"

using namespace outpost;

static Config::Acl acl_from(const std::string& toml) { return Config::parse(toml, "acl.toml").acl; }
static IpAddress ip(const char* text) { return *IpAddress::parse(text); }

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

TEST(AccessRules, ThisHostIsNeverADestination) {
  // The kernel takes 0.0.0.0 and :: as a destination for loopback; with any rules at all.
  AccessRules r(acl_from("[acl]\ndeny_link_local = false\nprotect_local_services = false\n"
                         "allow_networks = [\"0.0.0.0/0\", \"::/0\"]\n"),
                {*Endpoint::parse("127.0.0.1:3128")});
  for (const char* a : {"0.0.0.0", "::", "0.1.2.3", "::ffff:0.0.0.0"}) {
    EXPECT_FALSE(r.address_allowed(ip(a), 80, ip("127.0.0.1"))) << a;
    EXPECT_FALSE(r.address_allowed(ip(a), 3128)) << a;
  }
  EXPECT_TRUE(r.address_allowed(ip("1.0.0.0"), 80, ip("127.0.0.1")));
}

TEST(AccessRules, LoopGuardCatchesEverySpellingOfTheListener) {
  AccessRules r(Config::load_default().acl, {*Endpoint::parse("127.0.0.1:3128"), *Endpoint::parse("[::1]:3129")});
  auto lo = ip("127.0.0.1");
  EXPECT_FALSE(r.address_allowed(ip("127.0.0.1"), 3128, lo));
  EXPECT_FALSE(r.address_allowed(ip("::ffff:127.0.0.1"), 3128, lo));  // v4-mapped IPv6
  EXPECT_FALSE(r.address_allowed(ip("0.0.0.0"), 3128, lo));
  EXPECT_FALSE(r.address_allowed(ip("::"), 3128, lo));
  EXPECT_FALSE(r.address_allowed(ip("::1"), 3129, lo));
  EXPECT_FALSE(r.address_allowed(ip("0:0:0:0:0:0:0:1"), 3129, lo));
  // A specific listener is not reached through other addresses: those stay usable origins.
  EXPECT_TRUE(r.address_allowed(ip("127.0.0.2"), 3128, lo));
  EXPECT_TRUE(r.address_allowed(ip("::1"), 3128, lo));
  EXPECT_TRUE(r.address_allowed(ip("127.0.0.1"), 3129, lo));
}

TEST(AccessRules, WildcardListenerLoopGuardCoversThisHostsAddresses) {
  std::vector<IpAddress> mine;
  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  for (auto* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
      mine.push_back(IpAddress::from_sockaddr(i->ifa_addr));
  freeifaddrs(list);
  ASSERT_FALSE(mine.empty());  // at least 127.0.0.1 (loopback is always there)
  auto open = acl_from("[acl]\ndeny_link_local = false\nprotect_local_services = false\n");
  for (const char* listener : {"0.0.0.0:3128", "[::]:3128"}) {
    AccessRules r(open, {*Endpoint::parse(listener)});
    for (const auto& a : mine) {
      EXPECT_FALSE(r.address_allowed(a, 3128)) << listener << " " << a.to_string();
      EXPECT_TRUE(r.address_allowed(a, 3130) || a.is_unspecified()) << listener << " " << a.to_string();
    }
    for (const char* a : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.9", "0.0.0.0", "::"})
      EXPECT_FALSE(r.address_allowed(ip(a), 3128)) << listener << " " << a;
    EXPECT_TRUE(r.address_allowed(ip("192.0.2.1"), 3128)) << listener;  // someone else's 3128
  }
}

TEST(AccessRules, LinkLocalAndMetadataDeniedByDefault) {
  AccessRules r(Config::load_default().acl, {});
  auto lo = ip("127.0.0.1");
  for (const char* a : {"169.254.169.254", "169.254.170.2", "169.254.0.1", "::ffff:169.254.169.254", "fe80::1",
                        "febf:ffff::1", "fd00:ec2::254", "fd00:ec2::23", "100.100.100.200", "192.0.0.192",
                        "168.63.129.16"}) {
    EXPECT_FALSE(r.address_allowed(ip(a), 80, lo)) << a;
    EXPECT_FALSE(r.address_allowed(ip(a), 80)) << a;  // background refresh too
  }
  for (const char* a : {"169.253.255.255", "169.255.0.0", "fec0::1", "fd00:ec2::1", "100.100.100.201", "10.0.0.1"})
    EXPECT_TRUE(r.address_allowed(ip(a), 80, lo)) << a;
  AccessRules off(acl_from("[acl]\ndeny_link_local = false\n"), {});
  EXPECT_TRUE(off.address_allowed(ip("169.254.169.254"), 80, lo));
  EXPECT_TRUE(off.address_allowed(ip("fe80::1"), 80, lo));
}

TEST(AccessRules, LocalServicesOnlyForLoopbackClients) {
  AccessRules r(Config::load_default().acl, {*Endpoint::parse("127.0.0.1:3128")});
  for (const char* dest : {"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(r.address_allowed(ip(dest), 8080, ip("127.0.0.1"))) << dest;
    EXPECT_TRUE(r.address_allowed(ip(dest), 8080, ip("127.0.0.53"))) << dest;
    EXPECT_TRUE(r.address_allowed(ip(dest), 8080, ip("::1"))) << dest;
    EXPECT_TRUE(r.address_allowed(ip(dest), 8080, ip("::ffff:127.0.0.1"))) << dest;
    EXPECT_FALSE(r.address_allowed(ip(dest), 8080, ip("10.99.0.1"))) << dest;
    EXPECT_FALSE(r.address_allowed(ip(dest), 8080, ip("fd00::5"))) << dest;
    EXPECT_TRUE(r.address_allowed(ip(dest), 8080)) << dest;  // Outpost's own refresh: no client
  }
  EXPECT_TRUE(r.address_allowed(ip("192.168.1.10"), 8080, ip("10.99.0.1")));
  AccessRules off(acl_from("[acl]\nprotect_local_services = false\n"), {});
  EXPECT_TRUE(off.address_allowed(ip("127.0.0.1"), 8080, ip("10.99.0.1")));
  EXPECT_TRUE(off.address_allowed(ip("::1"), 8080, ip("10.99.0.1")));
}

TEST(AccessRules, TargetRulesBeforeAnyLookupFollowTheClient) {
  AccessRules r(acl_from("[acl]\ndeny_hosts=[\"bad.test\"]\n"), {*Endpoint::parse("127.0.0.1:3128")});
  auto lo = ip("127.0.0.1"), far = ip("10.99.0.1");
  EXPECT_TRUE(r.target_allowed("origin.test", 80, far));
  EXPECT_FALSE(r.target_allowed("bad.test", 80, lo));
  for (const char* host : {"127.0.0.1", "::1", "localhost", "LocalHost.", "app.localhost"}) {
    EXPECT_TRUE(r.target_allowed(host, 8080, lo)) << host;
    EXPECT_FALSE(r.target_allowed(host, 8080, far)) << host;
  }
  EXPECT_TRUE(r.target_allowed("localhost.test", 8080, far));
  EXPECT_FALSE(r.target_allowed("169.254.169.254", 80, lo));
  EXPECT_FALSE(r.target_allowed("127.0.0.1", 3128, lo));  // the loop guard
  EXPECT_TRUE(r.target_allowed("192.0.2.7", 80, far));
  AccessRules off(acl_from("[acl]\nprotect_local_services = false\n"), {});
  EXPECT_TRUE(off.target_allowed("localhost", 8080, far));
  EXPECT_TRUE(off.target_allowed("127.0.0.1", 8080, far));
}

// The fixed classes are plain comparisons; they must say exactly what the CIDR lists say, for
// addresses at and around every boundary and for random ones.
TEST(AddressClasses, EqualToTheirNetworkLists) {
  auto list = [](std::vector<std::string> t) {
    std::size_t bad = 0;
    return *NetworkList::parse(t, &bad);
  };
  NetworkList this_host = list({"0.0.0.0/8", "::/128"});
  NetworkList loopback = list({"127.0.0.0/8", "::1/128"});
  NetworkList meta = list({"169.254.0.0/16", "fe80::/10", "fd00:ec2::254", "fd00:ec2::23", "100.100.100.200",
                           "192.0.0.192", "168.63.129.16"});
  std::vector<IpAddress> probes;
  for (const char* t : {"0.0.0.0", "0.255.255.255", "1.0.0.0", "::", "::1", "::2", "::ffff:0.0.0.1", "126.255.255.255",
                        "127.0.0.0", "127.255.255.255", "128.0.0.0", "169.253.255.255", "169.254.0.0", "169.254.169.254",
                        "169.255.0.0", "fe80::1", "febf:ffff::1", "fec0::1", "fe7f::1", "fd00:ec2::254", "fd00:ec2::253",
                        "fd00:ec2::23", "fd00:ec2::1:23", "100.100.100.200", "100.100.100.201", "192.0.0.192",
                        "192.0.0.193", "168.63.129.16", "168.63.129.17", "10.0.0.1", "2001:db8::1", "::127.0.0.1"})
    probes.push_back(*IpAddress::parse(t));
  std::uint64_t x = 88172645463325252ull;  // xorshift: reproducible random addresses
  for (int i = 0; i < 20000; ++i) {
    IpAddress a;
    for (auto& b : a.bytes) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = static_cast<std::uint8_t>(x);
    }
    if (i % 2) {  // half of them IPv4, biased to the interesting first octets
      a = IpAddress::from_v4(&a.bytes[0]);
      if (i % 5 == 0) a.bytes[12] = static_cast<std::uint8_t>(std::vector<int>{0, 127, 169, 100, 192, 168}[i % 6]);
      if (i % 10 == 1) a.bytes[13] = 254;
    } else if (i % 4 == 0) {
      a.bytes[0] = 0xfe;  // around fe80::/10
    }
    probes.push_back(a);
  }
  for (const auto& a : probes) {
    EXPECT_EQ(is_this_host(a), this_host.contains(a)) << a.to_string();
    EXPECT_EQ(is_loopback(a), loopback.contains(a)) << a.to_string();
    EXPECT_EQ(is_link_local_or_metadata(a), meta.contains(a)) << a.to_string();
  }
}
