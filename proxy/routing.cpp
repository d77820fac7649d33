#include "proxy/routing.hpp"

#include <algorithm>
#include <charconv>

#include "core/config.hpp"
#include "proxy/http_chars.hpp"

namespace outpost {
namespace {
constexpr std::string_view kAllow = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE, CONNECT";

Route reject(int status, std::string detail, Outcome outcome, bool close = false) {
  Route r;
  r.kind = Route::Kind::kReject;
  r.status = status;
  r.detail = std::move(detail);
  r.outcome = outcome;
  r.close = close;
  return r;
}

Route local(http::LocalResponse resp) {
  Route r;
  r.kind = Route::Kind::kLocal;
  r.status = resp.head.status;
  r.outcome = Outcome::kMiss;
  r.local = std::move(resp);
  return r;
}

http::LocalResponse allow_response() {
  auto resp = http::local_response(200, "text/plain", "");
  resp.head.headers.add("Allow", std::string(kAllow));
  return resp;
}

// Origin-form targets are Outpost's own pages.
Route route_local(const http::MessageHead& req, const RouteContext& ctx) {
  std::string path = req.target.substr(0, req.target.find('?'));
  bool get = req.method == "GET" || req.method == "HEAD";
  Route r;
  std::optional<OwnPage> page;
  if (req.target == "*" && req.method == "OPTIONS") r = local(allow_response());
  else if (path == "/health" && get) r = local(http::local_response(200, "text/plain", "ok\n"));
  else if (get && ctx.own_pages && *ctx.own_pages) {
    const std::string* host = req.headers.find("Host");
    page = (*ctx.own_pages)(path, host ? std::string_view(*host) : std::string_view(), true);
  }
  if (page) r = local(http::local_response(200, page->content_type, std::move(page->body)));
  else if (r.kind != Route::Kind::kLocal) r = reject(404, "No such page on this proxy: " + path, Outcome::kMiss);
  r.url_text = req.target;
  return r;
}

Route route_connect(const http::MessageHead& req, const RouteContext& ctx) {
  auto url = http::parse_authority(req.target);
  Route r;
  if (!url) r = reject(400, "CONNECT needs a host:port target.", Outcome::kNone, true);
  else if (!ctx.rules.connect_port_allowed(url->port))
    r = reject(403, "CONNECT to port " + std::to_string(url->port) + " is not allowed.", Outcome::kDenied, true);
  else if (!ctx.rules.target_allowed(url->host, url->literal, url->port, *ctx.client))
    r = reject(403, "Access to " + url->host + " is denied by this proxy's rules.", Outcome::kDenied, true);
  else {
    r.kind = Route::Kind::kConnect;
    r.outcome = Outcome::kTunnel;
    r.url = *url;
    r.url.scheme = "https";
  }
  r.url_text = req.target;
  return r;
}

// Our own name in Via: the request has been through this proxy already.
bool forwarding_loop(const http::MessageHead& req, const std::string& own_name) {
  std::string via = req.headers.joined("Via");
  for (auto item : http::split_list(via)) {
    auto sp = item.find(' ');
    if (sp == std::string_view::npos) continue;
    auto by = http::trim_ows(item.substr(sp + 1));
    by = by.substr(0, by.find(' '));
    if (http::iequals(by, own_name)) return true;
  }
  return false;
}

// Max-Forwards (RFC 9110 §7.6.2) for OPTIONS and TRACE: 0 is answered here, more is
// decremented. Returns the local answer for 0.
std::optional<http::LocalResponse> apply_max_forwards(http::MessageHead& req) {
  if (req.method != "OPTIONS" && req.method != "TRACE") return std::nullopt;
  auto* mf = req.headers.find("Max-Forwards");
  if (!mf) return std::nullopt;
  unsigned long long n = 0;
  auto [p, ec] = std::from_chars(mf->data(), mf->data() + mf->size(), n);
  if (ec != std::errc() || p != mf->data() + mf->size()) return std::nullopt;
  if (n > 0) {
    req.headers.set("Max-Forwards", std::to_string(n - 1));
    return std::nullopt;
  }
  if (req.method == "OPTIONS") return allow_response();
  std::string echo = req.method + " " + req.target + " HTTP/" + std::to_string(req.major) + "." +
                     std::to_string(req.minor) + "\r\n";
  http::HeaderList shown = req.headers;
  strip_trace_secrets(shown);
  shown.serialize(echo);
  echo += "\r\n";
  return http::local_response(200, "message/http", std::move(echo));
}
}  // namespace

bool method_supported(std::string_view m) {
  // RFC 9110 §9.1: any token; the parser admits nothing else, this keeps the rule here too.
  if (m.empty()) return false;
  for (char c : m)
    if (!http::is_tchar(static_cast<unsigned char>(c))) return false;
  return true;
}

bool method_safe(std::string_view m) { return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE"; }

bool method_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

bool trace_secret(std::string_view name) {
  for (std::string_view n : {"Proxy-Authorization", "Authorization", "Cookie"})
    if (http::iequals(name, n)) return true;
  return false;
}

void strip_trace_secrets(http::HeaderList& h) {
  h.remove_if([](const http::Header& f) { return trace_secret(f.name); });
}

Route route_request(http::MessageHead& req, const RouteContext& ctx) {
  const auto& cfg = ctx.config.proxy;
  // The worker refused clients from other networks at accept; asked again on every request
  // so that a reload which removes a network applies to open keep-alive connections too.
  if (!ctx.client || !ctx.rules.client_allowed(*ctx.client))
    return reject(403, "Access denied: your address is not allowed to use this proxy.", Outcome::kDenied);
  if (req.major != 1) return reject(505, "Only HTTP/1.0 and HTTP/1.1 are supported.", Outcome::kNone, true);
  if (!method_supported(req.method)) return reject(501, "Method " + req.method + " is not supported.", Outcome::kNone);
  if (cfg.max_request_body && req.has_length && req.content_length > cfg.max_request_body)
    return reject(413, "The request body is larger than this proxy accepts.", Outcome::kNone, true);
  std::optional<http::Url> url;
  http::UrlError err{};
  if (ctx.intercepted) {
    // A transparently intercepted connection: plain HTTP, or TLS bumped (its authority is
    // then the server name the client sent, which names nothing the request is bound to:
    // Host does, and proxy/request.cpp checks it against the destination).
    const bool tls = !ctx.authority.empty();
    const char* scheme = tls ? "https" : "http";
    if (req.is_connect) return reject(405, "CONNECT on an intercepted connection is not supported.", Outcome::kNone, true);
    if (!req.target.empty() && req.target[0] == '/') {
      const std::string* host = req.headers.find("Host");
      std::string absolute = scheme;
      absolute += "://";
      if (host && !host->empty()) {
        absolute += *host;
        // No port in Host: the port the client connected to.
        auto colon = host->rfind(':');
        auto bracket = host->rfind(']');
        bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
        if (!has_port && ctx.intercepted->port != (tls ? 443 : 80))
          absolute.append(":").append(std::to_string(ctx.intercepted->port));
      } else if (tls) {
        absolute += ctx.authority;  // HTTP/1.0 without Host: the server name it asked for
      } else {
        absolute += ctx.intercepted->to_string();  // HTTP/1.0 without Host: the destination itself
      }
      absolute.append(req.target);
      url = http::parse_absolute_url(absolute, &err);
    } else if (req.target == "*" && req.method == "OPTIONS") {
      return route_local(req, ctx);
    } else {
      url = http::parse_absolute_url(req.target, &err);
      if (url && url->scheme != scheme)
        return reject(400, tls ? "An intercepted TLS connection carries only https:// requests."
                               : "An intercepted connection carries only http:// requests.",
                      Outcome::kNone);
    }
  } else if (!ctx.authority.empty()) {
    if (req.is_connect) return reject(405, "CONNECT inside an intercepted connection is not supported.", Outcome::kNone, true);
    if (req.target == "*" && req.method == "OPTIONS") return route_local(req, ctx);
    if (!req.target.empty() && req.target[0] == '/') {
      std::string absolute;
      absolute.reserve(8 + ctx.authority.size() + req.target.size());
      absolute.append("https://").append(ctx.authority).append(req.target);
      url = http::parse_absolute_url(absolute, &err);
    } else {
      url = http::parse_absolute_url(req.target, &err);
      if (url && (url->scheme != "https" || url->authority() != ctx.authority))
        return reject(421, "This connection is for https://" + std::string(ctx.authority) + " only.", Outcome::kNone);
    }
  } else {
    if (req.is_connect) return route_connect(req, ctx);
    if (!req.target.empty() && (req.target[0] == '/' || req.target == "*")) return route_local(req, ctx);
    url = http::parse_absolute_url(req.target, &err);
  }
  if (!url) {
    if (err == http::UrlError::kUnsupportedScheme)
      return reject(501, "This proxy does not forward this URL scheme.", Outcome::kNone);
    return reject(400, "The request target is not a valid absolute URL.", Outcome::kNone);
  }
  if (url->scheme == "ftp") {
    if (!ctx.ftp_gateway) return reject(501, "This proxy does not forward ftp:// URLs (its FTP gateway is off).", Outcome::kNone);
    if (req.method != "GET" && req.method != "HEAD")
      return reject(501, "Only GET and HEAD of ftp:// URLs are supported.", Outcome::kNone);
  }
  Route r;
  if (cfg.via && forwarding_loop(req, ctx.config.server.name))
    r = reject(403, "Forwarding loop detected (this proxy already appears in Via).", Outcome::kDenied);
  else if (auto answer = apply_max_forwards(req))
    r = local(std::move(*answer));
  else if (req.method == "PURGE") {
    if (ctx.config.acl.purge_clients.contains(*ctx.client)) {
      r.kind = Route::Kind::kPurge;
      r.outcome = Outcome::kMiss;
    } else {
      r = reject(403, "PURGE is not allowed from your address.", Outcome::kDenied);
    }
  } else if (!ctx.rules.target_allowed(url->host, url->literal, url->port, *ctx.client)) {
    r = reject(403, "Access to " + url->host + " is denied by this proxy's rules.", Outcome::kDenied);
  } else if (url->scheme == "ftp") {
    r.kind = Route::Kind::kGateway;  // the destination rules above held for it as for http://
    r.outcome = Outcome::kMiss;
  } else {
    r.kind = Route::Kind::kForward;
    r.outcome = Outcome::kMiss;
    // A GET with a body is forwarded but never answered from or stored in the cache: the
    // body has no defined meaning (RFC 9110 §9.3.1) yet may change the answer, which the
    // cache key would not show.
    bool has_body = req.chunked || (req.has_length && req.content_length > 0);
    // Other upgrades (h2c, ...) go on as ordinary requests: Upgrade is hop-by-hop.
    r.websocket = req.upgrade && req.method == "GET" && req.minor >= 1 && !has_body &&
                  req.headers.has_token("Upgrade", "websocket");
    r.cacheable = ctx.cache_enabled && (req.method == "GET" || req.method == "HEAD") && !has_body && !r.websocket;
  }
  r.url_text = url->to_string();
  r.url = std::move(*url);
  return r;
}

}  // namespace outpost
