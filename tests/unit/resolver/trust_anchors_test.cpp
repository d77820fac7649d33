// RFC 5011 trust-anchor tracking (resolver/trust_anchors.hpp) on DNSKEY sets signed at test
// time by BIND's dnssec-keygen / dnssec-revoke / dnssec-signzone (bind9-utils): a KSK rollover
// (new key published, trusted after the hold-down; old key revoked, then removed), a key that
// disappears during its hold-down, a set signed only by an unknown key, and the state file
// written and read back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "resolver/dnssec_crypto.hpp"
#include "resolver/trust_anchors.hpp"
#include "resolver/zone_file.hpp"

using namespace outpost::dns;

namespace {

Name N(const char* s) { return *Name::from_text(s); }

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One published DNSKEY set with its RRSIGs.
struct Published {
  RRset keys;
  std::vector<RrsigRdata> sigs;
};

// Phases of a rollover of example.'s KSK k1 to k2 (z: the ZSK), each signed by the keys named:
//   a: {k1, z} by k1       b: {k1, k2, z} by k1 and k2     c: {k1 revoked, k2, z} by both
//   d: {k2, z} by k2       x: {k3, z} by k3 alone (k3 never published before)
//   p: {k1, k3, z} by k1 (k3 appears...)  q: {k1, z} by k1 (...and is gone again)
struct Rollover {
  std::string dir;
  std::map<char, Published> phase;
  std::vector<ResourceRecord> ds_k1;  // the configured anchor
};

const char* kScript = R"(set -e
k1=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK example.)
k2=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK example.)
k3=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK example.)
z=$(dnssec-keygen -q -a ECDSAP256SHA256 example.)
dnssec-dsfromkey -a SHA-256 $k1.key > ds
mkdir rev && cp $k1.key $k1.private rev/ && r=$(cd rev && dnssec-revoke -q $k1 2>/dev/null || dnssec-revoke $k1)
r=$(ls rev/*.key | grep -v "$k1.key")
sign() {  # phase, then the key files: published and signing
  mkdir $1 && printf '$TTL 3600\n@ IN SOA ns admin 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.53\n' > $1/zone
  shift_phase=$1; shift
  for k in "$@"; do cat $k.key >> $shift_phase/zone; cp $k.key $k.private $shift_phase/; done
  (cd $shift_phase && dnssec-signzone -q -o example. -N keep -e +315360000 -f signed zone $(for k in "$@"; do basename $k.key; done) >/dev/null 2>&1)
}
sign a $k1 $z
sign b $k1 $k2 $z
sign c ${r%.key} $k2 $z
sign d $k2 $z
sign x $k3 $z
sign p $k1 $k3 $z
sign q $k1 $z
echo ok
)";

class TrustAnchors : public ::testing::Test {
 protected:
  static Rollover* r;
  static void SetUpTestSuite() {
    if (run("command -v dnssec-signzone && command -v dnssec-revoke").empty()) return;
    r = new Rollover;
    char tmpl[] = "/tmp/outpost-rfc5011-XXXXXX";
    r->dir = mkdtemp(tmpl);
    std::ofstream(r->dir + "/make.sh") << kScript;
    ASSERT_EQ(run("cd " + r->dir + " && sh make.sh"), "ok\n") << r->dir;
    for (char p : std::string("abcdxpq")) {
      ZoneFileError err;
      auto rrs = parse_zone_text(slurp(r->dir + "/" + p + "/signed"), N("example."), 3600, &err);
      ASSERT_TRUE(rrs) << p << ": " << err.line << ": " << err.reason;
      Published pub;
      pub.keys.name = N("example.");
      pub.keys.type = type::DNSKEY;
      for (auto& rr : *rrs) {
        if (rr.type == type::DNSKEY) {
          pub.keys.rdata.push_back(rr.rdata);
          pub.keys.ttl = rr.ttl;
        }
        if (rr.type == type::RRSIG && rrsig_covered(rr) == type::DNSKEY) pub.sigs.push_back(*parse_rrsig(rr.rdata));
      }
      ASSERT_FALSE(pub.sigs.empty()) << p;
      r->phase[p] = pub;
    }
    ZoneFileError err;
    auto ds = parse_zone_text(slurp(r->dir + "/ds"), N("example."), 3600, &err);
    ASSERT_TRUE(ds);
    r->ds_k1 = *ds;
  }
  static void TearDownTestSuite() {
    if (r) run("rm -rf " + r->dir);
    delete r;
    r = nullptr;
  }
  void SetUp() override {
    if (!r) GTEST_SKIP() << "dnssec-signzone / dnssec-revoke (bind9-utils) not installed";
  }
  static constexpr std::uint32_t kHold = 1000;
  AutoTrustSettings settings(const std::string& file = "") { return {file, kHold, 0}; }
  static std::uint32_t now() { return static_cast<std::uint32_t>(std::time(nullptr)); }
  // The key tags of the DNSKEY anchors in use (0 for a DS anchor).
  static std::vector<std::uint16_t> anchor_tags(const TrustAnchorTracker& t) {
    std::vector<std::uint16_t> out;
    for (auto& rr : *t.anchors())
      out.push_back(rr.type == type::DNSKEY ? key_tag(parse_dnskey(rr.rdata)->wire) : 0);
    return out;
  }
  static std::uint16_t ksk_tag(char phase, int which) {  // the which-th SEP key of a phase
    int n = 0;
    for (auto& rd : r->phase[phase].keys.rdata) {
      auto k = parse_dnskey(rd);
      if (k->flags & DnskeyRdata::kSep)
        if (n++ == which) return key_tag(k->wire);
    }
    return 0;
  }
  TrustAnchorTracker::Outcome feed(TrustAnchorTracker& t, char phase, std::uint32_t at) {
    return t.update(N("example."), r->phase[phase].keys, r->phase[phase].sigs, at);
  }
};
Rollover* TrustAnchors::r = nullptr;

}  // namespace

TEST_F(TrustAnchors, KeyRolloverWithHoldDownAndRevocation) {
  TrustAnchorTracker t(r->ds_k1, settings());
  EXPECT_EQ(anchor_tags(t), std::vector<std::uint16_t>{0});  // the configured DS
  std::uint32_t t0 = now();
  // The first set the DS validates: k1 becomes a tracked Valid key.
  auto o = feed(t, 'a', t0);
  EXPECT_TRUE(o.validated);
  std::uint16_t k1 = ksk_tag('a', 0);
  EXPECT_EQ(anchor_tags(t), std::vector<std::uint16_t>{k1});
  // k2 published: AddPend, not trusted during the hold-down, however often it is seen.
  o = feed(t, 'b', t0 + 10);
  EXPECT_TRUE(o.validated);
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_NE(o.changes[0].find("addpend"), std::string::npos);
  feed(t, 'b', t0 + kHold - 1);
  EXPECT_EQ(anchor_tags(t), std::vector<std::uint16_t>{k1});
  // After the hold-down: Valid.
  o = feed(t, 'b', t0 + 10 + kHold);
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_NE(o.changes[0].find("valid (hold-down over)"), std::string::npos);
  auto tags = anchor_tags(t);
  EXPECT_EQ(tags.size(), 2u);
  std::uint16_t k2 = tags[0] == k1 ? tags[1] : tags[0];
  // k1 revoked (self-signed with the REVOKE bit): no longer an anchor.
  o = feed(t, 'c', t0 + 2 * kHold);
  EXPECT_TRUE(o.validated);
  EXPECT_EQ(anchor_tags(t), std::vector<std::uint16_t>{k2});
  bool revoked = false;
  for (auto& k : t.tracked()) revoked |= k.state == KeyState::revoked;
  EXPECT_TRUE(revoked);
  // k1 gone: the set signed by k2 alone validates; the revoked key is removed after its
  // hold-down.
  EXPECT_TRUE(feed(t, 'd', t0 + 2 * kHold + 10).validated);
  EXPECT_EQ(t.tracked().size(), 2u);
  feed(t, 'd', t0 + 3 * kHold + 10);
  ASSERT_EQ(t.tracked().size(), 1u);
  EXPECT_EQ(t.tracked()[0].state, KeyState::valid);
  EXPECT_EQ(anchor_tags(t), std::vector<std::uint16_t>{k2});
  // The old set signed by k1 alone no longer validates anything.
  EXPECT_FALSE(feed(t, 'a', t0 + 3 * kHold + 20).validated);
}

TEST_F(TrustAnchors, UnknownSignersAndShortLivedKeysChangeNothing) {
  TrustAnchorTracker t(r->ds_k1, settings());
  std::uint32_t t0 = now();
  // A set signed by a key nobody trusts: not validated, nothing tracked.
  auto o = feed(t, 'x', t0);
  EXPECT_FALSE(o.validated);
  EXPECT_TRUE(t.tracked().empty());
  EXPECT_EQ(anchor_tags(t), std::vector<std::uint16_t>{0});
  EXPECT_TRUE(feed(t, 'a', t0).validated);
  // k3 appears (AddPend) and is gone before its hold-down ends: forgotten.
  feed(t, 'p', t0 + 1);
  EXPECT_EQ(t.tracked().size(), 2u);
  o = feed(t, 'q', t0 + 2);
  EXPECT_EQ(t.tracked().size(), 1u);
  // Back after the hold-down: a new hold-down (it was forgotten), not trusted at once.
  feed(t, 'p', t0 + 2 * kHold);
  EXPECT_EQ(anchor_tags(t).size(), 1u);
  // The set signed by k3 alone still does not validate, now that k3 is only pending.
  EXPECT_FALSE(feed(t, 'x', t0 + 2 * kHold + 1).validated);
  // A trusted key missing from a validated set stays trusted (Missing), and is Valid when back.
  EXPECT_TRUE(feed(t, 'b', t0 + 3 * kHold).validated);  // k2 pending...
  feed(t, 'b', t0 + 5 * kHold);                          // ...and trusted
  EXPECT_EQ(anchor_tags(t).size(), 2u);
  o = feed(t, 'd', t0 + 5 * kHold + 1);  // k1 gone
  EXPECT_TRUE(o.validated);
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_NE(o.changes[0].find("missing"), std::string::npos);
  EXPECT_EQ(anchor_tags(t).size(), 2u);
  o = feed(t, 'b', t0 + 5 * kHold + 2);
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_NE(o.changes[0].find("valid (back)"), std::string::npos);
}

TEST_F(TrustAnchors, StateFileWrittenAtomicallyAndReadBack) {
  std::string file = r->dir + "/state";
  std::uint32_t t0 = now();
  {
    TrustAnchorTracker t(r->ds_k1, settings(file));
    ASSERT_TRUE(feed(t, 'a', t0).validated);
    feed(t, 'b', t0 + 1);
  }
  std::string text = slurp(file);
  EXPECT_NE(text.find("state=valid"), std::string::npos) << text;
  EXPECT_NE(text.find("state=addpend"), std::string::npos) << text;
  EXPECT_NE(text.find("DNSKEY"), std::string::npos) << text;
  EXPECT_NE(access((file + ".tmp").c_str(), F_OK), 0);  // renamed into place
  // A new tracker (a restart) starts from the file: k2 keeps its hold-down start.
  TrustAnchorTracker t2(r->ds_k1, settings(file));
  std::string error;
  ASSERT_TRUE(t2.load(&error)) << error;
  EXPECT_EQ(t2.tracked().size(), 2u);
  EXPECT_EQ(anchor_tags(t2), std::vector<std::uint16_t>{ksk_tag('a', 0)});
  auto o = feed(t2, 'b', t0 + 1 + kHold);
  EXPECT_EQ(anchor_tags(t2).size(), 2u);
  // A damaged file is an error that names the line.
  std::ofstream(file) << "; comment\nexample. 3600 IN DNSKEY 257 3 13 AAAA ; state=bogus added=1 changed=1\n";
  TrustAnchorTracker t3(r->ds_k1, settings(file));
  EXPECT_FALSE(t3.load(&error));
  EXPECT_NE(error.find(":2:"), std::string::npos) << error;
}

TEST(TrustAnchorIntervals, Rfc5011QueryAndRetryTimes) {
  TrustAnchorTracker t({}, {"", 30 * 86400, 0});
  EXPECT_EQ(t.retry_after_failure(), 3600u);  // MAX(1 hour, ...) with nothing known
  TrustAnchorTracker fast({}, {"", 5, 2});
  EXPECT_EQ(fast.retry_after_failure(), 2u);  // the test setting wins
}
