#include "proxy/request.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "auth/basic_credentials.hpp"
#include "core/uv_write.hpp"
#include "proxy/proxy_worker.hpp"
#include "proxy/tunnel.hpp"

namespace outpost {
namespace {
double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string_view ProxyRequest::stage_name(Stage s) {
  switch (s) {
    case Stage::kRoute: return "route";
    case Stage::kCacheLookup: return "cache-lookup";
    case Stage::kCollapsedWait: return "collapsed-wait";
    case Stage::kServeStored: return "serve-stored";
    case Stage::kFollow: return "follow";
    case Stage::kResolve: return "resolve";
    case Stage::kConnect: return "connect";
    case Stage::kAwaitHead: return "await-head";
    case Stage::kRelay: return "relay";
    case Stage::kTunnel: return "tunnel";
    case Stage::kPeek: return "peek";
    case Stage::kMint: return "mint";
    case Stage::kAuth: return "auth";
    case Stage::kVerifyHost: return "verify-host";
    case Stage::kGateway: return "gateway";
    case Stage::kDone: return "done";
  }
  return "?";
}

ProxyRequest::ProxyRequest(ProxyWorker& worker) : w_(worker), fwd_(*this) {}

ProxyRequest::~ProxyRequest() {
  if (tunnel_) tunnel_->cancel();
  end_intercept();
  end_cache_participation();
}

void ProxyRequest::reset() {
  ++*generation_;  // callbacks made for the old request find nothing to act on
  fwd_.cancel();
  if (tunnel_) tunnel_->cancel();
  end_intercept();
  end_cache_participation();
  static_cast<RequestState&>(*this) = RequestState{};
  req_.clear();  // its buffers stay for the next request (swapped with a parser's head)
}

// ---------------------------------------------------------------- the stage machine

void ProxyRequest::set_stage(Stage s) {
  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("client {}: {} {}: {} -> {}", client_.text, req_.method, url_text_, stage_name(stage_), stage_name(s));
  stage_ = s;
}

// Runs the work of the current stage. Stages that wait for an event (a lookup, a connection,
// the origin, the client) return here; their event handlers record what happened, move to
// the next stage and call advance() again.
void ProxyRequest::advance() {
  switch (stage_) {
    case Stage::kRoute:
      run_route();
      return;
    case Stage::kCacheLookup:
      start_cache_lookup();
      return;
    case Stage::kResolve:
      start_forward();
      return;
    case Stage::kCollapsedWait:
    case Stage::kServeStored:
    case Stage::kFollow:
    case Stage::kConnect:
    case Stage::kAwaitHead:
    case Stage::kRelay:
    case Stage::kTunnel:
    case Stage::kPeek:
    case Stage::kMint:
    case Stage::kAuth:
    case Stage::kVerifyHost:
    case Stage::kGateway:
    case Stage::kDone:
      return;  // driven by events
  }
}

void ProxyRequest::open(ResponseSink& sink, const ClientInfo& client) {
  sink_ = &sink;
  client_ = client;
  settings_ = w_.settings();
  active_ = true;
  start_time_ = wall_now();
  start_ms_ = uv_now(w_.loop());
}

void ProxyRequest::begin(http::MessageHead& head, ResponseSink& sink, const ClientInfo& client) {
  open(sink, client);
  std::swap(req_, head);
  head_request_ = req_.method == "HEAD";
  ++w_.counters().requests;
  stage_ = Stage::kRoute;
  advance();
}

void ProxyRequest::begin_failed(std::string method, ResponseSink& sink, const ClientInfo& client, int status,
                                const std::string& detail) {
  open(sink, client);
  req_.method = std::move(method);
  fail(status, detail);
}

void ProxyRequest::begin_intercepted_tls(ResponseSink& sink, const ClientInfo& client) {
  open(sink, client);
  intercepted_tls_ = true;
  req_.method = "CONNECT";
  req_.target = client.original_dst->to_string();
  req_.is_connect = true;
  ++w_.counters().requests;
  stage_ = Stage::kRoute;
  advance();
}

void ProxyRequest::fail(int status, const std::string& detail) {
  request_done_ = true;
  reject(status, detail, Outcome::kNone, true);
}

void ProxyRequest::run_route() {
  // An intercepted TLS connection's CONNECT is routed as any CONNECT (its target is the
  // original destination): the port and destination rules apply.
  RouteContext ctx{settings_->config, settings_->rules, client_.ip, w_.cache() != nullptr, client_.authority,
                   &w_.own_pages(), client_.original_dst && !intercepted_tls_ ? &*client_.original_dst : nullptr,
                   settings_->config.ftp.enabled && w_.ftp_gateway()};
  Route route = route_request(req_, ctx);  // a local: nothing of it is kept but what is moved out
  // For logs: the normalised URL, or the target as sent.
  if (!route.url_text.empty()) url_text_ = std::move(route.url_text);
  else url_text_ = http::target_for_log(req_.target);  // never an ftp:// URL's password
  url_ = std::move(route.url);
  switch (route.kind) {
    case Route::Kind::kReject:
      reject(route.status, route.detail, route.outcome, route.close || req_.is_connect);
      return;
    case Route::Kind::kLocal:
      discard_body_ = true;
      answer_local(std::move(route.local), route.outcome);
      return;
    default:
      break;
  }
  if (intercepted_tls_) {
    if (settings_->auth) {  // as below; the refusal closes the connection
      reject(403, "This network's proxy needs authentication, which intercepted connections cannot give.",
             Outcome::kDenied, true);
      return;
    }
    proceed(route.kind, false, false);
    return;
  }
  if (client_.original_dst) {
    // The client does not know it talks to a proxy: it cannot answer a 407.
    if (settings_->auth) {
      reject(403, "This network's proxy needs authentication, which intercepted connections cannot give.",
             Outcome::kDenied);
      return;
    }
    route_kind_ = route.kind;
    route_cacheable_ = route.cacheable;
    route_websocket_ = route.websocket;
    verify_intercepted_host();
    return;
  }
  if (settings_->auth) {
    // Who the client is, before any cache, lookup or connection serves it.
    route_kind_ = route.kind;
    route_cacheable_ = route.cacheable;
    route_websocket_ = route.websocket;
    start_auth();
    return;
  }
  proceed(route.kind, route.cacheable, route.websocket);
}

void ProxyRequest::proceed(Route::Kind kind, bool cacheable, bool websocket) {
  switch (kind) {
    case Route::Kind::kReject:
    case Route::Kind::kLocal:
      return;  // answered in run_route()
    case Route::Kind::kPurge:
      answer_purge();
      return;
    case Route::Kind::kConnect:
      code_ = Outcome::kTunnel;
      discard_body_ = true;
      sink_->close_after();  // the connection ends with the tunnel
      if (intercepted_tls_ || settings_->intercept.may_bump(url_)) {
        start_peek();
        return;
      }
      // Not a candidate: tunnelled without a peek (its server name is not read).
      if (settings_->intercept.enabled()) content_type_ = "splice:-";
      set_stage(Stage::kResolve);
      advance();
      return;
    case Route::Kind::kGateway:
      start_gateway();
      return;
    case Route::Kind::kForward:
      websocket_ = websocket;
      set_stage(cacheable ? Stage::kCacheLookup : Stage::kResolve);
      advance();
      return;
  }
}

// ---------------------------------------------------------------- request body

void ProxyRequest::on_request_body(Slice body) {
  if (!active_) return;
  body_in_ += body.size;
  auto max = settings_->config.proxy.max_request_body;
  if (max && body_in_ > max && !discard_body_) {
    if (!sink_->started()) reject(413, "The request body is larger than this proxy accepts.", Outcome::kNone, true);
    else sink_->abort();
    return;
  }
  if (discard_body_) return;
  fwd_.send_body(std::move(body));
  if (!body_paused_ && fwd_.body_congested()) {
    body_paused_ = true;
    sink_->pause_request_body(true);
  }
}

void ProxyRequest::on_request_end() {
  request_done_ = true;
  if (!discard_body_) fwd_.end_body();
}

void ProxyRequest::on_forward_body_drained() {
  if (!body_paused_) return;
  body_paused_ = false;
  sink_->pause_request_body(false);
}

void ProxyRequest::on_request_timeout() {
  spdlog::info("client {}: request body timeout ({} {}, stage {})", client_.text, req_.method, url_text_,
               stage_name(stage_));
  if (!sink_->started()) fail(408, "The request body was not received in time.");
  else sink_->abort();
}

// ---------------------------------------------------------------- local answers

void ProxyRequest::reject(int status, const std::string& detail, Outcome code, bool close) {
  discard_body_ = true;
  status_ = status;
  code_ = code;
  fwd_.cancel();
  if (close) sink_->close_after();
  if (intercepted_tls_) ++w_.counters().intercept_tls_denied;  // closed: its sink writes nothing
  if (status >= 500 || status == 400 || status == 413)
    spdlog::info("client {}: {} {} -> {}: {}", client_.text, req_.method, url_text_, status, detail);
  else
    spdlog::debug("client {}: {} {} -> {}: {}", client_.text, req_.method, url_text_, status, detail);
  answer_local(http::error_page(status, detail, settings_->config.server.name), code);
}

void ProxyRequest::answer_local(http::LocalResponse resp, Outcome code) {
  status_ = resp.head.status;
  code_ = code;
  if (auto* ct = resp.head.headers.find("Content-Type")) content_type_ = *ct;
  set_stage(Stage::kDone);
  bool body = !head_request_ && !resp.body.empty();
  sink_->cork();  // head and body in one write (end() sends it)
  sink_->start(std::move(resp.head), body ? BodyFraming::kLength : BodyFraming::kNone);
  if (body) sink_->send(slice_of(resp.body));
  sink_->end();
}

void ProxyRequest::answer_purge() {
  discard_body_ = true;
  bool removed = w_.cache() && w_.cache()->invalidate(http::cache_key(url_));
  answer_local(http::local_response(removed ? 200 : 404, "text/plain", removed ? "purged\n" : "not in cache\n"),
               Outcome::kMiss);
}

// ---------------------------------------------------------------- ending

void ProxyRequest::log_exchange() {
  AccessLogEntry e;
  e.start_time = start_time_;
  e.elapsed_ms = static_cast<long long>(uv_now(w_.loop()) - start_ms_);
  e.client = client_.text;
  e.code = outcome_name(code_);
  e.status = status_;
  e.bytes = sink_->bytes_sent() + tunnel_bytes_;
  e.method = req_.method;
  e.url = url_text_;
  e.hierarchy = hierarchy_;
  e.user = user_;
  std::string peer;
  if (peer_ && w_.access_log().enabled()) peer = peer_->to_string();
  e.peer = peer;
  e.content_type = content_type_;
  if (stage_ == Stage::kTunnel) w_.request_metrics().tunnel_closed();
  std::uint64_t first = sink_->first_byte_ms();
  w_.request_metrics().record(code_, req_.method, status_, e.bytes, static_cast<double>(e.elapsed_ms),
                              first ? static_cast<double>(first - start_ms_) : -1);
  w_.access_log().add(e);
}

void ProxyRequest::finish() {
  if (!active_) return;
  active_ = false;
  end_cache_participation();
  log_exchange();
  fwd_.cancel();
  set_stage(Stage::kDone);
}

void ProxyRequest::on_client_gone() {
  if (!active_) return;
  active_ = false;
  if (status_ && code_ == Outcome::kMiss && stage_ != Stage::kDone) code_ = Outcome::kMissAborted;
  if (stage_ != Stage::kDone && stage_ != Stage::kTunnel)
    spdlog::debug("client {}: {} {} ended in stage {}", client_.text, req_.method, url_text_, stage_name(stage_));
  end_cache_participation();
  end_intercept();
  auth_work_.cancel();
  if (gateway_job_) gateway_job_->cancel();
  if (tunnel_) {
    tunnel_bytes_ += tunnel_->totals().to_client;
    w_.pool().count_tunnel_bytes(tunnel_->totals().to_client);
    tunnel_->cancel();
    tunnel_ = nullptr;
  }
  log_exchange();
  fwd_.cancel();
  set_stage(Stage::kDone);
}

// ---------------------------------------------------------------- gateways

namespace {
std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

void ProxyRequest::start_gateway() {
  discard_body_ = true;
  Gateway* g = w_.ftp_gateway();
  if (!g) {
    reject(501, "This proxy does not forward ftp:// URLs (its FTP gateway is off).", Outcome::kNone);
    return;
  }
  GatewayRequest r;
  r.url = url_;
  r.url.userinfo.clear();
  // Credentials: the URL's userinfo, else Authorization: Basic (curl and browsers send it
  // for ftp:// through a proxy after a 401).
  if (!url_.userinfo.empty()) {
    auto colon = url_.userinfo.find(':');
    r.user = percent_decode(std::string_view(url_.userinfo).substr(0, colon));
    if (colon != std::string::npos) r.password = percent_decode(std::string_view(url_.userinfo).substr(colon + 1));
    r.credentials_given = true;
    // libcurl 7.88 passes CURLOPT_USERNAME/PASSWORD to USER/PASS as they are: a decoded CR or
    // LF would put commands of the client's choosing on the control connection (or lines on
    // any TCP service the rules allow, SMTP for one).
    auto has_control = [](const std::string& v) {
      for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f) return true;
      return false;
    };
    if (has_control(r.user) || has_control(r.password)) {
      reject(400, "The ftp:// URL's user name or password has a control character.", Outcome::kNone);
      return;
    }
  } else if (const std::string* a = req_.headers.find("Authorization")) {
    auth::BasicCredentials c;
    std::string why;
    if (auth::parse_basic_credentials(*a, &c, &why) == auth::CredentialsStatus::kOk) {
      r.user = std::move(c.user);
      r.password = std::move(c.password);
      r.credentials_given = true;
    }
  }
  r.head = head_request_;
  r.client = client_.ip;
  r.settings = settings_;
  set_stage(Stage::kGateway);
  gateway_job_ = g->start(std::move(r), *this);
}

void ProxyRequest::on_gateway_peer(const IpAddress& peer) {
  hierarchy_ = "HIER_DIRECT";
  peer_ = peer;
}

void ProxyRequest::on_gateway_answer(int status, Outcome code, std::string_view content_type) {
  status_ = status;
  code_ = code;
  content_type_.assign(content_type);
}

// ---------------------------------------------------------------- forwarding

void ProxyRequest::start_forward() {
  Forwarder::Target t;
  t.url = url_;
  t.tunnel = req_.is_connect;
  t.head_request = head_request_;
  t.idempotent = method_idempotent(req_.method);
  t.body_chunked = req_.chunked;
  t.upgrade = websocket_;
  t.client = client_.ip;
  t.pin = client_.original_dst;
  set_stage(Stage::kResolve);
  fwd_.start(w_, settings_, std::move(t));
  if (request_done_ && !req_.is_connect) fwd_.end_body();
}

void ProxyRequest::on_forward_connected(const IpAddress& peer) {
  hierarchy_ = "HIER_DIRECT";
  peer_ = peer;
  if (!client_.authority.empty()) note_origin_certificate();
  if (!req_.is_connect) set_stage(Stage::kAwaitHead);
}

void ProxyRequest::forward_request_head(std::string& out) {
  // The client's fields are filtered as they are written (no copy of the list): hop-by-hop
  // fields, Host (written first from the URL), Content-Length beside chunked, and the fields
  // this hop rewrites (Via, X-Forwarded-For, the client's conditionals on a revalidation,
  // credentials on a TRACE), which go last.
  const auto& cfg = settings_->config;
  const auto& ff = cfg.proxy.forwarded_for;
  const bool own_xff = ff != "transparent";
  const bool trace = req_.method == "TRACE";
  const http::HopByHop hop(req_.headers);
  std::string via, xff;  // the values the client sent, joined
  auto join = [](std::string& to, const std::string& v) {
    if (!to.empty()) to.append(", ", 2);
    to.append(v);
  };
  http::begin_request_head(out, req_.method, url_.path, url_.authority());
  for (const auto& f : req_.headers) {
    std::string_view n = f.name;
    if (hop.contains(n) || http::iequals(n, "Host")) continue;
    if (req_.chunked && http::iequals(n, "Content-Length")) continue;
    if (cfg.proxy.via && http::iequals(n, "Via")) {
      join(via, f.value);
      continue;
    }
    if (own_xff && http::iequals(n, "X-Forwarded-For")) {
      join(xff, f.value);
      continue;
    }
    if (revalidating_ && revalidation_replaces(n)) continue;
    if (unconditional_ && (http::iequals(n, "If-None-Match") || http::iequals(n, "If-Modified-Since"))) continue;
    if ((range_mode_ == RangeMode::kFill || range_mode_ == RangeMode::kWhole) &&
        (http::iequals(n, "Range") || http::iequals(n, "If-Range")))
      continue;  // ours replace them (kFill), or the whole object is fetched (kWhole)
    if (trace && trace_secret(n)) continue;  // the origin echoes what it gets
    http::append_field(out, n, f.value);
  }
  if (websocket_) {
    // The upgrade is asked of the origin again (both fields are hop-by-hop): the client's
    // protocol list as sent.
    out.append("Connection: Upgrade\r\nUpgrade: ", 30);
    out.append(req_.headers.joined("Upgrade")).append("\r\n", 2);
  }
  if (cfg.proxy.via) {
    out.append("Via: ", 5);
    if (!via.empty()) out.append(via).append(", ", 2);
    http::append_via_entry(out, req_.major, req_.minor, cfg.server.name);
    out.append("\r\n", 2);
  }
  if (revalidating_) append_revalidation_fields(out);
  if (range_mode_ == RangeMode::kFill) {
    // Only the missing span, and only if the stored parts are still the representation.
    out.append("Range: bytes=").append(std::to_string(fetch_range_.first)).append("-");
    out.append(std::to_string(fetch_range_.last)).append("\r\n");
    const auto& ph = parts_meta_->resp.headers;
    const std::string* v = ph.find("ETag") ? ph.find("ETag") : ph.find("Last-Modified");
    if (v) http::append_field(out, "If-Range", *v);
  }
  request_time_ = static_cast<std::int64_t>(std::time(nullptr));
  if (own_xff && ff != "delete") {
    out.append("X-Forwarded-For: ", 17);
    if (!xff.empty()) out.append(xff).append(", ", 2);
    out.append(ff == "on" ? client_.text : "unknown").append("\r\n", 2);
  }
  http::end_request_head(out, req_.chunked, req_.transfer_codings);
}

void ProxyRequest::on_forward_interim(http::MessageHead& head) {
  sink_->cork();
  http::ResponseHead interim{head.status, head.reason, std::move(head.headers)};
  interim.headers.remove_hop_by_hop();
  interim.headers.remove("Content-Length");
  sink_->interim(std::move(interim));  // dropped for HTTP/1.0 clients (RFC 9110 §15.2)
}

int ProxyRequest::on_forward_head(http::MessageHead& head) {
  sink_->cork();
  if (auto* cache = w_.cache()) {
    (void)cache;
    if (revalidating_) {
      if (head.status == 304) {
        refresh_from_304(head);
        absorb_ = true;  // the stored body answers the client (see on_forward_end)
        return 0;
      }
      if (head.status >= 500 && http::stale_if_error_allows(*stale_meta_, req_cc_, std::time(nullptr))) {
        absorb_ = true;
        serve_stale_on_end_ = true;
        return 0;
      }
      code_ = Outcome::kRefreshModified;
    }
    if ((range_mode_ == RangeMode::kPlain || range_mode_ == RangeMode::kFill) && head.status == 206) {
      if (!begin_part(head)) return -1;  // answered 502
    } else {
      if (range_mode_ == RangeMode::kFill || range_mode_ == RangeMode::kPlain) {
        // Not a part: a 200 (the representation changed, or the origin sends whole objects)
        // or an error. It goes to the client as it is; the stored parts are no longer trusted.
        if (parts_meta_) cache->drop_parts(url_text_);
        range_mode_ = RangeMode::kNone;
      }
      if (cache_get_ && req_.method == "GET") begin_storing(head);
      else invalidate_after_unsafe(head);
      if (range_mode_ == RangeMode::kWhole) {
        // range_offset_limit: the whole object was fetched; the client gets its range of it
        // (unless its If-Range no longer matches: then all of it).
        const std::string* ifr = req_.headers.find("If-Range");
        if (head.status == 200 && head.has_length && !head.chunked && head.transfer_codings.empty() &&
            (!ifr || http::if_range_matches(*ifr, head.headers))) {
          auto plan = http::plan_ranges(*req_.headers.find("Range"), head.content_length);
          if (plan.kind == http::RangePlan::Kind::kPartial && plan.ranges.size() == 1) {
            clip_ = true;
            client_range_ = plan.ranges[0];
            clip_lo_ = client_range_.first;
            clip_hi_ = client_range_.last;
            relay_pos_ = 0;
          }
        }
      }
    }
  }
  set_stage(Stage::kRelay);
  // The client's conditional, held back from the origin, is answered from its 200 (which
  // is being stored, or at least was fetched): a 304 now, and the body only into the store.
  withhold_body_ = unconditional_ && head.status == 200 && http::not_modified_for(req_.headers, head.headers);
  status_ = withhold_body_ ? 304 : head.status;
  if (clip_) origin_length_known_ = true;  // the client's answer has its own length (shape_range_answer)
  origin_length_known_ = head.has_length && !head.chunked;
  if (auto* ct = head.headers.find("Content-Type")) content_type_ = *ct;
  // The fields are edited in place, then given back to the head: the origin connection's
  // parser fills their buffers again for its next response.
  http::ResponseHead out{head.status, head.reason, std::move(head.headers)};
  http::HeaderList& h = out.headers;
  h.remove_hop_by_hop();
  if (withhold_body_) {
    out.status = 304;  // with the 200's fields but its framing (RFC 9110 §15.4.5)
    out.reason.clear();
    h.remove("Content-Length");
  }
  if (clip_) shape_range_answer(head, out);
  bool no_body = head_request_ || out.status == 204 || out.status == 304;
  if (head.status == 204) h.remove("Content-Length");  // RFC 9110 §8.6: never on a 204
  BodyFraming framing = BodyFraming::kNone;
  if (!no_body) {
    if (!head.transfer_codings.empty() && !sink_->client_http11()) {
      // The body stays coded (gzip, ...) and an HTTP/1.0 client cannot be told so (RFC 9112
      // §6.1: no Transfer-Encoding to 1.0); relaying it would hand over a corrupt body.
      spdlog::info("client {}: {} {}: response uses transfer coding \"{}\", which an HTTP/1.0 client cannot receive",
                   client_.text, req_.method, url_text_, head.transfer_codings);
      return -1;
    }
    if (origin_length_known_) {
      framing = BodyFraming::kLength;  // Content-Length passes through unchanged
    } else {
      h.remove("Content-Length");
      framing = BodyFraming::kUnknown;
    }
  }
  const auto& name = settings_->config.server.name;
  if (settings_->config.proxy.via) http::append_via(h, head.major, head.minor, name);
  if (w_.cache()) {
    if (cache_status_.empty()) cache_status_ = name + "; fwd=" + (cache_get_ ? "uri-miss" : "method");
    // Ours goes last in Cache-Status (RFC 9211 §2: caches nearer the client append); an
    // origin's X-Cache is replaced.
    if (h.has("Cache-Status") || h.has("X-Cache")) {
      std::string prior = h.joined("Cache-Status");
      h.remove("Cache-Status");
      h.remove("X-Cache");
      if (!prior.empty()) cache_status_ = prior + ", " + cache_status_;
    }
    std::string x_cache;
    x_cache.reserve(10 + name.size());
    x_cache.append("MISS from ").append(name);
    h.add_copy("X-Cache", x_cache);
    h.add("Cache-Status", std::move(cache_status_));
  }
  if (w_.shutting_down()) sink_->close_after();
  sink_->start(out, framing, head.transfer_codings);
  head.headers = std::move(h);
  if (clip_ && range_mode_ == RangeMode::kFill && client_range_.first < fetch_range_.first)  // the stored bytes before the span
    sink_->send(parts_slices_of(client_range_.first, fetch_range_.first - 1));
  return 0;
}

int ProxyRequest::on_forward_body(Slice body) {
  if (absorb_) return 0;
  if (writer_ && writer_.append(body.view()) != cache::Status::kOk) writer_.abort();
  if (part_writer_ && !feed_part(body) && range_mode_ == RangeMode::kFill) {
    // The client's answer mixes stored and fetched bytes, and they disagree: cut it.
    code_ = Outcome::kMissAborted;
    sink_->abort();
    return -1;
  }
  if (clip_) {
    // Only the bytes of [clip_lo_, clip_hi_] go to the client.
    std::uint64_t first = relay_pos_, end = relay_pos_ + body.size;  // [first, end)
    relay_pos_ = end;
    std::uint64_t a = std::max(first, clip_lo_), b = std::min(end, clip_hi_ + 1);
    if (a >= b) return 0;
    body.data += a - first;
    body.size = static_cast<std::size_t>(b - a);
  }
  if (follows_own_writer_ || withhold_body_) return 0;  // the client reads the stored copy (pump_reader), or had a 304
  body_relayed_ += body.size;
  sink_->send(std::move(body));
  return 0;
}

void ProxyRequest::on_forward_end(bool body_cut) {
  if (body_cut) discard_body_ = true;  // the origin answered early; drop the rest of the body
  response_paused_ = false;
  sink_->uncork();  // the connection is released: no read_processed follows
  if (absorb_) {
    // Revalidation answered (304) or failed with stale-if-error: serve the stored body.
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const auto& name = settings_->config.server.name;
    auto meta = *stale_meta_;
    std::int64_t age = http::current_age(meta, now);
    if (serve_stale_on_end_)
      serve_stored(stale_, meta, age, Outcome::kRefreshFailOld, name + "; fwd=stale; detail=stale-if-error");
    else
      serve_stored(stale_, meta, age, Outcome::kRefreshUnmodified, name + "; fwd=stale; fwd-status=304");
    return;
  }
  if (writer_) {
    auto st = writer_.commit();
    if (st != cache::Status::kOk) spdlog::debug("http cache: {} not stored: {}", url_text_, cache::status_name(st));
  }
  finish_part();
  if (clip_) {
    if (relay_pos_ <= clip_hi_) {  // the origin's answer ended before the client's range did
      spdlog::info("client {}: GET {}: the origin's response ended at byte {}, before the range answered ({})",
                   client_.text, url_text_, relay_pos_, clip_hi_);
      code_ = Outcome::kMissAborted;
      sink_->abort();
      return;
    }
    if (range_mode_ == RangeMode::kFill && fetch_range_.last < client_range_.last)  // the stored bytes after the span
      sink_->send(parts_slices_of(fetch_range_.last + 1, client_range_.last));
  }
  // A client reading the stored copy is done when its reader reaches the end.
  if (!follows_own_writer_) {
    set_stage(Stage::kDone);
    sink_->end();
  }
}

void ProxyRequest::on_forward_read_processed() {
  if (!active_) return;
  sink_->uncork();
  if (!active_ || stage_ != Stage::kRelay || response_paused_ || follows_own_writer_) return;
  if (sink_->congested() && !follow_own_writer()) {
    response_paused_ = true;
    fwd_.pause_response();
  }
}

void ProxyRequest::on_sink_drained() {
  if (!active_) return;
  if (response_paused_) {
    response_paused_ = false;
    fwd_.resume_response();
  }
  if (reader_waiting_) pump_reader();
  if (gateway_job_) gateway_job_->on_sink_drained();
}

void ProxyRequest::on_forward_failed(const ForwardFailure& f) {
  response_paused_ = false;
  if (peeked_client_) {
    // A spliced tunnel whose client has its 200 already: it can only be closed.
    spdlog::info("client {}: CONNECT {}: cannot splice: {}", client_.text, url_text_, f.what);
    peeked_client_.reset();
    status_ = f.status;
    code_ = f.outcome;
    set_stage(Stage::kDone);
    sink_->end();
    return;
  }
  if (f.mid_response && sink_->started()) {
    spdlog::info("client {}: {} {}: origin failed mid-response: {}", client_.text, req_.method, url_text_, f.what);
    code_ = Outcome::kMissAborted;
    sink_->abort();
    return;
  }
  if (revalidating_ && stale_meta_) {
    std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const auto& name = settings_->config.server.name;
    if (http::stale_if_error_allows(*stale_meta_, req_cc_, now)) {
      serve_stored(stale_, *stale_meta_, http::current_age(*stale_meta_, now), Outcome::kRefreshFailOld,
                   name + "; fwd=stale; detail=stale-if-error");
      return;
    }
    // must-revalidate (or no permission to serve stale): RFC 9111 §4.2.4 / §5.2.2.2 → 504.
    reject(504, "The cached response is stale and the origin server " + url_.authority() +
                    " cannot be reached to revalidate it (" + f.what + ").",
           Outcome::kRefreshFailErr);
    return;
  }
  reject(f.status, f.detail, f.mid_response ? Outcome::kMiss : f.outcome, req_.is_connect);
}

void ProxyRequest::on_forward_tunnel(StreamPtr origin) {
  set_stage(Stage::kTunnel);
  status_ = 200;
  if (!peeked_client_) sink_->start({200, "Connection established", {}}, BodyFraming::kTunnel);
  start_tunnel(std::move(origin));
}

void ProxyRequest::on_forward_upgraded(const http::MessageHead& head, StreamPtr origin, Slice early) {
  // RFC 9110 §7.8: the origin switched to the protocol asked for; the 101 goes to the
  // client with the origin's end-to-end fields (Sec-WebSocket-Accept, ...) and the Upgrade
  // it chose, then whatever the origin sent after it, and the two connections are spliced.
  set_stage(Stage::kTunnel);
  status_ = 101;
  http::ResponseHead out{101, head.reason, head.headers};
  out.headers.remove_hop_by_hop();
  out.headers.add("Upgrade", head.headers.joined("Upgrade"));
  if (settings_->config.proxy.via) http::append_via(out.headers, head.major, head.minor, settings_->config.server.name);
  sink_->start(out, BodyFraming::kTunnel);
  if (early.size) sink_->send(std::move(early));
  start_tunnel(std::move(origin));
}

void ProxyRequest::start_tunnel(StreamPtr origin) {
  w_.request_metrics().tunnel_opened();
  std::vector<Slice> early;
  bool client_eof = false;
  StreamPtr client;
  if (peeked_client_) {  // spliced after a peek: answered already, the hello read
    client = std::move(peeked_client_);
    if (!peeked_bytes_.empty()) early.push_back(slice_of(peeked_bytes_));
    client_eof = peeked_eof_;
    peeked_bytes_.clear();
  } else {
    client = sink_->take_stream(&early, &client_eof);
  }
  auto current = still_current();
  tunnel_ = Tunnel::start(w_.loop(), std::move(client), std::move(origin), std::move(early), client_eof,
                          settings_->config.proxy.tunnel_idle_timeout, [this, current](const Tunnel::Totals& t) {
                            if (!current()) return;
                            spdlog::debug("client {}: tunnel {} ended: {}", client_.text, url_text_, t.why);
                            tunnel_ = nullptr;  // it frees itself
                            tunnel_bytes_ += t.to_client;
                            w_.pool().count_tunnel_bytes(t.to_client);
                            sink_->end();
                          });
}

std::string ProxyRequest::describe(std::uint64_t now_ms) const {
  std::string out = req_.method.empty() ? "-" : req_.method;
  out += ' ';
  out += url_text_.empty() ? http::target_for_log(req_.target) : url_text_;
  out += " stage=";
  out += stage_name(stage_);
  out += " age=" + std::to_string(now_ms >= start_ms_ ? (now_ms - start_ms_) / 1000 : 0) + "s";
  return out;
}

}  // namespace outpost
