#include "proxy/tunnel.hpp"

namespace outpost {
Tunnel* Tunnel::start(uv_loop_t* loop, StreamPtr client, StreamPtr origin, std::vector<Slice> early,
                      bool client_eof, double idle_timeout_s, Done done) {
  auto* t = new Tunnel(loop, std::move(client), std::move(origin), idle_timeout_s, std::move(done));
  if (!early.empty()) {
    for (auto& s : early) t->totals_.to_origin += s.size;
    // A fresh connected stream takes it; were it broken, its read fails next and ends the
    // tunnel (done never runs from inside start()).
    (void)t->origin_.stream->write(std::move(early));
  }
  if (client_eof) {
    t->client_.eof = true;
    (void)t->origin_.stream->shutdown_write();
  } else {
    t->client_.stream->read_start();
  }
  t->origin_.stream->read_start();
  t->touch();
  return t;
}

Tunnel::Tunnel(uv_loop_t* loop, StreamPtr client, StreamPtr origin, double idle_timeout_s, Done done)
    : idle_ms_(static_cast<std::uint64_t>(idle_timeout_s * 1000)), done_(std::move(done)) {
  client_.t = origin_.t = this;
  client_.other = &origin_;
  origin_.other = &client_;
  client_.stream = std::move(client);
  origin_.stream = std::move(origin);
  client_.received = &totals_.to_origin;
  origin_.received = &totals_.to_client;
  client_.stream->set_handler(&client_);
  origin_.stream->set_handler(&origin_);
  timer_.init(loop, this);
}

void Tunnel::touch() {
  if (closed_) return;
  timer_.arm(idle_ms_, [](void* self) { static_cast<Tunnel*>(self)->finish("idle timeout"); });
}

void Tunnel::Side::on_read(Slice data) {
  *received += data.size;
  t->touch();
  if (other->stream->write({std::move(data)}) < 0) {
    t->finish("write failed");
    return;
  }
  if (other->stream->queued_bytes() > kStreamHighWater) {
    held = true;
    stream->read_stop();
  }
}

void Tunnel::Side::on_write_done() {
  // This side's queue drained: the other side may read again.
  if (other->held && stream->queued_bytes() < kStreamLowWater) {
    other->held = false;
    other->stream->read_start();
  }
}

void Tunnel::Side::on_eof() {
  eof = true;
  if (other->eof) {
    t->finish("closed");
    return;
  }
  // Half-close: our FIN towards the other side once what is queued there is written.
  if (other->stream->shutdown_write() < 0) t->finish("closed");
}

void Tunnel::Side::on_error(int, std::string_view what) { t->finish(std::string(what)); }

void Tunnel::finish(std::string why) {
  if (closed_) return;
  totals_.why = std::move(why);
  auto done = std::move(done_);
  close_all();
  if (done) done(totals_);
}

void Tunnel::cancel() {
  done_ = nullptr;
  close_all();
}

void Tunnel::close_all() {
  if (closed_) return;
  closed_ = true;
  client_.stream.reset();
  origin_.stream.reset();
  timer_.close([](uv_handle_t* h) { delete static_cast<Tunnel*>(h->data); });
}

}  // namespace outpost
