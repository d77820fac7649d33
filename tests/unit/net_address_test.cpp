#include "core/net_address.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

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

// IpAddress::parse reads IPv4 itself; it must accept exactly what inet_pton(AF_INET) does.
TEST(IpAddress, Ipv4AgreesWithInetPton) {
  std::vector<std::string> cases = {"0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4",
                                    "1.02.3.4", "1.2.3.04", "0.0.0.00", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ",
                                    " 1.2.3.4", "1.2.3.4a", "1234.1.1.1", "1.2.3.999", "127.0.0.1", "10.0.0.255",
                                    "1.2.3.-4", "+1.2.3.4", "0x7f.0.0.1", "2130706433", "", ".", "a.b.c.d",
                                    "192.168.1.1", "1.2.3.4\n", "9.9.9.9", "100.200.250.255", "1.2.3.256"};
  // and a sweep of short strings over the characters that matter
  const char alphabet[] = {'0', '1', '2', '5', '9', '.'};
  for (int len = 1; len <= 7; ++len) {
    int total = 1;
    for (int i = 0; i < len; ++i) total *= 6;
    for (int n = 0; n < total; ++n) {
      std::string s;
      for (int i = 0, k = n; i < len; ++i, k /= 6) s.push_back(alphabet[k % 6]);
      cases.push_back(s);
    }
  }
  for (const auto& text : cases) {
    in_addr ref{};
    bool want = inet_pton(AF_INET, text.c_str(), &ref) == 1 && text.size() == std::strlen(text.c_str());
    auto got = IpAddress::parse(text);
    bool got_v4 = got && got->v4;
    ASSERT_EQ(got_v4, want) << '"' << text << '"';
    if (want) {
      EXPECT_EQ(std::memcmp(&got->bytes[12], &ref, 4), 0) << text;
    }
  }
}

// Cidr::contains compares under a mask in two 64-bit halves; checked bit by bit for every
// prefix length, with addresses that differ from the base in exactly one bit.
TEST(Cidr, EveryPrefixLengthAgreesWithABitByBitCheck) {
  auto base = *IpAddress::parse("2001:db8:89ab:cdef:123:4567:89ab:cdef");
  for (unsigned prefix = 0; prefix <= 128; ++prefix) {
    auto c = Cidr::parse("2001:db8:89ab:cdef:123:4567:89ab:cdef/" + std::to_string(prefix));
    ASSERT_TRUE(c);
    for (unsigned bit = 0; bit < 128; ++bit) {
      IpAddress a = base;
      a.bytes[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
      EXPECT_EQ(c->contains(a), bit >= prefix) << "prefix " << prefix << " bit " << bit;
    }
    EXPECT_TRUE(c->contains(base));
  }
}

TEST(HostName, LabelsLettersDigitsHyphensUnderscores) {
  for (const char* ok : {"a", "Example.COM", "a-b.c_d.e", "123.example", "1.2.3.4", "x.y"})
    EXPECT_TRUE(is_host_name(ok)) << ok;
  std::string label63(63, 'a'), label64(64, 'a');
  EXPECT_TRUE(is_host_name(label63 + ".x"));
  EXPECT_FALSE(is_host_name(label64 + ".x"));
  std::string long_name;
  while (long_name.size() < 253) long_name += "abcdefghi.";
  long_name.resize(253);
  if (long_name.back() == '.') long_name.back() = 'z';
  EXPECT_TRUE(is_host_name(long_name));
  EXPECT_FALSE(is_host_name(long_name + "z"));
  for (const char* bad : {"", ".", "a.", ".a", "a..b", "a b", "a/b", "*.a", "a:80", "é.test"})
    EXPECT_FALSE(is_host_name(bad)) << bad;
  EXPECT_FALSE(is_host_name(std::string_view("a\0b", 3)));
}
