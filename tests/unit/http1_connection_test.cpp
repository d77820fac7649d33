// The HTTP/1 client connection and the request object, without processes: a real ProxyWorker
// on a loop the test drives, the client on a FakeStream handed to the worker, origin
// connections on FakeStreams from the pool's stream factory, and a scripted name resolver.
#include "proxy/http1_connection.hpp"

#include <gtest/gtest.h>

#include <map>

#include "core/testing/fake_stream.hpp"
#include "core/uv_write.hpp"
#include "proxy/proxy_worker.hpp"
#include "tests/unit/proxy_config_sections.hpp"

using namespace outpost;
using outpost::testing::FakeStream;
using outpost::testing::FakeStreamFactory;

namespace {

// Answers names from a table: "now.test" before resolve() returns (as a cache hit does),
// others when the test calls answer().
class ScriptedResolver : public NameResolver {
 public:
  std::unique_ptr<ResolveRequest> resolve(uv_loop_t*, const std::string& host, ResolveCallback cb) override {
    ResolveResult r;
    if (host == "now.test") {
      r.addresses.push_back(*IpAddress::parse("192.0.2.20"));
      cb(std::move(r));
      return nullptr;
    }
    pending_[host] = std::move(cb);
    struct Req : ResolveRequest {
      ScriptedResolver* self;
      std::string host;
      void cancel() override { self->pending_.erase(host); }
      ~Req() override { cancel(); }
    };
    auto req = std::make_unique<Req>();
    req->self = this;
    req->host = host;
    return req;
  }
  bool answer(const std::string& host, std::vector<IpAddress> addrs, std::string error = {}) {
    auto it = pending_.find(host);
    if (it == pending_.end()) return false;
    auto cb = std::move(it->second);
    pending_.erase(it);
    ResolveResult r;
    r.addresses = std::move(addrs);
    if (!error.empty()) {
      r.status = -1;
      r.error = error;
    }
    cb(std::move(r));
    return true;
  }
  std::map<std::string, ResolveCallback> pending_;
};

class Http1ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override { make_proxy(""); }
  void make_proxy(const std::string& extra) {
    std::string err;
    ASSERT_TRUE(alog_.open("", &err));
    auto settings = ProxySettings::make(Config::parse("[server]\nname = \"outpost\"\n" + extra, "test.toml"));
    proxy_ = std::make_unique<ProxyWorker>(worker_, settings, resolver_, alog_, nullptr);
    proxy_->pool().set_stream_factory(origins_.callback());
  }
  void TearDown() override {
    bool done = false;
    proxy_->begin_shutdown(0, [&] { done = true; });
    for (int i = 0; i < 100 && !done; ++i) uv_run(worker_.loop(), UV_RUN_NOWAIT);
    EXPECT_TRUE(done);
    proxy_.reset();
    for (int i = 0; i < 10; ++i) uv_run(worker_.loop(), UV_RUN_NOWAIT);
  }
  // A client connection from 127.0.0.1.
  FakeStream& connect_client() {
    auto* s = new FakeStream;  // freed by the test fixture at the end (FakeStream::close only marks)
    clients_.emplace_back(s);
    s->set_peer(SocketAddress{*IpAddress::parse("127.0.0.1"), 40000});
    proxy_->adopt(StreamPtr(s));
    return *s;
  }
  void turn() { uv_run(worker_.loop(), UV_RUN_NOWAIT); }

  Worker worker_{0};
  ScriptedResolver resolver_;
  AccessLogFile alog_;
  FakeStreamFactory origins_;
  std::vector<std::unique_ptr<FakeStream>> clients_;  // declared before proxy_: outlive it
  std::unique_ptr<ProxyWorker> proxy_;
};

TEST_F(Http1ConnectionTest, PipelinedRequestsAreAnsweredInOrderOnOneConnection) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.reading());
  ASSERT_TRUE(c.feed("GET /health HTTP/1.1\r\nHost: p\r\n\r\nGET /nothing HTTP/1.1\r\nHost: p\r\n\r\n"));
  EXPECT_EQ(c.write_calls(), 2u);  // each answer, head and body, in one write
  std::string out = c.take_written();
  auto first = out.find("HTTP/1.1 200 OK\r\n");
  auto second = out.find("HTTP/1.1 404 Not Found\r\n");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
  EXPECT_EQ(out.find("Connection: close"), std::string::npos);
  EXPECT_FALSE(c.write_shut());
  EXPECT_EQ(proxy_->session_count(), 1u);
}

TEST_F(Http1ConnectionTest, ForwardsRelaysAndReframesAnUnknownLengthAsChunked) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://192.0.2.10/a HTTP/1.1\r\nHost: 192.0.2.10\r\nConnection: x-gone\r\nX-Gone: 1\r\n\r\n"));
  ASSERT_EQ(origins_.count(), 1u);
  FakeStream& o = origins_.last();
  ASSERT_TRUE(o.connecting());
  EXPECT_EQ(o.connect_target()->to_string(), "192.0.2.10:80");
  ASSERT_TRUE(o.complete_connect());
  std::string req = o.take_written();
  EXPECT_EQ(req.rfind("GET /a HTTP/1.1\r\nHost: 192.0.2.10\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Via: 1.1 outpost\r\n"), std::string::npos);
  EXPECT_NE(req.find("X-Forwarded-For: 127.0.0.1\r\n"), std::string::npos);
  EXPECT_EQ(req.find("X-Gone"), std::string::npos);  // named in Connection: hop-by-hop
  o.complete_writes();
  ASSERT_TRUE(o.feed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello"));
  EXPECT_EQ(c.write_calls(), 1u);  // the head leaves with the first body bytes
  ASSERT_TRUE(o.feed(" world"));
  ASSERT_TRUE(o.feed_eof());
  std::string out = c.take_written();
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), std::string::npos) << out;
  EXPECT_FALSE(c.write_shut());  // keep-alive: the client connection stays
  // The next request on the same client connection works (the request object was recycled).
  turn();
  ASSERT_TRUE(c.feed("GET /health HTTP/1.1\r\n\r\n"));
  EXPECT_NE(c.take_written().find("200 OK"), std::string::npos);
}

TEST_F(Http1ConnectionTest, AnHttp10ClientGetsACloseDelimitedBody) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://192.0.2.10/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  FakeStream& o = origins_.last();
  ASSERT_TRUE(o.complete_connect());
  ASSERT_TRUE(o.feed("HTTP/1.1 200 OK\r\n\r\nbody"));
  ASSERT_TRUE(o.feed_eof());
  std::string out = c.take_written();
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("chunked"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 4), "body");
  EXPECT_TRUE(c.write_shut());  // the end of the body is our FIN
}

TEST_F(Http1ConnectionTest, ASlowClientHoldsTheOriginBackAndReleasesIt) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://192.0.2.10/big HTTP/1.1\r\n\r\n"));
  FakeStream& o = origins_.last();
  ASSERT_TRUE(o.complete_connect());
  ASSERT_TRUE(o.feed("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + std::string(1000, 'x')));
  EXPECT_TRUE(o.reading());
  c.set_queued_bytes(300 * 1024);  // the client reads nothing
  ASSERT_TRUE(o.feed(std::string(1000, 'y')));
  EXPECT_FALSE(o.reading());  // above the high-water mark: the origin waits
  c.set_queued_bytes(0);
  c.complete_writes();
  EXPECT_TRUE(o.reading());
}

TEST_F(Http1ConnectionTest, ConnectSplicesTheStreamsWithEarlyBytesAndHalfClose) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("CONNECT 192.0.2.10:443 HTTP/1.1\r\nHost: 192.0.2.10:443\r\n\r\nEARLY"));
  FakeStream& o = origins_.last();
  EXPECT_EQ(o.connect_target()->to_string(), "192.0.2.10:443");
  ASSERT_TRUE(o.complete_connect());
  EXPECT_EQ(c.take_written(), "HTTP/1.1 200 Connection established\r\n\r\n");
  EXPECT_EQ(o.take_written(), "EARLY");
  ASSERT_TRUE(c.feed("\x16\x03\x01"));
  EXPECT_EQ(o.take_written(), "\x16\x03\x01");
  ASSERT_TRUE(o.feed("\x16\x03\x03"));
  EXPECT_EQ(c.take_written(), "\x16\x03\x03");
  ASSERT_TRUE(c.feed_eof());
  EXPECT_TRUE(o.write_shut());  // the client's FIN goes on
  EXPECT_FALSE(o.closed());
  ASSERT_TRUE(o.feed("last"));
  EXPECT_EQ(c.take_written(), "last");
  ASSERT_TRUE(o.feed_eof());
  EXPECT_TRUE(o.closed());
  EXPECT_TRUE(c.closed());
  turn();
  turn();
  EXPECT_EQ(proxy_->session_count(), 0u);
  EXPECT_EQ(proxy_->pool().idle_count(), 0u);  // a tunnel's connection is never pooled
}

TEST_F(Http1ConnectionTest, NamesAnsweredBeforeResolveReturnsAndLater) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://now.test/ HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(origins_.count(), 1u);
  EXPECT_EQ(origins_.last().connect_target()->to_string(), "192.0.2.20:80");
  ASSERT_TRUE(origins_.last().complete_connect());
  ASSERT_TRUE(origins_.last().feed("HTTP/1.1 204 No Content\r\n\r\n"));
  EXPECT_NE(c.take_written().find("204 No Content"), std::string::npos);
  turn();

  ASSERT_TRUE(c.feed("GET http://later.test/ HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(origins_.count(), 1u);  // waiting for the name (the pooled connection is another host's)
  ASSERT_TRUE(resolver_.answer("later.test", {*IpAddress::parse("192.0.2.30"), *IpAddress::parse("192.0.2.31")}));
  ASSERT_EQ(origins_.count(), 2u);
  // The first address refuses: the next one is tried.
  origins_.last().fail(UV_ECONNREFUSED, "connect: connection refused");
  ASSERT_EQ(origins_.count(), 3u);
  EXPECT_EQ(origins_.last().connect_target()->to_string(), "192.0.2.31:80");
  ASSERT_TRUE(origins_.last().complete_connect());
  ASSERT_TRUE(origins_.last().feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  EXPECT_NE(c.take_written().find("\r\n\r\nok"), std::string::npos);
}

TEST_F(Http1ConnectionTest, ResolutionFailureIs502AndAClientGoneCancelsTheLookup) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://missing.test/ HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(resolver_.answer("missing.test", {}, "NXDOMAIN"));
  std::string out = c.take_written();
  EXPECT_EQ(out.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Cannot resolve missing.test: NXDOMAIN"), std::string::npos);
  turn();
  ASSERT_TRUE(c.feed("GET http://slow.test/ HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(resolver_.pending_.count("slow.test"), 1u);
  c.fail(UV_ECONNRESET, "read: connection reset by peer");
  EXPECT_EQ(resolver_.pending_.count("slow.test"), 0u);  // cancelled with the request
  EXPECT_TRUE(c.closed());
}

TEST_F(Http1ConnectionTest, MalformedRequestGets400AndTheConnectionCloses) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://192.0.2.10/ HTTP/1.1\r\nBad Header\r\n\r\n"));
  std::string out = c.take_written();
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(c.write_shut());  // lingering close: our FIN, then reading and dropping
  EXPECT_TRUE(c.reading());
  EXPECT_EQ(origins_.count(), 0u);
}

TEST_F(Http1ConnectionTest, AClosingAnswerIsWrittenInFullBeforeTheConnectionCloses) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://192.0.2.10/big HTTP/1.0\r\n\r\n"));
  FakeStream& o = origins_.last();
  ASSERT_TRUE(o.complete_connect());
  ASSERT_TRUE(o.feed("HTTP/1.1 200 OK\r\n\r\n" + std::string(100000, 'x')));
  ASSERT_TRUE(o.feed_eof());  // the end of a close-delimited body; the client has read nothing
  EXPECT_TRUE(c.write_shut());
  ASSERT_TRUE(c.feed_eof());  // the client half-closes while our answer is still queued
  EXPECT_FALSE(c.closed());   // closing now would drop the queued answer
  c.complete_writes();
  EXPECT_TRUE(c.closed());
}

TEST_F(Http1ConnectionTest, LingeringStartsOnceTheAnswerIsWritten) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET /nothing HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(c.write_shut());
  EXPECT_TRUE(c.reading());  // reads and drops while lingering
  ASSERT_TRUE(c.feed("late bytes"));
  EXPECT_FALSE(c.closed());
  c.complete_writes();
  ASSERT_TRUE(c.feed_eof());  // answer written and the client done: closed at once
  EXPECT_TRUE(c.closed());
}

TEST_F(Http1ConnectionTest, OriginFailureMidResponseCutsTheClient) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("GET http://192.0.2.10/ HTTP/1.1\r\n\r\n"));
  FakeStream& o = origins_.last();
  ASSERT_TRUE(o.complete_connect());
  ASSERT_TRUE(o.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  ASSERT_TRUE(o.feed_eof());  // 7 bytes short
  EXPECT_TRUE(c.closed());    // the client must not take a short body for a whole one
  EXPECT_TRUE(o.closed());
}

TEST_F(Http1ConnectionTest, RequestBodyStreamsChunkedWithBackPressure) {
  FakeStream& c = connect_client();
  ASSERT_TRUE(c.feed("POST http://192.0.2.10/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
  FakeStream& o = origins_.last();
  ASSERT_TRUE(o.complete_connect());
  std::string req = o.take_written();
  EXPECT_NE(req.find("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), std::string::npos) << req;
  o.set_queued_bytes(300 * 1024);  // the origin reads nothing
  ASSERT_TRUE(c.feed("2\r\nde\r\n"));
  EXPECT_FALSE(c.reading());  // the client waits
  o.set_queued_bytes(0);
  o.complete_writes();
  EXPECT_TRUE(c.reading());
  ASSERT_TRUE(c.feed("0\r\n\r\n"));
  EXPECT_EQ(o.take_written(), "2\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(o.feed("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_NE(c.take_written().find("201 Created"), std::string::npos);
  EXPECT_EQ(proxy_->pool().idle_count(), 1u);  // a clean exchange: pooled
}

}  // namespace
