// ProxyRequest, proxy authentication ([auth]): after routing decided a request may go on,
// before any cache lookup, resolution or connection. Basic credentials (RFC 7617) from
// Proxy-Authorization; the verdict from the settings' Authenticator — its cache on the loop,
// else a check on the thread pool (stage kAuth) —; then the user rules. Missing or wrong
// credentials: 407 with Proxy-Authenticate; a back end that cannot answer (a directory down,
// slow or busy): 407 too, as Squid answers when its helper says BH, with a warning naming the
// cause (the verdict is not cached: the next request asks again); a user the rules refuse: 403. Requests inside a bumped tunnel are the user its CONNECT authenticated
// as. The password never reaches a log line; the user goes into the access log.
#include <spdlog/spdlog.h>

#include "auth/authenticator.hpp"
#include "auth/basic_credentials.hpp"
#include "proxy/proxy_worker.hpp"
#include "proxy/request.hpp"

namespace outpost {

void ProxyRequest::start_auth() {
  auto& counters = w_.counters();
  if (!client_.user.empty()) {
    auth::Identity id;
    id.verdict = auth::Verdict::kGood;
    id.groups = client_.groups;
    on_auth_verdict(id, client_.user);
    return;
  }
  const std::string* field = req_.headers.find("Proxy-Authorization");
  if (!field) {
    ++counters.auth_missing;
    challenge("This proxy needs your user name and password.");
    return;
  }
  auth::BasicCredentials cred;
  std::string why;
  switch (auth::parse_basic_credentials(*field, &cred, &why)) {
    case auth::CredentialsStatus::kOk:
      break;
    case auth::CredentialsStatus::kOtherScheme:
      ++counters.auth_missing;
      spdlog::info("client {}: {} {}: Proxy-Authorization in a scheme other than Basic, 407", client_.text,
                   req_.method, url_text_);
      challenge("This proxy accepts Basic credentials only.");
      return;
    case auth::CredentialsStatus::kMalformed:
      ++counters.auth_bad;
      spdlog::info("client {}: {} {}: {}, 407", client_.text, req_.method, url_text_, why);
      challenge("The credentials sent could not be read.");
      return;
  }
  const auth::Authenticator& a = *settings_->auth;
  if (auto id = a.cached(cred.user, cred.password)) {
    ++counters.auth_cached;
    on_auth_verdict(*id, cred.user);
    return;
  }
  set_stage(Stage::kAuth);
  std::string user = cred.user;
  auth_work_ = a.verify(w_.loop(), std::move(cred.user), std::move(cred.password),
                        [this, user = std::move(user)](auth::Identity id) { on_auth_verdict(id, user); });
}

void ProxyRequest::on_auth_verdict(const auth::Identity& id, const std::string& user) {
  if (!active_) return;
  auto& counters = w_.counters();
  switch (id.verdict) {
    case auth::Verdict::kGood:
      break;
    case auth::Verdict::kBad:
      ++counters.auth_bad;
      user_ = user;  // who tried, for the access log
      spdlog::info("client {}: {} {}: user {} not authenticated ({}), 407", client_.text, req_.method, url_text_, user,
                   id.why);
      challenge("The user name or password is not right.");
      return;
    case auth::Verdict::kUnavailable:
      ++counters.auth_unavailable;
      user_ = user;
      spdlog::warn("client {}: {} {}: cannot check user {}: {} ({} back end), 407", client_.text, req_.method,
                   url_text_, user, id.why, settings_->auth->backend_name());
      challenge("The proxy cannot check passwords right now. Try again in a moment.");
      return;
  }
  user_ = user;
  user_groups_ = id.groups;
  if (!settings_->user_rules.allowed(user_, user_groups_, url_.host)) {
    ++counters.auth_denied;
    reject(403, "User " + user_ + " may not go to " + url_.host + " through this proxy.", Outcome::kDenied,
           req_.is_connect);
    return;
  }
  ++counters.auth_ok;
  set_stage(Stage::kRoute);
  proceed(route_kind_, route_cacheable_, route_websocket_);
}

void ProxyRequest::challenge(const std::string& detail) {
  // A CONNECT's client may have sent bytes for the tunnel after its head: the connection
  // ends with the 407 (the client retries on a new one, with credentials).
  bool close = req_.is_connect;
  discard_body_ = true;
  fwd_.cancel();
  if (close) sink_->close_after();
  spdlog::debug("client {}: {} {} -> 407: {}", client_.text, req_.method, url_text_, detail);
  http::LocalResponse resp = http::error_page(407, detail, settings_->config.server.name);
  resp.head.headers.add("Proxy-Authenticate", "Basic realm=\"" + settings_->auth->realm() + "\", charset=\"UTF-8\"");
  answer_local(std::move(resp), Outcome::kDenied);
}

}  // namespace outpost
