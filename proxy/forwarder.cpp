#include "proxy/forwarder.hpp"

#include "core/uv_write.hpp"
#include "proxy/http1_writer.hpp"
#include "proxy/proxy_worker.hpp"

namespace outpost {
void Forwarder::start(ProxyWorker& worker, std::shared_ptr<const ProxySettings> settings, Target target) {
  // Request body that arrived before the start (while the request waited for its
  // authentication or its Host check) is kept for the origin.
  auto early = std::move(pending_);
  std::size_t early_bytes = pending_bytes_;
  cancel();
  pending_ = std::move(early);
  pending_bytes_ = early_bytes;
  w_ = &worker;
  settings_ = std::move(settings);
  t_ = std::move(target);
  if (t_.pin) {
    use_addresses({&t_.pin->ip, 1});
    return;
  }
  if (const auto& lit = t_.url.literal) {
    use_addresses({&*lit, 1});
    return;
  }
  starting_ = true;
  answered_while_starting_ = false;
  auto req = w_->resolver().resolve(w_->loop(), t_.url.host, [this](ResolveResult r) {
    if (starting_) answered_while_starting_ = true;
    resolving_.reset();  // finished: the handle no longer refers to the lookup
    on_resolved(std::move(r));
  });
  starting_ = false;
  // A resolver may answer before returning (localhost, its own cache): then there is no
  // lookup left to hold.
  if (!answered_while_starting_) resolving_ = std::move(req);
}

void Forwarder::on_resolved(ResolveResult r) {
  if (r.status != 0) {
    fail({502, Outcome::kMiss, "Cannot resolve " + t_.url.host + ": " + r.error, r.error});
    return;
  }
  use_addresses(r.addresses);
}

void Forwarder::use_addresses(std::span<const IpAddress> found) {
  bool any_denied = false;
  for (auto& a : found) {
    if (settings_->rules.address_allowed(a, port(), t_.client)) addrs_.push_back(a);
    else any_denied = true;
  }
  if (addrs_.empty()) {
    if (any_denied)
      fail({403, Outcome::kDenied, "Access to " + t_.url.host + " is denied by this proxy's rules.", "denied"});
    else
      fail({502, Outcome::kMiss, "No address for " + t_.url.host, "no address"});
    return;
  }
  connect_next();
}

void Forwarder::connect_next() {
  OriginKey origin = w_->pool().key_for(t_.url, t_.tunnel);
  key_.clear();  // reused: keeps its capacity from request to request
  origin.append_to(key_);
  if (t_.pin) key_.append("@").append(t_.pin->to_string());  // only for the same destination
  // A tunnel's connection is its own (never pooled, never taken from the pool).
  OriginConnection* c =
      t_.tunnel ? new OriginConnection(w_->pool(), origin, key_) : w_->pool().acquire(origin, key_);
  origin_ = c;
  origin_reused_ = c->reused();
  origin_connected_ = false;
  head_sent_ = false;
  c->set_owner(this);
  if (c->connected()) {
    on_origin_connected();
    return;
  }
  const IpAddress& a = addrs_[next_addr_++ % addrs_.size()];
  c->connect(a, port(), settings_->config.origin.connect_timeout);
}

void Forwarder::on_origin_connected() {
  if (!origin_) return;
  origin_connected_ = true;
  events_.on_forward_connected(origin_->address());
  if (!origin_) return;  // cancelled from the event
  if (t_.tunnel) {
    StreamPtr s = origin_->detach_stream();  // closes the connection object
    origin_ = nullptr;
    events_.on_forward_tunnel(std::move(s));
    return;
  }
  send_head();
}

void Forwarder::send_head() {
  thread_local std::string head;  // reused: no allocation per head but the slice's own
  head.clear();
  events_.forward_request_head(head);
  auto& out = out_;  // reused: the stream leaves it empty with its capacity
  out.clear();
  out.push_back(slice_of(head));
  origin_->begin_exchange(t_.head_request, settings_->config.origin.read_timeout, t_.upgrade);
  head_sent_ = true;
  auto pending = std::move(pending_);
  pending_.clear();
  pending_bytes_ = 0;
  for (auto& s : pending) {
    body_sent_ += s.size;
    if (t_.body_chunked) out.push_back(http::chunk_size_line(s.size));
    out.push_back(std::move(s));
    if (t_.body_chunked) out.push_back(http::chunk_end());
  }
  if (body_ended_ && t_.body_chunked && !last_chunk_sent_) {
    last_chunk_sent_ = true;
    out.push_back(http::last_chunk());
  }
  bool was_congested = !pending.empty();
  origin_->write(std::move(out));
  if (was_congested && origin_ && !body_congested()) events_.on_forward_body_drained();
}

void Forwarder::send_body(Slice body) {
  if (!(origin_ && head_sent_)) {
    pending_bytes_ += body.size;
    pending_.push_back(std::move(body));
    return;
  }
  body_sent_ += body.size;
  std::vector<Slice> out;
  std::size_t n = body.size;
  if (t_.body_chunked) out.push_back(http::chunk_size_line(n));
  out.push_back(std::move(body));
  if (t_.body_chunked) out.push_back(http::chunk_end());
  origin_->write(std::move(out));
}

void Forwarder::end_body() {
  body_ended_ = true;
  if (origin_ && head_sent_ && t_.body_chunked && !last_chunk_sent_) {
    last_chunk_sent_ = true;
    origin_->write({http::last_chunk()});
  }
}

bool Forwarder::body_congested() const {
  if (origin_ && head_sent_) return origin_->write_queue_size() > kStreamHighWater;
  return pending_bytes_ > kStreamHighWater;
}

void Forwarder::on_origin_write_done() {
  if (origin_ && head_sent_ && origin_->write_queue_size() < kStreamLowWater) events_.on_forward_body_drained();
}

void Forwarder::pause_response() {
  if (!origin_ || paused_) return;
  paused_ = true;
  origin_->pause_reading();
}

void Forwarder::resume_response() {
  if (!origin_ || !paused_) return;
  paused_ = false;
  origin_->resume_reading();
}

void Forwarder::on_origin_interim(http::MessageHead& head) { events_.on_forward_interim(head); }

int Forwarder::on_origin_head(http::MessageHead& head) {
  response_started_ = true;
  return events_.on_forward_head(head);
}

int Forwarder::on_origin_body(Slice body) { return events_.on_forward_body(std::move(body)); }

void Forwarder::on_origin_upgraded(const http::MessageHead& head, Slice early) {
  if (!origin_) return;
  response_started_ = true;
  StreamPtr s = origin_->detach_stream();  // closes the connection object
  origin_ = nullptr;
  if (!s) {
    fail({502, Outcome::kMiss, "The origin server's connection closed at its protocol switch.", "closed at 101"});
    return;
  }
  events_.on_forward_upgraded(head, std::move(s), std::move(early));
}

int Forwarder::on_origin_end() {
  OriginConnection* c = origin_;
  origin_ = nullptr;
  paused_ = false;
  // Reused only after a clean exchange: the whole request went out.
  bool clean = body_ended_ && (!t_.body_chunked || last_chunk_sent_);
  if (c) {
    if (clean) c->release_to_pool();
    else c->close();
  }
  events_.on_forward_end(!clean);
  return 0;
}

void Forwarder::on_origin_read_processed() { events_.on_forward_read_processed(); }

void Forwarder::on_origin_error(int, bool timeout, const std::string& what) {
  origin_ = nullptr;  // it closed itself
  paused_ = false;
  if (response_started_) {
    fail({502, Outcome::kMissAborted, "origin failed mid-response: " + what, what, timeout, true});
    return;
  }
  // A pooled connection the origin had already closed: retry once on a fresh one.
  if (origin_reused_ && !retried_ && t_.idempotent && body_sent_ == 0 && !timeout) {
    retried_ = true;
    connect_next();
    return;
  }
  // Connection refused or timed out: try the host's other addresses.
  if (!origin_connected_ && next_addr_ < addrs_.size() && body_sent_ == 0) {
    connect_next();
    return;
  }
  if (timeout)
    fail({504, Outcome::kMiss, "The origin server " + t_.url.authority() + " did not answer in time (" + what + ").",
          what, true});
  else
    fail({502, Outcome::kMiss, "Cannot get a valid answer from " + t_.url.authority() + ": " + what + ".", what});
}

void Forwarder::fail(ForwardFailure f) {
  if (origin_) {
    origin_->close();
    origin_ = nullptr;
  }
  events_.on_forward_failed(f);
}

void Forwarder::cancel() {
  resolving_.reset();
  if (origin_) {
    origin_->close();
    origin_ = nullptr;
  }
  addrs_.clear();
  next_addr_ = 0;
  pending_.clear();
  pending_bytes_ = 0;
  body_sent_ = 0;
  origin_reused_ = origin_connected_ = retried_ = head_sent_ = body_ended_ = last_chunk_sent_ = false;
  response_started_ = paused_ = false;
}

}  // namespace outpost
