// The DNS server's per-worker reply cache (resolver/reply_cache.hpp): which queries take the
// fast path, and how a kept reply is rewritten for the next asker (ID, QNAME case, RD/CD/AD,
// TTLs counted down, OPT untouched), when it stops being used (expiry, clear, size limit); then
// the same through a real DnsServer answering from a cache filled by hand.
#include <gtest/gtest.h>
#include <uv.h>

#include "resolver/cache_lookup.hpp"
#include "resolver/dns_message.hpp"
#include "resolver/memory_dns_cache.hpp"
#include "resolver/dns_server.hpp"
#include "resolver/reply_cache.hpp"
#include "resolver/resolver.hpp"

using namespace outpost;
using namespace outpost::dns;

namespace {

Name N(const char* s) { return *Name::from_text(s); }

std::vector<std::uint8_t> query_wire(std::uint16_t id, const char* name, std::uint16_t qtype, bool edns = true,
                                     bool do_bit = false, bool cd = false, bool ad = false, bool rd = true) {
  Message q = make_query(id, N(name), qtype, rd, edns);
  if (edns) q.edns->do_bit = do_bit;
  q.header.cd = cd;
  q.header.ad = ad;
  return write_message(q);
}

PlainQuery plain(const std::vector<std::uint8_t>& wire) {
  PlainQuery pq;
  EXPECT_TRUE(parse_plain_query(wire, &pq));
  return pq;
}

ResourceRecord a_record(const char* name, std::uint32_t ttl, std::uint8_t last) {
  return {N(name), type::A, kClassIN, ttl, RdataA{{192, 0, 2, last}}};
}

// The reply the server would write to `query` with the given answer and authority records.
std::vector<std::uint8_t> reply_to(const std::vector<std::uint8_t>& query, std::vector<ResourceRecord> answer,
                                   std::vector<ResourceRecord> authority = {}, std::uint16_t rc = rcode::NOERROR,
                                   bool ad = false) {
  Message q;
  EXPECT_EQ(parse_message(query, &q), Status::ok);
  Message r = make_reply(q, rc);
  r.header.ra = true;
  r.header.ad = ad;
  r.answer = std::move(answer);
  r.authority = std::move(authority);
  return write_message(r);
}

Message parsed(const std::vector<std::uint8_t>& wire) {
  Message m;
  EXPECT_EQ(parse_message(wire, &m), Status::ok);
  return m;
}

}  // namespace

TEST(ReplyCache, PlainQueriesOnly) {
  PlainQuery pq;
  EXPECT_TRUE(parse_plain_query(query_wire(1, "www.example.", type::A), &pq));
  EXPECT_TRUE(pq.edns);
  EXPECT_EQ(pq.udp_size, kEdnsUdpSize);
  EXPECT_TRUE(parse_plain_query(query_wire(1, "www.example.", type::A, false), &pq));
  EXPECT_FALSE(pq.edns);
  EXPECT_EQ(pq.qname_len, 13u);
  // The key ignores case and the ID, and tells DO, CD and EDNS apart.
  auto key = [](const std::vector<std::uint8_t>& w) { return std::string(plain(w).key()); };
  EXPECT_EQ(key(query_wire(1, "WwW.ExAmple.", type::A)), key(query_wire(2, "www.example.", type::A)));
  EXPECT_NE(key(query_wire(1, "www.example.", type::A)), key(query_wire(1, "www.example.", type::AAAA)));
  EXPECT_NE(key(query_wire(1, "www.example.", type::A)), key(query_wire(1, "www.example.", type::A, true, true)));
  EXPECT_NE(key(query_wire(1, "www.example.", type::A)), key(query_wire(1, "www.example.", type::A, true, false, true)));
  EXPECT_NE(key(query_wire(1, "www.example.", type::A)), key(query_wire(1, "www.example.", type::A, false)));
  EXPECT_EQ(key(query_wire(1, "www.example.", type::A)), key(query_wire(1, "www.example.", type::A, true, false, false, true)));

  auto not_plain = [](std::vector<std::uint8_t> w) {
    PlainQuery p;
    return !parse_plain_query(w, &p);
  };
  auto w = query_wire(1, "www.example.", type::A);
  auto response = w;
  response[2] |= 0x80;
  EXPECT_TRUE(not_plain(response));
  auto notify = w;
  notify[2] |= 4 << 3;
  EXPECT_TRUE(not_plain(notify));
  auto trailing = w;
  trailing.push_back(0);
  EXPECT_TRUE(not_plain(trailing));
  auto chaos = query_wire(1, "www.example.", type::A, false);
  chaos[chaos.size() - 1] = 3;  // class CH
  EXPECT_TRUE(not_plain(chaos));
  auto version1 = w;
  version1[12 + 13 + 4 + 6] = 1;  // OPT: owner(1) type(2) class(2) ext-rcode(1) version
  EXPECT_TRUE(not_plain(version1));
  auto short_query = w;
  short_query.resize(20);
  EXPECT_TRUE(not_plain(short_query));
  Message two = make_query(1, N("a.example."), type::A, true);
  two.question.push_back({N("b.example."), type::A, kClassIN});
  EXPECT_TRUE(not_plain(write_message(two)));
  // A compression pointer in the QNAME (legal, but not for the fast path).
  std::vector<std::uint8_t> pointer = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1};
  EXPECT_TRUE(not_plain(pointer));
}

TEST(ReplyCache, RewritesTheKeptReplyForEachAsker) {
  ReplyCache cache;
  auto first = query_wire(0x1111, "www.example.", type::A, true, false, false, false);
  auto pq = plain(first);
  auto reply = reply_to(first, {a_record("www.example.", 300, 1), a_record("www.example.", 300, 2)}, {}, rcode::NOERROR);
  cache.store(pq, reply, 10'000, 200'000, /*secure=*/true);
  EXPECT_EQ(cache.size(), 1u);

  // 2.5 s later, another client in mixed case (0x20), RD clear, AD set.
  auto second = query_wire(0xBEEF, "wWw.ExAMPLE.", type::A, true, false, false, /*ad=*/true, /*rd=*/false);
  std::vector<std::uint8_t> out;
  ASSERT_TRUE(cache.answer(plain(second), second, 12'500, 1232, &out));
  Message m = parsed(out);
  EXPECT_EQ(m.header.id, 0xBEEF);
  EXPECT_TRUE(m.header.qr);
  EXPECT_TRUE(m.header.ra);
  EXPECT_FALSE(m.header.rd);
  EXPECT_TRUE(m.header.ad);  // secure, and the client set AD
  EXPECT_FALSE(m.header.cd);
  ASSERT_EQ(m.question.size(), 1u);
  EXPECT_EQ(m.question[0].name.to_text(), "wWw.ExAMPLE.");  // the asker's case, byte for byte
  ASSERT_EQ(m.answer.size(), 2u);
  for (auto& rr : m.answer) EXPECT_EQ(rr.ttl, 298u);
  EXPECT_EQ(m.answer[0].name.to_text(), "wWw.ExAMPLE.");  // compressed to the question
  ASSERT_TRUE(m.edns);
  EXPECT_FALSE(m.edns->do_bit);  // OPT's TTL field (flags) is not a TTL
  EXPECT_EQ(m.edns->version, 0);

  // Without AD or DO, no AD bit even for a secure answer (RFC 6840 section 5.7).
  auto third = query_wire(3, "www.example.", type::A);
  ASSERT_TRUE(cache.answer(plain(third), third, 12'500, 1232, &out));
  EXPECT_FALSE(parsed(out).header.ad);
  EXPECT_TRUE(parsed(out).header.rd);
  // Too big for the client: the usual path (which truncates) answers.
  EXPECT_FALSE(cache.answer(plain(third), third, 12'500, 40, &out));
  // Other keys are misses.
  auto other = query_wire(4, "www.example.", type::A, true, /*do=*/true);
  EXPECT_FALSE(cache.answer(plain(other), other, 12'500, 1232, &out));
  auto aaaa = query_wire(4, "www.example.", type::AAAA);
  EXPECT_FALSE(cache.answer(plain(aaaa), aaaa, 12'500, 1232, &out));

  // Counted down to the end, then gone at its expiry.
  ASSERT_TRUE(cache.answer(plain(third), third, 10'000 + 199'999, 1232, &out));
  for (auto& rr : parsed(out).answer) EXPECT_EQ(rr.ttl, 101u);
  EXPECT_FALSE(cache.answer(plain(third), third, 10'000 + 200'000, 1232, &out));
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().hits, 3u);
  EXPECT_EQ(cache.stats().expired, 1u);
}

TEST(ReplyCache, NegativeAnswersCdAndClear) {
  ReplyCache cache;
  auto q = query_wire(7, "nothere.example.", type::A, true, true, /*cd=*/true);
  ResourceRecord soa{N("example."), type::SOA, kClassIN, 60, RdataSoa{N("ns.example."), N("h.example."), 1, 2, 3, 4, 60}};
  auto reply = reply_to(q, {}, {soa}, rcode::NXDOMAIN);
  cache.store(plain(q), reply, 0, 60'000, false);
  auto again = query_wire(8, "NotHere.example.", type::A, true, true, true);
  std::vector<std::uint8_t> out;
  ASSERT_TRUE(cache.answer(plain(again), again, 5'000, 1232, &out));
  Message m = parsed(out);
  EXPECT_EQ(m.header.rcode, rcode::NXDOMAIN);
  EXPECT_TRUE(m.header.cd);
  EXPECT_FALSE(m.header.ad);
  ASSERT_TRUE(m.edns);
  EXPECT_TRUE(m.edns->do_bit);
  ASSERT_EQ(m.authority.size(), 1u);
  EXPECT_EQ(m.authority[0].ttl, 55u);
  // The same name without CD is another question.
  auto no_cd = query_wire(9, "nothere.example.", type::A, true, true);
  EXPECT_FALSE(cache.answer(plain(no_cd), no_cd, 5'000, 1232, &out));
  cache.clear();
  EXPECT_FALSE(cache.answer(plain(again), again, 5'000, 1232, &out));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ReplyCache, KeepsNothingTruncatedOrUnusableAndStaysWithinItsSize) {
  ReplyCache cache(64 * 1024);
  auto q = query_wire(1, "www.example.", type::A);
  auto reply = reply_to(q, {a_record("www.example.", 300, 1)});
  auto truncated = reply;
  truncated[2] |= 0x02;
  cache.store(plain(q), truncated, 0, 1000, false);
  cache.store(plain(q), reply, 0, 0, false);  // no time to live
  EXPECT_EQ(cache.size(), 0u);
  // Many names: the table stays within its byte budget.
  for (int i = 0; i < 2000; ++i) {
    std::string name = "n" + std::to_string(i) + ".example.";
    auto qi = query_wire(1, name.c_str(), type::A);
    cache.store(plain(qi), reply_to(qi, {a_record(name.c_str(), 300, 1)}), 0, 300'000, false);
  }
  EXPECT_LT(cache.size(), 2000u);
  EXPECT_GT(cache.size(), 100u);
  EXPECT_GT(cache.stats().evicted, 0u);
}

// Through a real DnsServer: a question answered from the cache is kept, the next identical one
// (any case, any ID) is answered from the kept reply, with the same records; clear drops it.
TEST(ReplyCache, ServerKeepsRepliesOfCacheHits) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    ResolverConfig cfg;
    auto ctx = ResolverContext::create(cfg);
    uv_update_time(&loop);
    std::uint64_t now = uv_now(&loop);
    RRset set{N("www.example."), type::A, kClassIN, 100, {RdataA{{192, 0, 2, 7}}}};
    ctx->cache->put_rrset(set, Trust::answer, now);
    Resolver resolver(&loop, ctx);
    DnsServerOptions opt;
    std::size_t bad = 0;
    opt.allow_recursion = *NetworkList::parse({"127.0.0.0/8"}, &bad);
    DnsServer server(&loop, resolver, opt);
    auto client = *IpAddress::parse("127.0.0.1");
    auto ask = [&](const std::vector<std::uint8_t>& q) {
      std::vector<std::uint8_t> got;
      server.handle(q, client, false, [&](std::vector<std::uint8_t> out) { got = std::move(out); });
      return got;
    };
    auto first = ask(query_wire(1, "www.example.", type::A));
    EXPECT_EQ(server.reply_cache().stats().stored, 1u);
    EXPECT_EQ(server.reply_cache().stats().hits, 0u);
    auto second = ask(query_wire(2, "WWW.example.", type::A));
    EXPECT_EQ(server.reply_cache().stats().hits, 1u);
    Message a = parsed(first), b = parsed(second);
    EXPECT_EQ(b.header.id, 2);
    EXPECT_EQ(b.question[0].name.to_text(), "WWW.example.");
    EXPECT_EQ(a.answer, b.answer);
    EXPECT_EQ(server.stats().queries, 2u);
    EXPECT_EQ(server.stats().answered, 2u);
    // A client outside allow_recursion is refused, kept reply or not.
    std::vector<std::uint8_t> refused;
    server.handle(query_wire(3, "www.example.", type::A), *IpAddress::parse("192.0.2.99"), false,
                  [&](std::vector<std::uint8_t> out) { refused = std::move(out); });
    EXPECT_EQ(parsed(refused).header.rcode, rcode::REFUSED);
    EXPECT_EQ(server.reply_cache().stats().hits, 1u);
    // After a clear the next question goes the usual way, and is kept again.
    server.clear_reply_cache();
    ask(query_wire(4, "www.example.", type::A));
    EXPECT_EQ(server.reply_cache().stats().hits, 1u);
    EXPECT_EQ(server.reply_cache().size(), 1u);
    resolver.shutdown();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

// How long a cache answer stays the same: until its first entry expires, or (prefetch) enters
// the last tenth of its TTL; a CNAME chain counts every link.
TEST(ReplyCache, CacheAnswersTellHowLongTheyHold) {
  MemoryDnsCache cache;
  RRset cname{N("alias.example."), type::CNAME, kClassIN, 100, {RdataName{N("www.example.")}}};
  RRset a{N("www.example."), type::A, kClassIN, 300, {RdataA{{192, 0, 2, 7}}}};
  cache.put_rrset(cname, Trust::answer, 0);
  cache.put_rrset(a, Trust::answer, 0);
  auto ca = lookup_in_cache(cache, {N("alias.example."), type::A, kClassIN}, 20'000, 8);
  ASSERT_TRUE(ca.complete);
  EXPECT_EQ(ca.fresh_ms, 80'000);            // the CNAME's 100 s, 20 s gone
  EXPECT_EQ(ca.until_prefetch_ms, 70'000);   // its last tenth starts at 90 s
  EXPECT_FALSE(ca.prefetch);
  ca = lookup_in_cache(cache, {N("alias.example."), type::A, kClassIN}, 95'000, 8);
  EXPECT_TRUE(ca.prefetch);
  EXPECT_LT(ca.until_prefetch_ms, 0);
  EXPECT_EQ(ca.fresh_ms, 5'000);
}
