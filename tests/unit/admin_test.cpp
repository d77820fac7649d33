#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "core/config.hpp"
#include "core/metrics.hpp"
#include "core/worker_pool.hpp"
#include "services/admin/admin_config.hpp"
#include "services/admin/admin_http.hpp"
#include "services/admin/admin_service.hpp"

using namespace outpost::admin;
using outpost::Config;
using outpost::ConfigError;

namespace {
Request parse(const std::string& head) { return parse_request(head); }

// [admin] is parsed once its module registers it (core/config_section.hpp).
struct RegisterSections : ::testing::Environment {
  void SetUp() override { register_config_section(); }
};
const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new RegisterSections);
}  // namespace

TEST(AdminHttp, MetricsAndHealth) {
  auto r = parse("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9145\r\nAccept: text/plain\r\n\r\n");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.page, Page::kMetrics);
  EXPECT_FALSE(r.head);
  r = parse("HEAD /health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.page, Page::kHealth);
  EXPECT_TRUE(r.head);
  EXPECT_EQ(parse("GET /metrics?name[]=x HTTP/1.1\r\n\r\n").page, Page::kMetrics);
  EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status, 0);
}

TEST(AdminHttp, OtherPathsAre404AndOtherMethods405) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\n\r\n").status, 404);
  EXPECT_EQ(parse("GET /metrics/ HTTP/1.1\r\n\r\n").status, 404);
  EXPECT_EQ(parse("GET /Metrics HTTP/1.1\r\n\r\n").status, 404);
  EXPECT_EQ(parse("POST /metrics HTTP/1.1\r\n\r\n").status, 405);
  EXPECT_EQ(parse("get /metrics HTTP/1.1\r\n\r\n").status, 405);  // methods are case-sensitive
  EXPECT_EQ(parse("DELETE /nothing HTTP/1.1\r\n\r\n").status, 405);
}

TEST(AdminHttp, MalformedRequestsAre400) {
  for (const char* bad : {
           "\r\n\r\n",
           "GET\r\n\r\n",
           "GET /metrics\r\n\r\n",
           "GET  /metrics HTTP/1.1\r\n\r\n",
           "GET /metrics HTTP/1.1 \r\n\r\n",
           "GET http://x/metrics HTTP/1.1\r\n\r\n",
           "GET /met rics HTTP/1.1\r\n\r\n",
           "GET /metrics HTTP/1.1\nHost: x\r\n\r\n",
           "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",
           "GET /metrics HTTP/1.1\r\n: empty\r\n\r\n",
           "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
           "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
           "GET /metrics HTTP/1.1\r\nHost: a\x01z\r\n\r\n",
           "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
           "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
           "GET /metrics HTTP/x.1\r\n\r\n",
           "GET /metrics http/1.1\r\n\r\n",
           "\x16\x03\x01\x02\x05\x01\x01\x01\xfc\x03\x03\r\n\r\n",
       }) {
    auto r = parse(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_FALSE(r.reason.empty()) << bad;
  }
  EXPECT_EQ(parse("GET /metrics HTTP/2.0\r\n\r\n").status, 505);
  EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\n").status, 400);  // no blank line
}

TEST(AdminHttp, ResponsesCloseAndFrame) {
  auto r = make_response(200, "text/plain", "ok\n");
  EXPECT_EQ(r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\nok\n");
  auto h = make_response(200, "text/plain", "ok\n", true);
  EXPECT_EQ(h.find("ok\n"), std::string::npos);
  EXPECT_NE(h.find("Content-Length: 3\r\n"), std::string::npos);
  auto e = error_response(405);
  EXPECT_EQ(e.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
  EXPECT_NE(e.find("Allow: GET, HEAD\r\n"), std::string::npos);
}

TEST(AdminConfig, OffByDefaultAndLoopbackWhenOn) {
  Config c = Config::load_default();
  EXPECT_FALSE(c.admin.enabled);
  ASSERT_EQ(c.admin.listen.size(), 1u);
  EXPECT_EQ(c.admin.listen[0].to_string(), "127.0.0.1:9145");
  EXPECT_TRUE(c.admin.allow_clients.contains(*outpost::IpAddress::parse("127.0.0.1")));
  EXPECT_TRUE(c.admin.allow_clients.contains(*outpost::IpAddress::parse("::1")));
  EXPECT_FALSE(c.admin.allow_clients.contains(*outpost::IpAddress::parse("192.168.1.1")));
  c = Config::parse("[admin]\nenabled = true\nallow_clients = [\"10.1.0.0/16\"]\ntimeout = 2.5\n", "t.toml");
  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.timeout, 2.5);
  EXPECT_TRUE(c.admin.allow_clients.contains(*outpost::IpAddress::parse("10.1.2.3")));
  EXPECT_FALSE(c.admin.allow_clients.contains(*outpost::IpAddress::parse("127.0.0.1")));
}

TEST(AdminConfig, StrictErrors) {
  auto error_of = [](const char* text) -> std::string {
    try {
      Config::parse(text, "t.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of("[admin]\nenabled = true\nlisten = []\n"), "t.toml:3: admin.listen: expected at least one address:port");
  EXPECT_EQ(error_of("[admin]\nport = 9145\n"), "t.toml:2: admin.port: unknown key");
  EXPECT_EQ(error_of("[admin]\nallow_clients = [\"nonsense\"]\n"), "t.toml:2: admin.allow_clients: not a network: \"nonsense\"");
  EXPECT_EQ(error_of("[admin]\ntimeout = 0\n"), "t.toml:2: admin.timeout: must be between 0.01 and 3600");
}

namespace {

// Each test its own port: ctest may run them at once, and SO_REUSEPORT would let two
// processes share one.
int connect_admin(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string read_until_close(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Worker 0 runs the admin endpoint; worker 1 is in the registry but its loop never runs, like a
// worker stuck in a long callback.
struct AdminOnOneWorker {
  outpost::Worker w0{0}, w1{1};
  outpost::MetricsRegistry registry{{&w0, &w1}};
  AdminService admin{registry, {&w0, &w1}};

  explicit AdminOnOneWorker(std::uint16_t port) {
    std::string err;
    auto c = Config::parse("[admin]\nenabled = true\nlisten = [\"127.0.0.1:" + std::to_string(port) +
                               "\"]\ntimeout = 0.3\n",
                           "t.toml");
    EXPECT_TRUE(admin.configure(c, &err)) << err;
    std::promise<std::string> started;
    w0.start([&](outpost::Worker& w) {
      std::string e;
      admin.start(w, &e);
      started.set_value(e);
    });
    EXPECT_EQ(started.get_future().get(), "");
  }
  ~AdminOnOneWorker() {
    std::promise<void> drained;
    w0.post([&] { admin.drain(w0, [&] { drained.set_value(); }); });
    drained.get_future().get();
    w0.stop();
    w0.join();
  }
};

}  // namespace

TEST(AdminService, ScrapeIs503WhenAWorkerDoesNotAnswer) {
  constexpr std::uint16_t kPort = 39146;
  AdminOnOneWorker a(kPort);
  int fd = connect_admin(kPort);
  ASSERT_GE(fd, 0);
  std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string out = read_until_close(fd);
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 503 ", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  // /health needs no other worker.
  fd = connect_admin(kPort);
  ASSERT_GE(fd, 0);
  req = "GET /health HTTP/1.1\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  out = read_until_close(fd);
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
}

TEST(AdminService, DrainCutsOpenConnectionsAndStopsListening) {
  constexpr std::uint16_t kPort = 39147;
  int fd;
  {
    AdminOnOneWorker a(kPort);
    fd = connect_admin(kPort);
    ASSERT_GE(fd, 0);
    ::send(fd, "GET /me", 7, 0);  // a request in progress
  }  // drained here
  char c;
  ssize_t n = ::recv(fd, &c, 1, 0);
  EXPECT_LE(n, 0);  // closed (EOF or reset), not left hanging
  ::close(fd);
  EXPECT_EQ(connect_admin(kPort), -1);  // nothing listens any more
}
