// Stream over a libuv TCP handle: the production implementation of the byte-stream seam. The
// same class carries an accepted Unix-domain connection (make_unix: a uv_pipe_t instead; the
// control channel's socket), which has no connect() and no addresses.
#pragma once
#include <uv.h>

#include "core/stream.hpp"

namespace outpost {

// Where a connection redirected to one of our sockets by the kernel was going: for NAT
// redirection (iptables/nftables REDIRECT or DNAT) the conntrack entry's original destination
// (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST); for TPROXY (`tproxy`) the socket's own local
// address. nullopt with `*error` set when the kernel has none.
std::optional<SocketAddress> original_destination(int fd, bool tproxy, std::string* error);

class TcpStream final : public Stream {
 public:
  // An unconnected stream on `loop`: then connect(), open() or accept_from(). Allocate it
  // with new; it frees itself after close().
  explicit TcpStream(uv_loop_t* loop);
  // An unconnected Unix-domain stream on `loop`, for accept_from() a uv_pipe_t listener.
  static TcpStream* make_unix(uv_loop_t* loop);

  // Adopts a connected socket (the proxy's own accept loop). On failure the descriptor
  // stays the caller's to close.
  int open(int fd);
  // Accepts the next pending connection of a libuv listener.
  int accept_from(uv_stream_t* listener);
  // TCP_NODELAY is on for every connected stream (Outpost gathers its own writes into one
  // write per read, so Nagle would only add delay); this turns it off again.
  void set_nodelay(bool on);

  int connect(const SocketAddress& to) override;
  void read_start() override;
  void read_stop() override;
  bool reading() const override { return reading_; }
  int write(std::vector<Slice>&& slices) override;
  std::size_t queued_bytes() const override;
  int shutdown_write() override;
  void close() override;
  std::optional<SocketAddress> peer_address() const override;
  std::optional<SocketAddress> local_address() const override;
  uv_loop_t* loop() const override { return h_.tcp.loop; }

 private:
  struct UnixTag {};
  TcpStream(uv_loop_t* loop, UnixTag);
  ~TcpStream() = default;  // from the close callback only
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h_); }
  void on_read(ssize_t nread);
  void fail(int status, const char* op);

  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h_;
  bool unix_ = false;
  ChunkRef rbuf_;  // set only between libuv's alloc and read callbacks
  bool reading_ = false;
  bool ended_ = false;    // EOF or an error seen: no more reading
  bool failed_ = false;   // an error reported: no more events
  bool closing_ = false;
};

}  // namespace outpost
