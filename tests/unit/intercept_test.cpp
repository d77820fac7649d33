// The interception decision (bump or splice) from the CONNECT target and the ClientHello,
// and routing inside a bumped tunnel.
#include "proxy/intercept.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "core/config.hpp"
#include "proxy/routing.hpp"
#include "tests/unit/proxy_config_sections.hpp"
#include "tls/leaf_cache.hpp"

using namespace outpost;

namespace {

// A real CA (in a temporary directory) and its leaf cache: what enables interception. The
// decision itself never mints.
std::shared_ptr<tls::LeafCache> test_leaves() {
  static std::shared_ptr<tls::LeafCache> leaves = [] {
    char tmpl[] = "/tmp/outpost-intercept-test-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    tls::CaOptions o;
    o.cert_file = dir + "/ca.pem";
    o.key_file = dir + "/ca.key";
    std::string error;
    EXPECT_TRUE(tls::create_ca(o, &error)) << error;
    auto l = tls::LeafCache::load(o.cert_file, o.key_file, &error);
    EXPECT_TRUE(l) << error;
    std::remove(o.cert_file.c_str());
    std::remove(o.key_file.c_str());
    rmdir(dir.c_str());
    return l;
  }();
  return leaves;
}

InterceptRules rules(std::vector<std::string> bump, std::vector<std::string> splice = {}) {
  InterceptRules r;
  r.leaves = test_leaves();
  for (auto& b : bump) r.bump.emplace_back(b);
  for (auto& s : splice) r.splice.emplace_back(s);
  return r;
}

http::Url target(const char* authority) {
  auto u = http::parse_authority(authority);
  EXPECT_TRUE(u.has_value());
  u->scheme = "https";
  return *u;
}

tls::ClientHello hello(std::string sni, bool ech = false) {
  tls::ClientHello h;
  h.status = tls::ClientHello::Status::kDone;
  h.server_name = std::move(sni);
  h.ech = ech;
  h.legacy_version = 0x0303;
  h.supported_versions = true;
  h.alpn = {"h2", "http/1.1"};
  return h;
}

TEST(InterceptDecision, BumpsAListedNameWhoseHelloNamesIt) {
  auto d = decide_intercept(rules({"*.example.com"}), target("www.example.com:443"), hello("www.example.com"));
  EXPECT_TRUE(d.bump);
  EXPECT_EQ(d.names, std::vector<std::string>{"www.example.com"});
  EXPECT_EQ(d.server_name, "www.example.com");
}

TEST(InterceptDecision, SpliceListWinsAndUnlistedNamesAreSpliced) {
  auto r = rules({"*.example.com"}, {"bank.example.com"});
  EXPECT_FALSE(decide_intercept(r, target("bank.example.com:443"), hello("bank.example.com")).bump);
  EXPECT_FALSE(r.may_bump(target("bank.example.com:443")));
  EXPECT_FALSE(decide_intercept(r, target("other.org:443"), hello("other.org")).bump);
  EXPECT_FALSE(r.may_bump(target("other.org:443")));
}

TEST(InterceptDecision, NoSniOnANameTargetIsSpliced) {
  auto d = decide_intercept(rules({"example.com"}), target("example.com:443"), hello(""));
  EXPECT_FALSE(d.bump);
  EXPECT_EQ(d.server_name, "-");
}

TEST(InterceptDecision, NoSniOnAnIpTargetIsBumpedWithTheAddress) {
  auto d = decide_intercept(rules({"192.0.2.7"}), target("192.0.2.7:443"), hello(""));
  EXPECT_TRUE(d.bump);
  EXPECT_EQ(d.names, std::vector<std::string>{"192.0.2.7"});
  // An IPv6 literal, named without brackets.
  d = decide_intercept(rules({"2001:db8::1"}), target("[2001:db8::1]:443"), hello(""));
  EXPECT_TRUE(d.bump);
  EXPECT_EQ(d.names, std::vector<std::string>{"2001:db8::1"});
}

TEST(InterceptDecision, AnotherNameThanTheTargetIsSpliced) {
  EXPECT_FALSE(decide_intercept(rules({"*.example"}), target("a.example:443"), hello("b.example")).bump);
  // Also for an IP target: the hello names a host the CONNECT did not.
  EXPECT_FALSE(decide_intercept(rules({"192.0.2.7"}), target("192.0.2.7:443"), hello("a.example")).bump);
}

TEST(InterceptDecision, EchHidingTheNameIsSplicedGreaseEchIsNot) {
  // Real ECH: the outer name is the public name of the client-facing server.
  auto d = decide_intercept(rules({"secret.example"}), target("secret.example:443"), hello("public.example", true));
  EXPECT_FALSE(d.bump);
  EXPECT_EQ(d.reason, "Encrypted Client Hello");
  d = decide_intercept(rules({"192.0.2.7"}), target("192.0.2.7:443"), hello("", true));
  EXPECT_FALSE(d.bump);
  // GREASE ECH (Chromium without an ECH configuration): the outer name is the target.
  EXPECT_TRUE(decide_intercept(rules({"a.example"}), target("a.example:443"), hello("a.example", true)).bump);
}

TEST(InterceptDecision, WhatABumpCannotServeIsSpliced) {
  auto r = rules({"a.example"});
  auto h = hello("a.example");
  h.alpn = {"h2"};  // HTTP/2 only (gRPC clients): a bumped tunnel speaks HTTP/1.1
  EXPECT_EQ(decide_intercept(r, target("a.example:443"), h).reason, "ALPN without http/1.1");
  h.alpn = {"acme-tls/1"};
  EXPECT_FALSE(decide_intercept(r, target("a.example:443"), h).bump);
  h.alpn = {};  // no ALPN at all: HTTP/1.1 is what such clients speak
  EXPECT_TRUE(decide_intercept(r, target("a.example:443"), h).bump);
  h.supported_versions = false;
  h.legacy_version = 0x0302;  // TLS 1.1 at most
  EXPECT_EQ(decide_intercept(r, target("a.example:443"), h).reason, "TLS older than 1.2");
  h.legacy_version = 0x0303;  // TLS 1.2 without supported_versions
  EXPECT_TRUE(decide_intercept(r, target("a.example:443"), h).bump);
}

TEST(InterceptDecision, NotTlsMalformedOrIncompleteIsSpliced) {
  auto r = rules({"a.example"});
  tls::ClientHello h;
  h.status = tls::ClientHello::Status::kNotTls;
  EXPECT_FALSE(decide_intercept(r, target("a.example:443"), h).bump);
  h.status = tls::ClientHello::Status::kMalformed;
  h.error = "bad";
  EXPECT_FALSE(decide_intercept(r, target("a.example:443"), h).bump);
  h.status = tls::ClientHello::Status::kNeedMore;  // the client stopped or the peek timed out
  EXPECT_FALSE(decide_intercept(r, target("a.example:443"), h).bump);
}

TEST(InterceptDecision, OffWithoutACa) {
  InterceptRules r;
  r.bump.emplace_back("a.example");
  EXPECT_FALSE(r.enabled());
  EXPECT_FALSE(r.may_bump(target("a.example:443")));
}

// An intercepted TLS connection (intercept_tls_listen): the server name stands for the target.
TEST(InterceptedTlsDecision, BumpsByTheServerNameAndGivesItsAuthority) {
  std::string authority;
  auto d = decide_intercepted_tls(rules({"*.example"}), 443, hello("www.example"), &authority);
  EXPECT_TRUE(d.bump);
  EXPECT_EQ(d.names, std::vector<std::string>{"www.example"});
  EXPECT_EQ(authority, "www.example");
  d = decide_intercepted_tls(rules({"*.example"}), 8443, hello("www.example"), &authority);
  EXPECT_TRUE(d.bump);
  EXPECT_EQ(authority, "www.example:8443");
  // Unlisted, or in the splice list: spliced, the name kept for the log.
  d = decide_intercepted_tls(rules({"*.example"}, {"bank.example"}), 443, hello("bank.example"), &authority);
  EXPECT_FALSE(d.bump);
  EXPECT_EQ(d.server_name, "bank.example");
  EXPECT_EQ(authority, "");
  EXPECT_FALSE(decide_intercepted_tls(rules({"*.example"}), 443, hello("other.org"), &authority).bump);
}

TEST(InterceptedTlsDecision, NoUsableNameOrNoWholeHelloIsSpliced) {
  std::string authority;
  auto r = rules({"*.example", "192.0.2.7"});
  auto d = decide_intercepted_tls(r, 443, hello(""), &authority);
  EXPECT_FALSE(d.bump);
  EXPECT_EQ(d.server_name, "-");
  EXPECT_EQ(d.reason, "no server name");
  // RFC 6066: SNI names hosts, never addresses; and no name at all would be the only check.
  EXPECT_FALSE(decide_intercepted_tls(r, 443, hello("192.0.2.7"), &authority).bump);
  EXPECT_FALSE(decide_intercepted_tls(r, 443, hello("bad name.example"), &authority).bump);
  tls::ClientHello h;
  h.status = tls::ClientHello::Status::kNeedMore;  // stalled past the peek timeout
  EXPECT_EQ(decide_intercepted_tls(r, 443, h, &authority).reason, "incomplete ClientHello");
  h.status = tls::ClientHello::Status::kMalformed;
  h.error = "bad";
  EXPECT_FALSE(decide_intercepted_tls(r, 443, h, &authority).bump);
  // What a bump cannot serve stays spliced here too.
  auto h2 = hello("www.example");
  h2.alpn = {"h2"};
  EXPECT_FALSE(decide_intercepted_tls(r, 443, h2, &authority).bump);
  InterceptRules off;  // no CA: every connection is spliced
  off.bump.emplace_back("*.example");
  EXPECT_FALSE(decide_intercepted_tls(off, 443, hello("www.example"), &authority).bump);
}

// ---------------------------------------------------------------- routing inside a bump

class BumpedRouting : public ::testing::Test {
 protected:
  BumpedRouting() : config_(Config::parse("", "test.toml")) {
    rules_ = AccessRules(config_.acl, {*Endpoint::parse("127.0.0.1:3128")});
  }
  Route route(const char* method, const char* target, std::string_view authority) {
    req_ = {};
    req_.method = method;
    req_.target = target;
    req_.minor = 1;
    req_.is_connect = req_.method == "CONNECT";
    RouteContext ctx{config_, rules_, IpAddress::parse("127.0.0.1"), true, authority};
    return route_request(req_, ctx);
  }
  Config config_;
  AccessRules rules_;
  http::MessageHead req_;
};

TEST_F(BumpedRouting, OriginFormMeansTheTunnelsHttpsAuthority) {
  auto r = route("GET", "/a/b?c", "www.example.com");
  ASSERT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.url_text, "https://www.example.com/a/b?c");
  EXPECT_TRUE(r.cacheable);
  r = route("GET", "/x", "www.example.com:8443");
  EXPECT_EQ(r.url_text, "https://www.example.com:8443/x");
  // Outpost's own pages are not served inside a tunnel: /health is the origin's.
  r = route("GET", "/health", "www.example.com");
  EXPECT_EQ(r.kind, Route::Kind::kForward);
}

TEST_F(BumpedRouting, AbsoluteFormMustNameTheSameAuthority) {
  EXPECT_EQ(route("GET", "https://www.example.com/x", "www.example.com").kind, Route::Kind::kForward);
  auto r = route("GET", "https://other.example/x", "www.example.com");
  EXPECT_EQ(r.kind, Route::Kind::kReject);
  EXPECT_EQ(r.status, 421);
  r = route("GET", "http://www.example.com/x", "www.example.com");
  EXPECT_EQ(r.status, 421);
}

TEST_F(BumpedRouting, ConnectInsideIsRefused) {
  auto r = route("CONNECT", "other.example:443", "www.example.com");
  EXPECT_EQ(r.kind, Route::Kind::kReject);
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(r.close);
}

}  // namespace
