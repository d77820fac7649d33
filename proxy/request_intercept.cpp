// The interception half of ProxyRequest (proxy/intercept.hpp has the flow): peeking at the
// ClientHello of a CONNECT tunnel, then splicing it or bumping it.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/intercept.hpp"
#include "proxy/proxy_worker.hpp"
#include "proxy/request.hpp"
#include "tls/leaf_cache.hpp"
#include "tls/tls_stream.hpp"

namespace outpost {

void ProxyRequest::start_peek() {
  set_stage(Stage::kPeek);
  status_ = 200;
  sink_->start({200, "Connection established", {}}, BodyFraming::kTunnel);
  std::vector<Slice> early;
  bool eof = false;
  StreamPtr client = sink_->take_stream(&early, &eof);
  if (!client) {  // the connection is closing
    set_stage(Stage::kDone);
    sink_->end();
    return;
  }
  auto current = still_current();
  peek_ = HelloPeek::start(w_.loop(), std::move(client), std::move(early), eof, settings_->intercept.peek_timeout,
                           [this, current](HelloPeek::Result r) {
                             if (!current()) return;
                             peek_ = nullptr;  // it frees itself
                             on_peeked(std::move(r.client), std::move(r.bytes), r.client_eof, r.hello, r.error);
                           });
}

void ProxyRequest::on_peeked(StreamPtr client, std::string bytes, bool eof, const tls::ClientHello& hello,
                             const std::string& error) {
  if (!client) {
    spdlog::debug("client {}: CONNECT {}: the client failed before its ClientHello: {}", client_.text, url_text_, error);
    content_type_ = "peek:failed";
    if (intercepted_tls_) ++w_.counters().intercept_tls_failed;
    set_stage(Stage::kDone);
    sink_->end();
    return;
  }
  if (intercepted_tls_ && hello.status == tls::ClientHello::Status::kNotTls) {
    // Squid's default (on_unsupported_protocol respond) answers in the port's protocol,
    // which a client that does not speak TLS cannot read: the connection is closed. Passing
    // it on would make the intercept port a way to reach any destination's port 443 with
    // any protocol.
    spdlog::info("client {}: intercepted TLS connection to {}: not TLS, closed", client_.text, url_text_);
    ++w_.counters().intercept_tls_not_tls;
    status_ = 0;
    code_ = Outcome::kNone;
    content_type_ = "not-tls";
    set_stage(Stage::kDone);
    sink_->end();
    return;  // `client` closes here
  }
  InterceptDecision d = intercepted_tls_
                            ? decide_intercepted_tls(settings_->intercept, client_.original_dst->port, hello, &bump_authority_)
                            : decide_intercept(settings_->intercept, url_, hello);
  if (!intercepted_tls_) bump_authority_ = url_.authority();
  peeked_client_ = std::move(client);
  peeked_bytes_ = std::move(bytes);
  peeked_eof_ = eof;
  if (!d.bump) {
    // Spliced to where the CONNECT (or the intercepted client) was going: an intercepted
    // connection's forward is pinned to its original destination, never the server name's.
    ++(intercepted_tls_ ? w_.counters().intercept_tls_spliced : w_.counters().tls_spliced);
    content_type_ = "splice:" + d.server_name;
    spdlog::debug("client {}: CONNECT {}: spliced ({}{})", client_.text, url_text_, d.reason,
                  error.empty() ? "" : ", " + error);
    set_stage(Stage::kResolve);
    advance();
    return;
  }
  start_bump(d);
}

void ProxyRequest::start_bump(const InterceptDecision& d) {
  content_type_ = "bump:" + d.server_name;
  const auto& leaves = settings_->intercept.leaves;
  // The names: the SNI (or IP literal) first, then the rest of the subjectAltName list of the
  // origin's certificate when an earlier request has seen it. The origin is not dialled for
  // this: a leaf must not wait for an origin that the cache may make unnecessary.
  std::vector<std::string> names = d.names;
  for (auto& n : leaves->origin_names(bump_authority_))
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
  if (tls::X509Ptr leaf = leaves->find(names)) {
    ++w_.counters().tls_leaf_hits;
    finish_bump(std::move(leaf), {});
    return;
  }
  set_stage(Stage::kMint);
  struct Minted {
    tls::X509Ptr leaf;
    std::string error;
    bool minted = false;
  };
  mint_ = run_blocking(
      w_.loop(),
      [leaves, names = std::move(names), sni_only = d.names] {
        Minted m;
        m.leaf = leaves->find_or_mint(names, &m.error, &m.minted);
        if (!m.leaf && names != sni_only)  // a name copied from the origin that cannot go in a leaf
          m.leaf = leaves->find_or_mint(sni_only, &m.error, &m.minted);
        return m;
      },
      [this](Minted m) {
        if (m.leaf) ++(m.minted ? w_.counters().tls_leaf_mints : w_.counters().tls_leaf_hits);
        finish_bump(std::move(m.leaf), m.error);
      });
}

void ProxyRequest::finish_bump(tls::X509Ptr leaf, const std::string& error) {
  set_stage(Stage::kDone);
  const auto& leaves = settings_->intercept.leaves;
  tls::ServerContext* ctx = leaf ? w_.bump_context() : nullptr;
  StreamPtr stream;
  if (ctx) {
    stream = tls::make_server_stream(*ctx, std::move(peeked_client_), peeked_bytes_,
                                     {leaf.get(), leaves->leaf_key(), leaves->ca_certificate()});
  }
  peeked_client_.reset();
  peeked_bytes_.clear();
  if (!stream) {
    spdlog::warn("client {}: CONNECT {}: cannot intercept: {}", client_.text, url_text_,
                 !leaf ? error : "cannot set up the TLS server side");
    status_ = 500;
    code_ = Outcome::kNone;
    content_type_ += ";failed";
    if (intercepted_tls_) ++w_.counters().intercept_tls_failed;
    sink_->end();
    return;
  }
  ++(intercepted_tls_ ? w_.counters().intercept_tls_bumped : w_.counters().tls_bumped);
  // The tunnel's bytes now belong to a new connection of the worker's; this CONNECT is over.
  // An intercepted one stays intercepted: its requests still go to the original destination
  // and use the cache only when their Host resolves there (verify_intercepted_host()).
  w_.adopt(std::move(stream), true, bump_authority_, user_, user_groups_, client_.original_dst);
  sink_->end();
}

void ProxyRequest::note_origin_certificate() {
  const auto& leaves = settings_->intercept.leaves;
  if (!leaves) return;
  // Intercepted: the origin's names are the server name's only when the request was for
  // that name and its Host resolved to the address that answered.
  if (client_.original_dst && (!host_verified_ || url_.authority() != client_.authority)) return;
  if (X509* cert = fwd_.new_origin_certificate()) leaves->note_origin(client_.authority, tls::subject_alt_names(cert));
}

void ProxyRequest::verify_intercepted_host() {
  const SocketAddress& dst = *client_.original_dst;
  if (route_kind_ != Route::Kind::kForward) {  // PURGE (by an allowed client): as asked
    proceed(route_kind_, route_cacheable_, route_websocket_);
    return;
  }
  if (url_.port != dst.port) {
    on_host_checked(false, "port " + std::to_string(url_.port) + " is not the connection's");
    return;
  }
  if (url_.literal) {
    on_host_checked(*url_.literal == dst.ip, "another address");
    return;
  }
  set_stage(Stage::kVerifyHost);
  auto current = still_current();
  auto lookup = w_.resolver().resolve(w_.loop(), url_.host, [this, current](ResolveResult r) {
    if (!current()) return;
    host_check_.reset();  // finished
    const IpAddress& want = client_.original_dst->ip;
    if (r.status != 0) {
      on_host_checked(false, "it does not resolve: " + r.error);
      return;
    }
    bool found = std::find(r.addresses.begin(), r.addresses.end(), want) != r.addresses.end();
    on_host_checked(found, "it resolves to other addresses");
  });
  if (lookup) host_check_ = std::move(lookup);  // null: answered already
}

void ProxyRequest::on_host_checked(bool verified, const std::string& why) {
  host_verified_ = verified;
  if (verified) {
    ++w_.counters().intercept_host_verified;
  } else {
    ++w_.counters().intercept_host_unverified;
    spdlog::info("client {}: {} {}: Host is not the intercepted destination {} ({}): forwarded there, not cached",
                 client_.text, req_.method, url_text_, client_.original_dst->to_string(), why);
  }
  proceed(route_kind_, route_cacheable_ && verified, route_websocket_);
}

void ProxyRequest::end_intercept() {
  if (host_check_) {
    host_check_->cancel();
    host_check_.reset();
  }
  if (peek_) {
    peek_->cancel();
    peek_ = nullptr;
  }
  mint_.cancel();
  peeked_client_.reset();
}

}  // namespace outpost
