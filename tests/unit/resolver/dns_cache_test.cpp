#include <gtest/gtest.h>

#include "resolver/cache_lookup.hpp"
#include "resolver/delegation.hpp"
#include "resolver/hints.hpp"
#include "cache/store.hpp"
#include "resolver/memory_dns_cache.hpp"
#include "resolver/store_dns_cache.hpp"

using namespace outpost::dns;

namespace {
Name N(const char* s) { return *Name::from_text(s); }
RRset a_set(const char* name, std::uint32_t ttl, std::uint8_t last = 1) {
  return {N(name), type::A, kClassIN, ttl, {RdataA{{192, 0, 2, last}}}};
}
RRset soa_set(const char* zone, std::uint32_t ttl, std::uint32_t minimum) {
  return {N(zone), type::SOA, kClassIN, ttl, {RdataSoa{N("ns.x."), N("admin.x."), 1, 2, 3, 4, minimum}}};
}
// Every behaviour below holds for both implementations of the interface.
class DnsCacheContract : public ::testing::TestWithParam<const char*> {
 protected:
  std::unique_ptr<DnsCache> make(CacheLimits limits = {}) {
    if (std::string(GetParam()) == "memory") return std::make_unique<MemoryDnsCache>(limits);
    outpost::cache::StoreOptions o;
    o.memory_size = 8 << 20;
    std::string err;
    std::shared_ptr<outpost::cache::Store> store = outpost::cache::Store::open(o, &err);
    EXPECT_TRUE(store) << err;
    return std::make_unique<StoreDnsCache>(store, limits);
  }
};
}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, DnsCacheContract, ::testing::Values("memory", "store"));

TEST_P(DnsCacheContract, CountsTtlDownAndExpires) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset(a_set("www.test.", 10), Trust::answer, 1000);
  auto got = c.get_rrset(N("WWW.test."), type::A, 1000, Trust::glue);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ttl, 10u);
  EXPECT_EQ(c.get_rrset(N("www.test."), type::A, 4500, Trust::glue)->ttl, 6u);
  EXPECT_EQ(c.get_rrset(N("www.test."), type::A, 10999, Trust::glue)->ttl, 0u);
  EXPECT_FALSE(c.get_rrset(N("www.test."), type::A, 11000, Trust::glue));
  EXPECT_FALSE(c.get_rrset(N("www.test."), type::AAAA, 1000, Trust::glue));
}

TEST_P(DnsCacheContract, ClampsTtl) {
  auto cp = make(CacheLimits{.min_ttl = 30, .max_ttl = 100});
  auto& c = *cp;
  c.put_rrset(a_set("low.test.", 5), Trust::answer, 0);
  c.put_rrset(a_set("high.test.", 100000), Trust::answer, 0);
  EXPECT_EQ(c.get_rrset(N("low.test."), type::A, 0, Trust::glue)->ttl, 30u);
  EXPECT_EQ(c.get_rrset(N("high.test."), type::A, 0, Trust::glue)->ttl, 100u);
}

TEST_P(DnsCacheContract, GlueDoesNotReplaceAnswers) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset(a_set("ns.test.", 100, 1), Trust::answer, 0);
  c.put_rrset(a_set("ns.test.", 100, 2), Trust::glue, 0);
  EXPECT_EQ(std::get<RdataA>(c.get_rrset(N("ns.test."), type::A, 0, Trust::glue)->rdata[0]).addr[3], 1);
  c.put_rrset(a_set("ns.test.", 100, 3), Trust::answer, 0);
  EXPECT_EQ(std::get<RdataA>(c.get_rrset(N("ns.test."), type::A, 0, Trust::glue)->rdata[0]).addr[3], 3);
  // Once the better entry has expired, weaker data may take its place.
  c.put_rrset(a_set("ns.test.", 100, 4), Trust::glue, 200000);
  EXPECT_EQ(std::get<RdataA>(c.get_rrset(N("ns.test."), type::A, 200000, Trust::glue)->rdata[0]).addr[3], 4);
}

TEST_P(DnsCacheContract, NegativeEntries) {
  auto cp = make();
  auto& c = *cp;
  c.put_negative(N("nx.test."), type::A, true, soa_set("test.", 2, 2), 2, 0);
  c.put_negative(N("nodata.test."), type::AAAA, false, soa_set("test.", 3, 3), 3, 0);
  auto nx = c.get_negative(N("nx.test."), type::MX, 500);  // NXDOMAIN covers every type
  ASSERT_TRUE(nx);
  EXPECT_TRUE(nx->nxdomain);
  EXPECT_EQ(nx->ttl, 1u);
  EXPECT_EQ(nx->soa->ttl, 1u);
  EXPECT_FALSE(c.get_negative(N("nx.test."), type::A, 2000));
  EXPECT_TRUE(c.get_negative(N("nodata.test."), type::AAAA, 0));
  EXPECT_FALSE(c.get_negative(N("nodata.test."), type::A, 0));
}

TEST_P(DnsCacheContract, ServfailIsShort) {
  auto cp = make(CacheLimits{.servfail_ttl = 5});
  auto& c = *cp;
  c.put_servfail(N("broken.test."), type::A, 0);
  EXPECT_TRUE(c.has_servfail(N("broken.test."), type::A, 4999));
  EXPECT_FALSE(c.has_servfail(N("broken.test."), type::A, 5000));
}

TEST(MemoryDnsCache, BoundedSize) {
  MemoryDnsCache c({}, 64);
  for (int i = 0; i < 1000; ++i) c.put_rrset(a_set(("n" + std::to_string(i) + ".test.").c_str(), 100), Trust::answer, 0);
  EXPECT_LE(c.size(), 64u);
}

TEST_P(DnsCacheContract, FollowsCnameChainAndReportsRest) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset({N("a.test."), type::CNAME, kClassIN, 50, {RdataName{N("b.test.")}}}, Trust::answer, 0);
  c.put_rrset({N("b.test."), type::CNAME, kClassIN, 40, {RdataName{N("c.test.")}}}, Trust::answer, 0);
  auto partial = lookup_in_cache(c, {N("a.test."), type::A, kClassIN}, 0, 8);
  EXPECT_FALSE(partial.complete);
  EXPECT_EQ(partial.next, N("c.test."));
  EXPECT_EQ(partial.resolution.answer.size(), 2u);
  c.put_rrset(a_set("c.test.", 30), Trust::answer, 0);
  auto full = lookup_in_cache(c, {N("a.test."), type::A, kClassIN}, 0, 8);
  EXPECT_TRUE(full.complete);
  EXPECT_EQ(full.resolution.rcode, rcode::NOERROR);
  EXPECT_EQ(full.resolution.answer.size(), 3u);
}

TEST_P(DnsCacheContract, CnameLoopIsServfail) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset({N("x.test."), type::CNAME, kClassIN, 50, {RdataName{N("y.test.")}}}, Trust::answer, 0);
  c.put_rrset({N("y.test."), type::CNAME, kClassIN, 50, {RdataName{N("x.test.")}}}, Trust::answer, 0);
  auto r = lookup_in_cache(c, {N("x.test."), type::A, kClassIN}, 0, 8);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.resolution.rcode, rcode::SERVFAIL);
}

TEST_P(DnsCacheContract, ClosestCachedCutWithAddresses) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset({N("test."), type::NS, kClassIN, 100, {RdataName{N("ns1.test.")}}}, Trust::authority, 0);
  c.put_rrset(a_set("ns1.test.", 100, 3), Trust::glue, 0);
  c.put_rrset({N("a.test."), type::NS, kClassIN, 100, {RdataName{N("ns.elsewhere.")}}}, Trust::authority, 0);
  auto d = delegation_from_cache(c, N("www.a.test."), 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->zone, N("a.test."));
  EXPECT_FALSE(d->has_addresses());
  auto d2 = delegation_from_cache(c, N("www.b.test."), 0);
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->zone, N("test."));
  EXPECT_TRUE(d2->has_addresses());
  EXPECT_FALSE(delegation_from_cache(c, N("www.example."), 0));
}

TEST(Delegation, ReferralTakesGlueInsideTheReferringZone) {
  RRset ns{N("a.test."), type::NS, kClassIN, 100,
           {RdataName{N("ns1.a.test.")}, RdataName{N("ns.b.test.")}, RdataName{N("ns.other.")}}};
  std::vector<RRset> add{a_set("ns1.a.test.", 100, 5), a_set("ns.b.test.", 100, 7), a_set("ns.other.", 100, 6)};
  auto d = delegation_from_referral(ns, add, N("test."));
  ASSERT_EQ(d.servers.size(), 3u);
  EXPECT_EQ(d.find(N("ns1.a.test."))->addresses.size(), 1u);  // in-domain glue
  EXPECT_EQ(d.find(N("ns.b.test."))->addresses.size(), 1u);   // sibling glue
  EXPECT_TRUE(d.find(N("ns.other."))->addresses.empty());     // outside the parent's zone
}

TEST_P(DnsCacheContract, UnusableCachedCutsArePassedOverForTheParent) {
  auto cp = make();
  auto& c = *cp;
  // ". NS" cached without the root servers' addresses (a client asked ". NS"): unusable, the
  // caller falls back to the hints.
  c.put_rrset({Name::root(), type::NS, kClassIN, 100, {RdataName{N("ns.root.")}}}, Trust::answer, 0);
  EXPECT_FALSE(delegation_from_cache(c, N("www.a.test."), 0));
  // A zone whose only server lies inside it and whose glue is gone: its parent is used.
  c.put_rrset({N("test."), type::NS, kClassIN, 100, {RdataName{N("ns1.test.")}}}, Trust::authority, 0);
  c.put_rrset(a_set("ns1.test.", 100, 3), Trust::glue, 0);
  c.put_rrset({N("a.test."), type::NS, kClassIN, 100, {RdataName{N("ns1.a.test.")}}}, Trust::authority, 0);
  auto d = delegation_from_cache(c, N("www.a.test."), 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->zone, N("test."));
  // With the root servers' addresses the cached root is used.
  c.put_rrset(a_set("ns.root.", 100, 2), Trust::glue, 0);
  auto root = delegation_from_cache(c, N("www.example."), 0);
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->zone.is_root());
}

TEST_P(DnsCacheContract, PrimingIsDueOnlyWithoutARootNsSetOrRecentFailure) {
  auto cp = make();
  auto& c = *cp;
  EXPECT_TRUE(root_needs_priming(c, 0));
  c.put_rrset({Name::root(), type::NS, kClassIN, 100, {RdataName{N("ns.root.")}}}, Trust::answer, 0);
  EXPECT_FALSE(root_needs_priming(c, 0));  // even without addresses: the hints stand in
  EXPECT_TRUE(root_needs_priming(c, 100000));
  c.put_servfail(Name::root(), type::NS, 100000);
  EXPECT_FALSE(root_needs_priming(c, 100000));
}

TEST_P(DnsCacheContract, NegativeEntriesOfOneTypeNeverCoverAnother) {
  auto cp = make();
  auto& c = *cp;
  // NODATA for type 0 once landed in the slot of NXDOMAIN entries and made the name NODATA
  // for every type.
  c.put_negative(N("www.test."), 0, false, soa_set("test.", 60, 60), 60, 0);
  EXPECT_FALSE(c.get_negative(N("www.test."), type::A, 0));
  EXPECT_TRUE(c.get_negative(N("www.test."), 0, 0));
  // NXDOMAIN covers every type, and a later NODATA for one type does not replace it.
  c.put_negative(N("nx.test."), type::A, true, soa_set("test.", 60, 60), 60, 0);
  c.put_negative(N("nx.test."), 0, false, soa_set("test.", 60, 60), 60, 0);
  auto nx = c.get_negative(N("nx.test."), type::MX, 0);
  ASSERT_TRUE(nx);
  EXPECT_TRUE(nx->nxdomain);
}

TEST_P(DnsCacheContract, GlueAndReferralsReachServersButNeverAnswer) {
  auto cp = make();
  auto& c = *cp;
  RRset ns{N("child.test."), type::NS, kClassIN, 3600, {RdataName{N("ns.child.test.")}}};
  // A referral whose additional section names a host its NS set does not: only the glue of
  // the named server is kept, and only to reach it.
  cache_referral(c, ns, {a_set("ns.child.test.", 3600, 7), a_set("www.child.test.", 3600, 66)}, N("test."), 0);
  EXPECT_FALSE(c.get_rrset(N("www.child.test."), type::A, 0, Trust::glue));
  EXPECT_TRUE(c.get_rrset(N("ns.child.test."), type::A, 0, Trust::glue));
  EXPECT_FALSE(c.get_rrset(N("ns.child.test."), type::A, 0, kAnswerTrust));
  EXPECT_FALSE(c.get_rrset(N("child.test."), type::NS, 0, kAnswerTrust));
  auto d = delegation_from_cache(c, N("www.child.test."), 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->zone, N("child.test."));
  EXPECT_TRUE(d->has_addresses());
  auto lookup = lookup_in_cache(c, {N("child.test."), type::NS, kClassIN}, 0, 8);
  EXPECT_FALSE(lookup.complete);
  // The child's own NS set (TTL 300) replaces the parent's and is an answer; a later referral
  // does not put the parent's copy back.
  RRset own = ns;
  own.ttl = 300;
  c.put_rrset(own, Trust::answer, 0);
  cache_referral(c, ns, {}, N("test."), 1000);
  auto got = c.get_rrset(N("child.test."), type::NS, 1000, kAnswerTrust);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ttl, 299u);
}

TEST(Delegation, DsIsLookedUpAboveTheCut) {
  EXPECT_EQ(cut_search_name(N("a.test."), type::DS), N("test."));
  EXPECT_EQ(cut_search_name(N("a.test."), type::A), N("a.test."));
  EXPECT_EQ(cut_search_name(N("test."), type::DS), Name::root());
  EXPECT_TRUE(cut_search_name(Name::root(), type::DS).is_root());
}

// ---- serve-stale (RFC 8767) and prefetch ---------------------------------------------------

TEST_P(DnsCacheContract, ExpiredEntriesKeptForStaleAnswersOnly) {
  auto cp = make(CacheLimits{.stale_max_age = 100});
  auto& c = *cp;
  c.put_rrset(a_set("www.test.", 10), Trust::answer, 0);
  c.put_negative(N("nx.test."), type::A, true, soa_set("test.", 10, 10), 10, 0);
  // Past the TTL: gone for resolution (answers, delegations) ...
  EXPECT_FALSE(c.get_rrset(N("www.test."), type::A, 10000, Trust::glue));
  EXPECT_FALSE(c.get_negative(N("nx.test."), type::A, 10000));
  // ... still there for a stale answer, with TTL 0 and how long ago it expired.
  Freshness f;
  auto stale = c.peek_rrset(N("www.test."), type::A, 15000, kAnswerTrust, &f, true);
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->ttl, 0u);
  EXPECT_TRUE(f.expired());
  EXPECT_EQ(f.remaining_ms, -5000);
  EXPECT_EQ(f.original_ttl, 10u);
  auto neg = c.peek_negative(N("nx.test."), type::A, 15000, &f, true);
  ASSERT_TRUE(neg);
  EXPECT_TRUE(neg->nxdomain);
  EXPECT_TRUE(f.expired());
  // Glue-level data is not an answer, stale or not.
  c.put_rrset(a_set("ns.test.", 10), Trust::glue, 0);
  EXPECT_FALSE(c.peek_rrset(N("ns.test."), type::A, 15000, kAnswerTrust, nullptr, true));
  // stale_max_age after the expiry it is gone for good.
  EXPECT_FALSE(c.peek_rrset(N("www.test."), type::A, 110000, kAnswerTrust, nullptr, true));
  EXPECT_FALSE(c.peek_negative(N("nx.test."), type::A, 110000, nullptr, true));
}

TEST_P(DnsCacheContract, WithoutServeStaleExpiredEntriesAreDropped) {
  auto cp = make();  // stale_max_age 0
  auto& c = *cp;
  c.put_rrset(a_set("www.test.", 10), Trust::answer, 0);
  EXPECT_FALSE(c.peek_rrset(N("www.test."), type::A, 10001, kAnswerTrust, nullptr, true));
}

TEST_P(DnsCacheContract, FreshnessTellsTheLastTenthOfTheTtl) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset(a_set("www.test.", 100), Trust::answer, 0);
  Freshness f;
  ASSERT_TRUE(c.peek_rrset(N("www.test."), type::A, 89000, kAnswerTrust, &f, false));
  EXPECT_EQ(f.original_ttl, 100u);
  EXPECT_FALSE(f.nearly_expired());
  ASSERT_TRUE(c.peek_rrset(N("www.test."), type::A, 90000, kAnswerTrust, &f, false));
  EXPECT_TRUE(f.nearly_expired());
  ASSERT_TRUE(c.peek_rrset(N("www.test."), type::A, 99999, kAnswerTrust, &f, false));
  EXPECT_TRUE(f.nearly_expired());
}

TEST_P(DnsCacheContract, LookupReportsStaleAndPrefetchDue) {
  auto cp = make(CacheLimits{.stale_max_age = 1000});
  auto& c = *cp;
  c.put_rrset({N("alias.test."), type::CNAME, kClassIN, 1000, {RdataName{N("www.test.")}}}, Trust::answer, 0);
  c.put_rrset(a_set("www.test.", 100), Trust::answer, 0);
  const Question q{N("alias.test."), type::A, kClassIN};
  auto fresh = lookup_in_cache(c, q, 50000, 8);
  EXPECT_TRUE(fresh.complete);
  EXPECT_FALSE(fresh.stale);
  EXPECT_FALSE(fresh.prefetch);
  // The chain's last link is in its last tenth: the whole answer is due a prefetch.
  auto due = lookup_in_cache(c, q, 95000, 8);
  EXPECT_TRUE(due.complete);
  EXPECT_TRUE(due.prefetch);
  // Expired: a normal lookup stops at the live CNAME; a stale one completes, marked stale.
  auto missing = lookup_in_cache(c, q, 150000, 8);
  EXPECT_FALSE(missing.complete);
  EXPECT_EQ(missing.next, N("www.test."));
  auto stale = lookup_in_cache(c, q, 150000, 8, true);
  EXPECT_TRUE(stale.complete);
  EXPECT_TRUE(stale.stale);
  EXPECT_EQ(stale.resolution.rcode, rcode::NOERROR);
  EXPECT_EQ(stale.resolution.answer.size(), 2u);
}

TEST_P(DnsCacheContract, RecentFailureNeverHidesLiveDataButHidesNothingStale) {
  auto cp = make(CacheLimits{.servfail_ttl = 5, .stale_max_age = 1000});
  auto& c = *cp;
  const Question q{N("www.test."), type::A, kClassIN};
  c.put_rrset(a_set("www.test.", 10), Trust::answer, 0);
  // A failed prefetch leaves a failure mark while the data is still live: the data wins.
  c.put_servfail(N("www.test."), type::A, 9000);
  EXPECT_EQ(lookup_in_cache(c, q, 9500, 8).resolution.rcode, rcode::NOERROR);
  // Expired: the failure is what a normal lookup sees; a stale lookup finds the old answer.
  auto failed = lookup_in_cache(c, q, 11000, 8);
  EXPECT_TRUE(failed.complete);
  EXPECT_EQ(failed.resolution.rcode, rcode::SERVFAIL);
  auto stale = lookup_in_cache(c, q, 11000, 8, true);
  EXPECT_EQ(stale.resolution.rcode, rcode::NOERROR);
  EXPECT_TRUE(stale.stale);
}

// DNSSEC: the verdict, the RRSIGs and the proofs are kept with an entry; a validating lookup
// uses only checked entries, and an unchecked copy does not undo a checked one.
TEST_P(DnsCacheContract, KeepsDnssecVerdictsSignaturesAndProofs) {
  auto cp = make();
  auto& c = *cp;
  RRset www = a_set("www.test.", 60);
  www.security = Security::secure;
  www.sigs = {RdataOpaque{{0, 1, 13, 2, 1, 2, 3, 4}}};
  www.proof = {{N("a.test."), type::NSEC, kClassIN, 60, RdataOpaque{{0, 0, 1, 0x40}}}};
  c.put_rrset(www, Trust::answer, 0);
  auto got = c.get_rrset(N("www.test."), type::A, 0, Trust::answer);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->security, Security::secure);
  EXPECT_EQ(got->sigs, www.sigs);
  ASSERT_EQ(got->proof.size(), 1u);
  EXPECT_EQ(got->proof[0].type, type::NSEC);
  // An unchecked copy of equal trust leaves it; a checked one replaces it.
  c.put_rrset(a_set("www.test.", 60, 9), Trust::answer, 0);
  EXPECT_EQ(c.get_rrset(N("www.test."), type::A, 0, Trust::answer)->security, Security::secure);
  RRset insecure = a_set("www.test.", 60, 9);
  insecure.security = Security::insecure;
  c.put_rrset(insecure, Trust::answer, 0);
  EXPECT_EQ(c.get_rrset(N("www.test."), type::A, 0, Trust::answer)->security, Security::insecure);

  RRset nsec{N("nx.test."), type::NSEC, kClassIN, 60, {RdataOpaque{{0, 0, 1, 0x40}}}};
  nsec.sigs = {RdataOpaque{{0, 47, 13, 2, 9, 9}}};
  RRset soa = soa_set("test.", 60, 60);
  soa.sigs = {RdataOpaque{{0, 6, 13, 1, 7, 7}}};
  c.put_negative(N("nx.test."), type::A, true, soa, 60, 0, Security::secure, {nsec});
  auto neg = c.get_negative(N("nx.test."), type::A, 0);
  ASSERT_TRUE(neg);
  EXPECT_EQ(neg->security, Security::secure);
  ASSERT_TRUE(neg->soa);
  EXPECT_EQ(neg->soa->sigs, soa.sigs);
  ASSERT_EQ(neg->proof.size(), 1u);
  EXPECT_EQ(neg->proof[0].sigs, nsec.sigs);
  // The lookup: every record for DO clients; checked_only passes over unchecked entries.
  auto ca = lookup_in_cache(c, {N("nx.test."), type::A, kClassIN}, 0, 8, false, true);
  ASSERT_TRUE(ca.complete);
  EXPECT_EQ(ca.resolution.security, Security::secure);
  EXPECT_EQ(ca.resolution.authority.size(), 4u);  // SOA, its RRSIG, NSEC, its RRSIG
  c.put_rrset(a_set("plain.test.", 60), Trust::answer, 0);
  EXPECT_FALSE(lookup_in_cache(c, {N("plain.test."), type::A, kClassIN}, 0, 8, false, true).complete);
  auto plain = lookup_in_cache(c, {N("plain.test."), type::A, kClassIN}, 0, 8);
  EXPECT_TRUE(plain.complete);
  EXPECT_EQ(plain.resolution.security, Security::unchecked);
}

TEST(DnsCacheKeys, MatchNameOrSubtreeAtLabelBoundaries) {
  std::string zone = N("a.test.").lowercase_wire();
  auto key = [](const char* n) { return dns_cache_key('R', N(n), type::A); };
  EXPECT_TRUE(cache_key_matches(key("a.test."), zone, false));
  EXPECT_FALSE(cache_key_matches(key("www.a.test."), zone, false));
  EXPECT_TRUE(cache_key_matches(key("www.a.test."), zone, true));
  EXPECT_TRUE(cache_key_matches(key("x.y.a.test."), zone, true));
  EXPECT_TRUE(cache_key_matches(key("a.test."), zone, true));
  // "xa.test" ends in the bytes of "a.test" only off a label boundary; "test." is above it.
  EXPECT_FALSE(cache_key_matches(key("xa.test."), zone, true));
  EXPECT_FALSE(cache_key_matches(key("test."), zone, true));
  EXPECT_FALSE(cache_key_matches(key("a.test.example."), zone, true));
  // The root is above everything.
  EXPECT_TRUE(cache_key_matches(key("www.a.test."), N(".").lowercase_wire(), true));
  EXPECT_FALSE(cache_key_matches("ab", zone, true));
}

TEST_P(DnsCacheContract, EraseNamesDropsEveryKindOfANameOrASubtree) {
  auto cp = make();
  auto& c = *cp;
  c.put_rrset(a_set("www.a.test.", 300), Trust::answer, 1000);
  c.put_rrset({N("www.a.test."), type::AAAA, kClassIN, 300, {RdataAaaa{{0x20, 0x01, 0x0d, 0xb8}}}}, Trust::answer,
              1000);
  c.put_negative(N("www.a.test."), type::MX, false, soa_set("a.test.", 300, 60), 60, 1000);
  c.put_rrset(a_set("deep.x.a.test.", 300), Trust::answer, 1000);
  c.put_negative(N("nx.a.test."), type::A, true, soa_set("a.test.", 300, 60), 60, 1000);
  c.put_servfail(N("sf.a.test."), type::A, 1000);
  c.put_rrset(a_set("xa.test.", 300), Trust::answer, 1000);
  c.put_rrset(a_set("b.test.", 300), Trust::answer, 1000);

  EXPECT_EQ(c.erase_names(N("WWW.a.test."), false), 3u);  // A, AAAA, NODATA MX
  EXPECT_FALSE(c.get_rrset(N("www.a.test."), type::A, 1000, Trust::glue));
  EXPECT_FALSE(c.get_rrset(N("www.a.test."), type::AAAA, 1000, Trust::glue));
  EXPECT_FALSE(c.get_negative(N("www.a.test."), type::MX, 1000));
  EXPECT_TRUE(c.get_rrset(N("deep.x.a.test."), type::A, 1000, Trust::glue));
  EXPECT_EQ(c.erase_names(N("www.a.test."), false), 0u);

  EXPECT_EQ(c.erase_names(N("a.test."), true), 3u);  // deep.x, NXDOMAIN nx, SERVFAIL sf
  EXPECT_FALSE(c.get_rrset(N("deep.x.a.test."), type::A, 1000, Trust::glue));
  EXPECT_FALSE(c.get_negative(N("nx.a.test."), type::A, 1000));
  EXPECT_FALSE(c.has_servfail(N("sf.a.test."), type::A, 1000));
  EXPECT_TRUE(c.get_rrset(N("xa.test."), type::A, 1000, Trust::glue));
  EXPECT_TRUE(c.get_rrset(N("b.test."), type::A, 1000, Trust::glue));
  EXPECT_EQ(c.erase_names(N("."), true), 2u);
  EXPECT_EQ(c.size(), 0u);
}
