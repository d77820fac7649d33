// The public in-process API (resolver/resolver.hpp) against a fake authoritative server on
// 127.0.0.1 (an ephemeral port, on the test's own loop): answers, caching, negative answers,
// literals, cancellation, and that callbacks never run inside the call that started them.
#include <gtest/gtest.h>
#include <uv.h>

#include <cstring>
#include <sstream>

#include "resolver/hints.hpp"
#include "resolver/resolver.hpp"
#include "resolver/resolver_core.hpp"

using namespace outpost::dns;
using outpost::IpAddress;

namespace {

// Authoritative for everything: "nx*" names do not exist, "slow*" names never get an answer,
// "noedns*" names get FORMERR when the query carries EDNS,
// A queries get 10.0.0.1 (TTL 30), other types NODATA.
class FakeAuthority {
 public:
  explicit FakeAuthority(uv_loop_t* loop) {
    uv_udp_init(loop, &udp_);
    udp_.data = this;
    sockaddr_in sa{};
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_udp_bind(&udp_, reinterpret_cast<sockaddr*>(&sa), 0);
    int len = sizeof sa;
    uv_udp_getsockname(&udp_, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
    uv_udp_recv_start(
        &udp_,
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* self = static_cast<FakeAuthority*>(h->data);
          *b = uv_buf_init(self->buf_, sizeof self->buf_);
        },
        [](uv_udp_t* u, ssize_t n, const uv_buf_t* b, const sockaddr* from, unsigned) {
          if (n <= 0) return;
          static_cast<FakeAuthority*>(u->data)->on_query(
              {reinterpret_cast<const std::uint8_t*>(b->base), static_cast<std::size_t>(n)}, from);
        });
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr); }

  std::uint16_t port = 0;
  int queries = 0;
  int edns_rejected = 0;
  int priming_queries = 0;  // ". NS"

 private:
  void on_query(std::span<const std::uint8_t> wire, const sockaddr* from) {
    ++queries;
    Message q;
    ASSERT_EQ(parse_message(wire, &q), Status::ok);
    const auto& qn = q.question[0].name;
    if (qn.is_root() && q.question[0].type == type::NS) ++priming_queries;
    std::string label(qn.first_label());
    if (label.rfind("slow", 0) == 0) return;
    Message r;
    r.header.id = q.header.id;
    r.header.qr = r.header.aa = true;
    r.question = q.question;
    RRset soa{Name::root(), type::SOA, kClassIN, 5, {RdataSoa{*Name::from_text("ns."), *Name::from_text("h."), 1, 2, 3, 4, 5}}};
    if (label.rfind("noedns", 0) == 0 && q.edns) {
      ++edns_rejected;
      r.header.rcode = rcode::FORMERR;  // an old server that does not know EDNS
    } else if (label.rfind("nx", 0) == 0) {
      r.header.rcode = rcode::NXDOMAIN;
      soa.append_to(&r.authority, 5);
    } else if (q.question[0].type == type::A) {
      r.answer.push_back({qn, type::A, kClassIN, 30, RdataA{{10, 0, 0, 1}}});
    } else {
      soa.append_to(&r.authority, 5);
    }
    auto out = write_message(r);
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(out.data()), static_cast<unsigned>(out.size()));
    uv_udp_try_send(&udp_, &b, 1, from);
  }
  uv_udp_t udp_;
  char buf_[65536];
};

class ResolverApi : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    auth_ = std::make_unique<FakeAuthority>(&loop_);
    ResolverConfig cfg;
    std::string err;
    cfg.root_hints = *parse_root_hints(". NS ns.root.\nns.root. A 127.0.0.1\n", &err);
    cfg.upstream_port = auth_->port;
    ctx_ = ResolverContext::create(cfg);
    resolver_ = std::make_unique<Resolver>(&loop_, ctx_);
  }
  void TearDown() override {
    resolver_->shutdown();
    auth_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // Runs the loop until `done` (the fake server keeps it alive, so UV_RUN_ONCE could block
  // after the last callback): short non-blocking turns, bounded in number, not in time.
  void run_until(const bool& done) {
    for (int i = 0; i < 20000 && !done; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (!done) uv_sleep(1);
    }
  }

  uv_loop_t loop_;
  std::unique_ptr<FakeAuthority> auth_;
  std::shared_ptr<ResolverContext> ctx_;
  std::unique_ptr<Resolver> resolver_;
};

}  // namespace

TEST_F(ResolverApi, ResolvesAndCaches) {
  bool done = false, inside = true;
  ResolveStatus st{};
  std::vector<IpAddress> addrs;
  std::uint32_t ttl = 0;
  resolver_->resolve("www.example.test", [&](ResolveStatus s, std::vector<IpAddress> a, std::uint32_t t) {
    EXPECT_FALSE(inside);
    st = s, addrs = std::move(a), ttl = t, done = true;
  });
  inside = false;
  run_until(done);
  ASSERT_TRUE(done);
  EXPECT_EQ(st, ResolveStatus::ok);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_EQ(addrs[0].to_string(), "10.0.0.1");
  EXPECT_GT(ttl, 0u);
  EXPECT_LE(ttl, 30u);

  int before = auth_->queries;
  done = false, inside = true;
  resolver_->resolve("WWW.example.test.", [&](ResolveStatus s, std::vector<IpAddress> a, std::uint32_t) {
    EXPECT_FALSE(inside);  // even a cache hit is delivered from the loop
    st = s, addrs = std::move(a), done = true;
  });
  inside = false;
  run_until(done);
  EXPECT_EQ(st, ResolveStatus::ok);
  EXPECT_EQ(auth_->queries, before);  // no upstream query for a cached name
  // The A and AAAA questions started together on a cold cache: one priming query for both.
  EXPECT_EQ(auth_->priming_queries, 1);
}

TEST_F(ResolverApi, RetriesWithoutEdnsAfterFormerr) {
  bool done = false;
  ResolveStatus st{};
  std::vector<IpAddress> addrs;
  resolver_->resolve("noedns.example.test", [&](ResolveStatus s, std::vector<IpAddress> a, std::uint32_t) {
    st = s, addrs = std::move(a), done = true;
  });
  run_until(done);
  EXPECT_EQ(st, ResolveStatus::ok);
  EXPECT_EQ(addrs.size(), 1u);
  EXPECT_EQ(auth_->edns_rejected, 2);  // the A and the AAAA question
}

TEST_F(ResolverApi, NegativeAnswers) {
  bool done = false;
  ResolveStatus st{};
  resolver_->resolve("nxhost.example.test", [&](ResolveStatus s, std::vector<IpAddress>, std::uint32_t) { st = s, done = true; });
  run_until(done);
  EXPECT_EQ(st, ResolveStatus::nxdomain);
}

TEST_F(ResolverApi, LiteralsAndBadNames) {
  bool done = false;
  std::vector<IpAddress> addrs;
  resolver_->resolve("[2001:db8::7]", [&](ResolveStatus s, std::vector<IpAddress> a, std::uint32_t) {
    EXPECT_EQ(s, ResolveStatus::ok);
    addrs = a, done = true;
  });
  run_until(done);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_EQ(addrs[0].to_string(), "2001:db8::7");
  done = false;
  ResolveStatus st{};
  resolver_->resolve("bad..name", [&](ResolveStatus s, std::vector<IpAddress>, std::uint32_t) { st = s, done = true; });
  run_until(done);
  EXPECT_EQ(st, ResolveStatus::bad_name);
  EXPECT_EQ(auth_->queries, 0);
}

TEST_F(ResolverApi, CancelledLookupNeverCallsBack) {
  bool called = false;
  auto h = resolver_->resolve("slow.example.test", [&](ResolveStatus, std::vector<IpAddress>, std::uint32_t) { called = true; });
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  resolver_->cancel(h);
  // With everything cancelled, only the fake server keeps the loop alive: a bounded run ends.
  for (int i = 0; i < 50; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_FALSE(called);
  EXPECT_EQ(resolver_->core().running(), 0u);
}

TEST_F(ResolverApi, QueryGivesRecordsAndTrace) {
  bool done = false;
  Resolution res;
  int steps = 0;
  resolver_->query({*Name::from_text("a.b.test."), type::A, kClassIN}, [&](const Resolution& r) { res = r, done = true; },
                   [&](const TraceStep&) { ++steps; });
  run_until(done);
  EXPECT_EQ(res.rcode, rcode::NOERROR);
  ASSERT_EQ(res.answer.size(), 1u);
  EXPECT_EQ(steps, 4);  // priming (". NS"), then QNAME minimisation: test., b.test., a.b.test.
}
