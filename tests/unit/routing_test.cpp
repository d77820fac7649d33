// route_request(): every rule decided from the request head alone.
#include "proxy/routing.hpp"

#include <gtest/gtest.h>

#include "core/config.hpp"
#include "tests/unit/proxy_config_sections.hpp"

using namespace outpost;

namespace {

http::MessageHead head(std::string method, std::string target, int minor = 1) {
  http::MessageHead h;
  h.method = std::move(method);
  h.target = std::move(target);
  h.minor = minor;
  h.keep_alive = true;
  h.is_connect = h.method == "CONNECT";
  return h;
}

class RoutingTest : public ::testing::Test {
 protected:
  explicit RoutingTest(std::string toml = "") : config_(Config::parse(toml, "test.toml")) {
    rules_ = AccessRules(config_.acl, {*Endpoint::parse("127.0.0.1:3128")});
  }
  Route route(http::MessageHead& h, const char* client = "127.0.0.1", bool cache = true) {
    RouteContext ctx{config_, rules_, IpAddress::parse(client), cache};
    return route_request(h, ctx);
  }
  Config config_;
  AccessRules rules_;
};

TEST_F(RoutingTest, ForwardsAnAbsoluteUrlAndNormalisesIt) {
  auto h = head("GET", "http://Example.COM:80/a?b");
  auto r = route(h);
  ASSERT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.url.host, "example.com");
  EXPECT_EQ(r.url.port, 80);
  EXPECT_EQ(r.url_text, "http://example.com/a?b");
  EXPECT_TRUE(r.cacheable);
  EXPECT_EQ(r.outcome, Outcome::kMiss);
}

TEST_F(RoutingTest, CacheableOnlyForGetAndHeadWithoutABody) {
  auto post = head("POST", "http://example.com/");
  EXPECT_FALSE(route(post).cacheable);
  auto get_body = head("GET", "http://example.com/");
  get_body.has_length = true;
  get_body.content_length = 3;
  EXPECT_FALSE(route(get_body).cacheable);
  auto head_req = head("HEAD", "http://example.com/");
  EXPECT_TRUE(route(head_req).cacheable);
  auto get = head("GET", "http://example.com/");
  EXPECT_FALSE(route(get, "127.0.0.1", false).cacheable);  // no cache
}

TEST_F(RoutingTest, ClientOutsideTheAllowedNetworksIsDenied) {
  auto h = head("GET", "http://example.com/");
  auto r = route(h, "8.8.8.8");
  EXPECT_EQ(r.kind, Route::Kind::kReject);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  RouteContext unknown{config_, rules_, std::nullopt, true};
  EXPECT_EQ(route_request(h, unknown).status, 403);
}

TEST_F(RoutingTest, VersionMethodAndBodyLimit) {
  auto h2 = head("GET", "http://example.com/");
  h2.major = 2;
  auto r = route(h2);
  EXPECT_EQ(r.status, 505);
  EXPECT_TRUE(r.close);
  // RFC 9110 §9.1: any method token is forwarded; an extension method is never cacheable.
  for (const char* m : {"BREW", "PROPFIND", "get", "M-SEARCH"}) {
    auto odd = head(m, "http://example.com/");
    auto r = route(odd);
    EXPECT_EQ(r.kind, Route::Kind::kForward) << m;
    EXPECT_FALSE(r.cacheable) << m;
  }
  auto not_token = head("BR(EW", "http://example.com/");
  EXPECT_EQ(route(not_token).status, 501);
  EXPECT_FALSE(route(not_token).close);
  auto ftp = head("GET", "ftp://example.com/");
  EXPECT_EQ(route(ftp).status, 501);
  auto bad = head("GET", "http://exa mple.com/");
  EXPECT_EQ(route(bad).status, 400);
}

TEST_F(RoutingTest, HttpsTargetsAreForwardedAndCacheable) {
  auto h = head("GET", "https://Example.COM/a?b");
  auto r = route(h);
  ASSERT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.url.scheme, "https");
  EXPECT_EQ(r.url.port, 443);
  EXPECT_TRUE(r.cacheable);
  EXPECT_EQ(r.url_text, "https://example.com/a?b");  // the cache key: never the http:// one
  auto other_port = head("GET", "https://example.com:8443/");
  EXPECT_EQ(route(other_port).url_text, "https://example.com:8443/");
}

TEST(Routing, BodyLimitIsDecidedFromContentLength) {
  Config c = Config::parse("[proxy]\nmax_request_body = 10\n", "t.toml");
  AccessRules rules(c.acl, {});
  RouteContext ctx{c, rules, IpAddress::parse("127.0.0.1"), false};
  auto h = head("POST", "http://example.com/");
  h.has_length = true;
  h.content_length = 11;
  auto r = route_request(h, ctx);
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(r.close);
  h.content_length = 10;
  EXPECT_EQ(route_request(h, ctx).kind, Route::Kind::kForward);
}

TEST_F(RoutingTest, OwnPages) {
  auto health = head("GET", "/health");
  auto r = route(health);
  ASSERT_EQ(r.kind, Route::Kind::kLocal);
  EXPECT_EQ(r.local.head.status, 200);
  EXPECT_EQ(r.local.body, "ok\n");
  EXPECT_EQ(r.url_text, "/health");
  auto options = head("OPTIONS", "*");
  r = route(options);
  ASSERT_EQ(r.kind, Route::Kind::kLocal);
  EXPECT_NE(r.local.head.headers.find("Allow"), nullptr);
  auto other = head("GET", "/nothing?x");
  r = route(other);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.detail, "No such page on this proxy: /nothing");
}

TEST_F(RoutingTest, ConnectTargetsAndPorts) {
  auto ok = head("CONNECT", "example.com:443");
  auto r = route(ok);
  ASSERT_EQ(r.kind, Route::Kind::kConnect);
  EXPECT_EQ(r.url.host, "example.com");
  EXPECT_EQ(r.url.port, 443);
  EXPECT_EQ(r.outcome, Outcome::kTunnel);
  auto port = head("CONNECT", "example.com:25");
  r = route(port);
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(r.close);
  auto bad = head("CONNECT", "example.com");
  EXPECT_EQ(route(bad).status, 400);
  auto local = head("CONNECT", "169.254.169.254:443");  // cloud metadata: never
  EXPECT_EQ(route(local).status, 403);
}

TEST_F(RoutingTest, ForwardingLoopInVia) {
  auto h = head("GET", "http://example.com/");
  h.headers.add("Via", "1.1 other, 1.0 OUTPOST (Outpost)");
  auto r = route(h);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  auto fine = head("GET", "http://example.com/");
  fine.headers.add("Via", "1.1 outposts");
  EXPECT_EQ(route(fine).kind, Route::Kind::kForward);
}

TEST_F(RoutingTest, MaxForwardsZeroIsAnsweredAndOtherwiseDecremented) {
  auto trace = head("TRACE", "http://example.com/x");
  trace.headers.add("Max-Forwards", "0");
  trace.headers.add("Cookie", "secret=1");
  trace.headers.add("X-Seen", "yes");
  auto r = route(trace);
  ASSERT_EQ(r.kind, Route::Kind::kLocal);
  EXPECT_EQ(*r.local.head.headers.find("Content-Type"), "message/http");
  EXPECT_NE(r.local.body.find("TRACE http://example.com/x HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(r.local.body.find("X-Seen: yes"), std::string::npos);
  EXPECT_EQ(r.local.body.find("secret"), std::string::npos);  // no credentials echoed
  auto options = head("OPTIONS", "http://example.com/");
  options.headers.add("Max-Forwards", "3");
  EXPECT_EQ(route(options).kind, Route::Kind::kForward);
  EXPECT_EQ(*options.headers.find("Max-Forwards"), "2");
  auto get = head("GET", "http://example.com/");
  get.headers.add("Max-Forwards", "0");  // only OPTIONS and TRACE
  EXPECT_EQ(route(get).kind, Route::Kind::kForward);
}

TEST_F(RoutingTest, PurgeNeedsAPurgeClient) {
  auto h = head("PURGE", "http://example.com/");
  auto r = route(h);  // loopback is a purge client by default
  EXPECT_EQ(r.kind, Route::Kind::kPurge);
  EXPECT_EQ(r.url.host, "example.com");
  r = route(h, "10.0.0.5");  // allowed to use the proxy, not to purge
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.outcome, Outcome::kDenied);
}

TEST_F(RoutingTest, DestinationRulesBeforeAnyLookup) {
  auto own = head("GET", "http://127.0.0.1:3128/");  // ourselves: a loop
  EXPECT_EQ(route(own).status, 403);
  auto metadata = head("GET", "http://169.254.169.254/latest/meta-data/");
  EXPECT_EQ(route(metadata).status, 403);
  auto loopback = head("GET", "http://127.0.0.1:8080/");  // loopback service, loopback client
  EXPECT_EQ(route(loopback).kind, Route::Kind::kForward);
  EXPECT_EQ(route(loopback, "10.0.0.5").status, 403);  // protect_local_services
}

}  // namespace

TEST(Routing, OnlyTheFourSafeMethodsAreSafe) {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE"}) EXPECT_TRUE(method_safe(m)) << m;
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "BREW", "PROPFIND", "get", "SEARCH"})
    EXPECT_FALSE(method_safe(m)) << m;
}

TEST_F(RoutingTest, WebSocketHandshakesGoAsUpgradesOthersAsPlainRequests) {
  auto ws = [](const char* method, const char* upgrade, bool llhttp_upgrade, int minor = 1) {
    auto h = head(method, "http://example.com/chat", minor);
    h.headers.add("Upgrade", upgrade);
    h.headers.add("Connection", "Upgrade");
    h.upgrade = llhttp_upgrade;
    return h;
  };
  auto good = ws("GET", "websocket", true);
  auto r = route(good);
  EXPECT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_TRUE(r.websocket);
  EXPECT_FALSE(r.cacheable);
  auto listed = ws("GET", "foo/2, WebSocket", true);
  EXPECT_TRUE(route(listed).websocket);
  for (auto h : {ws("GET", "h2c", true), ws("POST", "websocket", true), ws("GET", "websocket", false),
                 ws("GET", "websocket", true, 0)}) {
    auto rr = route(h);
    EXPECT_EQ(rr.kind, Route::Kind::kForward);
    EXPECT_FALSE(rr.websocket) << h.method << " " << *h.headers.find("Upgrade") << " 1." << h.minor;
  }
  auto with_body = ws("GET", "websocket", true);
  with_body.has_length = true;
  with_body.content_length = 3;
  EXPECT_FALSE(route(with_body).websocket);
}

// Transparent interception: origin-form requests are for http://Host/path, on the port the
// client connected to when Host names none; the destination itself without Host.
class InterceptedRoutingTest : public RoutingTest {
 protected:
  Route route_to(http::MessageHead& h, const char* dst) {
    auto a = SocketAddress{*IpAddress::parse(std::string_view(dst).substr(0, std::string_view(dst).find(':'))),
                           static_cast<std::uint16_t>(std::stoi(std::string(dst).substr(std::string(dst).find(':') + 1)))};
    RouteContext ctx{config_, rules_, IpAddress::parse("127.0.0.1"), true, {}, nullptr, &a};
    return route_request(h, ctx);
  }
};

TEST_F(InterceptedRoutingTest, OriginFormUsesHostAndTheConnectionsPort) {
  auto h = head("GET", "/a?b");
  h.headers.add("Host", "Example.com");
  auto r = route_to(h, "192.0.2.1:80");
  ASSERT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.url_text, "http://example.com/a?b");
  EXPECT_TRUE(r.cacheable);
  auto other_port = head("GET", "/x");
  other_port.headers.add("Host", "example.com");
  EXPECT_EQ(route_to(other_port, "192.0.2.1:8080").url_text, "http://example.com:8080/x");
  auto explicit_port = head("GET", "/x");
  explicit_port.headers.add("Host", "example.com:81");
  EXPECT_EQ(route_to(explicit_port, "192.0.2.1:8080").url.port, 81);  // the request decides whether it matches
  auto v6 = head("GET", "/x");
  v6.headers.add("Host", "[2001:db8::1]");
  EXPECT_EQ(route_to(v6, "192.0.2.1:8080").url_text, "http://[2001:db8::1]:8080/x");
}

// A bumped intercepted TLS connection: the same with https://, the server name standing in
// for a missing Host.
TEST_F(InterceptedRoutingTest, BumpedTlsUsesHostWithHttps) {
  auto a = SocketAddress{*IpAddress::parse("192.0.2.1"), 443};
  RouteContext ctx{config_, rules_, IpAddress::parse("127.0.0.1"), true, "sni.example", nullptr, &a};
  auto h = head("GET", "/a");
  h.headers.add("Host", "host.example");
  auto r = route_request(h, ctx);
  ASSERT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.url_text, "https://host.example/a");  // Host, not the server name: it is checked
  auto old = head("GET", "/b", 0);
  EXPECT_EQ(route_request(old, ctx).url_text, "https://sni.example/b");
  auto abs = head("GET", "https://host.example/c");
  EXPECT_EQ(route_request(abs, ctx).kind, Route::Kind::kForward);
  auto plain = head("GET", "http://host.example/c");
  EXPECT_EQ(route_request(plain, ctx).status, 400);
  auto connect = head("CONNECT", "host.example:443");
  EXPECT_EQ(route_request(connect, ctx).status, 405);
  auto a8443 = SocketAddress{*IpAddress::parse("192.0.2.1"), 8443};
  RouteContext ctx8443{config_, rules_, IpAddress::parse("127.0.0.1"), true, "sni.example:8443", nullptr, &a8443};
  auto p = head("GET", "/d");
  p.headers.add("Host", "host.example");
  EXPECT_EQ(route_request(p, ctx8443).url_text, "https://host.example:8443/d");
}

TEST_F(InterceptedRoutingTest, NoHostMeansTheDestination) {
  auto h = head("GET", "/old", 0);
  auto r = route_to(h, "192.0.2.7:80");
  ASSERT_EQ(r.kind, Route::Kind::kForward);
  EXPECT_EQ(r.url_text, "http://192.0.2.7/old");
}

TEST_F(InterceptedRoutingTest, OwnPagesAreTheOriginsAndConnectIsRefused) {
  auto health = head("GET", "/health");
  health.headers.add("Host", "example.com");
  auto r = route_to(health, "192.0.2.1:80");
  EXPECT_EQ(r.kind, Route::Kind::kForward);  // the origin's /health, not Outpost's
  auto connect = head("CONNECT", "example.com:443");
  EXPECT_EQ(route_to(connect, "192.0.2.1:80").status, 405);
  auto https = head("GET", "https://example.com/");
  EXPECT_EQ(route_to(https, "192.0.2.1:80").status, 400);
  auto bad_host = head("GET", "/");
  bad_host.headers.add("Host", "exa mple.com");
  EXPECT_EQ(route_to(bad_host, "192.0.2.1:80").status, 400);
}

// ftp:// goes to the FTP gateway when one is there, under the same destination rules as
// http://; its userinfo is the login and never part of the URL's text.
TEST_F(RoutingTest, FtpUrlsGoToTheGatewayUnderTheSameRules) {
  auto h = head("GET", "ftp://bob:pw@Files.Example.COM/pub/a.txt");
  RouteContext off{config_, rules_, IpAddress::parse("127.0.0.1"), true};
  EXPECT_EQ(route_request(h, off).status, 501);  // no gateway
  RouteContext on{config_, rules_, IpAddress::parse("127.0.0.1"), true, {}, nullptr, nullptr, true};
  h = head("GET", "ftp://bob:pw@Files.Example.COM/pub/a.txt");
  auto r = route_request(h, on);
  ASSERT_EQ(r.kind, Route::Kind::kGateway);
  EXPECT_EQ(r.url.scheme, "ftp");
  EXPECT_EQ(r.url.port, 21);
  EXPECT_EQ(r.url.userinfo, "bob:pw");
  EXPECT_EQ(r.url_text, "ftp://files.example.com/pub/a.txt");
  auto put = head("PUT", "ftp://files.example.com/pub/a.txt");
  EXPECT_EQ(route_request(put, on).status, 501);
  // The rules that need no lookup hold for ftp:// as for http://.
  auto local = head("GET", "ftp://169.254.169.254/x");
  auto denied = route_request(local, on);
  EXPECT_EQ(denied.kind, Route::Kind::kReject);
  EXPECT_EQ(denied.status, 403);
  // userinfo stays refused in http:// URLs.
  auto http_user = head("GET", "http://bob@example.com/");
  EXPECT_EQ(route_request(http_user, on).status, 400);
}
