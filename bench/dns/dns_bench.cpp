// DNS micro-benchmarks (Google Benchmark), release build:
//   cmake --build build/release --target dns_bench && build/release/bench/dns/dns_bench
// - Codec: parse and build rates of Outpost's codec against c-ares' own parsers on the same
//   packets (ares_parse_a_reply, ares_parse_ns_reply, ares_create_query).
// - In-process cached lookup: Resolver::resolve() on a warm cache, including the loop turn that
//   delivers the callback (what the proxy pays per origin name).
#include <ares.h>
#include <arpa/nameser.h>
#include <benchmark/benchmark.h>
#include <uv.h>

#include "resolver/hints.hpp"
#include "resolver/resolver.hpp"

using namespace outpost::dns;

namespace {

Name N(const char* s) { return *Name::from_text(s); }

std::vector<std::uint8_t> answer_packet() {
  Message m;
  m.header = {.id = 1, .qr = true, .aa = true, .rd = true, .ra = true};
  m.question.push_back({N("www.example.test."), type::A, kClassIN});
  m.answer.push_back({N("www.example.test."), type::CNAME, kClassIN, 300, RdataName{N("edge.cdn.example.")}});
  for (std::uint8_t i = 1; i <= 4; ++i)
    m.answer.push_back({N("edge.cdn.example."), type::A, kClassIN, 60, RdataA{{192, 0, 2, i}}});
  m.edns = Edns{};
  return write_message(m);
}

// An NS answer with addresses (what ares_parse_ns_reply expects; a referral has the same shape
// with the NS records in the authority section).
std::vector<std::uint8_t> referral_packet() {
  Message m;
  m.header = {.id = 2, .qr = true};
  m.question.push_back({N("test."), type::NS, kClassIN});
  for (const char* ns : {"a.ns.test.", "b.ns.test.", "c.ns.test.", "d.ns.test."})
    m.answer.push_back({N("test."), type::NS, kClassIN, 172800, RdataName{N(ns)}});
  for (const char* ns : {"a.ns.test.", "b.ns.test.", "c.ns.test.", "d.ns.test."})
    m.additional.push_back({N(ns), type::A, kClassIN, 172800, RdataA{{198, 51, 100, 1}}});
  return write_message(m);
}

void BM_OutpostParseAnswer(benchmark::State& st) {
  auto p = answer_packet();
  for (auto _ : st) {
    Message m;
    benchmark::DoNotOptimize(parse_message(p, &m));
    benchmark::DoNotOptimize(m.answer.size());
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_OutpostParseAnswer);

void BM_CaresParseAReply(benchmark::State& st) {
  auto p = answer_packet();
  for (auto _ : st) {
    hostent* host = nullptr;
    ares_addrttl ttls[8];
    int n = 8;
    benchmark::DoNotOptimize(ares_parse_a_reply(p.data(), static_cast<int>(p.size()), &host, ttls, &n));
    if (host) ares_free_hostent(host);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_CaresParseAReply);

void BM_OutpostParseNsAnswer(benchmark::State& st) {
  auto p = referral_packet();
  for (auto _ : st) {
    Message m;
    benchmark::DoNotOptimize(parse_message(p, &m));
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_OutpostParseNsAnswer);

void BM_CaresParseNsReply(benchmark::State& st) {
  auto p = referral_packet();
  for (auto _ : st) {
    hostent* host = nullptr;
    benchmark::DoNotOptimize(ares_parse_ns_reply(p.data(), static_cast<int>(p.size()), &host));
    if (host) ares_free_hostent(host);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_CaresParseNsReply);

void BM_OutpostBuildQuery(benchmark::State& st) {
  auto name = N("www.example.test.");
  for (auto _ : st) benchmark::DoNotOptimize(write_message(make_query(7, name, type::A, true)));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_OutpostBuildQuery);

void BM_CaresCreateQuery(benchmark::State& st) {
  for (auto _ : st) {
    unsigned char* buf = nullptr;
    int len = 0;
    benchmark::DoNotOptimize(ares_create_query("www.example.test", ns_c_in, ns_t_a, 7, 1, &buf, &len, 1232));
    ares_free_string(buf);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_CaresCreateQuery);

void BM_OutpostBuildAnswer(benchmark::State& st) {
  Message m;
  parse_message(answer_packet(), &m);
  for (auto _ : st) benchmark::DoNotOptimize(write_message(m, 1232));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_OutpostBuildAnswer);

// resolve() of a cached name: from the call to the callback, one loop turn included.
void BM_InProcessCachedResolve(benchmark::State& st) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ResolverConfig cfg;
  std::string err;
  cfg.root_hints = *parse_root_hints(". NS ns.root.\nns.root. A 127.0.0.1\n", &err);  // never asked
  auto ctx = ResolverContext::create(cfg);
  RRset a{N("origin.example.test."), type::A, kClassIN, 86400, {RdataA{{192, 0, 2, 80}}}};
  RRset aaaa{N("origin.example.test."), type::AAAA, kClassIN, 86400, {RdataAaaa{{0x20, 0x01, 0x0d, 0xb8}}}};
  ctx->cache->put_rrset(a, Trust::answer, uv_now(&loop));
  ctx->cache->put_rrset(aaaa, Trust::answer, uv_now(&loop));
  {
    Resolver r(&loop, ctx);
    for (auto _ : st) {
      bool done = false;
      r.resolve("origin.example.test", [&](ResolveStatus s, std::vector<outpost::IpAddress> addrs, std::uint32_t) {
        benchmark::DoNotOptimize(s);
        benchmark::DoNotOptimize(addrs.size());
        done = true;
      });
      while (!done) uv_run(&loop, UV_RUN_NOWAIT);
    }
    r.shutdown();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_InProcessCachedResolve);

}  // namespace

BENCHMARK_MAIN();
