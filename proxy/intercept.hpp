// HTTPS interception of CONNECT tunnels ("bump" or "splice"), the decisions and the
// ClientHello peek; the flow itself is the request's (request_intercept.cpp):
//
//   CONNECT host:port ─► may_bump()? ── no ─► an ordinary tunnel (connect, then 200)
//                            │ yes
//                            ▼
//   200 Connection established, HelloPeek reads the ClientHello (peek_timeout)
//                            │
//                       decide() ── splice ─► connect, tunnel the hello and the rest untouched
//                            │ bump
//                            ▼
//   a leaf for the name (tls/leaf_cache: memory, else minted off the loop), a server TLS
//   stream over the client's (the hello fed back in), and a new HTTP/1 connection on it whose
//   origin-form requests mean https://host:port/... (ProxyWorker::adopt).
//
// No origin connection is opened to bump: the origin is dialled (and verified) only when a
// request inside misses the cache, and a failed verification is that request's 502 page,
// shown over the minted certificate.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/lazy_timer.hpp"
#include "core/stream.hpp"
#include "proxy/destination_acl.hpp"
#include "proxy/url.hpp"
#include "tls/client_hello.hpp"

namespace outpost {

namespace tls {
class LeafCache;
}

// What the configuration asks for ([intercept]); off when `leaves` is null.
struct InterceptRules {
  std::shared_ptr<tls::LeafCache> leaves;
  std::vector<HostPattern> bump, splice;
  double peek_timeout = 10;

  bool enabled() const { return leaves != nullptr && !bump.empty(); }
  // Could a CONNECT to `target` be bumped? (Only then is the ClientHello peeked; any other
  // CONNECT is an ordinary tunnel, answered once the origin is connected.)
  bool may_bump(const http::Url& target) const;
};

struct InterceptDecision {
  bool bump = false;
  std::string server_name;  // the SNI, or "-"
  std::string reason;       // why it is spliced (for the debug log)
  // The names the leaf carries (bump only): the SNI, or the IP literal of the target.
  std::vector<std::string> names;
};

// Bump only a well-formed TLS ClientHello whose server name is the CONNECT target's host (or
// which names none, for an IP-literal target), for a target in the bump list and not in the
// splice list. Everything else is spliced: not TLS, malformed, no server name for a name
// target, another name, and Encrypted Client Hello whose outer name is not the target (the
// real one is hidden). ECH whose outer name is the target hides nothing (GREASE ECH).
InterceptDecision decide_intercept(const InterceptRules& rules, const http::Url& target, const tls::ClientHello& hello);

// A TLS connection the kernel redirected to Outpost ([proxy] intercept_tls_listen; no
// CONNECT names a target): the server name is the only name there is, so it stands for the
// target and the rules above apply to it (`authority` is then "name[:port]", port being the
// original destination's). No server name, an address for one, or a hello that is not whole
// and well-formed: spliced (to the original destination, whatever the name says). Not TLS at
// all is the caller's to refuse (decided before this).
InterceptDecision decide_intercepted_tls(const InterceptRules& rules, std::uint16_t port, const tls::ClientHello& hello,
                                         std::string* authority);

// Reads the client's first bytes after the CONNECT answer until they hold a whole
// ClientHello, are not TLS, or the client stops; then hands the stream and every byte read
// back, untouched. Frees itself after `done` (or cancel()).
class HelloPeek final : private StreamHandler {
 public:
  struct Result {
    StreamPtr client;          // null if the client failed
    std::string bytes;         // everything read, in order
    tls::ClientHello hello;    // status kNeedMore: the client stopped or timed out first
    bool client_eof = false;
    std::string error;         // empty, "timeout", or the stream's error
  };
  using Done = std::function<void(Result)>;

  static HelloPeek* start(uv_loop_t* loop, StreamPtr client, std::vector<Slice> early, bool client_eof,
                          double timeout_s, Done done);
  // `done` will not run; the client stream is closed.
  void cancel();

 private:
  HelloPeek(uv_loop_t* loop, StreamPtr client, Done done);
  ~HelloPeek() = default;
  void on_read(Slice data) override;
  void on_eof() override;
  void on_error(int status, std::string_view what) override;
  bool examine();  // true when finished
  void arm_timeout();
  void finish(std::string error);
  void close();

  StreamPtr client_;
  std::string bytes_;
  tls::ClientHello hello_;
  bool eof_ = false;
  bool closed_ = false;
  std::uint64_t timeout_ms_ = 0;
  Done done_;
  LazyTimer timer_;
};

}  // namespace outpost
