// One proxy request, from its parsed head to its last response byte: the request object a
// client connection (proxy/http1_connection; HTTP/2 streams later) creates per message. Its
// life is an explicit stage machine driven by advance(), like the resolver's iterator:
//
//   kRoute ─► kCacheLookup ─► kServeStored ───────────────────────────► kDone
//     │            ├────────► kFollow (collapsed onto another fetch) ─► kDone
//     │            └────────► kCollapsedWait ─► kCacheLookup | kResolve
//     ├─► kResolve ─► kConnect ─► kAwaitHead ─► kRelay ──────────────► kDone
//     │     ▲            │             └──────► kTunnel (WebSocket 101) ► kDone
//     │     │            └──────► kTunnel (CONNECT) ─────────────────► kDone
//     ├─► kPeek (CONNECT that may be intercepted: proxy/intercept.hpp; every connection of
//     │          an intercept_tls_listen, which begins as a CONNECT to its original destination)
//     │     ├── splice ─► kResolve ─► ... kTunnel
//     │     └── bump ──► kMint (a leaf minted off the loop) ─► kDone: the client's stream
//     │                    now carries a new HTTP/1 connection inside TLS
//     └─► kDone (answered locally or rejected)
//
// It answers through a ResponseSink (the connection owns the wire format), forwards through
// a Forwarder (proxy/forwarder), decides with route_request() (proxy/routing), and its cache
// half lives in request_cache.cpp. Every request ends with one access-log line and one
// metrics record, whatever stage it ended in.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/backend.hpp"
#include "core/blocking_work.hpp"
#include "core/chunk.hpp"
#include "core/net_address.hpp"
#include "proxy/forwarder.hpp"
#include "proxy/gateway.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/outcome.hpp"
#include "proxy/response_sink.hpp"
#include "proxy/routing.hpp"
#include "proxy/url.hpp"
#include "tls/ca.hpp"

namespace outpost {

class ProxyWorker;
struct ProxySettings;
class Tunnel;
class HelloPeek;
struct InterceptDecision;
namespace tls {
struct ClientHello;
}

enum class ProxyRequestStage : std::uint8_t {
  kRoute,
  kCacheLookup,
  kCollapsedWait,
  kServeStored,
  kFollow,
  kResolve,
  kConnect,
  kAwaitHead,
  kRelay,
  kTunnel,
  kPeek,
  kMint,
  kAuth,  // credentials checked on the thread pool (request_auth.cpp)
  kVerifyHost,  // transparently intercepted: does Host resolve to the original destination?
  kGateway,  // answered by a gateway (ftp://: proxy/gateway.hpp)
  kDone,
};

// Who sent the request (the connection's peer).
struct ClientInfo {
  std::optional<IpAddress> ip;
  std::string text = "-";  // for logs
  // A connection inside an intercepted (bumped) tunnel: the tunnel's "host:port". Its
  // origin-form requests are for https://authority/... (routing.hpp).
  std::string authority;
  // The user the CONNECT of that tunnel authenticated as: requests inside it are that user's
  // (a browser sends no Proxy-Authorization inside TLS to the origin).
  std::string user;
  std::vector<std::string> groups;
  // A transparently intercepted connection ([proxy] intercept_listen): where the client was
  // connecting. Its requests go there, whatever their Host says (routing.hpp).
  std::optional<SocketAddress> original_dst;
};

// Everything one request holds, reset as a whole between requests (ProxyRequest::reset),
// so no field can be forgotten and nothing of an old request stays alive.
struct RequestState {
  using Stage = ProxyRequestStage;
  std::shared_ptr<const ProxySettings> settings_;
  ResponseSink* sink_ = nullptr;
  ClientInfo client_;
  Stage stage_ = Stage::kDone;
  bool active_ = false;

  // (The request head, req_, is a member of ProxyRequest: it keeps its buffers.)
  http::Url url_;
  std::string url_text_;  // for logs; for a cacheable request also its cache key
  double start_time_ = 0;
  std::uint64_t start_ms_ = 0;
  bool head_request_ = false;
  bool request_done_ = false;
  bool discard_body_ = false;
  std::uint64_t body_in_ = 0;
  int status_ = 0;
  Outcome code_ = Outcome::kMiss;
  std::string hierarchy_ = "HIER_NONE";
  std::optional<IpAddress> peer_;  // the origin's address (text only when logged)
  std::string content_type_;
  std::uint64_t body_relayed_ = 0;  // origin body bytes sent to the client directly
  bool origin_length_known_ = false;
  bool response_paused_ = false;   // the forwarder holds the response for a slow client
  bool body_paused_ = false;       // the connection holds the request body for a slow origin
  // Tunnel (CONNECT, or a WebSocket upgrade the origin accepted).
  bool websocket_ = false;  // forwarded as an upgrade (Route::websocket)
  Tunnel* tunnel_ = nullptr;
  std::uint64_t tunnel_bytes_ = 0;
  // Interception (request_intercept.cpp): the peek, and the client's stream held (answered
  // 200 already) until it is spliced or bumped.
  HelloPeek* peek_ = nullptr;
  StreamPtr peeked_client_;
  std::string peeked_bytes_;
  bool peeked_eof_ = false;
  BlockingWork mint_;
  // A connection of [proxy] intercept_tls_listen: this request is the CONNECT to its original
  // destination that the client never sent (as Squid logs it); nothing is written to the
  // client (its sink is silent), refusals close the connection.
  bool intercepted_tls_ = false;
  // Bump: the authority the new connection's origin-form requests are for (the CONNECT's
  // target, or the server name of an intercepted TLS connection).
  std::string bump_authority_;
  // Transparent interception: the lookup of Host checking it against the original
  // destination, and its verdict (only a verified request may use or change the cache).
  std::unique_ptr<ResolveRequest> host_check_;
  bool host_verified_ = false;
  // Proxy authentication (request_auth.cpp): the route decided before the credentials were
  // checked, the check on the pool, and who the request is (for the log and the rules).
  Route::Kind route_kind_ = Route::Kind::kReject;
  bool route_cacheable_ = false;
  bool route_websocket_ = false;
  BlockingWork auth_work_;
  std::string user_;
  std::vector<std::string> user_groups_;
  // HTTP cache.
  bool cache_get_ = false;
  http::CacheControl req_cc_;
  std::int64_t request_time_ = 0;  // when the request went to the origin
  bool leader_ = false;            // registered as the one fetching url_text_ (the cache key)
  bool passed_ = false;            // not collapsed: the key is marked uncacheable (hit-for-miss)
  bool followed_ = false;          // already waited for a leader once
  bool revalidating_ = false;      // conditional request for a stale entry
  bool unconditional_ = false;     // a conditional GET on a miss, sent without its conditionals
  bool own_conditional_ = false;   // a conditional on a miss sent as the client sent it (not collapsed)
  bool withhold_body_ = false;     // the client got a 304: the origin's body goes to the store only
  bool absorb_ = false;            // the origin's answer is not relayed (304 refresh, stale-if-error)
  bool serve_stale_on_end_ = false;
  cache::Handle stale_;
  std::optional<http::StoredResponse> stale_meta_;
  std::string stale_store_key_;
  cache::Writer writer_;
  cache::Reader reader_;  // following an object being written
  bool reader_waiting_ = false;
  std::uint64_t reader_skip_ = 0;  // bytes of the reader's object the client already has
  // The origin's body goes only into the store writer while the client reads the stored
  // copy at its own pace (it fell behind; see follow_own_writer()).
  bool follows_own_writer_ = false;
  std::string cache_status_;  // Cache-Status (RFC 9211) value for a forwarded response
  // Partial content (request_cache.cpp; proxy/range_parts.hpp). How a single-range GET that
  // the stored complete object could not answer goes to the origin:
  //   kPlain: as sent; a 206 is relayed and stored as a part (joined to the stored parts);
  //   kFill:  the stored parts cover some of the range: only the span of the missing bytes
  //           is asked for (Range + If-Range with the parts' validator), and the client's
  //           range is answered from the stored bytes around the fetched ones;
  //   kWhole: range_offset_limit: the whole object is fetched (and stored), the range
  //           answered from it as it passes.
  enum class RangeMode : std::uint8_t { kNone, kPlain, kFill, kWhole };
  RangeMode range_mode_ = RangeMode::kNone;
  bool parts_looked_ = false;
  cache::Handle parts_;                                   // the stored parts, if any
  std::shared_ptr<const http::PartsMeta> parts_meta_;
  http::ByteRange client_range_;  // kFill: the client's range (resolved)
  http::ByteRange fetch_range_;   // kFill: the span asked of the origin
  // The origin's body passes to the client only inside [clip_lo_, clip_hi_] (kFill, kWhole);
  // relay_pos_ is the representation offset of its next byte.
  bool clip_ = false;
  std::uint64_t clip_lo_ = 0, clip_hi_ = 0, relay_pos_ = 0;
  // A 206 being stored: into the parts object, or (part_completes_) into the complete
  // object it finishes; the stored parts it is joined with (overlaps compared byte by byte).
  cache::Writer part_writer_;
  http::ByteRange part_;
  std::uint64_t part_pos_ = 0;
  bool part_completes_ = false;
  bool part_merges_ = false;
  // A gateway's exchange (ftp://): destroyed only with the request's state (reset()).
  std::unique_ptr<GatewayJob> gateway_job_;
};

class ProxyRequest final : private ForwardEvents, private GatewayEvents, private RequestState {
 public:
  using Stage = ProxyRequestStage;
  static std::string_view stage_name(Stage s);

  explicit ProxyRequest(ProxyWorker& worker);
  ~ProxyRequest();
  ProxyRequest(const ProxyRequest&) = delete;
  ProxyRequest& operator=(const ProxyRequest&) = delete;

  // A parsed request head: route it and go on. Answers go to `sink`, which must outlive
  // this request's use of it (until finish() or on_client_gone()).
  // The head is taken by swapping: `head` is left holding this request's previous (empty)
  // head, whose buffers the parser fills again.
  void begin(http::MessageHead& head, ResponseSink& sink, const ClientInfo& client);
  // A request that could not be parsed or did not arrive in time: answers `status` and
  // the connection closes. `method` may be empty.
  void begin_failed(std::string method, ResponseSink& sink, const ClientInfo& client, int status,
                    const std::string& detail);
  // A TLS connection redirected to an intercept_tls_listen (`client.original_dst` set): the
  // CONNECT to that destination it stands for, peeked at, then spliced there or bumped.
  void begin_intercepted_tls(ResponseSink& sink, const ClientInfo& client);

  // ---- from the connection
  void on_request_body(Slice body);
  void on_request_end();
  // The request body stopped arriving in time.
  void on_request_timeout();
  // The rest of the request cannot be read (malformed, too slow): answers `status` if no
  // response has started, and the connection closes.
  void fail(int status, const std::string& detail);
  // The client's queue went below the low-water mark.
  void on_sink_drained();
  // The connection is going away: log (as aborted if unfinished), stop all work.
  void on_client_gone();
  // The response is complete and the request fully read: log and release everything.
  void finish();
  // For recycling (by the worker, between loop turns): back to a fresh state, nothing of
  // the old request kept alive.
  void reset();

  bool active() const { return active_; }
  // For operators (`outpost ctl connections`): "METHOD URL stage=S age=Ns".
  std::string describe(std::uint64_t now_ms) const;

 private:
  void open(ResponseSink& sink, const ClientInfo& client);  // the start of begin*()
  // The stage machine.
  void set_stage(Stage s);
  void advance();
  void run_route();
  // What a route decided for a request that may go on (after authentication, if on).
  void proceed(Route::Kind kind, bool cacheable, bool websocket);
  // Proxy authentication (request_auth.cpp): credentials from Proxy-Authorization, checked
  // through the settings' Authenticator (cache, else the pool), then the user rules.
  void start_auth();
  void on_auth_verdict(const auth::Identity& id, const std::string& user);
  void challenge(const std::string& detail);

  // Answers.
  void reject(int status, const std::string& detail, Outcome code, bool close = false);
  void answer_local(http::LocalResponse resp, Outcome code);
  void answer_purge();
  void log_exchange();

  // Forwarding (ForwardEvents).
  void start_forward();
  void on_forward_connected(const IpAddress& peer) override;
  void forward_request_head(std::string& out) override;
  void on_forward_interim(http::MessageHead& head) override;
  int on_forward_head(http::MessageHead& head) override;
  int on_forward_body(Slice body) override;
  void on_forward_end(bool body_cut) override;
  void on_forward_read_processed() override;
  void on_forward_failed(const ForwardFailure& f) override;
  void on_forward_tunnel(StreamPtr origin) override;
  void on_forward_upgraded(const http::MessageHead& head, StreamPtr origin, Slice early) override;
  // Splices the client's stream (taken from the sink) and `origin`.
  void start_tunnel(StreamPtr origin);
  void on_forward_body_drained() override;

  // Gateways (ftp://).
  void start_gateway();
  ResponseSink& gateway_sink() override { return *sink_; }
  void on_gateway_peer(const IpAddress& peer) override;
  void on_gateway_answer(int status, Outcome code, std::string_view content_type) override;

  // Interception (request_intercept.cpp).
  void start_peek();
  void on_peeked(StreamPtr client, std::string bytes, bool eof, const tls::ClientHello& hello, const std::string& error);
  void start_bump(const InterceptDecision& d);
  void finish_bump(tls::X509Ptr leaf, const std::string& error);
  void end_intercept();  // stops the peek and the minting, drops the held client stream
  // Inside a bumped tunnel: the origin's names, for the leaves minted for it later.
  void note_origin_certificate();
  // Transparent interception: the request goes to the original destination whatever its
  // Host says; it may use the cache (and invalidate it) only if Host is that destination.
  void verify_intercepted_host();
  void on_host_checked(bool verified, const std::string& why);

  // Caching (request_cache.cpp).
  void start_cache_lookup();
  void on_cache_lookup(http::CacheLookup r);
  void serve_stored(const cache::Handle& h, const http::StoredResponse& meta, std::int64_t age, Outcome code,
                    const std::string& cache_status);
  void send_stored(const http::ResponseHead& head, BodyFraming framing, std::vector<Slice> body);
  void follow_reader(cache::Reader reader, const http::StoredResponse& meta);
  bool follow_own_writer();
  void pump_reader();
  void begin_storing(const http::MessageHead& head);
  // Partial content.
  bool range_candidate() const;
  void on_parts_lookup(cache::Handle h, std::shared_ptr<const http::PartsMeta> m, bool from_disk, bool swap_fail);
  // `store_key`: the lookup's key for this request's object (a variant's when the URL varies;
  // empty: the URL's own).
  void cache_miss(bool swap_fail, const std::string& store_key = {});  // the miss half of on_cache_lookup: collapse, then forward
  void serve_parts(const cache::Handle& h, const http::PartsMeta& m, http::ByteRange want, std::int64_t age,
                   bool from_disk);
  bool begin_part(const http::MessageHead& head);  // a 206 to a range miss: false = 502 given
  bool feed_part(const Slice& body);  // false: its bytes contradict the stored parts
  std::vector<Slice> parts_slices_of(std::uint64_t first, std::uint64_t last) const;
  void finish_part();
  void shape_range_answer(const http::MessageHead& head, http::ResponseHead& out);
  void refresh_from_304(const http::MessageHead& head);
  void invalidate_after_unsafe(const http::MessageHead& head);
  void end_cache_participation();
  // A revalidation sends our validators instead of the client's conditionals.
  static bool revalidation_replaces(std::string_view name);
  void append_revalidation_fields(std::string& out) const;
  // A guard for callbacks that may arrive after this request ended (cache lookups,
  // collapsed-forwarding wake-ups, reader notifications posted from other threads).
  struct Current {
    std::weak_ptr<std::uint64_t> generation;
    std::uint64_t value;
    bool operator()() const {
      auto p = generation.lock();
      return p && *p == value;
    }
  };
  Current still_current() const { return {generation_, *generation_}; }

  ProxyWorker& w_;
  // The request head: not part of RequestState, so that reset() clears it in place and its
  // buffers (the fields' strings) serve the next request, swapped with a parser's head.
  http::MessageHead req_;
  // The head of an answer from the cache, kept (cleared) from request to request: its
  // strings are filled again instead of allocated on every hit.
  http::ResponseHead stored_head_;
  Forwarder fwd_;
  // Callbacks check that the request they were made for is still the current one.
  std::shared_ptr<std::uint64_t> generation_ = std::make_shared<std::uint64_t>(0);
};

}  // namespace outpost
