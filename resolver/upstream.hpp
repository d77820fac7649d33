// Transport to upstream servers on one libuv loop: each UDP query gets its own socket bound to
// a kernel-chosen random port and a random ID; a reply counts only if it comes from the address
// and port asked, with the ID and question sent. TCP for truncated answers. Never blocks.
// Identical questions to the same server while one is in flight are merged (as Unbound's
// mesh): one query goes out and every sender gets the reply; fewer queries also leave a
// spoofer fewer chances.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
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

 private:
  struct Request;
  friend struct Request;
  void finish(Request* r, UpstreamResult&& res);
  uv_loop_t* loop_;
  std::uint64_t next_handle_ = 1;
  std::unordered_map<std::uint64_t, Request*> active_;     // handle -> request (several may share one)
  std::unordered_map<std::string, Request*> in_flight_;   // merge key -> request, every live one
  UpstreamStats stats_;
};

}  // namespace outpost::dns
