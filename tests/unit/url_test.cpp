// Numeric IPv4 host forms in request targets: normalised like a browser's URL parser
// (WHATWG "IPv4 parser"), so the address rules see the address the resolver would use.
#include "proxy/url.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace outpost::http;

static std::string host_of(const std::string& target) {
  UrlError e;
  auto u = parse_absolute_url(target, &e);
  return u ? u->host : "<rejected>";
}

TEST(UrlNumericHost, InetAtonFormsBecomeDottedQuads) {
  EXPECT_EQ(host_of("http://2130706433/"), "127.0.0.1");        // one 32-bit number
  EXPECT_EQ(host_of("http://0x7f000001/"), "127.0.0.1");        // hex
  EXPECT_EQ(host_of("http://0X7F000001/"), "127.0.0.1");
  EXPECT_EQ(host_of("http://017700000001/"), "127.0.0.1");      // octal
  EXPECT_EQ(host_of("http://0177.0.0.1/"), "127.0.0.1");        // octal part
  EXPECT_EQ(host_of("http://0x7f.0x0.0.01/"), "127.0.0.1");     // mixed
  EXPECT_EQ(host_of("http://127.1/"), "127.0.0.1");             // a.b: b fills 24 bits
  EXPECT_EQ(host_of("http://127.0.1/"), "127.0.0.1");           // a.b.c: c fills 16 bits
  EXPECT_EQ(host_of("http://169.254.43518/"), "169.254.169.254");
  EXPECT_EQ(host_of("http://0/"), "0.0.0.0");
  EXPECT_EQ(host_of("http://0x/"), "0.0.0.0");                  // WHATWG: an empty hex number is 0
  EXPECT_EQ(host_of("http://127.000.000.001/"), "127.0.0.1");
  EXPECT_EQ(host_of("http://127.0.0.1./"), "127.0.0.1");        // trailing dot
  EXPECT_EQ(host_of("http://4294967295/"), "255.255.255.255");
  EXPECT_EQ(host_of("http://192.0.2.10/"), "192.0.2.10");       // the usual form is untouched
}

TEST(UrlNumericHost, PortAndAuthorityKeepWorking) {
  UrlError e;
  auto u = parse_absolute_url("http://2130706433:3128/x", &e);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 3128);
  EXPECT_EQ(u->to_string(), "http://127.0.0.1:3128/x");
  auto c = parse_authority("0x7f.1:443");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 443);
}

TEST(UrlNumericHost, HostsEndingInANumberThatAreNoAddressAreRejected) {
  EXPECT_EQ(host_of("http://4294967296/"), "<rejected>");      // 2^32
  EXPECT_EQ(host_of("http://0x100000000/"), "<rejected>");
  EXPECT_EQ(host_of("http://0xffffffffffffffffffffffffff/"), "<rejected>");  // no overflow
  EXPECT_EQ(host_of("http://99999999999999999999999999/"), "<rejected>");
  EXPECT_EQ(host_of("http://256.0.0.1/"), "<rejected>");       // only the last part may exceed 255
  EXPECT_EQ(host_of("http://1.2.3.256/"), "<rejected>");
  EXPECT_EQ(host_of("http://127.16777216/"), "<rejected>");    // 24 bits at most after one part
  EXPECT_EQ(host_of("http://1.2.3.4.5/"), "<rejected>");       // five parts
  EXPECT_EQ(host_of("http://08.0.0.1/"), "<rejected>");        // 8 is not an octal digit
  EXPECT_EQ(host_of("http://1..2/"), "<rejected>");            // empty part
  EXPECT_EQ(host_of("http://example.123/"), "<rejected>");     // a name ending in a number
  EXPECT_EQ(host_of("http://example.0x1/"), "<rejected>");
}

TEST(UrlNumericHost, NamesStayNames) {
  EXPECT_EQ(host_of("http://123.example/"), "123.example");
  EXPECT_EQ(host_of("http://0x7f.example/"), "0x7f.example");
  EXPECT_EQ(host_of("http://1e100.test/"), "1e100.test");
  EXPECT_EQ(host_of("http://example.0xg/"), "example.0xg");    // not a hex number
  EXPECT_EQ(host_of("http://cafe/"), "cafe");                  // hex digits without 0x: a name
}

TEST(UrlNumericHost, Ipv6LiteralsAreNotIpv4) {
  EXPECT_EQ(host_of("http://[::]:3128/"), "::");
  // A v4-mapped literal in brackets is refused, like "[1.2.3.4]": the IPv4 form is the one
  // to write, and nothing then reaches the rules in two spellings.
  EXPECT_EQ(host_of("http://[::ffff:127.0.0.1]:3128/"), "<rejected>");
  EXPECT_EQ(host_of("http://[::ffff:7f00:1]:3128/"), "<rejected>");
}

// The parsed address travels with the URL (the rules and the forwarder use it instead of
// parsing the host again): it must be the address the host text names, in every form.
TEST(UrlNumericHost, LiteralIsTheAddressOfTheNormalisedHost) {
  for (const char* target : {"http://2130706433/", "http://0x7f.0x0.0.01/", "http://127.1/", "http://169.254.43518/",
                             "http://192.0.2.10:8080/", "http://127.0.0.1./", "http://[2001:db8::1]/", "http://[::1]:81/"}) {
    UrlError e;
    auto u = parse_absolute_url(target, &e);
    ASSERT_TRUE(u) << target;
    ASSERT_TRUE(u->literal) << target;
    EXPECT_EQ(u->literal, outpost::IpAddress::parse(u->host)) << target;
  }
  for (const char* target : {"http://origin.test/", "http://localhost:8080/", "http://a1.example/"}) {
    UrlError e;
    auto u = parse_absolute_url(target, &e);
    ASSERT_TRUE(u) << target;
    EXPECT_FALSE(u->literal) << target;
  }
  auto c = parse_authority("127.1:443");
  ASSERT_TRUE(c && c->literal);
  EXPECT_EQ(c->literal, outpost::IpAddress::parse("127.0.0.1"));
}
