// The byte-stream seam: TcpStream on real loopback sockets, and FakeStream.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <functional>
#include <string>

#include "core/tcp_stream.hpp"
#include "core/testing/fake_stream.hpp"
#include "core/uv_write.hpp"

using outpost::Chunk;
using outpost::ChunkRef;
using outpost::Slice;
using outpost::slice_of;
using outpost::SocketAddress;
using outpost::Stream;
using outpost::StreamHandler;
using outpost::StreamPtr;
using outpost::TcpStream;
using outpost::testing::FakeStream;

namespace {

// Records every event; optional hooks let a test act from inside a callback.
struct Recorder final : StreamHandler {
  int connected = 0, eofs = 0, errors = 0, writes_done = 0, reads = 0;
  int last_error = 0;
  std::string error_text, data;
  bool chunk_unique = true;  // every read's chunk was ours alone (the stream kept no ref)
  std::size_t chunk_capacity = 0;
  std::function<void()> on_read_hook, on_connected_hook, on_write_done_hook;

  void on_connected() override {
    ++connected;
    if (on_connected_hook) on_connected_hook();
  }
  void on_read(Slice s) override {
    ++reads;
    chunk_unique = chunk_unique && s.chunk->unique();
    chunk_capacity = s.chunk->capacity();
    data.append(s.data, s.size);
    if (on_read_hook) on_read_hook();
  }
  void on_eof() override { ++eofs; }
  void on_error(int status, std::string_view what) override {
    ++errors;
    last_error = status;
    error_text = what;
  }
  void on_write_done() override {
    ++writes_done;
    if (on_write_done_hook) on_write_done_hook();
  }
  int events() const { return connected + eofs + errors + writes_done + reads; }
};

SocketAddress loopback(std::uint16_t port) { return SocketAddress{*outpost::IpAddress::parse("127.0.0.1"), port}; }

// A loop with a listener on 127.0.0.1; accepted connections become TcpStreams.
class TcpStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    uv_tcp_init(&loop_, &listener_);
    listener_.data = this;
    sockaddr_storage ss;
    socklen_t len;
    loopback(0).to_sockaddr(&ss, &len);
    ASSERT_EQ(uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&ss), 0), 0);
    ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16,
                        [](uv_stream_t* l, int status) {
                          auto* self = static_cast<TcpStreamTest*>(l->data);
                          ASSERT_EQ(status, 0);
                          auto* s = new TcpStream(&self->loop_);
                          ASSERT_EQ(s->accept_from(l), 0);
                          s->set_handler(&self->server_events_);
                          self->server_.reset(s);
                        }),
              0);
    int n = sizeof ss;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&ss), &n);
    port_ = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss))->port;
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // every close callback runs: the streams free themselves
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // Runs the loop until `done` holds; false after 10 s (a hang, not a timing assertion).
  bool run_until(const std::function<bool()>& done) {
    uv_timer_t guard;
    uv_timer_init(&loop_, &guard);
    bool expired = false;
    guard.data = &expired;
    uv_timer_start(&guard, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 10000, 0);
    while (!done() && !expired) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return !expired;
  }
  // A connected pair: client_ (connect()) and server_ (accept_from()).
  void connect_pair() {
    client_.reset(new TcpStream(&loop_));
    client_->set_handler(&client_events_);
    ASSERT_EQ(client_->connect(loopback(port_)), 0);
    ASSERT_TRUE(run_until([&] { return client_events_.connected == 1 && server_; }));
  }

  uv_loop_t loop_;
  uv_tcp_t listener_;
  std::uint16_t port_ = 0;
  Recorder client_events_, server_events_;
  StreamPtr client_, server_;
};

TEST_F(TcpStreamTest, ConnectsWritesSlicesAndReadsThem) {
  connect_pair();
  EXPECT_EQ(client_events_.events(), 1);  // connect() itself called nothing back
  std::vector<Slice> out{slice_of("GET / HTTP/1.1\r\n"), slice_of("Host: a\r\n\r\n")};
  // Nothing queued and the kernel takes it all: written at once, and no completion follows.
  ASSERT_EQ(client_->write(std::move(out)), 1);
  EXPECT_EQ(client_->queued_bytes(), 0u);
  server_->read_start();
  EXPECT_TRUE(server_->reading());
  ASSERT_TRUE(run_until([&] { return server_events_.data.size() == 27; }));
  for (int i = 0; i < 3; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(client_events_.writes_done, 0);
  EXPECT_EQ(server_events_.data, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  // Reads come in pool-sized chunks that the stream hands over entirely.
  EXPECT_EQ(server_events_.chunk_capacity, Chunk::kIoSize);
  EXPECT_TRUE(server_events_.chunk_unique);
  EXPECT_EQ(client_->queued_bytes(), 0u);
}

TEST_F(TcpStreamTest, AddressesOfBothEnds) {
  connect_pair();
  auto client_local = client_->local_address();
  auto client_peer = client_->peer_address();
  auto server_local = server_->local_address();
  auto server_peer = server_->peer_address();
  ASSERT_TRUE(client_local && client_peer && server_local && server_peer);
  EXPECT_EQ(*client_peer, loopback(port_));
  EXPECT_EQ(*server_local, loopback(port_));
  EXPECT_EQ(*server_peer, *client_local);
  EXPECT_NE(client_local->port, 0);
  EXPECT_EQ(client_peer->to_string(), "127.0.0.1:" + std::to_string(port_));
}

TEST_F(TcpStreamTest, ConnectRefusedIsAnError) {
  // A port with nobody listening: bind a socket, note its port, close it.
  uv_tcp_t probe;
  uv_tcp_init(&loop_, &probe);
  sockaddr_storage ss;
  socklen_t len;
  loopback(0).to_sockaddr(&ss, &len);
  uv_tcp_bind(&probe, reinterpret_cast<sockaddr*>(&ss), 0);
  int n = sizeof ss;
  uv_tcp_getsockname(&probe, reinterpret_cast<sockaddr*>(&ss), &n);
  std::uint16_t dead = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss))->port;
  uv_close(reinterpret_cast<uv_handle_t*>(&probe), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);

  client_.reset(new TcpStream(&loop_));
  client_->set_handler(&client_events_);
  ASSERT_EQ(client_->connect(loopback(dead)), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.errors == 1; }));
  EXPECT_EQ(client_events_.last_error, UV_ECONNREFUSED);
  EXPECT_EQ(client_events_.error_text.rfind("connect: ", 0), 0u);
  EXPECT_EQ(client_events_.connected, 0);
}

TEST_F(TcpStreamTest, BackPressureCountersFollowThePeer) {
  connect_pair();
  // 32 MiB as 32 slices of one 1 MiB chunk (no copies): more than loopback buffers hold
  // while the server is not reading.
  ChunkRef big = ChunkRef::make(1 << 20);
  big->set_size(1 << 20);
  std::memset(big->data(), 'x', big->size());
  std::vector<Slice> out;
  for (int i = 0; i < 32; ++i) out.push_back(Slice{big, big->data(), big->size()});
  // Partly written at once, the rest queued (0: a completion follows), and a write behind a
  // queued one is always queued.
  ASSERT_EQ(client_->write(std::move(out)), 0);
  ASSERT_EQ(client_->write({slice_of("end")}), 0);
  EXPECT_EQ(client_events_.writes_done, 0);  // completions come from the loop, never from write()
  std::size_t total = (32u << 20) + 3;
  std::size_t queued = client_->queued_bytes();
  EXPECT_GT(queued, 0u);
  EXPECT_LE(queued, total);
  EXPECT_FALSE(big.get()->unique());  // the queued write keeps the chunk alive

  // Nothing moves while the server does not read.
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(client_events_.writes_done, 0);
  EXPECT_GT(client_->queued_bytes(), 0u);

  // The server reads with a pause in the middle (read_stop inside on_read).
  std::size_t stop_at = 4u << 20;
  server_events_.on_read_hook = [&] {
    if (stop_at && server_events_.data.size() >= stop_at) {
      stop_at = 0;
      server_->read_stop();
    }
  };
  server_->read_start();
  ASSERT_TRUE(run_until([&] { return !server_->reading(); }));
  std::size_t at_stop = server_events_.data.size();
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(server_events_.data.size(), at_stop);  // nothing delivered after read_stop()
  server_->read_start();
  ASSERT_TRUE(run_until([&] { return server_events_.data.size() == total && client_events_.writes_done == 2; }));
  EXPECT_EQ(client_->queued_bytes(), 0u);
  EXPECT_EQ(server_events_.data.substr(total - 4), "xend");
  EXPECT_TRUE(big.get()->unique());  // written: the stream let go of it
}

TEST_F(TcpStreamTest, HalfCloseDeliversEofAndKeepsTheOtherDirection) {
  connect_pair();
  server_->read_start();
  client_->read_start();
  ASSERT_GE(client_->write({slice_of("request")}), 0);  // written at once (1) or queued (0)
  ASSERT_EQ(client_->shutdown_write(), 0);  // FIN after the queued bytes
  EXPECT_NE(client_->write({slice_of("late")}), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.eofs == 1; }));
  EXPECT_EQ(server_events_.data, "request");
  EXPECT_FALSE(server_->reading());
  server_->read_start();  // no effect after EOF
  EXPECT_FALSE(server_->reading());
  // The server still answers on its half, and its own half-close ends the client's reading.
  ASSERT_GE(server_->write({slice_of("response")}), 0);
  ASSERT_EQ(server_->shutdown_write(), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.eofs == 1; }));
  EXPECT_EQ(client_events_.data, "response");
  EXPECT_EQ(client_events_.errors + server_events_.errors, 0);
}

TEST_F(TcpStreamTest, CloseInsideCallbacksEndsAllEvents) {
  connect_pair();
  // The server closes itself from inside its first read.
  server_events_.on_read_hook = [&] { server_.reset(); };
  server_->read_start();
  client_->read_start();
  ASSERT_GE(client_->write({slice_of("one")}), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.reads == 1; }));
  ASSERT_GE(client_->write({slice_of("two")}), 0);
  // The client sees the server's close as EOF (or a reset); the server hears nothing more.
  ASSERT_TRUE(run_until([&] { return client_events_.eofs + client_events_.errors > 0; }));
  EXPECT_EQ(server_events_.events(), 1);
  EXPECT_EQ(server_events_.data, "one");
}

TEST_F(TcpStreamTest, CloseWithWritesQueuedCompletesNothing) {
  connect_pair();
  ChunkRef big = ChunkRef::make(8 << 20);
  big->set_size(8 << 20);
  std::memset(big->data(), 'x', big->size());
  ASSERT_EQ(client_->write({Slice{big, big->data(), big->size()}}), 0);
  ASSERT_GT(client_->queued_bytes(), 0u);
  int before = client_events_.events();
  client_.reset();  // close with the write still queued: cancelled, and no completion
  uv_run(&loop_, UV_RUN_NOWAIT);
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(client_events_.events(), before);
  EXPECT_TRUE(big.get()->unique());  // the cancelled write let go of its chunk
}

TEST_F(TcpStreamTest, CloseDuringConnectCancelsIt) {
  client_.reset(new TcpStream(&loop_));
  client_->set_handler(&client_events_);
  ASSERT_EQ(client_->connect(loopback(port_)), 0);
  client_.reset();
  ASSERT_TRUE(run_until([&] { return server_ != nullptr; }));  // the listener still accepts it
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(client_events_.events(), 0);
}

TEST_F(TcpStreamTest, AdoptedDescriptorAndPeerResetAsReadError) {
  // The proxy's accept path: a connected descriptor handed to open().
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_storage ss;
  socklen_t len;
  loopback(port_).to_sockaddr(&ss, &len);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&ss), len), 0);
  auto* adopted = new TcpStream(&loop_);
  ASSERT_EQ(adopted->open(fd), 0);
  client_.reset(adopted);
  client_->set_handler(&client_events_);
  ASSERT_TRUE(run_until([&] { return server_ != nullptr; }));
  EXPECT_EQ(*client_->local_address(), *server_->peer_address());
  server_->read_start();
  client_->read_start();
  ASSERT_GE(server_->write({slice_of("hi")}), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.data == "hi"; }));
  // This end resets the connection (SO_LINGER 0, then close): the far end gets a read
  // error, not EOF.
  linger lg{1, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  client_.reset();
  ASSERT_TRUE(run_until([&] { return server_events_.errors + server_events_.eofs > 0; }));
  EXPECT_EQ(server_events_.errors, 1);
  EXPECT_EQ(server_events_.last_error, UV_ECONNRESET);
  EXPECT_EQ(server_events_.error_text.rfind("read: ", 0), 0u);
  EXPECT_FALSE(server_->reading());
}

// ---------------------------------------------------------------- FakeStream

TEST(FakeStream, DeliversOnlyWhileReadingAndNeverFromItsOwnCalls) {
  FakeStream s;
  Recorder r;
  s.set_handler(&r);
  EXPECT_FALSE(s.feed("early"));  // a socket delivers nothing before reading starts
  s.read_start();
  EXPECT_EQ(r.events(), 0);
  EXPECT_TRUE(s.feed("abc"));
  EXPECT_EQ(r.data, "abc");
  EXPECT_EQ(r.chunk_capacity, Chunk::kIoSize);
  EXPECT_TRUE(r.chunk_unique);
  s.read_stop();
  EXPECT_FALSE(s.feed("def"));
  s.read_start();
  EXPECT_TRUE(s.feed_eof());
  EXPECT_FALSE(s.reading());
  s.read_start();  // no effect after EOF
  EXPECT_FALSE(s.reading());
  EXPECT_EQ(r.eofs, 1);
}

TEST(FakeStream, WritesCapturedAndCompletedOnDemand) {
  FakeStream s;
  Recorder r;
  s.set_handler(&r);
  ChunkRef c = ChunkRef::copy_of("hello world");
  ASSERT_EQ(s.write({Slice{c, c->data(), 5}, slice_of(" ")}), 0);
  ASSERT_EQ(s.write({Slice{c, c->data() + 6, 5}}), 0);
  EXPECT_EQ(s.written(), "hello world");
  EXPECT_EQ(s.write_calls(), 2u);
  EXPECT_EQ(s.pending_writes(), 2u);
  EXPECT_EQ(s.queued_bytes(), 11u);
  EXPECT_EQ(r.writes_done, 0);
  EXPECT_FALSE(c.get()->unique());  // pending writes keep their chunks
  EXPECT_EQ(s.complete_writes(1), 1u);
  EXPECT_EQ(r.writes_done, 1);
  EXPECT_EQ(s.queued_bytes(), 5u);
  s.set_queued_bytes(1 << 20);
  EXPECT_EQ(s.queued_bytes(), 1u << 20);
  s.set_queued_bytes(std::nullopt);
  EXPECT_EQ(s.complete_writes(), 1u);
  EXPECT_TRUE(c.get()->unique());
  EXPECT_EQ(s.queued_bytes(), 0u);
  EXPECT_EQ(s.take_written(), "hello world");
  ASSERT_EQ(s.write({slice_of("!")}), 0);
  EXPECT_EQ(s.take_written(), "!");
  EXPECT_EQ(s.complete_writes(1, UV_EPIPE), 1u);
  EXPECT_EQ(r.errors, 1);
  EXPECT_EQ(r.last_error, UV_EPIPE);
  EXPECT_NE(s.write({}), 0);
}

TEST(FakeStream, ConnectShutdownAndClose) {
  FakeStream s;
  Recorder r;
  s.set_handler(&r);
  ASSERT_EQ(s.connect(loopback(8080)), 0);
  EXPECT_TRUE(s.connecting());
  EXPECT_EQ(r.events(), 0);
  EXPECT_EQ(*s.connect_target(), loopback(8080));
  EXPECT_TRUE(s.complete_connect());
  EXPECT_EQ(r.connected, 1);
  ASSERT_EQ(s.shutdown_write(), 0);
  EXPECT_TRUE(s.write_shut());
  EXPECT_NE(s.write({slice_of("x")}), 0);
  EXPECT_NE(s.shutdown_write(), 0);
  s.read_start();
  s.close();
  EXPECT_TRUE(s.closed());
  EXPECT_FALSE(s.feed("x"));  // nothing reaches the handler after close()
  s.fail(UV_ECONNRESET, "read: reset");
  EXPECT_EQ(r.events(), 1);

  FakeStream refused;
  Recorder r2;
  refused.set_handler(&r2);
  ASSERT_EQ(refused.connect(loopback(1)), 0);
  refused.complete_connect(UV_ECONNREFUSED);
  EXPECT_EQ(r2.errors, 1);
  EXPECT_EQ(r2.error_text, "connect: connection refused");
}

TEST(FakeStream, CloseDropsPendingWritesWithoutCompletions) {
  outpost::testing::FakeStreamFactory f;
  Recorder r;
  {
    StreamPtr p = f.make();
    p->set_handler(&r);
    ASSERT_EQ(p->write({slice_of("queued")}), 0);
  }  // the owning handle closes the stream; the factory keeps it for inspection
  ASSERT_EQ(f.count(), 1u);
  EXPECT_TRUE(f.last().closed());
  EXPECT_EQ(f.last().pending_writes(), 0u);
  EXPECT_EQ(f.last().complete_writes(), 0u);
  EXPECT_EQ(r.events(), 0);
}

}  // namespace
