// Transport to upstream servers on one libuv loop: each UDP query gets its own socket bound to
// a kernel-chosen random port and a random ID; a reply counts only if it comes from the address
// and port asked, with the ID and question sent. TCP for truncated answers. Never blocks.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "core/net_address.hpp"
#include "resolver/dns_message.hpp"

namespace outpost::dns {

struct UpstreamResult {
  enum class Kind { ok, timeout, network_error } kind = Kind::timeout;
  Message message;
  std::uint32_t rtt_ms = 0;
  std::size_t bytes = 0;
};

struct UpstreamStats {
  std::uint64_t udp_sent = 0, tcp_sent = 0, timeouts = 0, mismatched = 0, malformed = 0;
};

class Upstream {
 public:
  using Callback = std::function<void(UpstreamResult&&)>;
  explicit Upstream(uv_loop_t* loop);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Sends `q` (with a fresh random ID; with an EDNS OPT record unless edns is false) to
  // addr:port; the callback runs exactly once, later, unless cancel() is called first.
  // Returns a handle for cancel().
  std::uint64_t send(const IpAddress& addr, std::uint16_t port, const Question& q, bool rd, bool tcp,
                     std::uint32_t timeout_ms, Callback cb, bool edns = true);
  void cancel(std::uint64_t handle);
  // Cancels everything (callbacks are not called); handles close on the next loop turns.
  void close_all();
  const UpstreamStats& stats() const { return stats_; }
  uv_loop_t* loop() const { return loop_; }

 private:
  struct Request;
  friend struct Request;
  void finish(Request* r, UpstreamResult&& res);
  uv_loop_t* loop_;
  std::uint64_t next_handle_ = 1;
  std::unordered_map<std::uint64_t, Request*> active_;
  UpstreamStats stats_;
};

}  // namespace outpost::dns
