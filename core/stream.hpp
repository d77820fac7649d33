// The byte-stream seam: one interface for a connected byte stream (client connections,
// origin connections, both ends of a tunnel). HTTP code reads and writes through it only, so
// a TLS stream can later wrap any stream without that code knowing (the model is h2o's
// h2o_socket_t with its optional TLS state, and Envoy's TransportSocket).
//
// Rules every implementation keeps (TcpStream, FakeStream, a future TLS stream):
// - No call on a Stream calls its handler back synchronously. Events arrive from the event
//   loop (or, for FakeStream, from the test driving it), never from inside read_start(),
//   write(), shutdown_write(), connect() or close().
// - Lifetime: close() ends the stream and gives it up. From that call on the handler is
//   never called again (pending writes are dropped without completions, a pending connect
//   is cancelled), and the caller must not touch the stream. The implementation frees
//   itself later (TcpStream: in libuv's close callback, on a later loop turn), so close() is
//   safe from inside any handler callback. Hold a stream in a StreamPtr: its deleter calls
//   close(), never delete.
// - A handler may close or stop the stream from inside any callback; nothing more is
//   delivered after read_stop() returns.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk.hpp"
#include "core/net_address.hpp"

struct uv_loop_s;

namespace outpost {

// One end of a connection: an address and a port.
struct SocketAddress {
  IpAddress ip;
  std::uint16_t port = 0;
  static std::optional<SocketAddress> from_sockaddr(const sockaddr* sa);
  void to_sockaddr(sockaddr_storage* out, socklen_t* len) const;
  std::string to_string() const;  // "192.0.2.1:80", "[2001:db8::1]:80"
  bool operator==(const SocketAddress&) const = default;
};

// What a stream reports. Errors are libuv status codes (UV_ECONNRESET, UV_ETIMEDOUT, ...).
class StreamHandler {
 public:
  // connect() succeeded; data may now be written.
  virtual void on_connected() {}
  // One read. `data.chunk` is a Chunk::kIoSize chunk from the per-thread pool, owned from
  // here on by whoever keeps a reference: the stream itself keeps none, so a stream holds no
  // read buffer between reads (an idle keep-alive connection costs no 64 KiB), and keeping
  // slices of it (a parser's unparsed bytes, a queued write) copies nothing.
  virtual void on_read(Slice data) = 0;
  // The peer closed its sending side. Reading has stopped; writing may go on.
  virtual void on_eof() = 0;
  // Connect, read or write failed (`what` names which, for logs). Reading has stopped and
  // the stream is of no further use: close it.
  virtual void on_error(int status, std::string_view what) = 0;
  // One queued write() (it returned 0) has been handed to the kernel in full, in the order
  // the writes were made (failures arrive as on_error instead).
  virtual void on_write_done() {}

 protected:
  ~StreamHandler() = default;
};

class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Events go to `h` (nullptr: dropped) from the next event on.
  void set_handler(StreamHandler* h) { handler_ = h; }
  StreamHandler* handler() const { return handler_; }

  // Starts connecting a stream made unconnected (TcpStream(loop)); on_connected() or
  // on_error() follows. It has no timeout of its own: the owner bounds the wait with its own
  // timer and close(). Returns a negative status (and nothing follows) when the attempt
  // cannot even start.
  virtual int connect(const SocketAddress& to) = 0;

  // Reading on or off. Both are idempotent; read_start() on a stream that has seen EOF or an
  // error does nothing.
  virtual void read_start() = 0;
  virtual void read_stop() = 0;
  virtual bool reading() const = 0;

  // Queues `slices` after everything queued before. The slices (and so their chunks) are
  // kept alive until the bytes are written. Returns 0, 1 when everything was written at once
  // (nothing queued; no completion follows: the queue was empty, so nothing can be waiting
  // for one), or a negative status when the write cannot be queued (stream shut down or
  // closed, empty list); then no completion follows either. The list is taken: afterwards
  // the caller may only clear() it and fill it again (a stream that wrote everything at once
  // leaves it empty with its capacity, so a caller that keeps one list allocates none).
  virtual int write(std::vector<Slice>&& slices) = 0;
  // Bytes accepted by write() and not yet handed to the kernel: the back-pressure measure.
  virtual std::size_t queued_bytes() const = 0;
  // Half-close: our FIN goes out after everything queued. Reading goes on. Returns 0 or a
  // negative status (already shut down, closed).
  virtual int shutdown_write() = 0;
  // See the lifetime rule above.
  virtual void close() = 0;

  virtual std::optional<SocketAddress> peer_address() const = 0;
  virtual std::optional<SocketAddress> local_address() const = 0;
  // Nothing is moving and may not for a while (an idle keep-alive connection): give back
  // memory kept only to make traffic cheaper (a TLS stream's record buffers). Frees only
  // what is not in use; safe at any time.
  virtual void release_idle_memory() {}
  // How long into a silence its owner waits before calling release_idle_memory(): at once, a
  // busy peer's next exchange would allocate everything again.
  static constexpr std::uint64_t kIdleMemoryDelayMs = 1000;
  // The loop this stream's events come from, or nullptr when it has none (FakeStream).
  // A stream wrapping another one (tls/TlsStream) defers its own events on it.
  virtual uv_loop_s* loop() const { return nullptr; }

 protected:
  ~Stream() = default;  // streams free themselves after close()
  StreamHandler* handler_ = nullptr;
};

// Back-pressure marks on queued_bytes(), shared by everything that moves bytes between
// streams (client connections, origin requests, tunnels): above the high mark the producer
// stops reading; it starts again below the low mark.
inline constexpr std::size_t kStreamHighWater = 256 * 1024;
inline constexpr std::size_t kStreamLowWater = 64 * 1024;

// Owning handle: destroying or resetting it closes the stream (which then frees itself).
struct StreamCloser {
  void operator()(Stream* s) const noexcept { s->close(); }
};
using StreamPtr = std::unique_ptr<Stream, StreamCloser>;

}  // namespace outpost
