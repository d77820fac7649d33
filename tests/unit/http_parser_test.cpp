#include "proxy/http_parser.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace outpost;
using namespace outpost::http;

namespace {
struct Collector : ParserListener {
  std::vector<MessageHead> heads;
  std::string body;
  int ends = 0;
  int head_rc = 0;
  int body_rc = 0;
  int end_rc = 0;
  int on_message_head(MessageHead& h) override {
    heads.push_back(h);
    return head_rc;
  }
  int on_message_body(Slice s) override {
    body.append(s.data, s.size);
    return body_rc;
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

TEST(HttpParser, ExtensionMethodsAreReadAsSent) {
  // RFC 9110 §9.1: any token is a method; llhttp 8.1 knows a list, so the parser gives it
  // a stand-in and the head names the method as sent. Framing is the fields' alone.
  Collector c;
  HttpParser p(HttpParser::Type::kRequest, {}, &c);
  c.end_rc = 0;
  std::string text =
      "\r\nBREW http://a.test/pot HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "get http://a.test/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
      "M-SEARCH * HTTP/1.1\r\n\r\n"
      "PROPFIND http://a.test/d HTTP/1.0\r\n\r\n";
  auto r = feed(p, text);
  EXPECT_EQ(r.kind, ParseResult::kOk) << r.reason;
  ASSERT_EQ(c.heads.size(), 4u);
  EXPECT_EQ(c.heads[0].method, "BREW");
  EXPECT_EQ(c.heads[0].target, "http://a.test/pot");
  EXPECT_EQ(c.heads[0].content_length, 3u);
  EXPECT_EQ(c.heads[1].method, "get");
  EXPECT_TRUE(c.heads[1].chunked);
  EXPECT_EQ(c.heads[2].method, "M-SEARCH");
  EXPECT_EQ(c.heads[2].target, "*");
  EXPECT_EQ(c.heads[3].method, "PROPFIND");
  EXPECT_EQ(c.heads[3].minor, 0);
  EXPECT_FALSE(c.heads[3].is_connect);
  EXPECT_EQ(c.body, "abchi");
  EXPECT_EQ(c.ends, 4);
}

TEST(HttpParser, RequestLineInPiecesIsBoundedAndKeepsItsMethod) {
  Collector c;
  HttpParser p(HttpParser::Type::kRequest, {100, 200}, &c);
  std::string line = "PROPPATCH http://a.test/" + std::string(50, 'x') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  for (char ch : line) {
    auto r = feed(p, std::string(1, ch));
    ASSERT_EQ(r.kind, ParseResult::kOk) << r.reason;
    ASSERT_EQ(r.consumed, 1u);
  }
  ASSERT_EQ(c.heads.size(), 1u);
  EXPECT_EQ(c.heads[0].method, "PROPPATCH");
  EXPECT_EQ(c.heads[0].target, "http://a.test/" + std::string(50, 'x'));
  // An endless line in pieces is refused at the limit, before it ends.
  Collector d;
  HttpParser q(HttpParser::Type::kRequest, {100, 200}, &d);
  ParseResult r;
  for (int i = 0; i < 200 && r.kind == ParseResult::kOk; ++i) r = feed(q, i == 0 ? "BREW /" : "aaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(r.kind, ParseResult::kError);
  EXPECT_EQ(r.status, 414);
  EXPECT_TRUE(d.heads.empty());
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
        BadRequest{"method_then_tab", "BREW\t/ HTTP/1.1\r\n\r\n", 400},
        BadRequest{"no_target", "BREW\r\n\r\n", 400},
        BadRequest{"extension_long_target", "BREW /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", 414},
        BadRequest{"extension_http2", "BREW / HTTP/2.0\r\n\r\n", 505},
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

// ---------------------------------------------------------------- llhttp 8.1 leniencies

namespace {
// Everything a parse produced, as one string that does not depend on how the input was
// split into reads: heads, body bytes, message ends, and the final verdict.
struct Trace : ParserListener {
  std::string log;
  std::vector<MessageHead> heads;
  int head_rc = 0;
  int on_message_head(MessageHead& h) override {
    heads.push_back(h);
    log += "{" + h.method + " " + h.target + " " + std::to_string(h.status) + " chunked=" +
           std::to_string(h.chunked) + " te=" + h.transfer_codings + "|";
    return head_rc;
  }
  int on_message_body(Slice s) override {
    log.append(s.data, s.size);
    return 0;
  }
  int on_message_end() override {
    log += "}";
    return HPE_PAUSED;  // as both callers do: one message at a time
  }
};

struct Outcome {
  std::string log;
  ParseResult::Kind kind = ParseResult::kOk;
  int status = 0;
  std::string reason;
  std::vector<MessageHead> heads;
  std::size_t consumed = 0;  // bytes accepted before the verdict
};

// Feeds `text` cut at `cuts` (ascending offsets), resuming after each pause the way the
// callers do; stops at an error or an upgrade; `at_eof` calls finish() at the end.
Outcome run(HttpParser::Type type, const std::string& text, const std::vector<std::size_t>& cuts,
            bool at_eof = false, int head_rc = 0) {
  Trace t;
  t.head_rc = head_rc;
  HttpParser p(type, {1024, 8192}, &t);
  Outcome o;
  std::size_t pos = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(text.size());
  for (std::size_t end : ends) {
    if (end <= pos) continue;
    ChunkRef c = ChunkRef::copy_of(text.substr(pos, end - pos));
    std::size_t off = 0;
    while (off < c->size()) {
      auto r = p.feed(c, c->data() + off, c->size() - off);
      off += r.consumed;
      o.consumed = pos + off;
      if (r.kind == ParseResult::kPaused) {
        p.resume();
        continue;
      }
      if (r.kind != ParseResult::kOk) {
        o.kind = r.kind;
        o.status = r.status;
        o.reason = r.reason;
        o.log = t.log + (r.kind == ParseResult::kError ? "!" + std::to_string(r.status) : "^");
        o.heads = t.heads;
        return o;
      }
    }
    pos = end;
  }
  if (at_eof) {
    auto r = p.finish();
    o.kind = r.kind;
    o.status = r.status;
    o.reason = r.reason;
  }
  o.log = t.log + (o.kind == ParseResult::kError ? "!" + std::to_string(o.status) : "");
  o.heads = t.heads;
  return o;
}

Outcome run_whole(HttpParser::Type type, const std::string& text, bool at_eof = false) {
  return run(type, text, {}, at_eof);
}

// The same outcome whatever the read boundaries: one read, one byte per read, every
// two-piece split, and random splits.
Outcome run_all_splits(HttpParser::Type type, const std::string& text, bool at_eof = false) {
  Outcome whole = run_whole(type, text, at_eof);
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < text.size(); ++i) every.push_back(i);
  Outcome bytes = run(type, text, every, at_eof);
  EXPECT_EQ(bytes.log, whole.log) << "one byte per read";
  EXPECT_EQ(bytes.kind, whole.kind) << "one byte per read";
  for (std::size_t i = 1; i < text.size(); ++i) {
    Outcome two = run(type, text, {i}, at_eof);
    EXPECT_EQ(two.log, whole.log) << "split at " << i;
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < text.size(); ++i)
      if (rng() % 7 == 0) cuts.push_back(i);
    Outcome r = run(type, text, cuts, at_eof);
    EXPECT_EQ(r.log, whole.log) << "random split round " << round;
  }
  return whole;
}

constexpr auto kReq = HttpParser::Type::kRequest;
constexpr auto kResp = HttpParser::Type::kResponse;

const std::string kChunkedReq = "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n";
const std::string kChunkedResp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

void expect_rejected(HttpParser::Type type, const std::string& text, const char* what) {
  Outcome o = run_all_splits(type, text);
  EXPECT_EQ(o.kind, ParseResult::kError) << what << ": " << o.log;
  EXPECT_EQ(o.status, type == kReq ? 400 : 502) << what << ": " << o.reason;
  EXPECT_EQ(o.log.find('}'), std::string::npos) << what << ": a rejected message must never complete";
}

// A rejection that must come before the head reaches the listener (nothing forwarded).
void expect_rejected_head(HttpParser::Type type, const std::string& text, const char* what) {
  expect_rejected(type, text, what);
  EXPECT_TRUE(run_whole(type, text).heads.empty()) << what;
}
}  // namespace

TEST(HttpParserStrict, HeaderSectionEndsWithCrLfOnly) {
  // llhttp 8.1 (loose build) takes any byte after the final CR as the LF.
  expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\rXGET http://a.test/ HTTP/1.1\r\n\r\n", "\\r\\n\\rX");
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rX", "\\r\\n\\rX");
  // Likewise after a status line and after an empty field value.
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\rXContent-Length: 0\r\n\r\n", "status line \\rX");
  expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\nX:\rYZ: 1\r\n\r\n", "empty value \\rY");
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\r\nX: \rYZ: 1\r\nContent-Length: 0\r\n\r\n", "empty value \\rY");
  // Bare LF as a line end, anywhere in the head.
  expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\nHost: a.test\r\n\r\n", "bare LF after request line");
  expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\n", "bare LF ends the head");
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF after status line");
}

TEST(HttpParserStrict, ControlCharactersAnywhereInTheHeadAreRejected) {
  // One check (scan_head) covers every line, long ones too (they are scanned sixteen bytes
  // at a time): values, the request line, the status line's reason.
  std::string pad(40, 'v');
  for (char c : {'\0', '\x01', '\x0b', '\x1f', '\x7f'}) {
    std::string ctl(1, c);
    expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\nX: a" + ctl + "b\r\n\r\n", "value");
    expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\nX: " + pad + ctl + pad + "\r\n\r\n", "long value");
    expect_rejected_head(kResp, "HTTP/1.1 200 O" + ctl + "K\r\nContent-Length: 0\r\n\r\n", "reason");
    expect_rejected_head(kReq, "GET http://a.test/" + pad + ctl + " HTTP/1.1\r\n\r\n", "target");
    expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\n" + ctl + "X: 1\r\n\r\n", "line start");
  }
  // HTAB and obs-text are legal inside a value.
  auto r = run_whole(kReq, "GET http://a.test/ HTTP/1.1\r\nX: a\tb\xe9" + pad + "\t\r\nHost: a.test\r\n\r\n");
  ASSERT_EQ(r.heads.size(), 1u);
  EXPECT_EQ(*r.heads[0].headers.find("X"), "a\tb\xe9" + pad);
}

TEST(HttpParserStrict, ChunkDataEndsWithCrLf) {
  // llhttp 8.1 skips any two bytes after chunk data.
  expect_rejected(kReq, kChunkedReq + "3\r\nabcXY0\r\n\r\n", "chunk data + XY");
  expect_rejected(kResp, kChunkedResp + "3\r\nabcXY0\r\n\r\n", "chunk data + XY");
  expect_rejected(kReq, kChunkedReq + "3\r\nabc\nX0\r\n\r\n", "chunk data + LF X");
  // and any byte after the CR of a chunk-size line
  expect_rejected(kReq, kChunkedReq + "3\rXabc\r\n0\r\n\r\n", "chunk size + \\rX");
  expect_rejected(kResp, kChunkedResp + "3\r\nabc\r\n0\rX\r\n", "last chunk + \\rX");
}

TEST(HttpParserStrict, ChunkExtensionsAreBounded) {
  std::string ext = ";" + std::string(8000, 'a');
  expect_rejected(kReq, kChunkedReq + "1" + ext + "\r\nx\r\n0\r\n\r\n", "8 KB chunk extension");
  expect_rejected(kResp, kChunkedResp + "1" + ext + "\r\nx\r\n0\r\n\r\n", "8 KB chunk extension");
  // Many small ones add up per chunk.
  std::string many;
  for (int i = 0; i < 1100; ++i) many += ";a=b";
  expect_rejected(kResp, kChunkedResp + "1" + many + "\r\nx\r\n0\r\n\r\n", "1100 chunk extensions");
  // A moderate one is fine.
  Outcome o = run_whole(kReq, kChunkedReq + "1;" + std::string(1000, 'a') + "\r\nx\r\n0\r\n\r\n");
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  EXPECT_NE(o.log.find("|x}"), std::string::npos) << o.log;
}

TEST(HttpParserStrict, QuotedChunkExtensionsAreAccepted) {
  // RFC 9112 §7.1.1: BWS around ";" and "=", token or quoted-string values with quoted-pairs.
  for (auto type : {kReq, kResp}) {
    std::string head = type == kReq ? kChunkedReq : kChunkedResp;
    std::string body = "3;name=\"a \\\"q\\\" ;=\\\\\"\r\nabc\r\n"
                       "2 ; a = b ;c;d=\"\"\r\nde\r\n"
                       "1;x=\"\xc3\xa9\t\"\r\nf\r\n"
                       "0;last=\"1\"\r\n\r\n";
    Outcome o = run_all_splits(type, head + body);
    EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
    EXPECT_NE(o.log.find("|abcdef}"), std::string::npos) << o.log;
  }
}

TEST(HttpParserStrict, MalformedChunkExtensionsAreRejected) {
  const char* bad[] = {
      "1;\r\nx\r\n0\r\n\r\n",           // no name
      "1;a=\r\nx\r\n0\r\n\r\n",         // no value
      "1;a=\"b\r\nx\r\n0\r\n\r\n",      // unterminated quote
      "1;a=\"b\"c\r\nx\r\n0\r\n\r\n",   // text after the quote
      "1;a b\r\nx\r\n0\r\n\r\n",        // two tokens
      "1 \r\nx\r\n0\r\n\r\n",           // BWS without an extension
      "1;a=b c\r\nx\r\n0\r\n\r\n",      // two values
      "1;a=\"\x01\"\r\nx\r\n0\r\n\r\n",  // control character
      "1;a=\"\\\x7f\"\r\nx\r\n0\r\n\r\n",  // quoted-pair of DEL
      "1;a@=b\r\nx\r\n0\r\n\r\n",       // separator in a name
  };
  for (const char* b : bad) {
    expect_rejected(kReq, kChunkedReq + b, b);
    expect_rejected(kResp, kChunkedResp + b, b);
  }
}

TEST(HttpParserStrict, ChunkSizes) {
  expect_rejected(kReq, kChunkedReq + "10000000000000000\r\n", "chunk size overflow");
  expect_rejected(kReq, kChunkedReq + "\r\n", "empty chunk size");
  expect_rejected(kReq, kChunkedReq + "-1\r\n", "signed chunk size");
  expect_rejected(kReq, kChunkedReq + "0x1\r\nx\r\n0\r\n\r\n", "0x prefix");
  Outcome o = run_all_splits(kResp, kChunkedResp + "0000A\r\n0123456789\r\n000\r\n\r\n");
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  EXPECT_NE(o.log.find("|0123456789}"), std::string::npos) << o.log;
}

TEST(HttpParserStrict, Trailers) {
  Outcome o = run_all_splits(kReq, kChunkedReq + "1\r\nx\r\n0\r\nX-Sum: 1\r\nY:\t\xff v\r\n\r\n");
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  EXPECT_NE(o.log.find("|x}"), std::string::npos) << o.log;
  const char* bad[] = {
      "0\r\nX: a\r\n b\r\n\r\n",  // obs-fold
      "0\r\n: a\r\n\r\n",         // empty name
      "0\r\nX : a\r\n\r\n",       // space before the colon
      "0\r\nX\r\n\r\n",           // no colon
      "0\r\nX: a\rb\r\n\r\n",     // bare CR
      "0\r\nX: a\nY: b\r\n\r\n",  // bare LF
      "0\r\nX: \x01\r\n\r\n",     // control character
      "0\r\n\rX",                 // the final CRLF
  };
  for (const char* b : bad) {
    expect_rejected(kReq, kChunkedReq + b, b);
    expect_rejected(kResp, kChunkedResp + b, b);
  }
  std::string big = "0\r\nX: " + std::string(9000, 'a') + "\r\n\r\n";
  EXPECT_EQ(run_whole(kReq, kChunkedReq + big).kind, ParseResult::kError);
  EXPECT_EQ(run_whole(kResp, kChunkedResp + big).kind, ParseResult::kError);
}

TEST(HttpParserStrict, ObsFoldIsRejectedEverywhere) {
  // Transfer-Encoding continued on an obs-fold line, including after an empty first line
  // (a single value span, which a contiguity check on spans does not see).
  for (auto [type, start] : {std::pair{kReq, std::string("POST http://a.test/ HTTP/1.1\r\n")},
                             std::pair{kResp, std::string("HTTP/1.1 200 OK\r\n")}}) {
    expect_rejected_head(type, start + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "TE: <fold> chunked");
    expect_rejected_head(type, start + "Transfer-Encoding: gzip\r\n ,chunked\r\n\r\n0\r\n\r\n", "TE: gzip <fold> ,chunked");
    expect_rejected_head(type, start + "Transfer-Encoding: chunked\r\n \r\n\r\n0\r\n\r\n", "TE: chunked <fold>");
    expect_rejected_head(type, start + "Transfer-Encoding: chunked\r\n\t, gzip\r\n\r\n0\r\n\r\n", "TE: chunked <fold> gzip");
    expect_rejected_head(type, start + "X: a\r\n b\r\nContent-Length: 0\r\n\r\n", "obs-fold");
  }
}

TEST(HttpParserStrict, EmptyHeaderName) {
  expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\n: v\r\n\r\n", "empty name");
  expect_rejected_head(kReq, "GET http://a.test/ HTTP/1.1\r\nHost: a\r\n:\r\n\r\n", "empty name, empty value");
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n", "empty name");
}

TEST(HttpParserStrict, UnknownTransferCodingsAreRejectedAtHeadTime) {
  const char* bad[] = {
      "xchunked",        "chunkedx",        "chunked, chunked",   "gzip, xchunked, chunked",
      "br, chunked",     "chunked;a=b",     "gzip;, chunked",     "gzip;a=, chunked",
      "gzip;a=\"b, chunked", "gzip chunked", ",",                  "chunked, gzip",
      "identity, chunked", "gzip, chunked, gzip", "\"chunked\"",
  };
  for (const char* te : bad) {
    expect_rejected_head(kReq, "POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: " + std::string(te) + "\r\n\r\n0\r\n\r\n", te);
    expect_rejected_head(kResp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + std::string(te) + "\r\n\r\n0\r\n\r\n", te);
  }
  // A request's codings must end in chunked; a second field cannot put chunked twice.
  expect_rejected_head(kReq, "POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "gzip");
  expect_rejected_head(kReq, "POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "two fields");
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", "two fields");
  // Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 §6.1).
  expect_rejected_head(kReq, "POST http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0");
}

TEST(HttpParserStrict, TransferCodingsBeforeChunkedAreKeptAsSent) {
  struct Case {
    std::string fields;
    std::string codings;
  } cases[] = {
      {"Transfer-Encoding: chunked\r\n", ""},
      {"Transfer-Encoding: CHUNKED \r\n", ""},
      {"Transfer-Encoding: gzip, chunked\r\n", "gzip"},
      {"Transfer-Encoding: GZip ,chunked\r\n", "GZip"},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "gzip"},
      {"Transfer-Encoding: deflate;a=\"x, y\" , x-gzip,compress\r\nTransfer-Encoding: chunked\r\n",
       "deflate;a=\"x, y\", x-gzip, compress"},
      {"Transfer-Encoding: ,gzip ; q = 1,, chunked\r\n", "gzip ; q = 1"},
  };
  for (const auto& c : cases) {
    std::string req = "POST http://a.test/ HTTP/1.1\r\n" + c.fields + "\r\n3\r\nabc\r\n0\r\n\r\n";
    Outcome o = run_all_splits(kReq, req);
    ASSERT_EQ(o.kind, ParseResult::kOk) << c.fields << o.reason;
    ASSERT_EQ(o.heads.size(), 1u);
    EXPECT_TRUE(o.heads[0].chunked) << c.fields;
    EXPECT_EQ(o.heads[0].transfer_codings, c.codings) << c.fields;
    EXPECT_NE(o.log.find("|abc}"), std::string::npos) << o.log;
    std::string resp = "HTTP/1.1 200 OK\r\n" + c.fields + "\r\n3\r\nabc\r\n0\r\n\r\n";
    o = run_all_splits(kResp, resp);
    ASSERT_EQ(o.kind, ParseResult::kOk) << c.fields << o.reason;
    EXPECT_EQ(o.heads.at(0).transfer_codings, c.codings) << c.fields;
    EXPECT_NE(o.log.find("|abc}"), std::string::npos) << o.log;
  }
}

TEST(HttpParserStrict, ResponseCodedWithoutChunkedIsCloseDelimited) {
  Outcome o = run_all_splits(kResp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\r\rX", true);
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  ASSERT_EQ(o.heads.size(), 1u);
  EXPECT_FALSE(o.heads[0].chunked);
  EXPECT_FALSE(o.heads[0].keep_alive);
  EXPECT_EQ(o.heads[0].transfer_codings, "gzip");
  EXPECT_NE(o.log.find("|\x1f\x8b\r\rX}"), std::string::npos) << o.log;
}

TEST(HttpParserStrict, SplitsDoNotChangeValidMessages) {
  // Pipelined requests with every framing, then a response sequence with an interim 100.
  std::string reqs = "GET http://a.test/1 HTTP/1.1\r\nHost: a.test\r\n\r\n" + kChunkedReq +
                     "5;a=\"b\"\r\nhello\r\n0\r\nT: v\r\n\r\n"
                     "\r\nPOST http://a.test/3 HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz" +
                     kChunkedReq + "1\r\n\r\r\n0\r\n\r\n";
  Outcome o = run_all_splits(kReq, reqs);
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  EXPECT_EQ(o.heads.size(), 4u);
  EXPECT_NE(o.log.find("|hello}"), std::string::npos) << o.log;
  EXPECT_NE(o.log.find("|\r}"), std::string::npos) << o.log;
  std::string resps = "HTTP/1.1 100 Continue\r\n\r\n" + kChunkedResp + "4\r\nbody\r\n0\r\n\r\n";
  o = run_all_splits(kResp, resps);
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  EXPECT_EQ(o.heads.size(), 2u);
  EXPECT_NE(o.log.find("|body}"), std::string::npos) << o.log;
}

TEST(HttpParserStrict, PauseAfterChunkedMessageLeavesTheRest) {
  Collector c;
  c.end_rc = HPE_PAUSED;
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  std::string first = kChunkedResp + "2\r\nab\r\n0\r\n\r\n";
  auto r = feed(p, first + "HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(r.kind, ParseResult::kPaused);
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_EQ(c.body, "ab");
  EXPECT_EQ(c.ends, 1);
  EXPECT_FALSE(p.message_in_progress());
}

TEST(HttpParserStrict, TruncatedChunkedResponseIsAnErrorAtFinish) {
  Collector c;
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  feed(p, kChunkedResp + "5\r\nab");
  EXPECT_TRUE(p.message_in_progress());
  EXPECT_EQ(p.finish().kind, ParseResult::kError);
  EXPECT_EQ(c.ends, 0);
}

TEST(HttpParserStrict, ChunkedResponseToHeadHasNoBody) {
  Collector c;
  c.head_rc = 1;
  c.end_rc = HPE_PAUSED;
  HttpParser p(HttpParser::Type::kResponse, {}, &c);
  std::string head = kChunkedResp;
  auto r = feed(p, head + "HTTP/1.1");
  EXPECT_EQ(r.kind, ParseResult::kPaused);
  EXPECT_EQ(r.consumed, head.size());
  EXPECT_EQ(c.ends, 1);
}

TEST(HttpParserStrict, ChunkedUpgradeAndConnect) {
  // CONNECT: the bytes after the head are the tunnel's, whatever they are.
  Outcome o = run_whole(kReq, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n\r\rX\n");
  EXPECT_EQ(o.kind, ParseResult::kUpgrade);
  EXPECT_EQ(o.consumed, std::string("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n").size());
}

TEST(HttpParserStrict, ResponsesWithoutBodyEndAtTheirHead) {
  // RFC 9112 §6.3: whatever Content-Length or Transfer-Encoding say (a 304 may carry the
  // stored representation's length); llhttp 8.1 would read a body.
  Outcome o = run_all_splits(kResp,
                             "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
                             "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  ASSERT_EQ(o.heads.size(), 4u) << o.log;
  EXPECT_EQ(o.heads[3].status, 200);
  EXPECT_NE(o.log.find("|ok}"), std::string::npos) << o.log;
}

TEST(HttpParserStrict, PausesInsideAChunkedMessage) {
  // Paused by the head callback: the body follows after resume().
  Collector c;
  c.head_rc = HPE_PAUSED;
  HttpParser p(HttpParser::Type::kRequest, {}, &c);
  std::string body = "3\r\nabc\r\n0\r\n\r\n";
  auto r = feed(p, kChunkedReq + body);
  EXPECT_EQ(r.kind, ParseResult::kPaused);
  EXPECT_EQ(r.consumed, kChunkedReq.size());
  EXPECT_EQ(c.body, "");
  p.resume();
  c.head_rc = 0;
  r = feed(p, body);
  EXPECT_EQ(r.kind, ParseResult::kOk);
  EXPECT_EQ(c.body, "abc");
  EXPECT_EQ(c.ends, 1);

  // Paused by the body callback: right after that piece of data.
  Collector d;
  d.body_rc = HPE_PAUSED;
  HttpParser q(HttpParser::Type::kResponse, {}, &d);
  std::string first = kChunkedResp + "3\r\nabc";
  r = feed(q, first + "\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_EQ(r.kind, ParseResult::kPaused);
  EXPECT_EQ(r.consumed, first.size());
  q.resume();
  d.body_rc = 0;
  r = feed(q, "\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_EQ(r.kind, ParseResult::kOk);
  EXPECT_EQ(d.body, "abcde");
  EXPECT_EQ(d.ends, 1);
}

TEST(HttpParserStrict, BytesAfterConnectionCloseAreNotParsed) {
  // As llhttp does: after a message that closes the connection the rest is dropped, not
  // checked as another head.
  std::string first = "GET http://a.test/ HTTP/1.1\r\nConnection: close\r\n\r\n";
  Outcome o = run_all_splits(kReq, first + "GET http://b.test/ HTTP/1.1\r\n\rX\n");
  EXPECT_EQ(o.kind, ParseResult::kOk) << o.reason;
  EXPECT_EQ(o.heads.size(), 1u);
}

TEST(HttpParserStrict, UpgradeAfterAChunkedBody) {
  std::string msg = "POST http://a.test/ HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
  Outcome o = run_all_splits(kReq, msg + "\r\rX");
  EXPECT_EQ(o.kind, ParseResult::kUpgrade) << o.reason;
  EXPECT_EQ(o.consumed, msg.size());
  EXPECT_NE(o.log.find("|x}"), std::string::npos) << o.log;
}

// The header lines are split into fields by HttpParser; llhttp sees the start line and the
// framing lines only. The fields must come out as sent (order, duplicates, obs-text), with
// framing decided as llhttp decides it, whatever the read boundaries.
TEST(HttpParserFields, FieldsKeptInOrderWithOwsTrimmedAndFramingApplied) {
  const std::string req =
      "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-A:\t one \t\r\nx-a: two\r\nX-Obs: caf\xc3\xa9\r\n"
      "Empty:\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  Outcome o = run_all_splits(kReq, req);
  ASSERT_EQ(o.kind, ParseResult::kOk) << o.log;
  ASSERT_EQ(o.heads.size(), 1u);
  const auto& h = o.heads[0].headers;
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& f : h) got.emplace_back(f.name, f.value);
  std::vector<std::pair<std::string, std::string>> want = {
      {"Host", "a.test"}, {"X-A", "one"}, {"x-a", "two"}, {"X-Obs", "caf\xc3\xa9"},
      {"Empty", ""}, {"Content-Length", "3"}, {"Connection", "close"}};
  EXPECT_EQ(got, want);
  EXPECT_TRUE(o.heads[0].has_length);
  EXPECT_EQ(o.heads[0].content_length, 3u);
  EXPECT_FALSE(o.heads[0].keep_alive) << "Connection: close reached llhttp";
  EXPECT_NE(o.log.find("}"), std::string::npos) << "the 3-byte body ended the message: " << o.log;
}

TEST(HttpParserFields, FramingLinesReachLlhttpAsSent) {
  // Duplicate Content-Length, CL with TE, and an Upgrade request: llhttp's verdicts.
  expect_rejected(kReq, "POST / HTTP/1.1\r\nX: 1\r\nContent-Length: 3\r\nY: 2\r\nContent-Length: 3\r\n\r\nabc",
                  "two Content-Length fields apart");
  expect_rejected(kResp, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\ncontent-length: 4\r\n\r\nabcd",
                  "two Content-Length fields in a response");
  Outcome up = run_whole(kReq, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxyz");
  EXPECT_EQ(up.kind, ParseResult::kUpgrade) << up.log;
  Outcome ka = run_whole(kReq, "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_EQ(ka.heads.size(), 1u);
  EXPECT_TRUE(ka.heads[0].keep_alive);
}

TEST(HttpParserFields, BadHeaderLinesAreRejected) {
  expect_rejected_head(kReq, "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n", "a line without a colon");
  expect_rejected_head(kResp, "HTTP/1.1 200 OK\r\nno-colon\r\n\r\n", "a response line without a colon");
  expect_rejected_head(kReq, "GET / HTTP/1.1\r\nX\"Y: a\r\n\r\n", "a quote in a field name");
  expect_rejected_head(kReq, "GET / HTTP/1.1\r\n: a\r\n\r\n", "an empty field name");
}

TEST(HttpParserFields, AnEndlessHeaderSectionIsRefusedBeforeItEnds) {
  Collector c;
  HttpParser p(HttpParser::Type::kRequest, {1024, 200}, &c);
  EXPECT_EQ(feed(p, "GET / HTTP/1.1\r\nX: ").kind, ParseResult::kOk);
  ParseResult r;
  for (int i = 0; i < 100 && r.kind == ParseResult::kOk; ++i) r = feed(p, std::string(10, 'a'));
  EXPECT_EQ(r.kind, ParseResult::kError);
  EXPECT_EQ(r.status, 431) << r.reason;
  EXPECT_TRUE(c.heads.empty());
}
