#include "proxy/http_headers.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proxy/url.hpp"

using namespace outpost::http;

TEST(HeaderList, HopByHopRemoval) {
  HeaderList h;
  h.add("Connection", "close, X-Private");
  h.add("x-private", "secret");
  h.add("Keep-Alive", "timeout=5");
  h.add("Proxy-Connection", "keep-alive, X-Other");
  h.add("X-Other", "1");
  h.add("TE", "trailers");
  h.add("Trailer", "X-T");
  h.add("Transfer-Encoding", "chunked");
  h.add("Upgrade", "h2c");
  h.add("Proxy-Authorization", "Basic x");
  h.add("Proxy-Authenticate", "Basic");
  h.add("Content-Type", "text/plain");
  h.add("Cache-Control", "no-cache");
  h.remove_hop_by_hop();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.has("content-type"));
  EXPECT_TRUE(h.has("CACHE-CONTROL"));
}

TEST(HeaderList, HopByHopRemovalWithOnlyKeepAliveOrCloseListed) {
  HeaderList h;
  h.add("Connection", "keep-alive");
  h.add("Keep-Alive", "timeout=5");
  h.add("Content-Type", "text/plain");
  h.remove_hop_by_hop();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.has("Content-Type"));
  // "close" is a connection option, and a field of that name goes too (RFC 9110 §7.6.1).
  HeaderList c;
  c.add("Close", "x");
  c.add("Connection", "close");
  c.add("A", "1");
  c.remove_hop_by_hop();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c.has("A"));
}

// Past 64 fields the marks live elsewhere: fixed and listed names are removed wherever they
// stand, and a Connection field far down still names fields near the top.
TEST(HeaderList, HopByHopRemovalInLongLists) {
  HeaderList h;
  h.add("X-Listed-Early", "1");
  for (int i = 0; i < 100; ++i) h.add("X-Keep-" + std::to_string(i), "v");
  h.add("Keep-Alive", "timeout=5");
  h.add("X-Listed-Late", "2");
  h.add("Connection", "x-listed-early, X-LISTED-LATE");
  h.add("TE", "trailers");
  h.remove_hop_by_hop();
  ASSERT_EQ(h.size(), 100u);
  for (const auto& f : h) EXPECT_EQ(f.name.rfind("X-Keep-", 0), 0u) << f.name;
  HeaderList plain;
  plain.add("A", "1");
  plain.remove_hop_by_hop();
  EXPECT_EQ(plain.size(), 1u);
}

TEST(HeaderList, ListsAndTokens) {
  HeaderList h;
  h.add("Cache-Control", "max-age=5, No-Store");
  h.add("cache-control", "private");
  EXPECT_TRUE(h.has_token("Cache-Control", "no-store"));
  EXPECT_TRUE(h.has_token("Cache-Control", "private"));
  EXPECT_FALSE(h.has_token("Cache-Control", "public"));
  EXPECT_EQ(h.joined("CACHE-CONTROL"), "max-age=5, No-Store, private");
  h.set("Cache-Control", "public");
  EXPECT_EQ(h.joined("cache-control"), "public");
  std::string out;
  h.serialize(out);
  EXPECT_EQ(out, "Cache-Control: public\r\n");
}

TEST(HeaderList, SplitList) {
  auto v = split_list(" a ,, b\t,c ");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "a");
  EXPECT_EQ(v[2], "c");
}

TEST(Url, AbsoluteForm) {
  UrlError e;
  auto u = parse_absolute_url("HTTP://Example.TEST:80/a/b?c=d#frag", &e);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "example.test");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/a/b?c=d");
  EXPECT_EQ(u->authority(), "example.test");
  EXPECT_EQ(u->to_string(), "http://example.test/a/b?c=d");
  auto v = parse_absolute_url("http://[::1]:8080", &e);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->host, "::1");
  EXPECT_EQ(v->path, "/");
  EXPECT_EQ(v->authority(), "[::1]:8080");
  auto q = parse_absolute_url("http://h.test?x=1", &e);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->path, "/?x=1");
}

TEST(Url, TargetForLogDropsCredentials) {
  EXPECT_EQ(target_for_log("ftp://alice:s3cret@host/x"), "ftp://host/x");
  EXPECT_EQ(target_for_log("ftp://a:b@c@host:21/p@q?r@s"), "ftp://host:21/p@q?r@s");  // the last '@' before the path
  EXPECT_EQ(target_for_log("PUT-garbage://u:p@h"), "PUT-garbage://h");
  EXPECT_EQ(target_for_log("http://host/a@b"), "http://host/a@b");
  EXPECT_EQ(target_for_log("/origin/form@x"), "/origin/form@x");
  EXPECT_EQ(target_for_log("host:443"), "host:443");
}

TEST(Url, Rejects) {
  UrlError e;
  EXPECT_FALSE(parse_absolute_url("http://user:pw@h.test/", &e));
  EXPECT_FALSE(parse_absolute_url("http:///x", &e));
  EXPECT_FALSE(parse_absolute_url("http://h.test:0/", &e));
  EXPECT_FALSE(parse_absolute_url("http://h.test:99999/", &e));
  EXPECT_FALSE(parse_absolute_url("http://bad host/", &e));
  EXPECT_FALSE(parse_absolute_url("/relative", &e));
  EXPECT_FALSE(parse_absolute_url("http://[1.2.3.4]/", &e));
  EXPECT_FALSE(parse_absolute_url("gopher://h.test/", &e));
  EXPECT_EQ(e, UrlError::kUnsupportedScheme);
  // ftp:// goes to the FTP gateway, with its login in the userinfo; no control bytes there.
  EXPECT_TRUE(parse_absolute_url("ftp://h.test/", &e));
  EXPECT_TRUE(parse_absolute_url("ftp://u:p%0D%0A@h.test/", &e));  // encoded: the gateway refuses it decoded
  EXPECT_FALSE(parse_absolute_url("ftp://u:p\r\n@h.test/", &e));
}

TEST(Url, Authority) {
  auto u = parse_authority("Secure.Test:443");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "secure.test");
  EXPECT_EQ(u->port, 443);
  EXPECT_FALSE(parse_authority("secure.test"));
  EXPECT_FALSE(parse_authority("secure.test:"));
  EXPECT_TRUE(parse_authority("[::1]:443"));
}

// A list reused message after message keeps the strings of cleared and removed fields in its
// tail; none of them may show through size(), iteration, lookups or copies.
TEST(HeaderList, ClearedAndRemovedFieldsStayInvisible) {
  HeaderList h;
  h.add_copy("Connection", "keep-alive");
  h.add_copy("X-Long-Name-Field", std::string(40, 'a'));
  h.add_copy("Via", "1.1 a");
  h.remove_hop_by_hop();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.begin()->name, "X-Long-Name-Field");
  EXPECT_EQ(h.find("Connection"), nullptr);
  h.clear();
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.begin(), h.end());
  EXPECT_EQ(h.find("Via"), nullptr);
  h.add_copy("A", "1");
  h.add("B", "2");
  HeaderList copy = h;
  EXPECT_EQ(copy.size(), 2u);
  std::string out;
  copy.serialize(out);
  EXPECT_EQ(out, "A: 1\r\nB: 2\r\n");
  HeaderList assigned;
  assigned.add_copy("Z", "9");
  assigned = h;
  out.clear();
  assigned.serialize(out);
  EXPECT_EQ(out, "A: 1\r\nB: 2\r\n");
  HeaderList moved = std::move(h);
  EXPECT_EQ(moved.size(), 2u);
  EXPECT_EQ(h.size(), 0u);  // NOLINT(bugprone-use-after-move): a moved-from list is empty
  moved.release_memory();
  EXPECT_TRUE(moved.empty());
}
