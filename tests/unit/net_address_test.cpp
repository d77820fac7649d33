#include "core/net_address.hpp"

#include <gtest/gtest.h>

using namespace outpost;

TEST(Cidr, V4Membership) {
  auto c = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*IpAddress::parse("10.1.2.3")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("11.0.0.1")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("::1")));
  EXPECT_EQ(c->to_string(), "10.0.0.0/8");
}

TEST(Cidr, HostBitsAreMasked) {
  auto c = Cidr::parse("172.16.5.4/12");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->to_string(), "172.16.0.0/12");
  EXPECT_TRUE(c->contains(*IpAddress::parse("172.31.255.255")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("172.32.0.0")));
}

TEST(Cidr, V6AndMapped) {
  auto ula = Cidr::parse("fc00::/7");
  ASSERT_TRUE(ula);
  EXPECT_TRUE(ula->contains(*IpAddress::parse("fd12::1")));
  EXPECT_FALSE(ula->contains(*IpAddress::parse("fe80::1")));
  auto lo = Cidr::parse("127.0.0.0/8");
  EXPECT_TRUE(lo->contains(*IpAddress::parse("::ffff:127.0.0.9")));
  EXPECT_TRUE(IpAddress::parse("::ffff:127.0.0.9")->v4);
}

TEST(Cidr, Rejects) {
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.0.0/8"));
  EXPECT_FALSE(Cidr::parse("::1/129"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
  EXPECT_FALSE(Cidr::parse("host.example"));
  EXPECT_FALSE(Cidr::parse(""));
}

TEST(Endpoint, Parse) {
  auto e = Endpoint::parse("127.0.0.1:3128");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 3128);
  auto v6 = Endpoint::parse("[::1]:53");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:53");
  EXPECT_FALSE(Endpoint::parse("::1:53"));
  EXPECT_FALSE(Endpoint::parse("host:70000"));
  EXPECT_FALSE(Endpoint::parse("host"));
  EXPECT_FALSE(Endpoint::parse(":80"));
}

TEST(IpAddress, Ipv4TextRoundTripsEveryOctetWidth) {
  for (const char* text : {"0.0.0.0", "1.2.3.4", "9.10.99.100", "127.0.0.1", "255.255.255.255", "10.200.0.7"}) {
    auto a = IpAddress::parse(text);
    ASSERT_TRUE(a) << text;
    EXPECT_EQ(a->to_string(), text);
  }
  EXPECT_EQ(IpAddress::parse("2001:db8::1")->to_string(), "2001:db8::1");
}
