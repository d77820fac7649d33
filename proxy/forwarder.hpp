// Forwarding one request to its origin: resolve the host (IP literals skip the lookup), keep
// the addresses the destination rules allow, take a pooled connection or connect (falling
// through the host's addresses on failure), send the request head and stream the request
// body with back-pressure, relay the response events, and retry once on a fresh connection
// when a pooled one turns out dead before answering an idempotent request. CONNECT: the same
// up to the connection, whose stream is then handed over for a Tunnel.
//
// A Forwarder is part of a request object and is reset with it; it calls its ForwardEvents
// (the request) from loop callbacks only, and after cancel() never again.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/net_address.hpp"
#include "core/stream.hpp"
#include "proxy/name_resolver.hpp"
#include "proxy/origin_pool.hpp"
#include "proxy/outcome.hpp"
#include "proxy/url.hpp"

namespace outpost {

class ProxyWorker;
struct ProxySettings;

// Why a forward gave no (complete) response, with the answer the client should get.
struct ForwardFailure {
  int status = 502;        // 403 (addresses denied), 502, 504 (timeout)
  Outcome outcome = Outcome::kMiss;
  std::string detail;      // for the error page
  std::string what;        // the cause alone, for logs and callers' own pages
  bool timeout = false;
  bool mid_response = false;  // the response head had been delivered: it is cut
};

class ForwardEvents {
 public:
  virtual void on_forward_connected(const IpAddress& peer) = 0;
  // The serialized request head for the origin, appended to `out`; asked for each time one
  // is sent (a retry asks again).
  virtual void forward_request_head(std::string& out) = 0;
  virtual void on_forward_interim(http::MessageHead& head) = 0;
  // Response events; return values as in http::ParserListener (0, or -1 to fail).
  virtual int on_forward_head(http::MessageHead& head) = 0;
  virtual int on_forward_body(Slice body) = 0;
  // The response is complete and the connection released. `body_cut`: the origin answered
  // before the request body was all sent; the rest of it must be discarded.
  virtual void on_forward_end(bool body_cut) = 0;
  // Everything one origin read produced has been delivered (flush point).
  virtual void on_forward_read_processed() = 0;
  virtual void on_forward_failed(const ForwardFailure& f) = 0;
  // CONNECT: the origin's connected stream.
  virtual void on_forward_tunnel(StreamPtr origin) = 0;
  // An upgrade asked for (Target::upgrade) and accepted: the origin's 101 head, its stream,
  // and the bytes it sent after the 101 (the new protocol's, for the client).
  virtual void on_forward_upgraded(const http::MessageHead& head, StreamPtr origin, Slice early) = 0;
  // The request body queue went below the low-water mark (see Forwarder::body_congested).
  virtual void on_forward_body_drained() = 0;

 protected:
  ~ForwardEvents() = default;
};

class Forwarder final : private OriginEvents {
 public:
  struct Target {
    http::Url url;
    bool tunnel = false;
    bool head_request = false;  // the response has no body
    bool idempotent = false;    // may be retried on a fresh connection
    bool body_chunked = false;  // the request body goes chunked
    bool upgrade = false;       // the head asks for an upgrade: a 101 ends the HTTP exchange
    std::optional<IpAddress> client;
    // Transparent interception: connect to this address and port (the client's original
    // destination) instead of resolving the URL's host; pooled apart from other connections.
    std::optional<SocketAddress> pin;
  };

  explicit Forwarder(ForwardEvents& events) : events_(events) {}
  ~Forwarder() { cancel(); }
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void start(ProxyWorker& worker, std::shared_ptr<const ProxySettings> settings, Target target);
  // Request body: buffered until the head is sent (also when it comes before start()), then
  // written (chunk-framed if chunked).
  void send_body(Slice body);
  void end_body();
  // More request body would exceed the high-water mark: stop reading the client until
  // on_forward_body_drained().
  bool body_congested() const;
  // Back-pressure from the client: stop and restart reading the response.
  void pause_response();
  void resume_response();
  // Closes the origin connection (never pooled) and cancels a lookup; nothing more is
  // reported. Also resets the forwarder for the next request.
  void cancel();
  // From on_forward_connected(): the origin's verified TLS certificate when the connection is
  // new and over TLS (borrowed), else nullptr.
  X509* new_origin_certificate() const { return origin_ && !origin_reused_ ? origin_->peer_certificate() : nullptr; }

 private:
  std::uint16_t port() const { return t_.pin ? t_.pin->port : t_.url.port; }
  void on_resolved(ResolveResult r);
  void connect_next();
  void send_head();
  // Keeps the addresses the rules allow and connects, or fails.
  void use_addresses(std::span<const IpAddress> found);
  void fail(ForwardFailure f);
  // OriginEvents
  void on_origin_connected() override;
  void on_origin_interim(http::MessageHead& head) override;
  int on_origin_head(http::MessageHead& head) override;
  int on_origin_body(Slice body) override;
  int on_origin_end() override;
  void on_origin_upgraded(const http::MessageHead& head, Slice early) override;
  void on_origin_error(int uv_status, bool timeout, const std::string& what) override;
  void on_origin_write_done() override;
  void on_origin_read_processed() override;

  ForwardEvents& events_;
  ProxyWorker* w_ = nullptr;
  std::shared_ptr<const ProxySettings> settings_;
  Target t_;
  std::vector<IpAddress> addrs_;
  std::string key_;  // the origin pool key (OriginKey), reused between requests
  std::vector<Slice> out_;  // the head (and early body) for the origin, reused
  std::size_t next_addr_ = 0;
  std::unique_ptr<ResolveRequest> resolving_;
  OriginConnection* origin_ = nullptr;
  std::vector<Slice> pending_;  // request body waiting for the head to go out
  std::size_t pending_bytes_ = 0;
  std::uint64_t body_sent_ = 0;
  bool origin_reused_ = false;
  bool origin_connected_ = false;
  bool retried_ = false;
  bool head_sent_ = false;
  bool body_ended_ = false;      // the client's request body is complete
  bool last_chunk_sent_ = false;
  bool response_started_ = false;
  bool paused_ = false;
  bool starting_ = false;
  bool answered_while_starting_ = false;
};

}  // namespace outpost
