// Unit tests of the iterator's helpers: scrubbing, classification, server selection, hints.
#include <gtest/gtest.h>

#include "resolver/hints.hpp"
#include "resolver/query_types.hpp"
#include "resolver/response_type.hpp"
#include "resolver/scrub.hpp"
#include "resolver/server_selection.hpp"

using namespace outpost::dns;
using outpost::IpAddress;

namespace {
Name N(const char* s) { return *Name::from_text(s); }
ResourceRecord A(const char* name, std::uint8_t last) { return {N(name), type::A, kClassIN, 60, RdataA{{192, 0, 2, last}}}; }
ResourceRecord NS(const char* zone, const char* ns) { return {N(zone), type::NS, kClassIN, 60, RdataName{N(ns)}}; }
ResourceRecord CNAME(const char* from, const char* to) { return {N(from), type::CNAME, kClassIN, 60, RdataName{N(to)}}; }
ResourceRecord SOA(const char* zone) {
  return {N(zone), type::SOA, kClassIN, 60, RdataSoa{N("ns.x."), N("h.x."), 1, 2, 3, 4, 5}};
}
Question Q(const char* name, std::uint16_t t = type::A) { return {N(name), t, kClassIN}; }
IpAddress ip(const char* s) { return *IpAddress::parse(s); }
}  // namespace

TEST(Scrub, DropsOutOfBailiwickRecords) {
  Message m;
  m.header.qr = true;
  m.answer = {A("www.a.test.", 1), A("www.victim.example.", 66), A("other.a.test.", 2)};
  m.authority = {NS("a.test.", "ns1.a.test."), NS("example.", "ns.evil.")};
  m.additional = {A("ns1.a.test.", 5), A("ns.victim.example.", 66)};
  auto st = scrub_response(&m, Q("www.a.test."), N("a.test."));
  EXPECT_EQ(st.dropped, 4u);
  ASSERT_EQ(m.answer.size(), 1u);
  EXPECT_EQ(m.answer[0].name, N("www.a.test."));
  ASSERT_EQ(m.authority.size(), 1u);
  ASSERT_EQ(m.additional.size(), 1u);
  EXPECT_EQ(m.additional[0].name, N("ns1.a.test."));
}

TEST(Scrub, KeepsCnameChainInsideZoneOnly) {
  Message m;
  m.answer = {CNAME("x.a.test.", "y.a.test."), A("y.a.test.", 1), CNAME("y.b.example.", "z.a.test.")};
  scrub_response(&m, Q("x.a.test."), N("a.test."));
  EXPECT_EQ(m.answer.size(), 2u);
}

TEST(Scrub, RootServerMaySpeakForAnything) {
  Message m;
  m.authority = {NS("test.", "ns1.test.")};
  m.additional = {A("ns1.test.", 3)};
  scrub_response(&m, Q("www.a.test."), Name::root());
  EXPECT_EQ(m.authority.size(), 1u);
  EXPECT_EQ(m.additional.size(), 1u);
}

TEST(Classify, Kinds) {
  Message ans;
  ans.header.aa = true;
  ans.answer = {A("www.a.test.", 1)};
  EXPECT_EQ(classify_response(ans, Q("www.a.test."), N("a.test."), false), ResponseType::answer);

  Message cn;
  cn.header.aa = true;
  cn.answer = {CNAME("www.a.test.", "www.b.example.")};
  EXPECT_EQ(classify_response(cn, Q("www.a.test."), N("a.test."), false), ResponseType::cname);

  Message ref;
  ref.authority = {NS("a.test.", "ns1.a.test.")};
  EXPECT_EQ(classify_response(ref, Q("www.a.test."), N("test."), false), ResponseType::referral);
  // The same referral from the a.test. server itself goes nowhere: lame.
  EXPECT_EQ(classify_response(ref, Q("www.a.test."), N("a.test."), false), ResponseType::lame);
  // An upward referral is lame too.
  Message up;
  up.authority = {NS("test.", "ns1.test.")};
  EXPECT_EQ(classify_response(up, Q("www.a.test."), N("a.test."), false), ResponseType::lame);

  Message nx;
  nx.header.rcode = rcode::NXDOMAIN;
  nx.header.aa = true;
  nx.authority = {SOA("a.test.")};
  EXPECT_EQ(classify_response(nx, Q("nx.a.test."), N("a.test."), false), ResponseType::nxdomain);

  Message nodata;
  nodata.header.aa = true;
  nodata.authority = {SOA("a.test.")};
  EXPECT_EQ(classify_response(nodata, Q("www.a.test.", type::MX), N("a.test."), false), ResponseType::nodata);

  Message refused;
  refused.header.rcode = rcode::REFUSED;
  EXPECT_EQ(classify_response(refused, Q("www.a.test."), N("a.test."), false), ResponseType::error);

  // The same answers without AA, as a recursive resolver gives them: lame from a delegated
  // server, believed only from a forwarder.
  for (Message* m : {&ans, &cn, &nx, &nodata}) {
    m->header.aa = false;
    m->header.ra = true;
  }
  EXPECT_EQ(classify_response(ans, Q("www.a.test."), N("a.test."), false), ResponseType::lame);
  EXPECT_EQ(classify_response(cn, Q("www.a.test."), N("a.test."), false), ResponseType::lame);
  EXPECT_EQ(classify_response(nx, Q("nx.a.test."), N("a.test."), false), ResponseType::lame);
  EXPECT_EQ(classify_response(nodata, Q("www.a.test.", type::MX), N("a.test."), false), ResponseType::lame);
  EXPECT_EQ(classify_response(ans, Q("www.a.test."), Name::root(), true), ResponseType::answer);
  EXPECT_EQ(classify_response(nx, Q("nx.a.test."), Name::root(), true), ResponseType::nxdomain);

  Message empty;  // no AA, nothing: lame for an authority, NODATA from a forwarder
  EXPECT_EQ(classify_response(empty, Q("www.a.test."), N("a.test."), false), ResponseType::lame);
  EXPECT_EQ(classify_response(empty, Q("www.a.test."), Name::root(), true), ResponseType::nodata);
}

TEST(ServerSelection, PrefersFastAndAvoidsTimedOut) {
  ServerSelection s;
  auto fast = ip("127.0.0.5"), slow = ip("127.0.0.6"), dead = ip("127.0.0.7");
  s.report_rtt(fast, 5);
  s.report_rtt(slow, 200);
  s.report_timeout(dead, 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(*s.pick({dead, slow, fast}, {}, 10), fast);
  EXPECT_EQ(*s.pick({dead, slow, fast}, {fast}, 10), slow);
  EXPECT_EQ(*s.pick({dead, slow, fast}, {fast, slow}, 10), dead);  // last resort
  EXPECT_FALSE(s.pick({dead, slow, fast}, {fast, slow, dead}, 10));
  EXPECT_GT(s.timeout_ms(dead), ServerSelection::kUnknownRttMs);
  EXPECT_LE(s.timeout_ms(dead), ServerSelection::kMaxTimeoutMs);
  EXPECT_GE(s.timeout_ms(fast), ServerSelection::kMinTimeoutMs);
}

TEST(ServerSelection, DeadServersLeftOutUntilTheirBackOffEnds) {
  ServerSelection s;
  auto a = ip("127.0.0.7"), b = ip("127.0.0.8");
  for (std::uint32_t i = 0; i < ServerSelection::kDeadAfterTimeouts; ++i) {
    s.report_timeout(a, 0);
    s.report_timeout(b, 0);
  }
  EXPECT_TRUE(s.dead(a, 10));
  EXPECT_FALSE(s.pick({a, b}, {}, 10));  // every server dead: nothing to ask
  // The back-off (2 s after two timeouts) ends: one may be probed again, with a short timeout.
  EXPECT_FALSE(s.dead(a, 2000));
  EXPECT_TRUE(s.pick({a, b}, {}, 2000));
  EXPECT_LE(s.timeout_ms(a), ServerSelection::kProbeTimeoutMs);
  // Still silent: dead for twice as long. An answer brings it back at once.
  s.report_timeout(a, 2000);
  EXPECT_TRUE(s.dead(a, 5999));
  EXPECT_FALSE(s.dead(a, 6000));
  s.report_rtt(b, 20);
  EXPECT_FALSE(s.dead(b, 10));
  EXPECT_EQ(*s.pick({a, b}, {}, 10), b);
}

// Under load a busy server drops some datagrams while it answers others: a timeout of a query
// sent before the server's last reply is a lost datagram, not a sign of death (the bench's cold
// runs saw a zone's only server marked dead, and its names SERVFAIL for 2 s, that way).
TEST(ServerSelection, TimeoutsAmongRepliesAreLossesNotDeath) {
  ServerSelection s;
  auto a = ip("127.0.0.7");
  s.report_rtt(a, 5, 1000);
  for (int i = 0; i < 5; ++i) s.report_timeout(a, 1300 + i, /*sent_ms=*/900 + i);
  EXPECT_FALSE(s.dead(a, 1400));
  EXPECT_TRUE(s.pick({a}, {}, 1400));
  // Silence after the last reply is what counts: queries sent after it, each after the last
  // timeout that counted.
  EXPECT_TRUE(s.replied_since(a, 1000));
  EXPECT_FALSE(s.replied_since(a, 1100));
  EXPECT_TRUE(s.report_timeout(a, 2500, 1100));
  EXPECT_TRUE(s.report_timeout(a, 3500, 2500));
  EXPECT_TRUE(s.dead(a, 3600));
}

// A stall (the server, or this host, silent for longer than the RTO) times out every query in
// flight at once: they count as one timeout, not as the server's death; a query sent after
// that timeout and lost too is the second (the bench's loaded cold runs: a zone's only server
// marked dead by the queries of one stall, and its names SERVFAIL).
TEST(ServerSelection, QueriesOfOneSilenceCountOnce) {
  ServerSelection s;
  auto a = ip("127.0.0.7");
  s.report_rtt(a, 1, 1000);
  EXPECT_TRUE(s.report_timeout(a, 1200, 1100));
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(s.report_timeout(a, 1200 + i, 1100 + i));
  EXPECT_FALSE(s.dead(a, 1300));
  EXPECT_TRUE(s.pick({a}, {}, 1300));
  EXPECT_TRUE(s.report_timeout(a, 1800, 1250));  // sent after the first counted: a second strike
  EXPECT_TRUE(s.dead(a, 1900));
  s.report_rtt(a, 1, 2000);
  EXPECT_FALSE(s.dead(a, 2000));
}

TEST(ServerSelection, UnknownServersAreTriedInRandomOrder) {
  ServerSelection s;
  std::vector<IpAddress> c{ip("127.0.0.2"), ip("127.0.0.3")};
  int first = 0;
  for (int i = 0; i < 200; ++i) first += *s.pick(c, {}, 0) == c[0];
  EXPECT_GT(first, 20);
  EXPECT_LT(first, 180);
}

TEST(Hints, BuiltinHasThirteenRootsWithBothFamilies) {
  auto d = builtin_root_hints();
  EXPECT_TRUE(d.zone.is_root());
  EXPECT_EQ(d.servers.size(), 13u);
  EXPECT_EQ(d.all_addresses().size(), 26u);
}

TEST(Hints, ParsesFileFormatAndRejectsUseless) {
  std::string err;
  auto d = parse_root_hints(". 3600000 IN NS ns.root.\nns.root. 3600000 IN A 127.0.0.2\n", &err);
  ASSERT_TRUE(d) << err;
  ASSERT_EQ(d->all_addresses().size(), 1u);
  EXPECT_EQ(d->all_addresses()[0].to_string(), "127.0.0.2");
  EXPECT_FALSE(parse_root_hints(". NS ns.root.\n", &err));
  EXPECT_FALSE(parse_root_hints(". NS ns.root.\nns.root. A 999.0.0.1\n", &err));
  EXPECT_NE(err.find("line 2"), std::string::npos) << err;
}

TEST(QueryTypes, OnlyDataTypesAndAnyAreResolved) {
  for (std::uint16_t t : {type::A, type::NS, type::AAAA, type::DS, type::ANY, std::uint16_t{65}, std::uint16_t{65280}})
    EXPECT_FALSE(unresolvable_type_rcode(t)) << t;
  for (std::uint16_t t : {0, 41, 128, 200, 248, 249, 250, 253, 254})
    EXPECT_EQ(unresolvable_type_rcode(t), rcode::FORMERR) << t;
  EXPECT_EQ(unresolvable_type_rcode(251), rcode::REFUSED);  // IXFR
  EXPECT_EQ(unresolvable_type_rcode(252), rcode::REFUSED);  // AXFR
}

TEST(Scrub, AdditionalKeepsOnlyAddressesOfNamedHosts) {
  Message m;
  m.authority = {NS("child.a.test.", "ns.child.a.test.")};
  m.additional = {A("ns.child.a.test.", 5), A("www.child.a.test.", 66)};
  scrub_response(&m, Q("www.child.a.test."), N("a.test."));
  ASSERT_EQ(m.additional.size(), 1u);
  EXPECT_EQ(m.additional[0].name, N("ns.child.a.test."));
}
