#include <gtest/gtest.h>

#include "resolver/dns_message.hpp"

using namespace outpost::dns;

namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<std::uint8_t> out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

// Header: id 0x1234, QR|RD|RA, given counts.
std::vector<std::uint8_t> header(int qd, int an, int ns = 0, int ar = 0) {
  return bytes({0x12, 0x34, 0x81, 0x80, 0, qd, 0, an, 0, ns, 0, ar});
}

void append(std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) { a.insert(a.end(), b.begin(), b.end()); }

Name N(const char* s) { return *Name::from_text(s); }

}  // namespace

TEST(DnsName, TextRoundTripAndCompare) {
  auto n = N("WWW.Example.COM.");
  EXPECT_EQ(n.to_text(), "WWW.Example.COM.");
  EXPECT_EQ(n, N("www.example.com"));
  EXPECT_EQ(n.label_count(), 3u);
  EXPECT_EQ(n.parent(), N("example.com."));
  EXPECT_EQ(n.suffix(1), N("com."));
  EXPECT_TRUE(n.is_subdomain_of(N("example.com")));
  EXPECT_TRUE(n.is_subdomain_of(Name::root()));
  EXPECT_FALSE(N("wwwexample.com").is_subdomain_of(N("example.com")));
  EXPECT_FALSE(N("example.com").is_subdomain_of(N("www.example.com")));
  EXPECT_EQ(N("a\\.b.c.").label_count(), 2u);
  EXPECT_EQ(N("a\\.b.c.").to_text(), "a\\.b.c.");
  EXPECT_EQ(N("\\065.x").first_label(), "A");
}

TEST(DnsName, RejectsOverlongLabelsAndNames) {
  EXPECT_FALSE(Name::from_text(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(Name::from_text(std::string(63, 'a') + ".com"));
  std::string longname;
  for (int i = 0; i < 4; ++i) longname += std::string(63, 'a') + ".";
  EXPECT_FALSE(Name::from_text(longname));  // 4*64 + 1 = 257 bytes
  EXPECT_FALSE(Name::from_text("a..b"));
}

TEST(DnsName, DnameSubstitution) {
  auto r = N("x.y.old.test").replace_suffix(N("old.test"), N("new.example"));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, N("x.y.new.example"));
}

TEST(DnsParse, SimpleAnswerWithCompression) {
  auto p = header(1, 2);
  append(p, bytes({3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}));
  // www.example. A 192.0.2.1, TTL 300 (name is a pointer to offset 12)
  append(p, bytes({0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2C, 0, 4, 192, 0, 2, 1}));
  // www.example. AAAA 2001:db8::1
  append(p, bytes({0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  Message m;
  ASSERT_EQ(parse_message(p, &m), Status::ok);
  EXPECT_EQ(m.header.id, 0x1234);
  EXPECT_TRUE(m.header.qr);
  EXPECT_TRUE(m.header.rd);
  EXPECT_TRUE(m.header.ra);
  ASSERT_EQ(m.question.size(), 1u);
  EXPECT_EQ(m.question[0].name, N("www.example."));
  ASSERT_EQ(m.answer.size(), 2u);
  EXPECT_EQ(m.answer[0].ttl, 300u);
  EXPECT_EQ(rr_to_text(m.answer[0]), "www.example.\t300\tIN\tA\t192.0.2.1");
  EXPECT_EQ(rdata_to_text(m.answer[1]), "2001:db8::1");
}

TEST(DnsParse, RejectsPointerLoop) {
  auto p = header(1, 0);
  append(p, bytes({0xC0, 12, 0, 1, 0, 1}));  // points at itself
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_pointer);
}

TEST(DnsParse, RejectsTwoPointerLoop) {
  auto p = header(1, 1);
  append(p, bytes({1, 'a', 0xC0, 20, 0, 1, 0, 1}));      // a.<ptr to 20>, offsets 12..19
  append(p, bytes({1, 'b', 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0}));  // 20: b.<ptr to 12>
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_pointer);
}

TEST(DnsParse, RejectsForwardPointer) {
  auto p = header(1, 0);
  append(p, bytes({0xC0, 18, 0, 1, 0, 1, 1, 'a', 0}));
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_pointer);
}

TEST(DnsParse, RejectsPointerPastEnd) {
  auto p = header(1, 0);
  append(p, bytes({0xFF, 0xFF, 0, 1, 0, 1}));
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_pointer);
}

TEST(DnsParse, RejectsOverlongNameBuiltFromPointers) {
  // Each owner name is 63 a's plus a pointer to the previous name: 65, 129, 193, 257 bytes.
  auto p = header(1, 3);
  std::vector<std::uint8_t> label(1, 63);
  label.insert(label.end(), 63, 'a');
  std::size_t prev = p.size();
  append(p, label);
  append(p, bytes({0, 0, 1, 0, 1}));
  for (int i = 0; i < 3; ++i) {
    std::size_t here = p.size();
    append(p, label);
    append(p, bytes({static_cast<int>(0xC0 | prev >> 8), static_cast<int>(prev & 0xFF), 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4}));
    prev = here;
  }
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::name_too_long);
  // With only two chained records the same message is fine.
  p[7] = 2;
  p.resize(p.size() - (64 + 16));
  ASSERT_EQ(parse_message(p, &m), Status::ok);
  EXPECT_EQ(m.answer[1].name.wire().size(), 193u);
}

TEST(DnsParse, RejectsReservedLabelTypes) {
  auto p = header(1, 0);
  append(p, bytes({0x41, 'a', 0, 0, 1, 0, 1}));
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_label_type);
}

TEST(DnsParse, RejectsTruncatedAndBadRdata) {
  auto p = header(1, 1);
  append(p, bytes({0, 0, 1, 0, 1}));
  append(p, bytes({0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5}));  // A with 5 bytes
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_rdata);
  p.resize(p.size() - 3);
  EXPECT_NE(parse_message(p, &m), Status::ok);
  EXPECT_EQ(parse_message(bytes({1, 2, 3}), &m), Status::truncated);
}

TEST(DnsParse, RejectsRdataNameOverrunningLength) {
  auto p = header(1, 1);
  append(p, bytes({0, 0, 2, 0, 1}));
  // NS record, rdlength 2 but name is 3 bytes
  append(p, bytes({0, 0, 2, 0, 1, 0, 0, 0, 1, 0, 2, 1, 'a', 0}));
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_rdata);
}

TEST(DnsParse, RejectsHugeCountsCheaply) {
  auto p = bytes({0, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF});
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::truncated);
}

TEST(DnsParse, RejectsTwoOptAndOptInAnswer) {
  auto p = header(1, 0, 0, 2);
  append(p, bytes({0, 0, 1, 0, 1}));
  append(p, bytes({0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0}));
  append(p, bytes({0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0}));
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::bad_opt);
  auto q = header(1, 1);
  append(q, bytes({0, 0, 1, 0, 1}));
  append(q, bytes({0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(parse_message(q, &m), Status::bad_opt);
}

TEST(DnsParse, EdnsAndExtendedRcode) {
  auto p = header(1, 0, 0, 1);
  append(p, bytes({0, 0, 1, 0, 1}));
  append(p, bytes({0, 0, 41, 0x04, 0xD0, 1, 0, 0x80, 0, 0, 0}));  // size 1232, ext rcode 1, DO
  Message m;
  ASSERT_EQ(parse_message(p, &m), Status::ok);
  ASSERT_TRUE(m.edns);
  EXPECT_EQ(m.edns->udp_size, 1232);
  EXPECT_TRUE(m.edns->do_bit);
  EXPECT_EQ(m.header.rcode, 16);  // BADVERS
  EXPECT_TRUE(m.additional.empty());
}

TEST(DnsParse, RejectsTrailingBytes) {
  auto p = header(1, 0);
  append(p, bytes({0, 0, 1, 0, 1, 0xAA}));
  Message m;
  EXPECT_EQ(parse_message(p, &m), Status::trailing_data);
}

TEST(DnsWrite, RoundTripAllTypesWithCompression) {
  Message m;
  m.header = {.id = 7, .qr = true, .aa = true, .rd = true, .rcode = rcode::NOERROR};
  m.question.push_back({N("example.test."), type::ANY, kClassIN});
  auto rr = [&](const char* owner, std::uint16_t t, Rdata d) { m.answer.push_back({N(owner), t, kClassIN, 60, std::move(d)}); };
  rr("example.test.", type::A, RdataA{{192, 0, 2, 1}});
  rr("example.test.", type::AAAA, RdataAaaa{{0x20, 1, 0xd, 0xb8}});
  rr("example.test.", type::NS, RdataName{N("ns1.example.test.")});
  rr("www.example.test.", type::CNAME, RdataName{N("example.test.")});
  rr("example.test.", type::SOA, RdataSoa{N("ns1.example.test."), N("admin.example.test."), 1, 2, 3, 4, 5});
  rr("example.test.", type::MX, RdataMx{10, N("mail.example.test.")});
  rr("example.test.", type::TXT, RdataTxt{{"hello", "", "world \"q\""}});
  rr("4.2.0.192.in-addr.arpa.", type::PTR, RdataName{N("example.test.")});
  rr("_sip._udp.example.test.", type::SRV, RdataSrv{1, 2, 5060, N("sip.example.test.")});
  rr("old.example.test.", type::DNAME, RdataName{N("new.example.test.")});
  rr("example.test.", 99, RdataOpaque{{1, 2, 3}});
  m.edns = Edns{};
  auto wire = write_message(m);
  Message back;
  ASSERT_EQ(parse_message(wire, &back), Status::ok);
  EXPECT_EQ(back, m);
  // Compression must make this much smaller than the sum of the uncompressed names.
  EXPECT_LT(wire.size(), 420u);
  EXPECT_EQ(wire[12 + 14 + 4], 0xC0);  // first answer owner is a pointer to the question name
}

TEST(DnsWrite, RepeatedLabelsNeverPointIntoTheNameBeingWritten) {
  // "a.a.test." must not compress its suffix "a.test." against its own first label.
  Message m;
  m.question.push_back({N("a.a.test."), type::A, kClassIN});
  m.answer.push_back({N("x.a.test."), type::A, kClassIN, 1, RdataA{{1, 2, 3, 4}}});
  m.answer.push_back({N("A.A.TEST."), type::A, kClassIN, 1, RdataA{{1, 2, 3, 5}}});
  auto wire = write_message(m);
  Message back;
  ASSERT_EQ(parse_message(wire, &back), Status::ok);
  EXPECT_EQ(back, m);
  EXPECT_EQ(wire.size(), 12u + 14u + (4 + 10 + 4) + (2 + 10 + 4));  // x.<ptr>, then a pointer to the question
}

TEST(DnsWrite, TruncatesToLimitWithTc) {
  Message m;
  m.header.qr = true;
  m.question.push_back({N("big.test."), type::TXT, kClassIN});
  for (int i = 0; i < 20; ++i) m.answer.push_back({N("big.test."), type::TXT, kClassIN, 5, RdataTxt{{std::string(100, 'x')}}});
  m.edns = Edns{};
  auto full = write_message(m);
  EXPECT_GT(full.size(), 1232u);
  auto cut = write_message(m, 512);
  EXPECT_LE(cut.size(), 512u);
  Message back;
  ASSERT_EQ(parse_message(cut, &back), Status::ok);
  EXPECT_TRUE(back.header.tc);
  EXPECT_LT(back.answer.size(), 20u);
  EXPECT_TRUE(back.edns);
  EXPECT_EQ(back.question, m.question);
}

TEST(DnsWrite, DroppingAdditionalDoesNotSetTc) {
  Message m;
  m.header.qr = true;
  m.question.push_back({N("x.test."), type::A, kClassIN});
  m.answer.push_back({N("x.test."), type::A, kClassIN, 5, RdataA{{1, 2, 3, 4}}});
  for (int i = 0; i < 40; ++i) m.additional.push_back({N("x.test."), type::TXT, kClassIN, 5, RdataTxt{{std::string(50, 'y')}}});
  auto cut = write_message(m, 512);
  Message back;
  ASSERT_EQ(parse_message(cut, &back), Status::ok);
  EXPECT_FALSE(back.header.tc);
  EXPECT_EQ(back.answer.size(), 1u);
}

TEST(DnsText, Types) {
  EXPECT_EQ(type_to_text(type::AAAA), "AAAA");
  EXPECT_EQ(type_to_text(4242), "TYPE4242");
  EXPECT_EQ(type_from_text("mx"), type::MX);
  EXPECT_EQ(type_from_text("TYPE65"), 65);
  EXPECT_FALSE(type_from_text("BOGUS"));
}
