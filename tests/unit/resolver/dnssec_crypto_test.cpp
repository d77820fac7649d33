// DNSSEC records and crypto against real signers: keys made and a zone signed at test time by
// BIND's dnssec-keygen / dnssec-signzone / dnssec-dsfromkey (Debian bind9-utils), for
// algorithms 8, 13, 14 and 15, with NSEC3; every signature they made must verify, and none
// once anything signed changes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "resolver/dnssec_crypto.hpp"
#include "resolver/dnssec_denial.hpp"
#include "resolver/validator.hpp"
#include "resolver/zone_file.hpp"

using namespace outpost::dns;

namespace {

Name N(const char* s) { return *Name::from_text(s); }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

const char* kZone = R"($TTL 300
@ IN SOA ns admin 1 3600 600 86400 60
@ IN NS ns
ns IN A 192.0.2.53
www IN A 192.0.2.1
www IN AAAA 2001:db8::1
www IN A 192.0.2.2
*.w IN A 192.0.2.9
Mixed IN MX 10 MAIL.Example.
srv IN SRV 0 5 80 Www.example.
alias IN CNAME www
txt IN TXT "hello" "world"
deep.a.b IN A 192.0.2.3
sub IN NS ns.sub
ns.sub IN A 192.0.2.50
)";

struct Signed {
  std::string dir;
  std::vector<ResourceRecord> records;
  std::vector<RRset> sets;  // every RRset but the RRSIGs
  std::vector<ResourceRecord> sigs;
  std::vector<DnskeyRdata> keys;
  std::vector<ResourceRecord> ds;  // SHA-256 and SHA-384 DS records of the KSKs
  std::vector<RRset> nsec3_chain, nsec_chain;  // the zone signed with NSEC3, and again with NSEC
};

class DnssecSigned : public ::testing::Test {
 protected:
  static Signed* z;
  static void SetUpTestSuite() {
    if (run("command -v dnssec-signzone").empty()) return;
    z = new Signed;
    char tmpl[] = "/tmp/outpost-dnssec-XXXXXX";
    z->dir = mkdtemp(tmpl);
    std::ofstream(z->dir + "/example.zone") << kZone;
    std::string cmd = "cd " + z->dir + " && for a in RSASHA256 ECDSAP256SHA256 ECDSAP384SHA384 ED25519; do "
                      "k=$(dnssec-keygen -q -a $a -f KSK example.) && dnssec-dsfromkey -a SHA-256 $k.key >> ds && "
                      "dnssec-dsfromkey -a SHA-384 $k.key >> ds && dnssec-keygen -q -a $a example. >/dev/null; done && "
                      "cat K*.key >> example.zone && "
                      "dnssec-signzone -q -o example. -N keep -e +315360000 -3 abcd -H 3 example.zone >/dev/null 2>&1 && "
                      "dnssec-signzone -q -o example. -N keep -e +315360000 -f example.nsec example.zone >/dev/null 2>&1 && "
                      "echo ok";
    ASSERT_EQ(run(cmd), "ok\n") << z->dir;
    ZoneFileError err;
    auto rrs = parse_zone_text(slurp(z->dir + "/example.zone.signed"), N("example."), 300, &err);
    ASSERT_TRUE(rrs) << err.line << ": " << err.reason;
    z->records = *rrs;
    std::vector<ResourceRecord> data;
    for (auto& rr : *rrs) (rr.type == type::RRSIG ? z->sigs : data).push_back(rr);
    z->sets = group_rrsets(data);
    for (auto& set : z->sets)
      if (set.type == type::NSEC3) z->nsec3_chain.push_back(set);
    auto nsec = parse_zone_text(slurp(z->dir + "/example.nsec"), N("example."), 300, &err);
    ASSERT_TRUE(nsec) << err.line << ": " << err.reason;
    for (auto& set : group_rrsets(*nsec))
      if (set.type == type::NSEC) z->nsec_chain.push_back(set);
    for (auto& rr : data)
      if (rr.type == type::DNSKEY) z->keys.push_back(*parse_dnskey(rr.rdata));
    auto ds = parse_zone_text(slurp(z->dir + "/ds"), N("example."), 300, &err);
    ASSERT_TRUE(ds) << err.line << ": " << err.reason;
    z->ds = *ds;
  }
  static void TearDownTestSuite() {
    if (z) run("rm -rf " + z->dir);
    delete z;
    z = nullptr;
  }
  void SetUp() override {
    if (!z) GTEST_SKIP() << "dnssec-signzone (bind9-utils) not installed";
  }
  static const DnskeyRdata* key_for(const RrsigRdata& s) {
    for (auto& k : z->keys)
      if (k.algorithm == s.algorithm && key_tag(k.wire) == s.key_tag) return &k;
    return nullptr;
  }
  static SigResult check(const RRset& set, const ResourceRecord& sig_rr, std::uint32_t now = 0) {
    auto sig = parse_rrsig(sig_rr.rdata);
    if (!sig) return SigResult::malformed;
    auto* k = key_for(*sig);
    if (!k) return SigResult::malformed;
    return verify_rrsig(set, *sig, *k, now ? now : static_cast<std::uint32_t>(time(nullptr)));
  }
  // The RRSIGs over one RRset.
  static std::vector<ResourceRecord> sigs_of(const RRset& set) {
    std::vector<ResourceRecord> out;
    for (auto& s : z->sigs)
      if (s.name == set.name && rrsig_covered(s) == set.type) out.push_back(s);
    return out;
  }
};
Signed* DnssecSigned::z = nullptr;

TEST_F(DnssecSigned, EverySignatureOfEveryAlgorithmVerifies) {
  std::map<int, int> per_algorithm;
  for (auto& set : z->sets) {
    if (set.name.is_subdomain_of(N("sub.example."))) continue;  // a delegation and its glue: not signed
    auto sigs = sigs_of(set);
    ASSERT_FALSE(sigs.empty()) << set.name.to_text() << " " << type_to_text(set.type);
    for (auto& s : sigs) {
      EXPECT_EQ(check(set, s), SigResult::ok) << rr_to_text(s);
      ++per_algorithm[parse_rrsig(s.rdata)->algorithm];
    }
  }
  for (int alg : {8, 13, 14, 15}) EXPECT_GT(per_algorithm[alg], 5) << alg;
}

TEST_F(DnssecSigned, AnyChangeBreaksTheSignature) {
  for (auto& set : z->sets) {
    if (set.type != type::A || !(set.name == N("www.example."))) continue;
    RRset changed = set;
    std::get<RdataA>(changed.rdata[0]).addr[3] ^= 1;
    RRset fewer = set;
    fewer.rdata.pop_back();
    RRset renamed = set;
    renamed.name = N("www2.example.");
    for (auto& s : sigs_of(set)) {
      EXPECT_EQ(check(changed, s), SigResult::bad_signature);
      EXPECT_EQ(check(fewer, s), SigResult::bad_signature);
      EXPECT_NE(check(renamed, s), SigResult::ok);
      // A damaged signature.
      auto bad = s;
      std::get<RdataOpaque>(bad.rdata).bytes.back() ^= 0x40;
      EXPECT_EQ(check(set, bad), SigResult::bad_signature);
    }
    // The records' order and case and the TTL do not matter (canonical form, original TTL).
    RRset reordered = set;
    std::reverse(reordered.rdata.begin(), reordered.rdata.end());
    reordered.name = N("WWW.Example.");
    reordered.ttl = 17;
    for (auto& s : sigs_of(set)) EXPECT_EQ(check(reordered, s), SigResult::ok);
    return;
  }
  FAIL() << "www.example. A not found";
}

TEST_F(DnssecSigned, ValidityWindow) {
  auto& s = z->sigs.front();
  auto sig = *parse_rrsig(s.rdata);
  const RRset* set = nullptr;
  for (auto& x : z->sets)
    if (x.name == s.name && x.type == sig.type_covered) set = &x;
  ASSERT_TRUE(set);
  EXPECT_EQ(check(*set, s, sig.expiration + 1), SigResult::expired);
  EXPECT_EQ(check(*set, s, sig.inception - 1), SigResult::not_yet_valid);
  EXPECT_EQ(check(*set, s, sig.inception + 1), SigResult::ok);
}

TEST_F(DnssecSigned, WildcardExpansionVerifies) {
  for (auto& set : z->sets) {
    if (!(set.name == N("*.w.example.")) || set.type != type::A) continue;
    RRset expanded = set;
    expanded.name = N("host.sub.w.example.");
    for (auto& s : sigs_of(set)) {
      EXPECT_EQ(parse_rrsig(s.rdata)->labels, 2);
      EXPECT_EQ(check(expanded, s), SigResult::ok);
    }
    // An expansion into another zone's name does not.
    expanded.name = N("host.v.example.");
    for (auto& s : sigs_of(set)) EXPECT_EQ(check(expanded, s), SigResult::bad_signature);
    return;
  }
  FAIL() << "*.w.example. A not found";
}

TEST_F(DnssecSigned, DsDigestsMatchTheirKeys) {
  ASSERT_EQ(z->ds.size(), 8u);
  std::map<int, int> digest_types;
  for (auto& rr : z->ds) {
    auto ds = *parse_ds(rr.rdata);
    int matched = 0;
    for (auto& k : z->keys) matched += ds_matches(N("example."), k, ds);
    EXPECT_EQ(matched, 1) << rr_to_text(rr);
    ++digest_types[ds.digest_type];
    auto wrong = ds;
    wrong.digest[0] ^= 1;
    for (auto& k : z->keys) EXPECT_FALSE(ds_matches(N("example."), k, wrong));
    for (auto& k : z->keys) EXPECT_FALSE(ds_matches(N("other."), k, ds));
  }
  EXPECT_EQ(digest_types[2], 4);
  EXPECT_EQ(digest_types[4], 4);
}

TEST_F(DnssecSigned, Nsec3HashesNameTheOwners) {
  std::vector<std::string> owners;
  std::optional<Nsec3Rdata> param;
  for (auto& rr : z->records)
    if (rr.type == type::NSEC3) {
      owners.emplace_back(rr.name.first_label());
      param = parse_nsec3(rr.rdata);
      ASSERT_TRUE(param);
    }
  ASSERT_TRUE(param);
  EXPECT_EQ(param->iterations, 3);
  // Existing names and the empty non-terminals above them each have an NSEC3.
  for (const char* name : {"example.", "www.example.", "w.example.", "*.w.example.", "a.b.example.", "b.example.",
                           "mixed.example."}) {
    auto h = nsec3_hash(N(name), 1, param->salt, param->iterations);
    ASSERT_EQ(h.size(), 20u);
    std::string label = base32hex(h);
    EXPECT_NE(std::find_if(owners.begin(), owners.end(),
                           [&](const std::string& o) { return strcasecmp(o.c_str(), label.c_str()) == 0; }),
              owners.end())
        << name;
  }
  auto none = base32hex(nsec3_hash(N("absent.example."), 1, param->salt, param->iterations));
  EXPECT_EQ(std::count(owners.begin(), owners.end(), none), 0);
}

// What the zone's own NSEC and NSEC3 chains prove, and what they do not.
TEST_F(DnssecSigned, DenialProofs) {
  for (auto* chain : {&z->nsec_chain, &z->nsec3_chain}) {
    SCOPED_TRACE(chain == &z->nsec_chain ? "NSEC" : "NSEC3");
    ASSERT_GT(chain->size(), 5u);
    DenialSet d(*chain, N("example."));
    EXPECT_EQ(d.nxdomain(N("absent.example.")), Proof::proven);
    EXPECT_EQ(d.nxdomain(N("deeper.absent.example.")), Proof::proven);
    EXPECT_EQ(d.nxdomain(N("www.example.")), Proof::missing);     // exists
    EXPECT_EQ(d.nxdomain(N("b.example.")), Proof::missing);       // an empty non-terminal
    EXPECT_EQ(d.nxdomain(N("x.w.example.")), Proof::missing);     // the wildcard *.w makes it
    EXPECT_EQ(d.nodata(N("www.example."), type::TXT), Proof::proven);
    EXPECT_EQ(d.nodata(N("www.example."), type::A), Proof::missing);
    EXPECT_EQ(d.nodata(N("alias.example."), type::A), Proof::missing);  // a CNAME is there
    EXPECT_EQ(d.nodata(N("a.b.example."), type::A), Proof::proven);     // empty non-terminal
    EXPECT_EQ(d.nodata(N("x.w.example."), type::TXT), Proof::proven);   // the wildcard has no TXT
    EXPECT_EQ(d.nodata(N("absent.example."), type::A), Proof::missing);
    EXPECT_EQ(d.wildcard_expansion(N("host.w.example."), N("w.example.")), Proof::proven);
    EXPECT_EQ(d.wildcard_expansion(N("www.example."), N("example.")), Proof::missing);
    // RFC 8198 5.3: a wildcard answer only where its parent is the closest encloser.
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("host.w.example."), N("w.example.")), Proof::proven);
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("a.b.host.w.example."), N("w.example.")),
              Proof::proven);
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("*.w.example."), N("w.example.")),
              Proof::missing);  // the wildcard itself exists
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("www.example."), N("example.")),
              Proof::missing);  // exists
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("x.a.b.example."), N("example.")),
              Proof::missing);  // a.b.example. exists: it is the closest encloser
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("x.b.example."), N("example.")),
              Proof::missing);  // b.example. (an empty non-terminal) is
    EXPECT_EQ(DenialSet(*chain, N("example.")).wildcard_synthesis(N("w.example."), N("w.example.")),
              Proof::missing);
    EXPECT_EQ(d.ds_absence(N("sub.example.")), DenialSet::Cut::insecure_delegation);
    EXPECT_EQ(d.ds_absence(N("www.example.")), DenialSet::Cut::not_a_cut);
    EXPECT_EQ(d.ds_absence(N("absent.example.")), DenialSet::Cut::unproven);
    // Names below a delegation are not the parent's to deny.
    EXPECT_EQ(d.nxdomain(N("x.sub.example.")), Proof::missing);
    // Records of another zone prove nothing here.
    DenialSet other(*chain, N("other."));
    EXPECT_EQ(other.nxdomain(N("absent.other.")), Proof::missing);
  }
  // Without the records that cover the name, nothing is proven.
  std::vector<RRset> one(z->nsec_chain.begin(), z->nsec_chain.begin() + 1);
  EXPECT_EQ(DenialSet(one, N("example.")).nxdomain(N("zzz.example.")), Proof::missing);
}

// The validator's building blocks on the signed zone: the DNSKEY set against its DS records,
// then RRsets against the keys, with the Extended DNS Error each failure gives.
TEST_F(DnssecSigned, KeysFromParentAndVerdicts) {
  const RRset* dnskeys = nullptr;
  for (auto& set : z->sets)
    if (set.type == type::DNSKEY) dnskeys = &set;
  ASSERT_TRUE(dnskeys);
  std::vector<RrsigRdata> key_sigs;
  for (auto& rr : sigs_of(*dnskeys)) key_sigs.push_back(*parse_rrsig(rr.rdata));
  std::vector<DsRdata> ds;
  for (auto& rr : z->ds) ds.push_back(*parse_ds(rr.rdata));
  const auto now = static_cast<std::uint32_t>(time(nullptr));
  KeyEntry keys = keys_from_parent(N("example."), *dnskeys, key_sigs, ds, {}, now);
  ASSERT_EQ(keys.security, Security::secure) << keys.why;
  EXPECT_EQ(keys.keys.size(), 8u);
  // One DS is enough; so is a trusted DNSKEY (a trust anchor's form).
  EXPECT_EQ(keys_from_parent(N("example."), *dnskeys, key_sigs, {ds[3]}, {}, now).security, Security::secure);
  // Each key signs the DNSKEY set here (dnssec-signzone's choice), so each vouches for it
  // when trusted; a trusted key that is not in the set vouches for nothing.
  for (auto& k : keys.keys)
    EXPECT_EQ(keys_from_parent(N("example."), *dnskeys, key_sigs, {}, {k}, now).security, Security::secure);
  auto stranger = keys.keys[0];
  stranger.wire.back() ^= 1;
  EXPECT_EQ(keys_from_parent(N("example."), *dnskeys, key_sigs, {}, {stranger}, now).ede, ede::DNSKEY_MISSING);
  // A DS matching no key: DNSKEY missing; unsigned DNSKEY set: RRSIGs missing; expired: 7.
  auto wrong = ds[0];
  wrong.digest[0] ^= 1;
  auto e = keys_from_parent(N("example."), *dnskeys, key_sigs, {wrong}, {}, now);
  EXPECT_EQ(e.security, Security::bogus);
  EXPECT_EQ(e.ede, ede::DNSKEY_MISSING);
  e = keys_from_parent(N("example."), *dnskeys, {}, ds, {}, now);
  EXPECT_EQ(e.ede, ede::RRSIGS_MISSING);
  e = keys_from_parent(N("example."), *dnskeys, key_sigs, ds, {}, key_sigs[0].expiration + 10);
  EXPECT_EQ(e.ede, ede::SIGNATURE_EXPIRED);
  // Only unsupported algorithms or digests: insecure (RFC 4035 section 5.2).
  auto unknown = ds[0];
  unknown.algorithm = 200;
  EXPECT_EQ(keys_from_parent(N("example."), *dnskeys, key_sigs, {unknown}, {}, now).security, Security::insecure);
  unknown = ds[0];
  unknown.digest_type = 99;
  EXPECT_EQ(keys_from_parent(N("example."), *dnskeys, key_sigs, {unknown}, {}, now).security, Security::insecure);

  for (auto& set : z->sets) {
    if (!(set.name == N("www.example.")) || set.type != type::A) continue;
    std::vector<RrsigRdata> sigs;
    for (auto& rr : sigs_of(set)) sigs.push_back(*parse_rrsig(rr.rdata));
    EXPECT_EQ(verify_rrset(set, sigs, keys, now).security, Security::secure);
    EXPECT_EQ(verify_rrset(set, {}, keys, now).ede, ede::RRSIGS_MISSING);
    EXPECT_EQ(verify_rrset(set, sigs, keys, sigs[0].expiration + 10).ede, ede::SIGNATURE_EXPIRED);
    RRset changed = set;
    std::get<RdataA>(changed.rdata[0]).addr[0] ^= 1;
    EXPECT_EQ(verify_rrset(changed, sigs, keys, now).ede, ede::DNSSEC_BOGUS);
    // Keys of another zone (or none) cannot vouch for it.
    KeyEntry other = keys;
    other.zone = N("other.");
    EXPECT_EQ(verify_rrset(set, sigs, other, now).ede, ede::DNSKEY_MISSING);
    KeyEntry none = keys;
    none.keys.clear();
    EXPECT_EQ(verify_rrset(set, sigs, none, now).ede, ede::DNSKEY_MISSING);
  }
}

TEST(DnssecRecords, ValidatedTtlsAreBoundedBySignatures) {
  // RFC 4035 section 5.3.3: at most the original TTL, and no longer than the signature lives.
  auto sig_rdata = [](std::uint32_t original_ttl, std::uint32_t expiration) {
    Bytes b;
    append_u16(&b, type::A);
    b.push_back(13);
    b.push_back(2);
    append_u32(&b, original_ttl);
    append_u32(&b, expiration);
    append_u32(&b, 1000);
    append_u16(&b, 1);
    b.push_back(0);  // signer: the root
    b.push_back(0xAB);
    return RdataOpaque{b};
  };
  Message m;
  m.answer = {{N("a.test."), type::A, kClassIN, 3600, RdataA{{192, 0, 2, 1}}},
              {N("a.test."), type::RRSIG, kClassIN, 3600, sig_rdata(300, 10000)},
              {N("b.test."), type::A, kClassIN, 3600, RdataA{{192, 0, 2, 2}}},
              {N("b.test."), type::RRSIG, kClassIN, 3600, sig_rdata(86400, 9100)},
              {N("c.test."), type::A, kClassIN, 3600, RdataA{{192, 0, 2, 3}}}};
  cap_ttls_to_signatures(&m, 9000);
  EXPECT_EQ(m.answer[0].ttl, 300u);
  EXPECT_EQ(m.answer[1].ttl, 300u);
  EXPECT_EQ(m.answer[2].ttl, 100u);
  EXPECT_EQ(m.answer[3].ttl, 100u);
  EXPECT_EQ(m.answer[4].ttl, 3600u);  // unsigned: untouched
}

TEST(DnssecRecords, RfcKeyTagAndHashVectors) {
  // RFC 5155 appendix A: H(example) with salt aabbccdd and 12 iterations.
  Bytes salt{0xaa, 0xbb, 0xcc, 0xdd};
  EXPECT_EQ(base32hex(nsec3_hash(N("example."), 1, salt, 12)), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
  EXPECT_EQ(base32hex(nsec3_hash(N("a.example."), 1, salt, 12)), "35mthgpgcu1qg68fab165klnsnk3dpvl");
  EXPECT_EQ(*base32hex_decode("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"), nsec3_hash(N("example."), 1, salt, 12));
  // The root KSK-2017 (RFC 4034 appendix B's algorithm): key tag 20326.
  ZoneFileError err;
  auto k = parse_zone_text(". 172800 IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3"
                           "+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8"
                           "PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6"
                           "H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn"
                           "6UwNR1AkUTV74bU=\n",
                           Name::root(), 0, &err);
  ASSERT_TRUE(k) << err.reason;
  auto key = parse_dnskey(k->front().rdata);
  ASSERT_TRUE(key);
  EXPECT_EQ(key_tag(key->wire), 20326);
  EXPECT_TRUE(key->zone_key());
  // Its published DS (SHA-256).
  auto ds = parse_zone_text(". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
                            Name::root(), 0, &err);
  ASSERT_TRUE(ds);
  EXPECT_TRUE(ds_matches(Name::root(), *key, *parse_ds(ds->front().rdata)));
}

TEST(DnssecRecords, CanonicalOrderOfNames) {
  // RFC 4034 section 6.1's example, in order.
  const char* ordered[] = {"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
                           "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."};
  for (std::size_t i = 0; i + 1 < std::size(ordered); ++i) {
    EXPECT_LT(canonical_compare(N(ordered[i]), N(ordered[i + 1])), 0) << ordered[i];
    EXPECT_GT(canonical_compare(N(ordered[i + 1]), N(ordered[i])), 0) << ordered[i];
  }
  EXPECT_EQ(canonical_compare(N("Z.a.example."), N("z.A.example.")), 0);
}

TEST(DnssecRecords, TypeBitmaps) {
  auto bm = TypeBitmap::from_types({type::A, type::RRSIG, type::NSEC, 1234, type::NS});
  for (std::uint16_t t : {type::A, type::NS, type::RRSIG, type::NSEC, std::uint16_t{1234}}) EXPECT_TRUE(bm.has(t)) << t;
  for (std::uint16_t t : {type::DS, type::SOA, type::AAAA, std::uint16_t{1235}, std::uint16_t{0}}) EXPECT_FALSE(bm.has(t));
  EXPECT_TRUE(TypeBitmap::parse(bm.wire));
  // Windows out of order, empty or overrunning are refused.
  EXPECT_FALSE(TypeBitmap::parse(Bytes{4, 1, 0x80, 0, 1, 0x40}));
  EXPECT_FALSE(TypeBitmap::parse(Bytes{0, 0}));
  EXPECT_FALSE(TypeBitmap::parse(Bytes{0, 3, 0x40}));
  EXPECT_FALSE(TypeBitmap::parse(Bytes{0, 33}));
}

TEST(DnssecRecords, MalformedInputIsRefusedNotTrusted) {
  EXPECT_FALSE(parse_rrsig(RdataOpaque{{0, 1, 8}}));
  EXPECT_FALSE(parse_rrsig(RdataA{}));
  EXPECT_FALSE(parse_dnskey(RdataOpaque{{1, 1, 3}}));
  EXPECT_FALSE(parse_ds(RdataOpaque{{0, 1, 8, 2}}));
  EXPECT_FALSE(parse_nsec(RdataOpaque{{3, 'a', 'b'}}));
  EXPECT_FALSE(parse_nsec3(RdataOpaque{{1, 0, 0, 0, 5, 1, 2}}));
  // A key too short for its algorithm, or garbage, verifies nothing.
  RRset set{N("x."), type::A, kClassIN, 60, {RdataA{{1, 2, 3, 4}}}};
  for (std::uint8_t alg : {8, 13, 14, 15, 16}) {
    DnskeyRdata key{256, 3, alg, Bytes(7, 0xAB), {}};
    key.wire = {1, 0, 3, alg, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB};
    RrsigRdata sig{type::A, alg, 1, 60, 0xFFFFFFF0u, 0, key_tag(key.wire), N("x."), Bytes(64, 1)};
    EXPECT_NE(verify_rrsig(set, sig, key, 100), SigResult::ok) << int(alg);
  }
}

}  // namespace
