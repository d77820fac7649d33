// core/udp_listener: real UDP sockets on loopback, driven on a loop in the test thread.
#include "core/udp_listener.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

using namespace outpost;

namespace {

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks
    EXPECT_EQ(uv_loop_close(&loop), 0) << "a handle was left open";
  }
};

// A plain client socket on 127.0.0.1 with a receive timeout (hang detection only).
struct Client {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  explicit Client(std::uint16_t port) {
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~Client() { ::close(fd); }
  void send(const std::string& s) {
    ASSERT_EQ(::sendto(fd, s.data(), s.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(s.size()));
  }
  // Runs the loop until a datagram arrives (or ~10 s pass: a hang, reported as "").
  std::string receive(uv_loop_t* loop) {
    char buf[2048];
    for (int i = 0; i < 10000; ++i) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n >= 0) return std::string(buf, static_cast<std::size_t>(n));
      uv_run(loop, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    return "";
  }
};

std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

}  // namespace

TEST(UdpListener, AnswersGivenDuringABatchLeaveWithOneSendmmsg) {
  Loop l;
  UdpListener* self = nullptr;
  UdpListener udp(&l.loop, [&](std::span<const std::uint8_t> d, const UdpPeer& from) {
    EXPECT_EQ(from.ip().to_string(), "127.0.0.1");
    self->send(from, bytes("echo:" + std::string(d.begin(), d.end())));
  });
  self = &udp;
  ASSERT_EQ(udp.listen(*Endpoint::parse("127.0.0.1:0")), 0);
  Client c(udp.local_endpoint(0).port);
  // All queued before the loop runs: one recvmmsg takes them, one sendmmsg answers them.
  for (int i = 0; i < 10; ++i) c.send("q" + std::to_string(i));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.receive(&l.loop), "echo:q" + std::to_string(i));
  EXPECT_EQ(udp.stats().received, 10u);
  EXPECT_EQ(udp.stats().sent, 10u);
  EXPECT_EQ(udp.stats().sent_batched, 10u);
  udp.close();
}

TEST(UdpListener, LaterAnswersLeaveAtOnce) {
  Loop l;
  UdpPeer asked;
  UdpListener udp(&l.loop, [&](std::span<const std::uint8_t>, const UdpPeer& from) { asked = from; });
  ASSERT_EQ(udp.listen(*Endpoint::parse("127.0.0.1:0")), 0);
  Client c(udp.local_endpoint(0).port);
  c.send("q");
  while (udp.stats().received == 0) uv_run(&l.loop, UV_RUN_ONCE);
  // As after an asynchronous lookup: answered once the receive batch is over.
  udp.send(asked, bytes("late"));
  EXPECT_EQ(c.receive(&l.loop), "late");
  EXPECT_EQ(udp.stats().sent, 1u);
  EXPECT_EQ(udp.stats().sent_batched, 0u);
  udp.close();
}

TEST(UdpListener, EveryWorkerBindsTheSamePort) {
  Loop l;
  UdpListener a(&l.loop, [](std::span<const std::uint8_t>, const UdpPeer&) {});
  UdpListener b(&l.loop, [](std::span<const std::uint8_t>, const UdpPeer&) {});
  ASSERT_EQ(a.listen(*Endpoint::parse("127.0.0.1:0")), 0);
  Endpoint ep = a.local_endpoint(0);
  EXPECT_NE(ep.port, 0);
  EXPECT_EQ(b.listen(ep), 0);  // SO_REUSEPORT
  EXPECT_EQ(b.local_endpoint(0).port, ep.port);
  EXPECT_LT(a.listen(*Endpoint::parse("example.com:53")), 0);  // not an address: an error, no socket
}

TEST(UdpListener, ClosedInsideABatchDropsTheRestAndLaterSends) {
  Loop l;
  int calls = 0;
  std::unique_ptr<UdpListener> udp;
  UdpPeer first;
  udp = std::make_unique<UdpListener>(&l.loop, [&](std::span<const std::uint8_t>, const UdpPeer& from) {
    ++calls;
    first = from;
    udp->send(from, bytes("held for the batch"));
    udp->close();  // e.g. the server stops while handling a datagram
  });
  ASSERT_EQ(udp->listen(*Endpoint::parse("127.0.0.1:0")), 0);
  Client c(udp->local_endpoint(0).port);
  for (int i = 0; i < 5; ++i) c.send("q");
  for (int i = 0; i < 50 && calls == 0; ++i) {
    uv_run(&l.loop, UV_RUN_NOWAIT);
    ::usleep(1000);
  }
  EXPECT_EQ(calls, 1);
  udp->send(first, bytes("after close"));  // dropped, no crash
  udp.reset();                               // destroyed before libuv's close callbacks ran
  uv_run(&l.loop, UV_RUN_NOWAIT);
  char buf[64];
  EXPECT_LT(::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT), 0);  // nothing was sent
}
