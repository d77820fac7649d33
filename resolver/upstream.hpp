// Transport to upstream servers on one libuv loop: each UDP query gets its own socket bound to
// a kernel-chosen random port and a random ID; a reply counts only if it comes from the address
// and port asked, with the ID and question sent. TCP for truncated answers. Never blocks.
// TCP connections are reused (RFC 7766 section 6.2.1, as Unbound's tcp-reuse): queries to a
// server are pipelined on its open connection (IDs unique on it, replies matched by ID and
// question, in any order), and a connection left without queries is kept kTcpIdleMs for the
// next one (at most kMaxIdlePerServer per server and kMaxIdleTotal in all, the oldest closed
// first). An idle connection is read all the time, so one the server closes is dropped at
// once; a query lost because the server closed a connection it did not open is sent once
// more, on a new connection of its own. A connection on which a query timed out takes no new
// queries and closes when its last one ends.
// Identical questions to the same server while one is in flight are merged (as Unbound's
// mesh): one query goes out and every sender gets the reply; fewer queries also leave a
// spoofer fewer chances.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/net_address.hpp"
#include "resolver/dns_message.hpp"

namespace outpost::dns {

struct UpstreamResult {
  // case_mismatch: with 0x20, the only replies that came before the timeout repeated the
  // question in another case (a server that does not keep it, or a spoofer).
  enum class Kind { ok, timeout, network_error, case_mismatch } kind = Kind::timeout;
  Message message;
  std::uint32_t rtt_ms = 0;
  std::size_t bytes = 0;
  // A copy for a sender that shared a merged query: the server's RTT or timeout is reported
  // (ServerSelection) by the one sender whose copy is not marked, so it counts once.
  bool shared = false;
};

struct UpstreamStats {
  std::uint64_t udp_sent = 0, tcp_sent = 0, timeouts = 0, mismatched = 0, malformed = 0;
  std::uint64_t merged = 0;  // sends that joined an identical query in flight
  std::uint64_t case_mismatches = 0;  // replies ignored: question case differed (0x20)
  std::uint64_t tcp_connections = 0;  // TCP connections opened
  std::uint64_t tcp_reused = 0;       // TCP queries sent on a connection an earlier query used
  std::uint64_t tcp_retries = 0;      // TCP queries sent again: the server closed a reused connection
};

// 0x20 (draft-vixie-dnsext-dns0x20): the name with each letter's case chosen at random
// (secure_random), for a query whose reply must repeat it byte for byte.
Name with_random_case(const Name& n);
// Puts the case of `original` back wherever a reply repeats the randomised `sent` name or one
// of its ancestors (question, owners, names in the data: mostly compression pointers into
// the question), so that the cache and clients see names as they were asked.
void restore_case(Message* m, const Name& sent, const Name& original);

class Upstream {
 public:
  using Callback = std::function<void(UpstreamResult&&)>;
  explicit Upstream(uv_loop_t* loop);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Sends `q` (with a fresh random ID; with an EDNS OPT record unless edns is false) to
  // addr:port, or joins the identical query already in flight there (its timeout stands);
  // the callback runs exactly once, later, unless cancel() is called first. Returns a handle
  // for cancel(); the query itself stops when every sender has cancelled. With use_0x20 (UDP
  // only) the name goes out in random case and a reply must repeat it exactly; others are
  // ignored like spoofs, and the reply given has the case of `q` back.
  std::uint64_t send(const IpAddress& addr, std::uint16_t port, const Question& q, bool rd, bool tcp,
                     std::uint32_t timeout_ms, Callback cb, bool edns = true, bool use_0x20 = false);
  void cancel(std::uint64_t handle);
  // Cancels everything (callbacks are not called); handles close on the next loop turns.
  void close_all();
  const UpstreamStats& stats() const { return stats_; }
  uv_loop_t* loop() const { return loop_; }

  // TCP reuse bounds (per loop). Idle connections do not keep the loop alive.
  static constexpr std::uint32_t kTcpIdleMs = 10000;
  static constexpr unsigned kMaxIdlePerServer = 2;
  static constexpr unsigned kMaxIdleTotal = 32;
  static constexpr unsigned kMaxPipelined = 32;  // queries in flight on one connection
  std::size_t idle_tcp_connections() const { return idle_.size(); }
  std::size_t tcp_connections() const;
  // DNSSEC: every query with EDNS sets the DO bit (RFC 3225), so that servers send RRSIGs
  // and NSEC/NSEC3 records (the validator's input).
  void set_dnssec_ok(bool on) { dnssec_ok_ = on; }
  // For tests: how long an idle connection is kept.
  void set_tcp_idle_ms(std::uint32_t ms) { tcp_idle_ms_ = ms; }

 private:
  struct Request;
  struct TcpConn;
  struct TcpWrite;
  friend struct Request;
  friend struct TcpConn;
  void finish(Request* r, UpstreamResult&& res);
  void fail_soon(Request* r);  // a network error, delivered on the next loop turn
  void start_tcp(Request* r, bool own_connection);
  TcpConn* open_tcp(const IpAddress& addr, std::uint16_t port, const std::string& key, bool exclusive);
  void tcp_attach(TcpConn* c, Request* r);
  void tcp_write(TcpConn* c, Request* r);
  void tcp_detach(Request* r, bool abandon);
  void tcp_read(TcpConn* c, const char* data, std::size_t n);
  void tcp_lost(TcpConn* c, bool connected);
  void tcp_idle(TcpConn* c);
  void tcp_busy(TcpConn* c);
  void close_tcp(TcpConn* c);
  Message query_message(std::uint16_t id, const Name& qname, std::uint16_t qtype, bool rd, bool edns) const;
  uv_loop_t* loop_;
  std::uint64_t next_handle_ = 1;
  std::unordered_map<std::uint64_t, Request*> active_;     // handle -> request (several may share one)
  std::unordered_map<std::string, Request*> in_flight_;   // merge key -> request, every live one
  // Open and connecting TCP connections by server (address and port), and the idle ones,
  // oldest first.
  std::unordered_map<std::string, std::vector<TcpConn*>> tcp_;
  std::list<TcpConn*> idle_;
  std::uint32_t tcp_idle_ms_ = kTcpIdleMs;
  bool dnssec_ok_ = false;
  UpstreamStats stats_;
};

}  // namespace outpost::dns
