// OriginConnection and OriginPool on FakeStreams: response framing, interim responses, pool
// reuse and the idle watch, back-pressure, tunnels and failures, without sockets or processes.
#include <gtest/gtest.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/testing/fake_stream.hpp"
#include "core/uv_write.hpp"
#include "proxy/origin_pool.hpp"

using outpost::IpAddress;
using outpost::OriginConnection;
using outpost::OriginEvents;
using outpost::OriginPool;
using outpost::Slice;
using outpost::slice_of;
using outpost::testing::FakeStream;
using outpost::testing::FakeStreamFactory;
namespace http = outpost::http;

namespace {

// Plays the client session: records the events; ends each exchange as the session does
// (release_to_pool from inside on_origin_end).
struct Session final : OriginEvents {
  OriginConnection* conn = nullptr;
  bool release_at_end = true;
  int connected = 0, ends = 0, write_done = 0, errors = 0, reads_processed = 0;
  std::vector<int> interim, heads;
  std::string body, error;
  int error_status = 0;
  bool error_timeout = false;

  void on_origin_connected() override { ++connected; }
  void on_origin_interim(http::MessageHead& h) override { interim.push_back(h.status); }
  int on_origin_head(http::MessageHead& h) override {
    heads.push_back(h.status);
    return 0;
  }
  int on_origin_body(Slice b) override {
    body.append(b.data, b.size);
    return 0;
  }
  int on_origin_end() override {
    ++ends;
    if (release_at_end && conn) {
      OriginConnection* c = conn;
      conn = nullptr;
      c->release_to_pool();
    }
    return 0;
  }
  void on_origin_error(int status, bool timeout, const std::string& what) override {
    ++errors;
    error_status = status;
    error_timeout = timeout;
    error = what;
    conn = nullptr;  // it closed itself
  }
  void on_origin_write_done() override { ++write_done; }
  void on_origin_read_processed() override { ++reads_processed; }
};

const char kKey[] = "origin.test:80";
const char kGet[] = "GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n";

class OriginConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    pool_ = std::make_unique<OriginPool>(&loop_, 4, 60);
    pool_->set_stream_factory(streams_.callback());
  }
  void TearDown() override {
    if (session_.conn) session_.conn->close();
    pool_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);  // connections free themselves from their timers' close callbacks
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // A connected connection with one GET written (and its write completed), ready for a response.
  FakeStream& start_exchange(bool head_request = false) {
    OriginConnection* c = pool_->acquire(kKey);
    session_.conn = c;
    c->set_owner(&session_);
    if (!c->connected()) {
      c->connect(*IpAddress::parse("192.0.2.1"), 80, 10);
      EXPECT_TRUE(streams_.last().complete_connect());
    }
    c->begin_exchange(head_request, 10);
    EXPECT_EQ(c->write({slice_of(kGet)}), 0);
    FakeStream& s = streams_.last();
    s.complete_writes();
    return s;
  }

  uv_loop_t loop_;
  FakeStreamFactory streams_;  // outlives the pool: connections hold its streams
  std::unique_ptr<OriginPool> pool_;
  Session session_;
};

TEST_F(OriginConnectionTest, ConnectsToTheAddressAndWritesTheRequest) {
  FakeStream& s = start_exchange();
  ASSERT_EQ(streams_.count(), 1u);
  EXPECT_EQ(s.connect_target()->ip, *IpAddress::parse("192.0.2.1"));
  EXPECT_EQ(s.connect_target()->port, 80);
  EXPECT_EQ(session_.connected, 1);
  EXPECT_EQ(s.written(), kGet);
  EXPECT_EQ(session_.write_done, 1);
  EXPECT_TRUE(s.reading());
  EXPECT_EQ(pool_->connections_opened(), 1u);
}

TEST_F(OriginConnectionTest, CleanResponseIsPooledAndReused) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_EQ(session_.heads, std::vector<int>{200});
  EXPECT_EQ(session_.body, "hello");
  EXPECT_EQ(session_.ends, 1);
  // The session released the connection at the end: it is not told about that read again.
  EXPECT_EQ(session_.reads_processed, 0);
  EXPECT_FALSE(s.closed());
  EXPECT_EQ(pool_->idle_count(), 1u);
  EXPECT_TRUE(s.reading());  // parked connections watch for the origin closing them

  OriginConnection* again = pool_->acquire(kKey);
  EXPECT_TRUE(again->reused());
  EXPECT_TRUE(again->connected());
  EXPECT_EQ(pool_->idle_count(), 0u);
  session_.conn = again;
  again->set_owner(&session_);
  again->begin_exchange(false, 10);
  ASSERT_EQ(again->write({slice_of(kGet)}), 0);
  s.complete_writes();
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  EXPECT_EQ(session_.body, "hellook");
  EXPECT_EQ(streams_.count(), 1u);  // one stream for both exchanges
}

TEST_F(OriginConnectionTest, NoBodyResponseDeclaringABodyIsNeverPooled) {
  // RFC 9112 §6.3: a 204 has no body whatever Content-Length says; the declared bytes may
  // still come and would read as the next response, so the connection is not reused.
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_EQ(session_.heads, std::vector<int>{204});
  EXPECT_EQ(session_.ends, 1);
  EXPECT_EQ(session_.body, "");
  EXPECT_TRUE(s.closed());
  EXPECT_EQ(pool_->idle_count(), 0u);
}

TEST_F(OriginConnectionTest, NoBodyResponseWithoutFramingIsPooled) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 204 No Content\r\n\r\n"));
  EXPECT_EQ(session_.ends, 1);
  EXPECT_FALSE(s.closed());
  EXPECT_EQ(pool_->idle_count(), 1u);
}

TEST_F(OriginConnectionTest, HeadResponseWithLengthIsPooled) {
  // On a HEAD response Content-Length describes the representation: normal, reusable.
  FakeStream& s = start_exchange(/*head_request=*/true);
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"));
  EXPECT_EQ(session_.ends, 1);
  EXPECT_EQ(pool_->idle_count(), 1u);
  EXPECT_FALSE(s.closed());
}

TEST_F(OriginConnectionTest, InterimResponsesAreReportedApartFromTheFinalOne) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"));
  EXPECT_EQ(session_.interim, std::vector<int>{103});
  EXPECT_TRUE(session_.heads.empty());
  EXPECT_EQ(session_.ends, 0);  // an interim response never ends the exchange
  ASSERT_TRUE(s.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  EXPECT_EQ(session_.interim, (std::vector<int>{103, 100}));
  EXPECT_EQ(session_.heads, std::vector<int>{200});
  EXPECT_EQ(session_.body, "ok");
  EXPECT_EQ(session_.ends, 1);
  EXPECT_EQ(pool_->idle_count(), 1u);
}

TEST_F(OriginConnectionTest, UnrequestedSwitchAndBadStatusAreProtocolErrors) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"));
  EXPECT_EQ(session_.errors, 1);
  EXPECT_EQ(session_.error_status, UV_EPROTO);
  EXPECT_EQ(session_.error, "invalid response from origin: unrequested protocol switch (101)");
  EXPECT_TRUE(s.closed());

  session_ = Session();
  FakeStream& s2 = start_exchange();
  ASSERT_TRUE(s2.feed("HTTP/1.1 600 Nope\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(session_.error, "invalid response from origin: invalid status code 600");
  EXPECT_TRUE(s2.closed());
  EXPECT_EQ(pool_->idle_count(), 0u);
}

TEST_F(OriginConnectionTest, BytesAfterTheResponseMeanNoReuse) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(session_.ends, 1);
  EXPECT_TRUE(s.closed());
  EXPECT_EQ(pool_->idle_count(), 0u);
}

TEST_F(OriginConnectionTest, CloseDelimitedBodyEndsAtEof) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, "));
  ASSERT_TRUE(s.feed("part two"));
  EXPECT_EQ(session_.ends, 0);
  ASSERT_TRUE(s.feed_eof());
  EXPECT_EQ(session_.body, "part one, part two");
  EXPECT_EQ(session_.ends, 1);
  EXPECT_EQ(session_.errors, 0);
  EXPECT_TRUE(s.closed());
}

TEST_F(OriginConnectionTest, EofBeforeOrInsideAFramedResponseIsAnError) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed_eof());
  EXPECT_EQ(session_.errors, 1);
  EXPECT_EQ(session_.error_status, UV_EOF);
  EXPECT_EQ(session_.error, "origin closed the connection");

  session_ = Session();
  FakeStream& s2 = start_exchange();
  ASSERT_TRUE(s2.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
  ASSERT_TRUE(s2.feed_eof());
  EXPECT_EQ(session_.errors, 1);
  EXPECT_EQ(session_.error, "origin closed the connection mid-response");
}

TEST_F(OriginConnectionTest, IdleConnectionClosedByTheOriginLeavesThePool) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_EQ(pool_->idle_count(), 1u);
  ASSERT_TRUE(s.feed_eof());
  EXPECT_EQ(pool_->idle_count(), 0u);
  EXPECT_TRUE(s.closed());
  // The next request gets a new connection.
  session_ = Session();
  start_exchange();
  EXPECT_EQ(streams_.count(), 2u);
}

TEST_F(OriginConnectionTest, UnsolicitedBytesOnAnIdleConnectionCloseIt) {
  FakeStream& s = start_exchange();
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_EQ(pool_->idle_count(), 1u);
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\n\r\n"));
  EXPECT_EQ(pool_->idle_count(), 0u);
  EXPECT_TRUE(s.closed());
}

TEST_F(OriginConnectionTest, ReleaseWithWritesStillQueuedCloses) {
  OriginConnection* c = pool_->acquire(kKey);
  session_.conn = c;
  c->set_owner(&session_);
  c->connect(*IpAddress::parse("192.0.2.1"), 80, 10);
  FakeStream& s = streams_.last();
  s.complete_connect();
  c->begin_exchange(false, 10);
  ASSERT_EQ(c->write({slice_of(kGet)}), 0);
  EXPECT_EQ(c->write_queue_size(), sizeof kGet - 1);
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(session_.ends, 1);
  EXPECT_TRUE(s.closed());
  EXPECT_EQ(pool_->idle_count(), 0u);
}

TEST_F(OriginConnectionTest, PauseStopsReadingAndResumeRestarts) {
  FakeStream& s = start_exchange();
  OriginConnection* c = session_.conn;
  ASSERT_TRUE(s.feed("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab"));
  c->pause_reading();
  EXPECT_FALSE(s.reading());
  EXPECT_FALSE(s.feed("cd"));
  c->resume_reading();
  EXPECT_TRUE(s.reading());
  ASSERT_TRUE(s.feed("cdef"));
  EXPECT_EQ(session_.body, "abcdef");
  EXPECT_EQ(session_.ends, 1);
}

TEST_F(OriginConnectionTest, PausedConnectionHasNoReadTimeout) {
  // Read timeout 20 ms. While paused for a slow client the timer is stopped: the loop runs
  // past the timeout without an error; once resumed, the silence is a timeout again.
  FakeStream& s = start_exchange();
  OriginConnection* c = session_.conn;
  c->begin_exchange(false, 0.02);
  c->pause_reading();
  uv_timer_t wait;
  uv_timer_init(&loop_, &wait);
  uv_timer_start(&wait, [](uv_timer_t*) {}, 100, 0);
  uv_run(&loop_, UV_RUN_DEFAULT);  // only `wait` is active: returns after it fires
  EXPECT_EQ(session_.errors, 0);
  c->resume_reading();
  uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(session_.errors, 1);
  EXPECT_TRUE(session_.error_timeout);
  EXPECT_EQ(session_.error, "origin read timeout");
  EXPECT_TRUE(s.closed());
  uv_close(reinterpret_cast<uv_handle_t*>(&wait), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);  // `wait` lives on this stack frame
}

TEST_F(OriginConnectionTest, FailuresReachTheOwnerOnce) {
  // Connect refused.
  OriginConnection* c = pool_->acquire(kKey);
  session_.conn = c;
  c->set_owner(&session_);
  c->connect(*IpAddress::parse("192.0.2.1"), 80, 10);
  streams_.last().complete_connect(UV_ECONNREFUSED);
  EXPECT_EQ(session_.errors, 1);
  EXPECT_FALSE(session_.error_timeout);
  EXPECT_EQ(session_.error, "connect: connection refused");
  EXPECT_TRUE(streams_.last().closed());

  // A write that fails.
  session_ = Session();
  FakeStream& s = start_exchange();
  ASSERT_EQ(session_.conn->write({slice_of("body")}), 0);
  s.complete_writes(1, UV_EPIPE);
  EXPECT_EQ(session_.errors, 1);
  EXPECT_EQ(session_.error, "write: broken pipe");
  EXPECT_TRUE(s.closed());
  EXPECT_FALSE(s.feed("late"));
}

TEST_F(OriginConnectionTest, TunnelTakesTheConnectedStreamOut) {
  auto* c = new OriginConnection(*pool_, kKey);  // as the forwarder makes a tunnel's connection
  c->set_owner(&session_);
  c->connect(*IpAddress::parse("192.0.2.1"), 443, 10);
  FakeStream& s = streams_.last();
  EXPECT_EQ(c->detach_stream(), nullptr);  // not connected yet
  s.complete_connect();
  EXPECT_EQ(session_.connected, 1);
  outpost::StreamPtr taken = c->detach_stream();  // `c` is closing now and frees itself
  ASSERT_EQ(taken.get(), &s);
  EXPECT_EQ(taken->handler(), nullptr);
  EXPECT_FALSE(s.closed());  // the stream lives on for the tunnel
  ASSERT_EQ(taken->write({slice_of("\x16\x03\x01")}), 0);
  EXPECT_EQ(s.written(), "\x16\x03\x01");
  uv_run(&loop_, UV_RUN_NOWAIT);  // the connection object frees itself
  EXPECT_EQ(session_.errors, 0);
  EXPECT_EQ(pool_->idle_count(), 0u);
  taken.reset();
  EXPECT_TRUE(s.closed());
}

}  // namespace
