// The DNS server of one worker: UDP and TCP listeners (SO_REUSEPORT, one set per worker) that
// answer clients from local zones, the cache and the resolver. Recursion only for allowed
// networks (others REFUSED); RD=0 answered from cache only; FORMERR for malformed queries and
// meta-TYPE questions, REFUSED for zone transfers (query_types.hpp), NOTIMP for other opcodes;
// UDP answers truncated to the client's EDNS size with TC set. Replies answered from the cache
// are kept in a per-worker ReplyCache, and a plain query that finds one live there is answered
// from it before anything else is done (after the ACL).
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/net_address.hpp"
#include "core/udp_listener.hpp"
#include "core/worker_pool.hpp"
#include "resolver/dns_message.hpp"
#include "resolver/reply_cache.hpp"
#include "resolver/resolver.hpp"

namespace outpost::dns {

struct DnsServerOptions {
  std::vector<Endpoint> listen;
  NetworkList allow_recursion;
  unsigned max_tcp_connections = 512;   // per worker
  std::uint32_t tcp_idle_timeout_ms = 10000;
  std::size_t max_pending_queries = 20000;  // per worker; beyond it cache misses get SERVFAIL
};

struct DnsServerStats {
  std::uint64_t queries = 0, answered = 0, formerr = 0, refused = 0, notimp = 0, servfail = 0, dropped = 0, truncated = 0;
};

class DnsServer {
 public:
  DnsServer(uv_loop_t* loop, Resolver& resolver, DnsServerOptions options);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Binds every listener; false with *error (naming the endpoint) if one cannot be opened.
  bool start(std::string* error);
  // Closes listeners and client connections; queries in flight are answered to nobody.
  void stop();
  const DnsServerStats& stats() const { return stats_; }
  // A reload: who may ask for recursion, from the next query on.
  void set_allow_recursion(NetworkList allowed) { opt_.allow_recursion = std::move(allowed); }
  // Drops the kept replies (`outpost ctl dns flush`, a reload). Loop thread only.
  void clear_reply_cache() { replies_.clear(); }
  const ReplyCache& reply_cache() const { return replies_; }

  // The reply to one query (wire in, wire out; empty = send nothing), for the transports and
  // for tests. `reply` runs once, possibly later; max_udp is 0 for TCP.
  using Reply = std::function<void(std::vector<std::uint8_t>)>;
  void handle(std::span<const std::uint8_t> query, const IpAddress& client, bool tcp, Reply reply);

 private:
  struct TcpConn;
  friend struct TcpConn;
  void on_tcp_accepted(int fd, const sockaddr_storage& peer);
  // A plain query (already parsed into *pq) answered from the kept replies: true with *out
  // filled, counted as answered. False: not allowed recursion, or no live reply kept.
  // handle() past the kept replies; `plain`: the query's PlainQuery if it is one.
  void handle_parsed(std::span<const std::uint8_t> wire, const IpAddress& client, bool tcp, const PlainQuery* plain,
                     Reply reply);
  bool answer_from_replies(const PlainQuery& pq, std::span<const std::uint8_t> wire, const IpAddress& client, bool tcp,
                           std::vector<std::uint8_t>* out);

  uv_loop_t* loop_;
  Resolver& resolver_;
  DnsServerOptions opt_;
  DnsServerStats stats_;
  std::unique_ptr<UdpListener> udp_;
  std::unique_ptr<Acceptor> tcp_accept_;
  std::vector<std::shared_ptr<TcpConn>> conns_;
  ReplyCache replies_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Builds a reply header/question for `q` (used for errors before any resolution).
Message make_reply(const Message& query, std::uint16_t rcode);

}  // namespace outpost::dns
