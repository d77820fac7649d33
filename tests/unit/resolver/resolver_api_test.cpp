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
  int a_queries = 0;    // A questions for a full name (not minimised ones, not ". NS")
  bool silent = false;  // swallow every query (a dead server)
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
    if (q.question[0].type == type::A && qn.label_count() >= 3) ++a_queries;
    if (silent || label.rfind("slow", 0) == 0) return;
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
    std::string err;
    cfg_.root_hints = *parse_root_hints(". NS ns.root.\nns.root. A 127.0.0.1\n", &err);
    cfg_.upstream_port = auth_->port;
    ctx_ = ResolverContext::create(cfg_);
    resolver_ = std::make_unique<Resolver>(&loop_, ctx_);
  }
  // A fresh resolver and cache with these settings.
  void restart(const ResolverConfig& cfg, CacheLimits limits) {
    resolver_->shutdown();
    ctx_ = ResolverContext::create(cfg, limits);
    resolver_ = std::make_unique<Resolver>(&loop_, ctx_);
  }
  Resolution ask(const char* name) {
    bool done = false;
    Resolution res;
    resolver_->query({*Name::from_text(name), type::A, kClassIN}, [&](const Resolution& r) { res = r, done = true; });
    run_until(done);
    EXPECT_TRUE(done);
    return res;
  }
  // Lets time pass for the cache (its clock is the loop's).
  void pass_ms(unsigned ms) {
    uv_sleep(ms);
    uv_update_time(&loop_);
  }
  // Sleeps until `ms` after `since` (uv_hrtime), whatever the work in between took.
  void pass_until(std::uint64_t since, unsigned ms) {
    auto elapsed = (uv_hrtime() - since) / 1000000;
    if (elapsed < ms) pass_ms(static_cast<unsigned>(ms - elapsed));
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
  ResolverConfig cfg_;
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

// ---- serve-stale (RFC 8767) and prefetch -------------------------------------------------------

TEST_F(ResolverApi, ServesStaleWhenTheServersGoSilent) {
  ResolverConfig cfg = cfg_;
  cfg.serve_stale = true;
  cfg.stale_answer_ttl = 7;
  cfg.stale_client_timeout_ms = 200;
  restart(cfg, CacheLimits{.max_ttl = 1, .stale_max_age = 60});
  auto first = ask("www.stale.test.");
  ASSERT_EQ(first.rcode, rcode::NOERROR);
  EXPECT_FALSE(first.stale);
  pass_ms(1100);  // expired
  auth_->silent = true;
  auto started = uv_hrtime();
  auto stale = ask("www.stale.test.");
  double waited_ms = static_cast<double>(uv_hrtime() - started) / 1e6;
  EXPECT_EQ(stale.rcode, rcode::NOERROR);
  EXPECT_TRUE(stale.stale);
  ASSERT_EQ(stale.answer.size(), 1u);
  EXPECT_EQ(stale.answer[0].ttl, 7u);
  EXPECT_GE(waited_ms, 190);   // it tried first, for stale_client_timeout
  EXPECT_LT(waited_ms, 1000);  // not the whole resolution
  EXPECT_EQ(resolver_->core().refresh_stats().stale_answers, 1u);
}

TEST_F(ResolverApi, StaleWaitsCancelledOrShutDownNeverCallBack) {
  ResolverConfig cfg = cfg_;
  cfg.serve_stale = true;
  cfg.stale_client_timeout_ms = 5000;
  restart(cfg, CacheLimits{.max_ttl = 1, .stale_max_age = 60});
  ASSERT_EQ(ask("www.stale.test.").rcode, rcode::NOERROR);
  ASSERT_EQ(ask("www2.stale.test.").rcode, rcode::NOERROR);
  pass_ms(1100);
  auth_->silent = true;
  bool called = false;
  auto h = resolver_->query({*Name::from_text("www.stale.test."), type::A, kClassIN}, [&](const Resolution&) { called = true; });
  resolver_->query({*Name::from_text("www2.stale.test."), type::A, kClassIN}, [&](const Resolution&) { called = true; });
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  resolver_->cancel(h);  // the first client goes; the second is still waiting at shutdown
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  resolver_->shutdown();
  for (int i = 0; i < 50; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_FALSE(called);
  EXPECT_EQ(resolver_->core().refresh_stats().stale_answers, 0u);
}

TEST_F(ResolverApi, WithoutServeStaleASilentServerIsServfail) {
  restart(cfg_, CacheLimits{.max_ttl = 1, .stale_max_age = 60});
  ASSERT_EQ(ask("www.stale.test.").rcode, rcode::NOERROR);
  pass_ms(1100);
  auth_->silent = true;
  auto r = ask("www.stale.test.");
  EXPECT_EQ(r.rcode, rcode::SERVFAIL);
  EXPECT_FALSE(r.stale);
  EXPECT_EQ(resolver_->core().refresh_stats().stale_answers, 0u);
}

TEST_F(ResolverApi, StaleAnswerNotUsedWhileFreshResolutionWorks) {
  ResolverConfig cfg = cfg_;
  cfg.serve_stale = true;
  restart(cfg, CacheLimits{.max_ttl = 1, .stale_max_age = 60});
  ASSERT_EQ(ask("www.stale.test.").rcode, rcode::NOERROR);
  pass_ms(1100);
  int before = auth_->a_queries;
  auto r = ask("www.stale.test.");
  EXPECT_EQ(r.rcode, rcode::NOERROR);
  EXPECT_FALSE(r.stale);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(auth_->a_queries, before + 1);
}

// A TTL of 10 s and checks half a second from every edge: a loaded machine (the suite runs
// in parallel, under sanitizers too) must not move a question across one.
TEST_F(ResolverApi, PrefetchRefreshesANameInTheLastTenthOfItsTtl) {
  ResolverConfig cfg = cfg_;
  cfg.prefetch = true;
  restart(cfg, CacheLimits{.max_ttl = 10});
  ASSERT_EQ(ask("www.pf.test.").rcode, rcode::NOERROR);
  auto stored = uv_hrtime();
  EXPECT_EQ(auth_->a_queries, 1);
  pass_ms(1000);  // most of its TTL left: a plain hit
  EXPECT_TRUE(ask("www.pf.test.").from_cache);
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(auth_->a_queries, 1);
  pass_until(stored, 9500);  // the last 10% of 10 s, half a second from either edge
  // Two hits at once: both answered from the cache, one prefetch.
  bool done1 = false, done2 = false;
  Resolution r1, r2;
  Question q{*Name::from_text("www.pf.test."), type::A, kClassIN};
  resolver_->query(q, [&](const Resolution& r) { r1 = r, done1 = true; });
  resolver_->query(q, [&](const Resolution& r) { r2 = r, done2 = true; });
  run_until(done1);
  run_until(done2);
  EXPECT_TRUE(r1.from_cache);
  EXPECT_TRUE(r2.from_cache);
  EXPECT_EQ(resolver_->core().refresh_stats().prefetches, 1u);
  for (int i = 0; i < 200 && auth_->a_queries < 2; ++i) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
  EXPECT_EQ(auth_->a_queries, 2);
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  pass_until(stored, 10500);  // past the first answer's expiry: the refreshed copy answers
  auto later = ask("www.pf.test.");
  EXPECT_TRUE(later.from_cache);
  EXPECT_EQ(auth_->a_queries, 2);
}

TEST_F(ResolverApi, WithoutPrefetchANameExpires) {
  restart(cfg_, CacheLimits{.max_ttl = 10});
  ASSERT_EQ(ask("www.pf.test.").rcode, rcode::NOERROR);
  auto stored = uv_hrtime();
  pass_until(stored, 9500);  // the last 10% of 10 s
  EXPECT_TRUE(ask("www.pf.test.").from_cache);
  for (int i = 0; i < 50; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(auth_->a_queries, 1);
  EXPECT_EQ(resolver_->core().refresh_stats().prefetches, 0u);
  pass_until(stored, 10500);
  EXPECT_FALSE(ask("www.pf.test.").from_cache);
  EXPECT_EQ(auth_->a_queries, 2);
}
