// Routing: what a proxy request is, decided from its head alone — before any lookup, cache
// access or connection. Pure code (no loop, no I/O), so every rule has a unit test:
// client network, HTTP version, method, body limit, CONNECT targets and ports, Outpost's own
// pages (origin-form targets), URL syntax, forwarding loops (own name in Via), Max-Forwards,
// PURGE permission and the destination rules that need no lookup. The request object
// (proxy/request.cpp) acts on the decision.
#pragma once
#include <string>

#include "core/net_address.hpp"
#include "core/own_page.hpp"
#include "core/stream.hpp"
#include "proxy/destination_acl.hpp"
#include "proxy/error_page.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/outcome.hpp"
#include "proxy/url.hpp"

namespace outpost {

struct Config;

struct Route {
  enum class Kind {
    kReject,   // answer `status` with an error page (`detail`)
    kLocal,    // answer `local` (Outpost's own page, OPTIONS *, Max-Forwards: 0)
    kPurge,    // remove `url` from the cache (the client may)
    kConnect,  // open a tunnel to `url` (host:port)
    kForward,  // forward to `url`; `cacheable`: the cache may answer it
    kGateway,  // ftp:// `url`: to the worker's gateway for the scheme (proxy/gateway.hpp)
  };
  Kind kind = Kind::kReject;
  int status = 0;
  std::string detail;
  Outcome outcome = Outcome::kNone;
  bool close = false;  // the connection closes after the answer
  http::Url url;
  std::string url_text;  // for logs: the normalised URL, or the target as sent
  bool cacheable = false;
  // kForward: a WebSocket opening handshake (RFC 6455 §4.1: GET, HTTP/1.1, Upgrade:
  // websocket, Connection: upgrade) that goes to the origin as an upgrade; its 101 makes the
  // exchange a tunnel.
  bool websocket = false;
  http::LocalResponse local;
};

struct RouteContext {
  const Config& config;
  const AccessRules& rules;
  std::optional<IpAddress> client;  // nullopt: the peer address is unknown (always refused)
  bool cache_enabled = false;
  // Inside an intercepted tunnel: its "host:port". Origin-form targets then mean
  // https://authority/path (not Outpost's own pages); an absolute-form target must name the
  // same https authority (else 421), and CONNECT is refused.
  std::string_view authority;
  // Pages the services add to the proxy's own (origin-form GET/HEAD; the PAC script); null
  // or empty: none.
  const OwnPageFn* own_pages = nullptr;
  // A transparently intercepted connection: the destination its client was connecting to.
  // Origin-form targets then mean http://Host/path (with the connection's port when Host
  // names none; the destination itself without a Host), never Outpost's own pages; CONNECT
  // is refused. Where the request goes is the destination, not the Host (proxy/request.cpp).
  // With `authority` too (a bumped intercept_tls_listen connection, authority = its server
  // name): the same with https://, and the authority stands in for a missing Host.
  const SocketAddress* intercepted = nullptr;
  // Whether ftp:// URLs have a gateway here ([ftp] on and wired); else they get 501.
  bool ftp_gateway = false;
};

// Decides what to do with `req`. May rewrite the head where the rules say so (Max-Forwards
// is decremented on a forwarded OPTIONS or TRACE).
Route route_request(http::MessageHead& req, const RouteContext& ctx);

// The methods Outpost forwards or answers: any token (RFC 9110 §9.1; others get 501).
bool method_supported(std::string_view method);
// RFC 9110 §9.2.1: GET, HEAD, OPTIONS, TRACE. Every other method, extension methods among
// them, is unsafe: its non-error response invalidates the target (RFC 9111 §4.4).
bool method_safe(std::string_view method);
bool method_idempotent(std::string_view method);  // RFC 9110 §9.2.2
// RFC 9110 §9.3.8: a TRACE echo (and a TRACE forwarded for the origin to echo) must not
// carry credentials (cross-site tracing reads HttpOnly cookies and proxy credentials).
void strip_trace_secrets(http::HeaderList& h);
bool trace_secret(std::string_view name);

}  // namespace outpost
