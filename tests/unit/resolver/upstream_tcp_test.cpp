// Upstream TCP reuse (resolver/upstream.hpp) against a TCP DNS server on 127.0.0.1 (an
// ephemeral port, on the test's own loop) that answers every query on its connections and
// counts them: queries share a connection, pipelined ones too; an idle connection is closed
// after the idle time and keeps no loop alive.
#include <gtest/gtest.h>

#include <algorithm>
#include <uv.h>

#include <memory>
#include <vector>

#include "resolver/upstream.hpp"

using namespace outpost::dns;
using outpost::IpAddress;

namespace {

class TcpAuthority {
 public:
  explicit TcpAuthority(uv_loop_t* loop) : loop_(loop) {
    uv_tcp_init(loop, &listener_);
    listener_.data = this;
    sockaddr_in sa{};
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&sa), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
    uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, [](uv_stream_t* s, int) {
      static_cast<TcpAuthority*>(s->data)->accept();
    });
    uv_unref(reinterpret_cast<uv_handle_t*>(&listener_));  // only the client side keeps the loop
  }
  ~TcpAuthority() {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    for (auto& c : conns_)
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->handle)))
        uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), nullptr);
    uv_run(loop_, UV_RUN_NOWAIT);
  }

  std::uint16_t port = 0;
  int accepted = 0;
  int closed_by_client = 0;
  int queries = 0;

 private:
  struct Conn {
    TcpAuthority* server;
    uv_tcp_t handle;
    std::vector<std::uint8_t> in;
  };
  void accept() {
    auto c = std::make_unique<Conn>();
    c->server = this;
    uv_tcp_init(loop_, &c->handle);
    c->handle.data = c.get();
    uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), reinterpret_cast<uv_stream_t*>(&c->handle));
    uv_unref(reinterpret_cast<uv_handle_t*>(&c->handle));
    ++accepted;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->handle),
        [](uv_handle_t*, size_t, uv_buf_t* b) {
          static char buf[65536];
          *b = uv_buf_init(buf, sizeof buf);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
          auto* c = static_cast<Conn*>(s->data);
          if (n < 0) {
            ++c->server->closed_by_client;
            uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
            return;
          }
          c->in.insert(c->in.end(), b->base, b->base + n);
          c->server->answer(c);
        });
    conns_.push_back(std::move(c));
  }
  void answer(Conn* c) {
    while (c->in.size() >= 2) {
      std::size_t len = static_cast<std::size_t>(c->in[0]) << 8 | c->in[1];
      if (c->in.size() < 2 + len) return;
      Message q;
      ASSERT_EQ(parse_message({c->in.data() + 2, len}, &q), Status::ok);
      c->in.erase(c->in.begin(), c->in.begin() + static_cast<std::ptrdiff_t>(2 + len));
      ++queries;
      Message r;
      r.header.id = q.header.id;
      r.header.qr = r.header.aa = true;
      r.question = q.question;
      r.answer.push_back({q.question[0].name, type::A, kClassIN, 30, RdataA{{10, 0, 0, 1}}});
      auto wire = write_message(r);
      // Length-prefixed, sized once (GCC 12 -Warray-bounds misreads an insert after a
      // two-element initializer list at -O2).
      auto* out = new std::vector<std::uint8_t>(2 + wire.size());
      (*out)[0] = static_cast<std::uint8_t>(wire.size() >> 8);
      (*out)[1] = static_cast<std::uint8_t>(wire.size());
      std::copy(wire.begin(), wire.end(), out->begin() + 2);
      auto* req = new uv_write_t;
      req->data = out;
      uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(out->data()), static_cast<unsigned>(out->size()));
      uv_write(req, reinterpret_cast<uv_stream_t*>(&c->handle), &b, 1, [](uv_write_t* w, int) {
        delete static_cast<std::vector<std::uint8_t>*>(w->data);
        delete w;
      });
    }
  }
  uv_loop_t* loop_;
  uv_tcp_t listener_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

class UpstreamTcp : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    server_ = std::make_unique<TcpAuthority>(&loop_);
    upstream_ = std::make_unique<Upstream>(&loop_);
  }
  void TearDown() override {
    upstream_.reset();
    server_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  void send(const char* name, std::vector<UpstreamResult>* results) {
    upstream_->send(*IpAddress::parse("127.0.0.1"), server_->port, {*Name::from_text(name), type::A, kClassIN}, false,
                    true, 2000, [results](UpstreamResult&& r) { results->push_back(std::move(r)); });
  }
  // Until `n` results are in; the loop returns by itself once no query is left (an idle
  // connection does not hold it).
  void run(std::vector<UpstreamResult>& results, std::size_t n) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    ASSERT_EQ(results.size(), n);
    for (auto& r : results) EXPECT_EQ(r.kind, UpstreamResult::Kind::ok);
  }

  // Runs the loop for about `ms` (a timer of its own keeps it turning: the idle connection's
  // timer does not) or until the server has seen the client close.
  void spin_until_closed(unsigned ms) {
    uv_timer_t t;
    uv_timer_init(&loop_, &t);
    for (unsigned waited = 0; waited < ms && server_->closed_by_client == 0; waited += 10) {
      uv_timer_start(&t, [](uv_timer_t*) {}, 10, 0);
      uv_run(&loop_, UV_RUN_ONCE);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  uv_loop_t loop_;
  std::unique_ptr<TcpAuthority> server_;
  std::unique_ptr<Upstream> upstream_;
};

}  // namespace

TEST_F(UpstreamTcp, QueriesOneAfterAnotherShareAConnection) {
  std::vector<UpstreamResult> results;
  for (int i = 0; i < 5; ++i) {
    send(("q" + std::to_string(i) + ".test").c_str(), &results);
    run(results, i + 1);
    EXPECT_EQ(upstream_->idle_tcp_connections(), 1u);  // still open, yet uv_run returned
  }
  EXPECT_EQ(server_->accepted, 1);
  EXPECT_EQ(server_->queries, 5);
  EXPECT_EQ(upstream_->stats().tcp_connections, 1u);
  EXPECT_EQ(upstream_->stats().tcp_reused, 4u);
  EXPECT_EQ(upstream_->stats().tcp_retries, 0u);
}

TEST_F(UpstreamTcp, QueriesAtOnceArePipelinedOnOneConnection) {
  std::vector<UpstreamResult> results;
  for (int i = 0; i < 6; ++i) send(("p" + std::to_string(i) + ".test").c_str(), &results);
  run(results, 6);
  for (auto& r : results) EXPECT_EQ(r.message.answer.size(), 1u);
  EXPECT_EQ(server_->accepted, 1);
  EXPECT_EQ(upstream_->stats().tcp_reused, 5u);
}

TEST_F(UpstreamTcp, IdleConnectionClosedAfterTheIdleTime) {
  upstream_->set_tcp_idle_ms(100);
  std::vector<UpstreamResult> results;
  send("a.test", &results);
  run(results, 1);
  EXPECT_EQ(upstream_->tcp_connections(), 1u);
  spin_until_closed(1000);
  EXPECT_EQ(server_->closed_by_client, 1);
  EXPECT_EQ(upstream_->tcp_connections(), 0u);
  EXPECT_EQ(upstream_->idle_tcp_connections(), 0u);
  send("b.test", &results);
  run(results, 2);
  EXPECT_EQ(server_->accepted, 2);
  EXPECT_EQ(upstream_->stats().tcp_reused, 0u);
}

TEST_F(UpstreamTcp, CloseAllClosesIdleConnections) {
  std::vector<UpstreamResult> results;
  send("a.test", &results);
  run(results, 1);
  upstream_->close_all();
  EXPECT_EQ(upstream_->tcp_connections(), 0u);
  spin_until_closed(1000);
  EXPECT_EQ(server_->closed_by_client, 1);
}
