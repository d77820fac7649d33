// Datagram services on one worker: the UDP counterpart of Acceptor (worker_pool.hpp), shared
// by the DNS server and the UDP services to come (SNMP, DHCP, SNTP).
//
// Each worker binds its own socket on every endpoint (SO_REUSEPORT: the kernel spreads
// clients over the workers). Reads are batched: libuv's recvmmsg takes up to kBatch
// datagrams per system call and hands them over one by one. Answers given while a batch is
// being handed over (`send` from inside on_datagram: cache hits, errors) are held and go out
// together with one sendmmsg when the batch ends; answers given later (after an
// asynchronous lookup) are sent at once. Whatever sendmmsg does not take goes through
// uv_udp_send, which queues while the socket buffer is full.
//
// Lifetime: owned by one object on the loop thread (the server). close() closes the sockets;
// from then on send() drops its datagram and on_datagram is never called. The libuv close
// callbacks free only what they own, so the UdpListener may be destroyed right after close()
// (the destructor closes too). A reply that can come after the owner is gone must be guarded
// by the owner's weak token (core/lifetime.md), as for any other callback.
#pragma once
#include <uv.h>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/net_address.hpp"

namespace outpost {

// Where a datagram came from: the socket it arrived on (answers leave from the same one, so
// they carry the address the client asked) and the sender's address.
struct UdpPeer {
  std::size_t socket = 0;
  sockaddr_storage address{};
  IpAddress ip() const { return IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&address)); }
};

struct UdpListenerStats {
  std::uint64_t received = 0;       // datagrams handed to on_datagram
  std::uint64_t sent = 0;           // datagrams given to the kernel (or queued by libuv)
  std::uint64_t sent_batched = 0;   // of them, sent by sendmmsg at the end of a receive batch
  std::uint64_t send_failed = 0;    // dropped: the socket refused them
};

class UdpListener {
 public:
  static constexpr std::size_t kBatch = 32;          // datagrams per recvmmsg
  static constexpr std::size_t kMaxDatagram = 65536; // libuv's recvmmsg slot size

  using OnDatagram = std::function<void(std::span<const std::uint8_t> data, const UdpPeer& from)>;

  UdpListener(uv_loop_t* loop, OnDatagram on_datagram);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // Binds a socket on `ep` (SO_REUSEPORT) and starts reading; 0 or -errno.
  int listen(const Endpoint& ep);
  // Sends `data` to `to` from the socket it came in on (batched inside a receive batch).
  void send(const UdpPeer& to, std::vector<std::uint8_t> data);
  // Stops for good: sockets closed, later sends dropped.
  void close();

  // The bound address of socket `index` (in listen() order), e.g. the port picked for port 0.
  Endpoint local_endpoint(std::size_t index) const;
  const UdpListenerStats& stats() const { return stats_; }

 private:
  struct Socket;
  void flush(Socket& s);
  void send_now(Socket& s, const sockaddr_storage& to, std::vector<std::uint8_t> data);

  uv_loop_t* loop_;
  OnDatagram on_datagram_;
  std::vector<Socket*> sockets_;
  UdpListenerStats stats_;
  bool closed_ = false;
};

}  // namespace outpost
