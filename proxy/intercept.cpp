#include "proxy/intercept.hpp"

#include <algorithm>

#include "tls/leaf_cache.hpp"

namespace outpost {

namespace {
bool any_matches(const std::vector<HostPattern>& pats, std::string_view host) {
  for (const auto& p : pats)
    if (p.matches(host)) return true;
  return false;
}
}  // namespace

bool InterceptRules::may_bump(const http::Url& target) const {
  return enabled() && any_matches(bump, target.host) && !any_matches(splice, target.host);
}

InterceptDecision decide_intercept(const InterceptRules& rules, const http::Url& target, const tls::ClientHello& hello) {
  InterceptDecision d;
  d.server_name = hello.server_name.empty() ? "-" : hello.server_name;
  auto splice = [&](std::string why) {
    d.bump = false;
    d.reason = std::move(why);
    return d;
  };
  if (hello.status == tls::ClientHello::Status::kNotTls) return splice("not TLS");
  if (hello.status != tls::ClientHello::Status::kDone)
    return splice(hello.error ? std::string("malformed ClientHello: ") + hello.error : "incomplete ClientHello");
  bool literal = target.literal.has_value();
  // Encrypted Client Hello hides the real server name behind the outer one (the ECH
  // configuration's public name). When the outer name is not the CONNECT target, something
  // is hidden: splice. When it is the target, nothing is (the hello is GREASE ECH, which
  // Chromium sends on every connection it has no ECH configuration for, or the target is
  // its own public name); bumping it answers as the target, which a client accepts only as a
  // refusal of ECH by the name it asked for.
  if (hello.ech && hello.server_name != target.host) return splice("Encrypted Client Hello");
  if (hello.server_name.empty()) {
    if (!literal) return splice("no server name for a name target");
  } else if (hello.server_name != target.host) {
    return splice("server name " + hello.server_name + " is not the CONNECT target " + target.host);
  }
  // What a bumped tunnel can serve: HTTP/1.1 over TLS 1.2 or later. A client offering only
  // other protocols (h2 alone, gRPC, acme-tls/1, IMAP...) or only older TLS is passed through.
  if (!hello.alpn.empty() && std::find(hello.alpn.begin(), hello.alpn.end(), "http/1.1") == hello.alpn.end())
    return splice("ALPN without http/1.1");
  if (!hello.supported_versions && hello.legacy_version < 0x0303) return splice("TLS older than 1.2");
  if (!rules.may_bump(target)) return splice("not in the bump list");
  d.bump = true;
  d.names = {target.host};
  return d;
}

InterceptDecision decide_intercepted_tls(const InterceptRules& rules, std::uint16_t port, const tls::ClientHello& hello,
                                         std::string* authority) {
  authority->clear();
  InterceptDecision d;
  d.server_name = hello.server_name.empty() ? "-" : hello.server_name;
  if (hello.status != tls::ClientHello::Status::kDone) {
    d.reason = hello.status == tls::ClientHello::Status::kNotTls ? "not TLS"
               : hello.error ? std::string("malformed ClientHello: ") + hello.error
                             : "incomplete ClientHello";
    return d;
  }
  if (hello.server_name.empty()) {
    d.reason = "no server name";
    return d;
  }
  auto target = http::parse_authority(hello.server_name + ":" + std::to_string(port));
  if (!target || target->literal) {  // RFC 6066 §3: no literal addresses in SNI
    d.reason = "the server name is not a host name";
    return d;
  }
  target->scheme = "https";
  d = decide_intercept(rules, *target, hello);
  if (d.bump) *authority = target->authority();
  return d;
}

HelloPeek* HelloPeek::start(uv_loop_t* loop, StreamPtr client, std::vector<Slice> early, bool client_eof,
                            double timeout_s, Done done) {
  auto* p = new HelloPeek(loop, std::move(client), std::move(done));
  for (const auto& s : early) p->bytes_.append(s.data, s.size);
  p->eof_ = client_eof;
  p->timeout_ms_ = static_cast<std::uint64_t>(timeout_s * 1000);
  if (!p->bytes_.empty() || p->eof_) {
    // What the early bytes say is settled on the next loop turn, never inside start().
    p->timer_.arm(0, [](void* self) {
      auto* me = static_cast<HelloPeek*>(self);
      if (!me->examine()) me->arm_timeout();
    });
  } else {
    p->arm_timeout();
  }
  if (!p->eof_) p->client_->read_start();
  return p;
}

HelloPeek::HelloPeek(uv_loop_t* loop, StreamPtr client, Done done) : client_(std::move(client)), done_(std::move(done)) {
  client_->set_handler(this);
  timer_.init(loop, this);
}

void HelloPeek::arm_timeout() {
  timer_.arm(timeout_ms_, [](void* self) { static_cast<HelloPeek*>(self)->finish("timeout"); });
}

void HelloPeek::on_read(Slice data) {
  if (closed_) return;
  bytes_.append(data.data, data.size);
  examine();
}

void HelloPeek::on_eof() {
  if (closed_) return;
  eof_ = true;
  examine();
}

void HelloPeek::on_error(int, std::string_view what) {
  if (closed_) return;
  client_.reset();  // broken: nothing to hand on
  finish(std::string(what));
}

bool HelloPeek::examine() {
  // Parsed again only once the record being read can be complete: a client trickling its
  // hello a byte at a time costs one parse per record, not one per byte.
  if (!eof_ && hello_.status == tls::ClientHello::Status::kNeedMore && bytes_.size() < hello_.need) return false;
  hello_ = tls::peek_client_hello(bytes_);
  if (hello_.status == tls::ClientHello::Status::kNeedMore && !eof_) return false;
  finish({});
  return true;
}

void HelloPeek::finish(std::string error) {
  if (closed_) return;
  Result r;
  if (client_) {
    client_->read_stop();
    client_->set_handler(nullptr);
  }
  r.client = std::move(client_);
  r.bytes = std::move(bytes_);
  r.hello = hello_;
  r.client_eof = eof_;
  r.error = std::move(error);
  auto done = std::move(done_);
  close();
  if (done) done(std::move(r));
}

void HelloPeek::cancel() {
  done_ = nullptr;
  close();
}

void HelloPeek::close() {
  if (closed_) return;
  closed_ = true;
  client_.reset();
  timer_.close([](uv_handle_t* h) { delete static_cast<HelloPeek*>(h->data); });
}

}  // namespace outpost
