#include "proxy/http_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace outpost;
using namespace outpost::http;

namespace {
struct Collector : ParserListener {
  std::vector<MessageHead> heads;
  std::string body;
  int ends = 0;
  int head_rc = 0;
  int end_rc = 0;
  int on_message_head(MessageHead& h) override {
    heads.push_back(h);
    return head_rc;
  }
  int on_message_body(Slice s) override {
    body.append(s.data, s.size);
    return 0;
  }
  int on_message_end() override {
    ++ends;
    return end_rc;
  }
};

ParseResult feed(HttpParser& p, const std::string& text) {
  ChunkRef c = ChunkRef::copy_of(text);
  return p.feed(c, c->data(), c->size());
}

ParseResult parse_request(const std::string& text, Collector& c, HttpParser::Limits lim = {}) {
  HttpParser p(HttpParser::Type::kRequest, lim, &c);
  return feed(p, text);
}
}  // namespace

TEST(HttpParser, SimpleGet) {
  Collector c;
  auto r = parse_request("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nX-Y:  v  \r\n\r\n", c);
  EXPECT_EQ(r.kind, ParseResult::kOk);
  ASSERT_EQ(c.heads.size(), 1u);
  EXPECT_EQ(c.heads[0].method, "GET");
  EXPECT_EQ(c.heads[0].target, "http://a.test/x");
  EXPECT_EQ(*c.heads[0].headers.find("x-y"), "v");
  EXPECT_TRUE(c.heads[0].keep_alive);
  EXPECT_EQ(c.ends, 1);
}

TEST(HttpParser, ContentLengthBodyAcrossFeeds) {
  Collector c;
  HttpParser p(HttpParser::Type::kRequest, {}, &c);
  std::string msg = "POST http://a.test/ HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
  for (char ch : msg) ASSERT_NE(feed(p, std::string(1, ch)).kind, ParseResult::kError);
  EXPECT_EQ(c.body, "0123456789");
  EXPECT_TRUE(c.heads.at(0).has_length);
  EXPECT_EQ(c.heads.at(0).content_length, 10u);
  EXPECT_EQ(c.ends, 1);
}

TEST(HttpParser, ChunkedBody) {
  Collector c;
  auto r = parse_request("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n", c);
  EXPECT_EQ(r.kind, ParseResult::kOk);
  EXPECT_TRUE(c.heads.at(0).chunked);
  EXPECT_EQ(c.body, "abcde");
}

TEST(HttpParser, Http10KeepAlive) {
  Collector c;
  parse_request("GET http://a.test/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", c);
  EXPECT_TRUE(c.heads.at(0).keep_alive);
  Collector d;
  parse_request("GET http://a.test/ HTTP/1.0\r\n\r\n", d);
  EXPECT_FALSE(d.heads.at(0).keep_alive);
}

TEST(HttpParser, PauseAfterMessageLeavesPipelinedBytes) {
  Collector c;
  c.end_rc = HPE_PAUSED;
  HttpParser p(HttpParser::Type::kRequest, {}, &c);
  std::string first = "GET http://a.test/1 HTTP/1.1\r\n\r\n";
  auto r = feed(p, first + "GET http://a.test/2 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.kind, ParseResult::kPaused);
  EXPECT_EQ(r.consumed, first.size());
  p.resume();
  r = feed(p, "GET http://a.test/2 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(c.heads.size(), 2u);
}

TEST(HttpParser, ConnectIsUpgrade) {
  Collector c;
  auto r = parse_request("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n\x16\x03\x01", c);
  EXPECT_EQ(r.kind, ParseResult::kUpgrade);
  EXPECT_TRUE(c.heads.at(0).is_connect);
  EXPECT_EQ(c.heads.at(0).target, "a.test:443");
}

struct BadRequest {
  const char* name;
  std::string text;
  int status;
};

class HttpParserRejects : public ::testing::TestWithParam<BadRequest> {};

TEST_P(HttpParserRejects, WithStatus) {
  Collector c;
  auto r = parse_request(GetParam().text, c, {100, 200});
  EXPECT_EQ(r.kind, ParseResult::kError) << GetParam().name;
  EXPECT_EQ(r.status, GetParam().status) << GetParam().name << ": " << r.reason;
  EXPECT_EQ(c.ends, 0) << "a rejected request must never complete";
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, HttpParserRejects,
    ::testing::Values(
        BadRequest{"cl_and_te", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        BadRequest{"two_cl", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
        BadRequest{"bad_chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400},
        BadRequest{"te_not_chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        BadRequest{"obs_fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
        BadRequest{"space_in_name", "GET / HTTP/1.1\r\nX Y: a\r\n\r\n", 400},
        BadRequest{"space_before_colon", "GET / HTTP/1.1\r\nX : a\r\n\r\n", 400},
        BadRequest{"nul_in_value", std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26), 400},
        BadRequest{"bare_lf", "GET / HTTP/1.1\nX: a\n\n", 400},
        BadRequest{"bad_method", "G(T / HTTP/1.1\r\n\r\n", 400},
        BadRequest{"long_target", "GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", 414},
        BadRequest{"big_headers", "GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431},
        BadRequest{"http2", "GET / HTTP/2.0\r\n\r\n", 505}));

TEST(HttpParser, ResponseHeadSkipsBodyForHead) {
  Collector c;
  c.head_rc = 1;  // as for a response to HEAD
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  auto r = feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(r.kind, ParseResult::kOk);
  EXPECT_EQ(c.ends, 1);
  EXPECT_EQ(c.heads.at(0).status, 200);
  EXPECT_EQ(c.heads.at(0).reason, "OK");
}

TEST(HttpParser, CloseDelimitedResponseEndsAtFinish) {
  Collector c;
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  feed(p, "HTTP/1.0 200 OK\r\n\r\nhello");
  EXPECT_EQ(c.ends, 0);
  auto r = p.finish();
  EXPECT_EQ(r.kind, ParseResult::kOk);
  EXPECT_EQ(c.ends, 1);
  EXPECT_EQ(c.body, "hello");
}

TEST(HttpParser, TruncatedResponseIsAnErrorAtFinish) {
  Collector c;
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  EXPECT_EQ(p.finish().kind, ParseResult::kError);
  EXPECT_EQ(c.ends, 0);
}

TEST(HttpParser, InvalidResponseIs502) {
  Collector c;
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  auto r = feed(p, "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(r.kind, ParseResult::kError);
  EXPECT_EQ(r.status, 502);
}
