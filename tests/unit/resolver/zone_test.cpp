#include <gtest/gtest.h>

#include "resolver/local_zones.hpp"
#include "resolver/zone_file.hpp"

using namespace outpost::dns;

namespace {
Name N(const char* s) { return *Name::from_text(s); }

// The textbook's example zone.
const char* kUtopia = R"(
$TTL 3600
@       IN SOA dns1.networkutopia.com. admin.networkutopia.com. (
            2024010101 ; serial
            7200 3600 1209600
            60 )       ; negative TTL
        IN NS  dns1
        IN NS  dns2.networkutopia.com.
        IN MX  10 mail
dns1    IN A   212.212.212.1
dns2    300 IN A 212.212.212.2
www     IN A   212.212.71.4
        IN AAAA 2001:db8::4
mail    IN A   212.212.71.5
web     IN CNAME www
txt     IN TXT "v=spf1 -all" "second \"quoted\""
_http._tcp IN SRV 0 5 80 www
odd     IN TYPE65280 \# 3 abcdef
a.b.c   IN A 10.0.0.1
)";
}  // namespace

TEST(ZoneFile, ParsesMasterFile) {
  ZoneFileError err;
  auto rrs = parse_zone_text(kUtopia, N("networkutopia.com."), 3600, &err);
  ASSERT_TRUE(rrs) << err.line << ": " << err.reason;
  ASSERT_EQ(rrs->size(), 14u);
  EXPECT_EQ((*rrs)[0].type, type::SOA);
  EXPECT_EQ(std::get<RdataSoa>((*rrs)[0].rdata).minimum, 60u);
  EXPECT_EQ(rr_to_text((*rrs)[1]), "networkutopia.com.\t3600\tIN\tNS\tdns1.networkutopia.com.");
  EXPECT_EQ((*rrs)[5].ttl, 300u);
  EXPECT_EQ((*rrs)[7].name, N("www.networkutopia.com."));  // owner carried over
  EXPECT_EQ(rdata_to_text((*rrs)[10]), "\"v=spf1 -all\" \"second \\\"quoted\\\"\"");
  EXPECT_EQ(rdata_to_text((*rrs)[12]), "\\# 3 abcdef");
}

TEST(ZoneFile, ReportsLineOfErrors) {
  ZoneFileError err;
  EXPECT_FALSE(parse_zone_text("$TTL 60\nwww IN A 1.2.3\n", N("x."), 60, &err));
  EXPECT_EQ(err.line, 2u);
  EXPECT_FALSE(parse_zone_text("www IN BOGUS 1\n", N("x."), 60, &err));
  EXPECT_FALSE(parse_zone_text("@ SOA a b ( 1 2 3\n", N("x."), 60, &err));
  EXPECT_FALSE(parse_zone_text("  IN A 1.2.3.4\n", N("x."), 60, &err));  // no owner yet
}

TEST(LocalZones, AuthoritativeAnswers) {
  LocalZones z;
  ZoneFileError zerr;
  auto rrs = parse_zone_text(kUtopia, N("networkutopia.com."), 3600, &zerr);
  ASSERT_TRUE(rrs);
  std::string err;
  ASSERT_TRUE(z.add_zone(N("networkutopia.com."), *rrs, &err)) << err;

  auto www = z.answer({N("WWW.networkutopia.com."), type::A, kClassIN});
  ASSERT_TRUE(www);
  EXPECT_TRUE(www->authoritative);
  EXPECT_EQ(www->rcode, rcode::NOERROR);
  ASSERT_EQ(www->answer.size(), 1u);

  auto web = z.answer({N("web.networkutopia.com."), type::AAAA, kClassIN});
  ASSERT_TRUE(web);
  EXPECT_EQ(web->answer.size(), 2u);  // CNAME + AAAA

  auto nx = z.answer({N("nope.networkutopia.com."), type::A, kClassIN});
  EXPECT_EQ(nx->rcode, rcode::NXDOMAIN);
  ASSERT_EQ(nx->authority.size(), 1u);
  EXPECT_EQ(nx->authority[0].ttl, 60u);  // min(SOA TTL, MINIMUM)

  auto ent = z.answer({N("b.c.networkutopia.com."), type::A, kClassIN});  // empty non-terminal
  EXPECT_EQ(ent->rcode, rcode::NOERROR);
  EXPECT_TRUE(ent->answer.empty());

  auto nodata = z.answer({N("mail.networkutopia.com."), type::MX, kClassIN});
  EXPECT_EQ(nodata->rcode, rcode::NOERROR);
  EXPECT_TRUE(nodata->answer.empty());
  EXPECT_EQ(nodata->authority.size(), 1u);

  EXPECT_FALSE(z.answer({N("networkutopia.org."), type::A, kClassIN}));
}

TEST(LocalZones, RejectsZoneWithoutSoaOrWithStrangers) {
  LocalZones z;
  std::string err;
  ZoneFileError zerr;
  EXPECT_FALSE(z.add_zone(N("x."), *parse_zone_text("www A 1.2.3.4\n", N("x."), 60, &zerr), &err));
  EXPECT_FALSE(z.add_zone(N("x."), *parse_zone_text("@ SOA a b 1 2 3 4 5\nwww.y. A 1.2.3.4\n", N("x."), 60, &zerr), &err));
}
