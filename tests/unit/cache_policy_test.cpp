// RFC 9111 arithmetic with a controllable clock: every time is an argument.
#include "proxy/cache_policy.hpp"
#include "proxy/http_cache.hpp"

#include <gtest/gtest.h>

using namespace outpost::http;

namespace {
HeaderList headers(std::initializer_list<std::pair<const char*, const char*>> l) {
  HeaderList h;
  for (auto& [k, v] : l) h.add(k, v);
  return h;
}
constexpr std::int64_t T0 = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
CachePolicyConfig cfg;
}  // namespace

TEST(HttpDate, ThreeFormats) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), T0);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), T0);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), T0);
  EXPECT_FALSE(parse_http_date("0"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"));
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
  EXPECT_EQ(parse_http_date("Thu Feb 29 00:00:00 2024"), 1709164800);
  EXPECT_EQ(parse_http_date("Thursday, 29-Feb-24 00:00:00 GMT"), 1709164800);
}

TEST(HttpDate, OnlyTheExactFormsAreDates) {
  // RFC 9110 §5.6.7: spacing, tokens and digit counts as the grammar writes them.
  for (const char* bad : {
           "Sun, 06 Nov 1994 08:49:37 UTC",      // not GMT
           "Sun, 06 Nov 1994 08:49:37 gmt",      // case
           "sun, 06 Nov 1994 08:49:37 GMT",      // day name case
           "Sun, 06 nov 1994 08:49:37 GMT",      // month case
           "Sun,  06 Nov 1994 08:49:37 GMT",     // two spaces
           "Sun, 6 Nov 1994 08:49:37 GMT",       // one-digit day
           "Sun, 06 Nov 94 08:49:37 GMT",        // two-digit year in IMF-fixdate
           "Sun, 06 Nov 1994 8:49:37 GMT",       // one-digit hour
           "Sun, 06 Nov 1994 08:49:37",          // no zone
           "Sun 06 Nov 1994 08:49:37 GMT",       // no comma
           "Foo, 06 Nov 1994 08:49:37 GMT",      // no such day
           "Sun, 31 Nov 1994 08:49:37 GMT",      // no such date
           "Tue, 29 Feb 2023 08:49:37 GMT",      // not a leap year
           "Sun, +6 Nov 1994 08:49:37 GMT",      // a sign
           "Sun, 06 Nov 1994 08:49:37 GMT ",     // trailing space
           " Sun, 06 Nov 1994 08:49:37 GMT",     // leading space
           "Sun, 06 Nov 1994 08:60:37 GMT",      // minute 60
           "Sunday, 6-Nov-94 08:49:37 GMT",      // RFC 850 one-digit day
           "Sun, 06-Nov-94 08:49:37 GMT",        // RFC 850 with a short day name
           "Sunday, 06-Nov-1994 08:49:37 GMT",   // RFC 850 four-digit year
           "Sunday,06-Nov-94 08:49:37 GMT",      // no space
           "Sun Nov 6 08:49:37 1994",            // asctime single space before a one-digit day
           "Sun Nov 06 08:49:37 1994",           // asctime zero-padded day
           "Sun Nov  6 08:49:37 94",             // asctime two-digit year
           "Sun Nov  6 08:49:37 1994 GMT",       // asctime with a zone
           "1994-11-06T08:49:37Z", "-1", "0", ""})
    EXPECT_FALSE(parse_http_date(bad)) << bad;
  EXPECT_EQ(parse_http_date("Sun Nov 16 08:49:37 1994"), T0 + 10 * 86400);
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:60 GMT"), T0 + 23);  // a leap second
}

TEST(AgeField, OneNonNegativeIntegerOrInvalid) {
  bool invalid = true;
  EXPECT_FALSE(parse_age(headers({{"Date", "x"}}), &invalid));
  EXPECT_FALSE(invalid);
  EXPECT_EQ(parse_age(headers({{"Age", "0"}}), &invalid), 0);
  EXPECT_FALSE(invalid);
  EXPECT_EQ(parse_age(headers({{"age", "3600"}}), &invalid), 3600);
  EXPECT_EQ(parse_age(headers({{"Age", "99999999999999999999999"}}), &invalid), kDeltaInfinity);  // saturated
  EXPECT_FALSE(invalid);
  for (const char* bad : {"-1", "+5", "1.5", "\"10\"", "10, 20", "10 20", "abc", "0x10", ""}) {
    EXPECT_FALSE(parse_age(headers({{"Age", bad}}), &invalid)) << bad;
    EXPECT_TRUE(invalid) << bad;
  }
  EXPECT_FALSE(parse_age(headers({{"Age", "10"}, {"Age", "10"}}), &invalid));
  EXPECT_TRUE(invalid);
}

TEST(Freshness, InvalidAgeExpiresOrDateMeansStale) {
  const char* date = "Sun, 06 Nov 1994 08:49:37 GMT";
  auto h = headers({{"Date", date}, {"Cache-Control", "max-age=100"}, {"Age", "5"}});
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 100);
  for (const char* bad : {"-5", "5, 6", "\"5\"", "five"}) {
    h.set("Age", bad);
    EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 0) << bad;
  }
  h.set("Age", "5");
  h.add("Age", "5");
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 0);
  // Expires - Date: either not an exact HTTP-date, or given twice, is stale.
  auto e = headers({{"Date", date}, {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"}});
  EXPECT_EQ(freshness_lifetime(200, e, CacheControl::parse(e), cfg, "u"), 3600);
  e.set("Expires", "Sun, 06 Nov 1994 09:49:37 UTC");
  EXPECT_EQ(freshness_lifetime(200, e, CacheControl::parse(e), cfg, "u"), 0);
  e.set("Expires", "Sun, 06 Nov 1994 09:49:37 GMT");
  e.set("Date", "Sun,  06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(freshness_lifetime(200, e, CacheControl::parse(e), cfg, "u"), 0);
  e.set("Date", date);
  e.add("Expires", "Sun, 06 Nov 1994 10:49:37 GMT");
  EXPECT_EQ(freshness_lifetime(200, e, CacheControl::parse(e), cfg, "u"), 0);
}

TEST(CacheControl, Directives) {
  auto cc = CacheControl::parse(headers({{"Cache-Control", "max-age=60, s-maxage=\"30\", must-revalidate"},
                                         {"cache-control", "no-cache=\"Set-Cookie, X\", stale-if-error=5"}}));
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 30);
  EXPECT_TRUE(cc.must_revalidate);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_EQ(cc.stale_if_error, 5);
  auto req = CacheControl::parse(headers({{"Cache-Control", "max-stale, min-fresh=10, only-if-cached"}}));
  EXPECT_EQ(req.max_stale, kDeltaInfinity);
  EXPECT_EQ(req.min_fresh, 10);
  EXPECT_TRUE(req.only_if_cached);
  EXPECT_EQ(CacheControl::parse(headers({{"Cache-Control", "max-age=abc"}})).max_age, 0);
  EXPECT_EQ(CacheControl::parse(headers({{"Cache-Control", "max-age=99999999999999999999999"}})).max_age, kDeltaInfinity);
}

TEST(CacheControl, PragmaNoCacheOnlyWithoutCacheControl) {
  EXPECT_TRUE(CacheControl::parse(headers({{"Pragma", "no-cache"}})).no_cache);
  EXPECT_FALSE(CacheControl::parse(headers({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}})).no_cache);
}

TEST(Freshness, Section4_2_1_Order) {
  auto h = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"},
                    {"Cache-Control", "max-age=100, s-maxage=50"}});
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 50);
  h.set("Cache-Control", "max-age=100");
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 100);
  h.remove("Cache-Control");
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 3600);
  h.set("Expires", "0");
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 0);
}

TEST(Freshness, HeuristicTenPercentCapped) {
  auto h = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Last-Modified", "Sun, 06 Nov 1994 06:49:37 GMT"}});
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 720);  // 10% of 2 h
  h.set("Last-Modified", "Sun, 06 Nov 1984 08:49:37 GMT");
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), cfg, "u"), 86400);  // capped
  EXPECT_EQ(freshness_lifetime(302, h, CacheControl::parse(h), cfg, "u"), 0);      // not heuristically cacheable
}

TEST(Freshness, RefreshRules) {
  CachePolicyConfig c;
  RefreshRule r;
  r.pattern = "\\.png$";
  r.min = 600;
  r.percent = 50;
  r.max = 7200;
  ASSERT_TRUE(r.compile(nullptr));
  c.rules.push_back(r);
  auto h = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Last-Modified", "Sun, 06 Nov 1994 06:49:37 GMT"}});
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), c, "http://a/x.png"), 3600);
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), c, "http://a/x.html"), 720);
  h.remove("Last-Modified");
  EXPECT_EQ(freshness_lifetime(200, h, CacheControl::parse(h), c, "http://a/x.png"), 600);
  RefreshRule bad;
  bad.pattern = "(";
  std::string err;
  EXPECT_FALSE(bad.compile(&err));
}

TEST(Age, Section4_2_3) {
  StoredResponse r;
  r.request_time = T0 - 2;
  r.response_time = T0 + 3;  // 5 s response delay
  r.headers = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Age", "10"}});
  // apparent_age = max(0, T0+3 - T0) = 3; corrected_age_value = 10 + 5 = 15; initial = 15
  EXPECT_EQ(current_age(r, T0 + 3), 15);
  EXPECT_EQ(current_age(r, T0 + 103), 115);
  // A Date in the future (clock skew) never makes the age negative.
  r.headers = headers({{"Date", "Sun, 06 Nov 1994 09:49:37 GMT"}});
  EXPECT_EQ(current_age(r, T0 + 3), 5);
}

TEST(Evaluate, FreshStaleAndRequestDirectives) {
  StoredResponse r;
  r.request_time = r.response_time = T0;
  r.lifetime = 100;
  r.headers = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  std::int64_t age;
  CacheControl none;
  EXPECT_EQ(evaluate(r, none, T0 + 50, &age), Usability::kFresh);
  EXPECT_EQ(age, 50);
  EXPECT_EQ(evaluate(r, none, T0 + 100, &age), Usability::kMustValidate);
  CacheControl max_age;
  max_age.max_age = 10;
  EXPECT_EQ(evaluate(r, max_age, T0 + 50, &age), Usability::kMustValidate);
  CacheControl min_fresh;
  min_fresh.min_fresh = 60;
  EXPECT_EQ(evaluate(r, min_fresh, T0 + 50, &age), Usability::kMustValidate);
  CacheControl max_stale;
  max_stale.max_stale = 30;
  EXPECT_EQ(evaluate(r, max_stale, T0 + 120, &age), Usability::kStaleServable);
  EXPECT_EQ(evaluate(r, max_stale, T0 + 140, &age), Usability::kMustValidate);
  CacheControl no_cache;
  no_cache.no_cache = true;
  EXPECT_EQ(evaluate(r, no_cache, T0 + 1, &age), Usability::kMustValidate);
  r.headers.add("Cache-Control", "must-revalidate");
  EXPECT_EQ(evaluate(r, max_stale, T0 + 120, &age), Usability::kMustValidate);
}

TEST(Evaluate, Rfc5861) {
  StoredResponse r;
  r.request_time = r.response_time = T0;
  r.lifetime = 10;
  r.headers = headers({{"Cache-Control", "max-age=10, stale-while-revalidate=20, stale-if-error=60"}});
  CacheControl none;
  EXPECT_EQ(evaluate(r, none, T0 + 25, nullptr), Usability::kStaleWhileRevalidate);
  EXPECT_EQ(evaluate(r, none, T0 + 31, nullptr), Usability::kMustValidate);
  EXPECT_TRUE(stale_if_error_allows(r, none, T0 + 60));
  EXPECT_FALSE(stale_if_error_allows(r, none, T0 + 80));
}

TEST(Storable, Section3) {
  CacheControl none;
  std::string why;
  auto ok = headers({{"Cache-Control", "max-age=60"}});
  auto cc = CacheControl::parse(ok);
  EXPECT_TRUE(is_storable("GET", {}, none, 200, ok, cc, cfg, "u", &why)) << why;
  EXPECT_FALSE(is_storable("POST", {}, none, 200, ok, cc, cfg, "u", &why));
  EXPECT_FALSE(is_storable("GET", {}, none, 206, ok, cc, cfg, "u", &why));
  CacheControl req_no_store;
  req_no_store.no_store = true;
  EXPECT_FALSE(is_storable("GET", {}, req_no_store, 200, ok, cc, cfg, "u", &why));
  auto priv = headers({{"Cache-Control", "private, max-age=60"}});
  EXPECT_FALSE(is_storable("GET", {}, none, 200, priv, CacheControl::parse(priv), cfg, "u", &why));
  auto auth = headers({{"Authorization", "Basic x"}});
  EXPECT_FALSE(is_storable("GET", auth, none, 200, ok, cc, cfg, "u", &why));
  auto pub = headers({{"Cache-Control", "public, max-age=60"}});
  EXPECT_TRUE(is_storable("GET", auth, none, 200, pub, CacheControl::parse(pub), cfg, "u", &why));
  auto cookie = headers({{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}});
  EXPECT_FALSE(is_storable("GET", {}, none, 200, cookie, CacheControl::parse(cookie), cfg, "u", &why));
  auto nothing = headers({});
  EXPECT_FALSE(is_storable("GET", {}, none, 200, nothing, CacheControl::parse(nothing), cfg, "u", &why));
  auto lm = headers({{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  EXPECT_TRUE(is_storable("GET", {}, none, 200, lm, CacheControl::parse(lm), cfg, "u", &why));
  EXPECT_FALSE(is_storable("GET", {}, none, 302, lm, CacheControl::parse(lm), cfg, "u", &why));
  auto explicit302 = headers({{"Cache-Control", "max-age=5"}});
  EXPECT_TRUE(is_storable("GET", {}, none, 302, explicit302, CacheControl::parse(explicit302), cfg, "u", &why));
  auto star = headers({{"Cache-Control", "max-age=5"}, {"Vary", "*"}});
  EXPECT_FALSE(is_storable("GET", {}, none, 200, star, CacheControl::parse(star), cfg, "u", &why));
}

TEST(Vary, SecondaryKey) {
  StoredResponse r;
  record_vary(headers({{"Vary", "Accept-Encoding, accept-language"}}),
              headers({{"Accept-Encoding", "gzip,  br"}, {"Accept-Language", "en"}}), &r);
  EXPECT_TRUE(vary_matches(r, headers({{"accept-encoding", "gzip, br"}, {"Accept-Language", "en"}})));
  EXPECT_FALSE(vary_matches(r, headers({{"Accept-Encoding", "gzip"}, {"Accept-Language", "en"}})));
  EXPECT_FALSE(vary_matches(r, headers({{"Accept-Encoding", "gzip, br"}})));
  StoredResponse absent;
  record_vary(headers({{"Vary", "X-A"}}), headers({}), &absent);
  EXPECT_TRUE(vary_matches(absent, headers({})));
  EXPECT_FALSE(vary_matches(absent, headers({{"X-A", "1"}})));
  StoredResponse star;
  record_vary(headers({{"Vary", "*"}}), headers({}), &star);
  EXPECT_FALSE(vary_matches(star, headers({})));
}

TEST(Conditional, WeakComparison) {
  EXPECT_TRUE(if_none_match("\"a\"", "\"a\""));
  EXPECT_TRUE(if_none_match("W/\"a\"", "\"a\""));
  EXPECT_TRUE(if_none_match("\"x\", W/\"a\"", "W/\"a\""));
  EXPECT_FALSE(if_none_match("\"b\"", "\"a\""));
  EXPECT_TRUE(if_none_match("*", "\"a\""));
  EXPECT_FALSE(if_none_match("\"a\"", ""));
}

using Kind = RangePlan::Kind;
using Ranges = std::vector<ByteRange>;

TEST(Ranges, ParseAndClamp) {
  auto p = plan_ranges("bytes=0-9", 100);
  EXPECT_EQ(p.kind, Kind::kPartial);
  EXPECT_EQ(p.ranges, (Ranges{{0, 9}}));
  EXPECT_EQ(plan_ranges("bytes=50-500", 100).ranges, (Ranges{{50, 99}}));
  EXPECT_EQ(plan_ranges("bytes=-5", 100).ranges, (Ranges{{95, 99}}));
  EXPECT_EQ(plan_ranges("bytes=-500", 100).ranges, (Ranges{{0, 99}}));
  EXPECT_EQ(plan_ranges("Bytes = 1-2", 100).kind, Kind::kIgnore);  // no space allowed before '='
  EXPECT_EQ(plan_ranges("BYTES=1-2", 100).ranges, (Ranges{{1, 2}}));  // the unit is case-insensitive
  EXPECT_EQ(plan_ranges("bytes=200-300", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(plan_ranges("bytes=-0", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(plan_ranges("bytes=0-0", 0).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(plan_ranges("bytes=200-300, 5-6", 100).ranges, (Ranges{{5, 6}}));  // unsatisfiable parts dropped
  EXPECT_EQ(plan_ranges("bytes=9-1", 100).kind, Kind::kIgnore);
  EXPECT_EQ(plan_ranges("items=1-2", 100).kind, Kind::kIgnore);
  EXPECT_EQ(plan_ranges("bytes=a-b", 100).kind, Kind::kIgnore);
  EXPECT_EQ(plan_ranges("bytes=1-2,x", 100).kind, Kind::kIgnore);  // one bad spec spoils the set
  EXPECT_EQ(plan_ranges("bytes=", 100).kind, Kind::kIgnore);
  EXPECT_EQ(plan_ranges("bytes=+1-2", 100).kind, Kind::kIgnore);
  EXPECT_EQ(plan_ranges("bytes=--1", 100).kind, Kind::kIgnore);
}

TEST(Ranges, SingleRangeCoveringEverythingStays206) {
  // "bytes=0-" is how resuming clients probe; it keeps its 206.
  auto p = plan_ranges("bytes=0-", 100);
  EXPECT_EQ(p.kind, Kind::kPartial);
  EXPECT_EQ(p.ranges, (Ranges{{0, 99}}));
}

TEST(Ranges, OverlappingRangesAreCoalesced) {
  EXPECT_EQ(plan_ranges("bytes=0-9, 5-14", 100).ranges, (Ranges{{0, 14}}));
  EXPECT_EQ(plan_ranges("bytes=10-19, 12-13", 100).ranges, (Ranges{{10, 19}}));  // contained
  EXPECT_EQ(plan_ranges("bytes=10-19, 10-19, 10-19", 100).ranges, (Ranges{{10, 19}}));
  EXPECT_EQ(plan_ranges("bytes=90-, -5, 10-19", 100).ranges, (Ranges{{90, 99}, {10, 19}}));
}

TEST(Ranges, AdjacentRangesAreCoalesced) {
  EXPECT_EQ(plan_ranges("bytes=0-9, 10-19", 100).ranges, (Ranges{{0, 19}}));
  EXPECT_EQ(plan_ranges("bytes=20-29, 10-19, 0-9", 100).ranges, (Ranges{{0, 29}}));
  EXPECT_EQ(plan_ranges("bytes=0-9, 11-19", 100).ranges, (Ranges{{0, 9}, {11, 19}}));  // a one-byte gap stays
}

TEST(Ranges, PartsKeepRequestOrder) {
  // RFC 9110 §14.6: parts in the order the ranges were asked for, less what was coalesced;
  // a merged part sits where its earliest range-spec was.
  EXPECT_EQ(plan_ranges("bytes=50-59, 0-9", 100).ranges, (Ranges{{50, 59}, {0, 9}}));
  EXPECT_EQ(plan_ranges("bytes=70-79, 20-29, 75-85, 0-4", 100).ranges, (Ranges{{70, 85}, {20, 29}, {0, 4}}));
  EXPECT_EQ(plan_ranges("bytes=80-89, 0-4, 2-85", 100).ranges, (Ranges{{0, 89}}));
}

TEST(Ranges, SuffixRangesMerge) {
  EXPECT_EQ(plan_ranges("bytes=-10, 85-94", 100).ranges, (Ranges{{85, 99}}));
  EXPECT_EQ(plan_ranges("bytes=-10, -20", 100).ranges, (Ranges{{80, 99}}));
}

TEST(Ranges, SeveralRangesCoveringTheWholeObjectGetTheWholeObject) {
  // The amplification attack: many overlapping "0-" ranges.
  std::string many = "bytes=0-";
  for (int i = 1; i < 32; ++i) many += ",0-";
  EXPECT_EQ(plan_ranges(many, 8u << 20).kind, Kind::kWhole);
  EXPECT_EQ(plan_ranges("bytes=0-49, 50-", 100).kind, Kind::kWhole);
  EXPECT_EQ(plan_ranges("bytes=-60, 0-39", 100).kind, Kind::kWhole);
  EXPECT_EQ(plan_ranges("bytes=0-, 500-600", 100).kind, Kind::kWhole);
  EXPECT_EQ(plan_ranges("bytes=0-98, 50-60", 100).kind, Kind::kPartial);  // one byte short
}

TEST(Ranges, TooManyRangesAreIgnored) {
  std::string spec = "bytes=";
  for (std::size_t i = 0; i < kMaxRangeSpecs; ++i) spec += (i ? "," : "") + std::to_string(i * 10) + "-" + std::to_string(i * 10);
  auto p = plan_ranges(spec, 1000);
  ASSERT_EQ(p.kind, Kind::kPartial);
  EXPECT_EQ(p.ranges.size(), kMaxRangeSpecs);  // many small disjoint ranges, up to the cap
  spec += ",999-999";
  EXPECT_EQ(plan_ranges(spec, 1000).kind, Kind::kIgnore);
  // Empty list elements do not count and do not spoil the set.
  EXPECT_EQ(plan_ranges("bytes=1-2,,,4-5", 100).ranges, (Ranges{{1, 2}, {4, 5}}));
}

TEST(Ranges, HugeNumbersDoNotOverflow) {
  constexpr std::uint64_t kMax = UINT64_MAX;
  EXPECT_EQ(plan_ranges("bytes=0-99999999999999999999999999", 100).ranges, (Ranges{{0, 99}}));
  EXPECT_EQ(plan_ranges("bytes=18446744073709551615-", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(plan_ranges("bytes=99999999999999999999999999-", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(plan_ranges("bytes=-99999999999999999999999999", 100).ranges, (Ranges{{0, 99}}));
  // An object of the largest size: the last byte is kMax - 1, the coalescing step adds one.
  EXPECT_EQ(plan_ranges("bytes=18446744073709551610-, 0-0", kMax).ranges, (Ranges{{kMax - 5, kMax - 1}, {0, 0}}));
  EXPECT_EQ(plan_ranges("bytes=18446744073709551613-18446744073709551614, -1", kMax).ranges,
            (Ranges{{kMax - 2, kMax - 1}}));
  EXPECT_EQ(plan_ranges("bytes=5-18446744073709551614, 0-4", kMax).kind, Kind::kWhole);
}

TEST(StoredResponse, RoundTrip) {
  StoredResponse r;
  r.status = 203;
  r.reason = "Non-Authoritative Information";
  r.minor = 0;
  r.request_time = 5;
  r.response_time = 7;
  r.lifetime = 99;
  r.headers = headers({{"Content-Type", "text/plain"}, {"ETag", "\"x\""}, {"Empty", ""}});
  r.vary = {{"accept-encoding", "gzip"}, {"x-none", ""}};
  auto back = StoredResponse::parse(r.serialize());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, 203);
  EXPECT_EQ(back->reason, r.reason);
  EXPECT_EQ(back->minor, 0);
  EXPECT_EQ(back->lifetime, 99);
  EXPECT_EQ(back->headers.size(), 3u);
  EXPECT_EQ(*back->headers.find("etag"), "\"x\"");
  EXPECT_EQ(back->vary, r.vary);
  EXPECT_FALSE(StoredResponse::parse("garbage"));
  EXPECT_FALSE(StoredResponse::parse(r.serialize().substr(0, 20)));
}

TEST(Conditionals, NotModifiedForA200) {
  auto resp = headers({{"ETag", "W/\"v1\""}, {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  EXPECT_TRUE(not_modified_for(headers({{"If-None-Match", "\"v0\", \"v1\""}}), resp));  // weak comparison
  EXPECT_TRUE(not_modified_for(headers({{"If-None-Match", "*"}}), resp));
  EXPECT_FALSE(not_modified_for(headers({{"If-None-Match", "\"v2\""}}), resp));
  // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
  EXPECT_FALSE(not_modified_for(headers({{"If-None-Match", "\"v2\""}, {"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}), resp));
  EXPECT_TRUE(not_modified_for(headers({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}), resp));
  EXPECT_TRUE(not_modified_for(headers({{"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}}), resp));
  EXPECT_FALSE(not_modified_for(headers({{"If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT"}}), resp));
  EXPECT_FALSE(not_modified_for(headers({{"If-Modified-Since", "Sun,  06 Nov 1994 08:49:37 GMT"}}), resp));  // not a date
  EXPECT_FALSE(not_modified_for(headers({{"If-None-Match", "\"v1\""}}), headers({})));  // no ETag
  EXPECT_FALSE(not_modified_for(headers({}), resp));
}

// The per-thread parse memo answers by the bytes, never by where they are: a buffer that
// held one object's metadata and now holds another's (same address, same length) parses as
// the new one.
TEST(StoredResponse, ParseMemoGoesByTheBytesNotTheAddress) {
  StoredResponse a;
  a.headers = headers({{"ETag", "\"aaaa\""}});
  StoredResponse b = a;
  b.headers = headers({{"ETag", "\"bbbb\""}});
  std::string buf = a.serialize();
  ASSERT_EQ(buf.size(), b.serialize().size());
  auto first = parse_stored_response(buf);
  ASSERT_TRUE(first);
  EXPECT_EQ(parse_stored_response(buf), first);  // the same bytes: the memo's copy
  std::string copy = buf;  // the same bytes elsewhere: a parse of them (in its own slot)
  EXPECT_EQ(*parse_stored_response(copy)->headers.find("ETag"), "\"aaaa\"");
  buf = b.serialize();  // same length: the string keeps its buffer
  auto second = parse_stored_response(buf);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second->headers.find("ETag"), "\"bbbb\"");
  EXPECT_EQ(*first->headers.find("ETag"), "\"aaaa\"");  // a holder's copy never changes
  EXPECT_FALSE(parse_stored_response("garbage"));
}

// A head reused from answer to answer shows only the latest answer's fields; the stored
// Content-Length is kept, dropped or replaced; Age, Via, X-Cache and Cache-Status are ours.
TEST(StoredResponse, FilledHeadReusedAcrossAnswers) {
  StoredResponse m;
  m.status = 200;
  m.reason = "Fine";
  m.headers = headers({{"Content-Type", "text/plain"}, {"Content-Length", "5"}, {"Age", "9"}, {"Via", "1.0 up"},
                       {"X-Cache", "MISS from up"}, {"Cache-Status", "up"}, {"X-Extra-Field-With-A-Long-Name", "v"}});
  ResponseHead head;
  fill_stored_response_head(head, m, 200, 7, "op", true, "op; hit", true, nullptr, {}, 123);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& f : head.headers) got.emplace_back(f.name, f.value);
  std::vector<std::pair<std::string, std::string>> want = {
      {"Content-Type", "text/plain"}, {"X-Extra-Field-With-A-Long-Name", "v"}, {"Content-Length", "123"},
      {"Age", "7"}, {"Via", "1.0 up, 1.1 op"}, {"X-Cache", "HIT from op"}, {"Cache-Status", "op; hit"}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(head.reason, "Fine");

  StoredResponse small;
  small.status = 204;
  small.headers = headers({{"Content-Length", "0"}});
  fill_stored_response_head(head, small, 204, -3, "op", false, "x", false, nullptr, {}, kDropLength);
  got.clear();
  for (const auto& f : head.headers) got.emplace_back(f.name, f.value);
  want = {{"Age", "0"}, {"X-Cache", "MISS from op"}, {"Cache-Status", "x"}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(head.status, 204);
  EXPECT_EQ(head.headers.find("Content-Type"), nullptr);  // the earlier answer's fields are gone

  fill_stored_response_head(head, m, 200, 1, "op", false, "x", true);  // kKeepLength
  EXPECT_EQ(*head.headers.find("Content-Length"), "5");
  fill_stored_response_head(head, m, 304, 1, "op", false, "x", true);
  EXPECT_EQ(head.headers.find("Content-Length"), nullptr);  // a 304 has no framing of its own
  EXPECT_EQ(head.reason, "");
  EXPECT_EQ(stored_response_head(m, 200, 1, "op", false, "x", true).headers.size(), 6u);
}

TEST(Vary, AcceptEncodingComparedAsTheSetOfCodingsAccepted) {
  StoredResponse r;
  auto vary = headers({{"Vary", "Accept-Encoding"}});
  record_vary(vary, headers({{"Accept-Encoding", "gzip, deflate, br"}}), &r);
  EXPECT_EQ(r.vary.at(0).second, "br,deflate,gzip");
  for (const char* same : {"br, gzip, deflate", "GZIP;q=1.0, Deflate, br;q=0.5", "gzip,deflate,br,gzip",
                           "x-gzip, deflate, br", "gzip, deflate, br, identity", "gzip, deflate, br, zz;q=0"})
    EXPECT_TRUE(vary_matches(r, headers({{"Accept-Encoding", same}}))) << same;
  for (const char* other : {"gzip, deflate", "gzip, deflate, br;q=0", "gzip, deflate, br, zstd", "*", ""})
    EXPECT_FALSE(vary_matches(r, headers({{"Accept-Encoding", other}}))) << other;
  EXPECT_FALSE(vary_matches(r, headers({})));
  // Nothing but identity is not "absent" (absent accepts any coding).
  StoredResponse plain;
  record_vary(vary, headers({{"Accept-Encoding", ""}}), &plain);
  EXPECT_EQ(plain.vary.at(0).second, "identity");
  EXPECT_TRUE(vary_matches(plain, headers({{"Accept-Encoding", "identity;q=0.5"}})));
  EXPECT_FALSE(vary_matches(plain, headers({})));
  StoredResponse no_identity;
  record_vary(vary, headers({{"Accept-Encoding", "gzip, identity;q=0"}}), &no_identity);
  EXPECT_EQ(no_identity.vary.at(0).second, "gzip,!identity");
  EXPECT_FALSE(vary_matches(no_identity, headers({{"Accept-Encoding", "gzip"}})));
}

TEST(Vary, AcceptLanguageComparedAsTheRangesInOrderOfPreference) {
  StoredResponse r;
  auto vary = headers({{"Vary", "Accept-Language"}});
  record_vary(vary, headers({{"Accept-Language", "en-US,en;q=0.9,de;q=0.8"}}), &r);
  EXPECT_EQ(r.vary.at(0).second, "en-us,en,de");
  for (const char* same : {"en-us, en;q=0.5, de;q=0.1", "de;q=0.2, en-US, en;q=0.7", "EN-US,en;q=0.9,de;q=0.8,fr;q=0",
                           "en-US;q=1.000,en;q=0.900,de;q=0.800"})
    EXPECT_TRUE(vary_matches(r, headers({{"Accept-Language", same}}))) << same;
  for (const char* other : {"en,en-US,de", "en-US,en", "de,en-US,en", "en-US,en;q=0.9,de;q=0.8,fr"})
    EXPECT_FALSE(vary_matches(r, headers({{"Accept-Language", other}}))) << other;
  // Malformed weights count as absent (1), never crash.
  StoredResponse odd;
  record_vary(vary, headers({{"Accept-Language", "en;q=, de;q=2, fr;q=0.1234, it;q"}}), &odd);
  EXPECT_EQ(odd.vary.at(0).second, "en,de,fr,it");
}

TEST(TargetedCacheControl, Rfc9213DictionaryParsed) {
  auto cc = CacheControl::parse_targeted(headers({{"CDN-Cache-Control", "max-age=600, must-revalidate, stale-if-error=5"}}),
                                         "cdn-cache-control");
  ASSERT_TRUE(cc);
  EXPECT_EQ(cc->max_age, 600);
  EXPECT_TRUE(cc->must_revalidate);
  EXPECT_EQ(cc->stale_if_error, 5);
  auto flags = CacheControl::parse_targeted(headers({{"CDN-Cache-Control", "no-store, private=?0;x=1, no-cache=?1"}}),
                                            "CDN-Cache-Control");
  ASSERT_TRUE(flags);
  EXPECT_TRUE(flags->no_store);
  EXPECT_FALSE(flags->is_private);  // ?0: false
  EXPECT_TRUE(flags->no_cache);
  EXPECT_EQ(CacheControl::parse_targeted(headers({{"CDN-Cache-Control", "max-age=-5"}}), "CDN-Cache-Control")->max_age, 0);
  EXPECT_EQ(CacheControl::parse_targeted(headers({{"CDN-Cache-Control", "max-age=\"60\""}}), "CDN-Cache-Control")->max_age, 0);
  // Not a valid dictionary, empty or absent: nullopt (Cache-Control governs).
  for (const char* bad : {"", "Max-Age=60", "max-age=60,", "max-age=60 no-store", "max-age==1", "max-age=6x", "max-age=\"x",
                          ", max-age=1", "max-age=1.", "no-store;", "no-store=?2"})
    EXPECT_FALSE(CacheControl::parse_targeted(headers({{"CDN-Cache-Control", bad}}), "CDN-Cache-Control")) << bad;
  EXPECT_FALSE(CacheControl::parse_targeted(headers({{"Cache-Control", "max-age=1"}}), "CDN-Cache-Control"));
  EXPECT_FALSE(CacheControl::parse_targeted(headers({{"CDN-Cache-Control", "max-age=1"}}), ""));
}

TEST(TargetedCacheControl, TakesPrecedenceOverCacheControlAndExpires) {
  CachePolicyConfig t;
  t.targeted_field = "CDN-Cache-Control";
  auto h = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"},
                    {"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=120"}});
  bool used = false;
  auto cc = response_cache_control(h, t.targeted_field, &used);
  EXPECT_TRUE(used);
  EXPECT_FALSE(cc.no_store);
  EXPECT_TRUE(is_storable("GET", {}, {}, 200, h, cc, t, "u", nullptr));
  EXPECT_EQ(freshness_lifetime(200, h, cc, t, "u"), 120);
  // Without the option the field is just a field: Cache-Control's no-store holds.
  auto plain = response_cache_control(h, "", &used);
  EXPECT_FALSE(used);
  EXPECT_FALSE(is_storable("GET", {}, {}, 200, h, plain, cfg, "u", nullptr));
  // The targeted private / no-store win over a permissive Cache-Control.
  auto priv = headers({{"Cache-Control", "public, max-age=600"}, {"CDN-Cache-Control", "private"}});
  EXPECT_FALSE(is_storable("GET", {}, {}, 200, priv, response_cache_control(priv, t.targeted_field), t, "u", nullptr));
  // Expires is ignored beside a valid targeted field (no max-age there: heuristics or none).
  auto exp = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"},
                      {"CDN-Cache-Control", "must-revalidate"}});
  EXPECT_EQ(freshness_lifetime(200, exp, response_cache_control(exp, t.targeted_field), t, "u"), 0);
  // An invalid targeted field is ignored: Expires governs again.
  exp.set("CDN-Cache-Control", "max-age=");
  EXPECT_EQ(freshness_lifetime(200, exp, response_cache_control(exp, t.targeted_field), t, "u"), 3600);
  // Stored, the field name travels with the response, so evaluation later obeys it too.
  StoredResponse r;
  r.headers = headers({{"Cache-Control", "max-age=600"}, {"CDN-Cache-Control", "no-cache"}});
  r.lifetime = 600;
  r.request_time = r.response_time = T0;
  EXPECT_EQ(evaluate(r, {}, T0 + 1, nullptr), Usability::kFresh);
  r.cc_field = "CDN-Cache-Control";
  EXPECT_EQ(evaluate(r, {}, T0 + 1, nullptr), Usability::kMustValidate);
  auto again = StoredResponse::parse(r.serialize());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->cc_field, "CDN-Cache-Control");
}

TEST(Freshness, HeuristicForAnyStatusWhenPublic) {
  auto h = headers({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"Last-Modified", "Sun, 06 Nov 1994 06:49:37 GMT"}});
  EXPECT_EQ(freshness_lifetime(302, h, CacheControl::parse(h), cfg, "u"), 0);
  h.add("Cache-Control", "public");
  EXPECT_EQ(freshness_lifetime(302, h, CacheControl::parse(h), cfg, "u"), 720);
  EXPECT_EQ(freshness_lifetime(307, h, CacheControl::parse(h), cfg, "u"), 720);
  EXPECT_TRUE(is_storable("GET", {}, {}, 302, h, CacheControl::parse(h), cfg, "u", nullptr));
}
