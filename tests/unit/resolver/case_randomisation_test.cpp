// 0x20 (resolver/upstream.hpp with_random_case / restore_case, ServerSelection's fallback) and
// the Extended DNS Error option serve-stale answers carry (RFC 8914).
#include <gtest/gtest.h>

#include <set>

#include "resolver/server_selection.hpp"
#include "resolver/upstream.hpp"

using namespace outpost::dns;
using outpost::IpAddress;

namespace {
Name N(const char* s) { return *Name::from_text(s); }
}  // namespace

TEST(Case0x20, RandomCaseIsTheSameNameSpelledDifferently) {
  const Name n = N("www.example-1.test.");
  std::set<std::string> spellings;
  for (int i = 0; i < 64; ++i) {
    Name r = with_random_case(n);
    EXPECT_EQ(r, n);  // case-insensitively equal
    EXPECT_EQ(r.wire().size(), n.wire().size());
    EXPECT_EQ(r.lowercase_wire(), n.lowercase_wire());  // digits, '-' and lengths untouched
    spellings.insert(r.wire());
  }
  // 15 letters: 2^15 spellings; 64 draws all alike would mean no randomness at all.
  EXPECT_GT(spellings.size(), 32u);
  EXPECT_EQ(with_random_case(Name::root()).wire(), Name::root().wire());
}

TEST(Case0x20, RestoreCasePutsTheAskedSpellingBack) {
  const Name asked = N("www.Example.test.");
  const Name sent = *Name::from_wire(std::string("\3wWw\7exAMplE\4TEst\0", 18));
  ASSERT_EQ(sent, asked);
  Message m;
  m.question = {{sent, type::A, kClassIN}};
  // What a server writes with compression pointers into the question: the owner, a parent
  // zone, a name below the zone; and a name it spells itself.
  m.answer = {{sent, type::CNAME, kClassIN, 60, RdataName{*Name::from_wire(std::string("\4host\7exAMplE\4TEst\0", 19))}}};
  m.authority = {{*Name::from_wire(std::string("\7exAMplE\4TEst\0", 14)), type::NS, kClassIN, 60,
                  RdataName{N("NS1.other.test.")}}};
  restore_case(&m, sent, asked);
  EXPECT_EQ(m.question[0].name.wire(), asked.wire());
  EXPECT_EQ(m.answer[0].name.wire(), asked.wire());
  EXPECT_EQ(std::get<RdataName>(m.answer[0].rdata).name.wire(), N("host.Example.test.").wire());
  EXPECT_EQ(m.authority[0].name.wire(), N("Example.test.").wire());
  // "NS1.other.test." shares only "test." with the sent name, and not in the sent spelling.
  EXPECT_EQ(std::get<RdataName>(m.authority[0].rdata).name.wire(), N("NS1.other.test.").wire());
}

TEST(Case0x20, ServerThatLosesTheCaseIsAskedWithoutForAWhile) {
  ServerSelection sel;
  const IpAddress a = *IpAddress::parse("192.0.2.53");
  EXPECT_TRUE(sel.use_0x20(a, 0));
  sel.report_case_mismatch(a, 0);
  EXPECT_TRUE(sel.use_0x20(a, 0));  // once may be a spoofer
  sel.report_rtt(a, 10);            // a good reply in between: not consistent
  sel.report_case_mismatch(a, 0);
  EXPECT_TRUE(sel.use_0x20(a, 0));
  sel.report_case_mismatch(a, 0);
  EXPECT_FALSE(sel.use_0x20(a, 0));  // twice in a row: it does not keep the case
  EXPECT_FALSE(sel.use_0x20(a, ServerSelection::kNo0x20Ms - 1));
  EXPECT_TRUE(sel.use_0x20(a, ServerSelection::kNo0x20Ms));  // then tried again
  EXPECT_FALSE(sel.dead(a, 0));  // a server that answers is not dead
}

TEST(ExtendedDnsError, StaleAnswerOptionOnTheWire) {
  Message m;
  m.header.qr = true;
  m.question = {{N("www.test."), type::A, kClassIN}};
  m.edns = Edns{};
  add_extended_error(&*m.edns, ede::STALE_ANSWER);
  EXPECT_EQ(m.edns->options, (std::vector<std::uint8_t>{0, 15, 0, 2, 0, 3}));
  add_extended_error(&*m.edns, 9, "hi");
  EXPECT_EQ(m.edns->options.size(), 6u + 8u);
  Message back;
  auto wire = write_message(m);
  ASSERT_EQ(parse_message(wire, &back), Status::ok);
  ASSERT_TRUE(back.edns);
  EXPECT_EQ(back.edns->options, m.edns->options);
}
