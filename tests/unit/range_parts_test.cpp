// Partial content arithmetic (proxy/range_parts): Content-Range and single range-specs,
// the PartSet (merge, cover, gaps, body offsets), parts metadata and strong validators.
#include "proxy/range_parts.hpp"

#include <gtest/gtest.h>

using namespace outpost::http;

namespace {
std::vector<ByteRange> R(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> l) {
  std::vector<ByteRange> v;
  for (auto [a, b] : l) v.push_back({a, b});
  return v;
}
}  // namespace

TEST(RangeParts, ContentRangeExactForm) {
  EXPECT_EQ(parse_content_range("bytes 0-9/100"), (ContentRange{0, 9, 100}));
  EXPECT_EQ(parse_content_range("Bytes 99-99/100"), (ContentRange{99, 99, 100}));
  for (const char* bad : {"bytes 0-9/*", "bytes */100", "bytes 9-0/100", "bytes 0-100/100", "bytes 0-9", "bytes=0-9/100",
                          "bytes -9/100", "bytes 0-9/", "bytes 0-9/1e3", "bytes 0 -9/100", "items 0-9/100",
                          "bytes 0-9/99999999999999999999", ""})
    EXPECT_FALSE(parse_content_range(bad)) << bad;
}

TEST(RangeParts, SingleRangeSpec) {
  auto a = parse_single_range("bytes=10-");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->first, 10u);
  EXPECT_FALSE(a->last);
  auto b = parse_single_range("bytes=10-20");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b->last, 20u);
  auto c = parse_single_range("bytes=-5");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->first);
  EXPECT_EQ(c->suffix, 5u);
  for (const char* bad : {"bytes=0-1,5-6", "bytes=5-1", "bytes=-0", "bytes=", "bytes=a-b", "items=0-1", "bytes=1"})
    EXPECT_FALSE(parse_single_range(bad)) << bad;
}

TEST(RangeParts, PartSetMergesOverlappingAndTouching) {
  PartSet s;
  s.add({100, 199});
  s.add({300, 399});
  EXPECT_EQ(s.ranges(), R({{100, 199}, {300, 399}}));
  s.add({200, 249});  // touches the first
  EXPECT_EQ(s.ranges(), R({{100, 249}, {300, 399}}));
  s.add({0, 9});
  EXPECT_EQ(s.ranges(), R({{0, 9}, {100, 249}, {300, 399}}));
  s.add({5, 350});  // swallows everything it meets
  EXPECT_EQ(s.ranges(), R({{0, 399}}));
  EXPECT_EQ(s.bytes(), 400u);
  EXPECT_TRUE(s.complete(400));
  EXPECT_FALSE(s.complete(401));
}

TEST(RangeParts, CoverGapsAndStored) {
  PartSet s;
  s.add({100, 199});
  s.add({300, 399});
  EXPECT_TRUE(s.covers({120, 150}));
  EXPECT_TRUE(s.covers({100, 199}));
  EXPECT_FALSE(s.covers({150, 300}));
  EXPECT_EQ(s.gaps({0, 499}), R({{0, 99}, {200, 299}, {400, 499}}));
  EXPECT_EQ(s.gaps({150, 350}), R({{200, 299}}));
  EXPECT_EQ(s.gaps({120, 130}), R({}));
  EXPECT_EQ(s.gaps({390, 420}), R({{400, 420}}));
  EXPECT_EQ(s.gaps({0, 50}), R({{0, 50}}));
  EXPECT_EQ(s.stored_within({150, 350}), R({{150, 199}, {300, 350}}));
  EXPECT_EQ(s.stored_within({200, 299}), R({}));
}

TEST(RangeParts, BodyOffsetsFollowTheStoredOrder) {
  PartSet s;
  s.add({300, 399});
  s.add({100, 199});
  EXPECT_EQ(s.body_offset(100), 0u);
  EXPECT_EQ(s.body_offset(199), 99u);
  EXPECT_EQ(s.body_offset(300), 100u);
  EXPECT_EQ(s.body_offset(399), 199u);
}

TEST(RangeParts, MetadataRoundTripAndStrictParse) {
  PartsMeta m;
  m.complete = 1000;
  m.parts.add({0, 99});
  m.parts.add({500, 599});
  m.resp.headers.add("ETag", "\"v1\"");
  m.resp.lifetime = 60;
  auto again = PartsMeta::parse(m.serialize());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->complete, 1000u);
  EXPECT_EQ(again->parts, m.parts);
  EXPECT_EQ(*again->resp.headers.find("ETag"), "\"v1\"");
  std::string resp = m.resp.serialize();
  std::string head(kPartsMagic);
  EXPECT_FALSE(PartsMeta::parse(head + "1000 2\n0 99\n50 599\n" + resp));   // overlapping
  EXPECT_FALSE(PartsMeta::parse(head + "1000 2\n0 99\n100 599\n" + resp));  // adjacent, not merged
  EXPECT_FALSE(PartsMeta::parse(head + "1000 1\n0 1000\n" + resp));         // past the end
  EXPECT_FALSE(PartsMeta::parse(head + "1000 0\n" + resp));
  EXPECT_FALSE(PartsMeta::parse(resp));
}

TEST(RangeParts, StrongValidators) {
  HeaderList a, b, weak, dated, recent;
  a.add("ETag", "\"v1\"");
  b.add("ETag", "\"v1\"");
  weak.add("ETag", "W/\"v1\"");
  EXPECT_EQ(strong_validator(a), "E\"v1\"");
  EXPECT_TRUE(same_representation(a, b));
  EXPECT_EQ(strong_validator(weak), "");
  EXPECT_FALSE(same_representation(weak, weak));
  // Last-Modified is strong only with a Date at least 60 s later (RFC 9110 §8.8.2.2).
  dated.add("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT");
  dated.add("Date", "Sun, 06 Nov 1994 08:50:37 GMT");
  recent.add("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT");
  recent.add("Date", "Sun, 06 Nov 1994 08:50:36 GMT");
  EXPECT_NE(strong_validator(dated), "");
  EXPECT_EQ(strong_validator(recent), "");
  EXPECT_TRUE(if_range_matches("Sun, 06 Nov 1994 08:49:37 GMT", dated));
  EXPECT_FALSE(if_range_matches("Sun, 06 Nov 1994 08:49:38 GMT", dated));
  EXPECT_TRUE(if_range_matches("\"v1\"", a));
  EXPECT_FALSE(if_range_matches("\"v2\"", a));
  EXPECT_FALSE(if_range_matches("W/\"v1\"", weak));
  HeaderList two;
  two.add("ETag", "\"v1\"");
  two.add("ETag", "\"v2\"");
  EXPECT_EQ(strong_validator(two), "");
}
