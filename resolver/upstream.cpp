#include "resolver/upstream.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/log.hpp"
#include "resolver/secure_random.hpp"

namespace outpost::dns {

namespace {

void to_sockaddr(const IpAddress& a, std::uint16_t port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (a.v4) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, a.bytes.data() + 12, 4);
  } else {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, a.bytes.data(), 16);
  }
}

std::uint16_t port_of(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  if (sa->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  return 0;
}

// Queries that may be merged: same server, port, question (case-insensitive), RD, transport,
// EDNS and 0x20.
std::string merge_key(const IpAddress& addr, std::uint16_t port, const Question& q, bool rd, bool tcp, bool edns,
                      bool caps) {
  std::string k(reinterpret_cast<const char*>(addr.bytes.data()), addr.bytes.size());
  k += static_cast<char>(port >> 8);
  k += static_cast<char>(port);
  k += static_cast<char>(q.type >> 8);
  k += static_cast<char>(q.type);
  k += static_cast<char>((rd ? 1 : 0) | (tcp ? 2 : 0) | (edns ? 4 : 0) | (caps ? 8 : 0));
  k += q.name.lowercase_wire();
  return k;
}

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// `n` with the randomised case of `sent` put back as in `original` where they share a
// suffix written with sent's very bytes.
void restore_name(Name& n, const Name& sent, const Name& original) {
  unsigned k = std::min(n.label_count(), sent.label_count());
  while (k > 0 && !(n.suffix(k) == sent.suffix(k))) --k;
  if (k == 0) return;
  const std::string tail = sent.suffix(k).wire();
  if (n.suffix(k).wire() != tail) return;  // the server's own spelling
  std::string wire = n.wire().substr(0, n.wire().size() - tail.size()) + original.suffix(k).wire();
  if (auto restored = Name::from_wire(wire)) n = std::move(*restored);
}

}  // namespace

Name with_random_case(const Name& n) {
  std::string wire = n.wire();
  std::uint32_t bits = 0;
  unsigned left = 0;
  for (std::size_t i = 0; i < wire.size() && wire[i] != 0; i += 1 + static_cast<unsigned char>(wire[i])) {
    std::size_t end = i + 1 + static_cast<unsigned char>(wire[i]);
    for (std::size_t j = i + 1; j < end; ++j) {
      if (!ascii_letter(wire[j])) continue;
      if (left == 0) bits = random_u32(), left = 32;
      wire[j] = static_cast<char>((bits & 1) ? (wire[j] & ~0x20) : (wire[j] | 0x20));
      bits >>= 1, --left;
    }
  }
  return *Name::from_wire(wire);
}

void restore_case(Message* m, const Name& sent, const Name& original) {
  auto fix = [&](Name& n) { restore_name(n, sent, original); };
  for (auto& q : m->question) fix(q.name);
  for (auto* section : {&m->answer, &m->authority, &m->additional})
    for (auto& rr : *section) {
      fix(rr.name);
      std::visit(
          [&](auto& rd) {
            using T = std::decay_t<decltype(rd)>;
            if constexpr (std::is_same_v<T, RdataName>) fix(rd.name);
            if constexpr (std::is_same_v<T, RdataSoa>) fix(rd.mname), fix(rd.rname);
            if constexpr (std::is_same_v<T, RdataMx>) fix(rd.exchange);
            if constexpr (std::is_same_v<T, RdataSrv>) fix(rd.target);
          },
          rr.rdata);
    }
}

struct Upstream::Request {
  Upstream* owner = nullptr;
  std::string key;
  IpAddress addr;
  std::uint16_t port = 53;
  Question question;  // as sent (0x20: in random case)
  Question asked;     // as the first sender gave it
  std::uint16_t id = 0;
  bool tcp = false;
  bool caps = false;           // 0x20
  bool case_mismatch = false;  // a reply came back in another case (0x20)
  std::vector<std::pair<std::uint64_t, Callback>> waiters;  // (handle, callback) of each sender
  std::vector<std::uint8_t> wire;   // the query (TCP: with its 2-byte length prefix)
  std::vector<std::uint8_t> inbuf;  // TCP reassembly
  std::uint64_t sent_ms = 0;
  uv_timer_t timer;
  union {
    uv_udp_t udp;
    uv_tcp_t tcp_handle;
  } sock;
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_udp_send_t send_req;
  int open_handles = 0;
  bool done = false;

  uv_handle_t* sock_handle() { return reinterpret_cast<uv_handle_t*>(&sock); }

  void close() {
    if (open_handles == 0) {
      delete this;
      return;
    }
    uv_timer_stop(&timer);
    auto on_close = [](uv_handle_t* h) {
      auto* r = static_cast<Request*>(h->data);
      if (--r->open_handles == 0) delete r;
    };
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer))) uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_close);
    if (!uv_is_closing(sock_handle())) uv_close(sock_handle(), on_close);
  }

  // True if the reply answers this request; counts the rest as mismatched or malformed.
  bool accept(const std::uint8_t* data, std::size_t len, Message* out) {
    Header h;
    std::uint16_t qd = 0;
    if (parse_header({data, len}, &h, &qd) != Status::ok || h.id != id || !h.qr) {
      ++owner->stats_.mismatched;
      return false;
    }
    if (parse_message({data, len}, out) != Status::ok) {
      ++owner->stats_.malformed;
      return false;
    }
    // The question must come back unchanged (error replies may leave it out).
    bool same_q = out->question.size() == 1 && out->question[0] == question;
    if (!same_q && !(out->question.empty() && out->header.rcode != rcode::NOERROR)) {
      ++owner->stats_.mismatched;
      return false;
    }
    if (caps) {
      // 0x20: byte for byte, or it is not the reply to this query; the real one may follow.
      if (same_q && out->question[0].name.wire() != question.name.wire()) {
        ++owner->stats_.case_mismatches;
        case_mismatch = true;
        return false;
      }
      restore_case(out, question.name, asked.name);
    }
    return true;
  }
};

Upstream::Upstream(uv_loop_t* loop) : loop_(loop) {}

Upstream::~Upstream() { close_all(); }

void Upstream::close_all() {
  auto all = std::move(in_flight_);
  in_flight_.clear();
  active_.clear();
  for (auto& [k, r] : all) {
    r->done = true;
    r->close();
  }
}

void Upstream::cancel(std::uint64_t handle) {
  auto it = active_.find(handle);
  if (it == active_.end()) return;
  Request* r = it->second;
  active_.erase(it);
  std::erase_if(r->waiters, [handle](const auto& w) { return w.first == handle; });
  if (!r->waiters.empty()) return;  // others still wait for the reply
  in_flight_.erase(r->key);
  r->done = true;
  r->close();
}

void Upstream::finish(Request* r, UpstreamResult&& res) {
  if (r->done) return;
  r->done = true;
  in_flight_.erase(r->key);
  for (auto& w : r->waiters) active_.erase(w.first);
  if (res.kind == UpstreamResult::Kind::timeout) ++stats_.timeouts;
  res.rtt_ms = static_cast<std::uint32_t>(uv_now(loop_) - r->sent_ms);
  auto waiters = std::move(r->waiters);
  r->close();
  // Each sender gets its own copy (the iterator scrubs the message in place); callbacks may
  // send again, and a new identical question then goes out afresh.
  for (std::size_t i = 0; i + 1 < waiters.size(); ++i) {
    UpstreamResult copy = res;
    copy.shared = true;
    waiters[i].second(std::move(copy));
  }
  waiters.back().second(std::move(res));
}

std::uint64_t Upstream::send(const IpAddress& addr, std::uint16_t port, const Question& q, bool rd, bool tcp,
                             std::uint32_t timeout_ms, Callback cb, bool edns, bool use_0x20) {
  std::uint64_t handle = next_handle_++;
  const bool caps = use_0x20 && !tcp;  // TCP cannot be spoofed off-path
  std::string key = merge_key(addr, port, q, rd, tcp, edns, caps);
  if (auto it = in_flight_.find(key); it != in_flight_.end()) {
    ++stats_.merged;
    it->second->waiters.emplace_back(handle, std::move(cb));
    active_[handle] = it->second;
    return handle;
  }
  auto* r = new Request;
  r->owner = this;
  r->key = key;
  r->waiters.emplace_back(handle, std::move(cb));
  r->addr = addr;
  r->port = port;
  r->asked = q;
  r->question = q;
  if (caps) r->question.name = with_random_case(q.name);
  r->caps = caps;
  r->id = random_id();
  r->tcp = tcp;
  auto wire = write_message(make_query(r->id, r->question.name, q.type, rd, edns));
  if (tcp) {
    r->wire = {static_cast<std::uint8_t>(wire.size() >> 8), static_cast<std::uint8_t>(wire.size())};
    r->wire.insert(r->wire.end(), wire.begin(), wire.end());
  } else {
    r->wire = std::move(wire);
  }
  r->sent_ms = uv_now(loop_);
  active_[handle] = r;
  in_flight_[std::move(key)] = r;

  uv_timer_init(loop_, &r->timer);
  r->timer.data = r;
  ++r->open_handles;
  uv_timer_start(
      &r->timer,
      [](uv_timer_t* t) {
        auto* r = static_cast<Request*>(t->data);
        UpstreamResult res;
        if (r->case_mismatch) res.kind = UpstreamResult::Kind::case_mismatch;
        r->owner->finish(r, std::move(res));
      },
      timeout_ms, 0);

  sockaddr_storage ss;
  to_sockaddr(addr, port, &ss);
  auto fail_soon = [r](int err) {
    // Report the failure from the timer so the callback never runs inside send().
    spdlog::debug("dns upstream {}: {}", r->addr.to_string(), uv_strerror(err));
    uv_timer_start(
        &r->timer,
        [](uv_timer_t* t) {
          auto* r = static_cast<Request*>(t->data);
          r->owner->finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
        },
        0, 0);
  };

  if (!tcp) {
    ++stats_.udp_sent;
    uv_udp_init(loop_, &r->sock.udp);
    r->sock.udp.data = r;
    ++r->open_handles;
    // Port 0: the kernel picks a random ephemeral port for every socket.
    sockaddr_storage any;
    std::memset(&any, 0, sizeof any);
    any.ss_family = ss.ss_family;
    int rc = uv_udp_bind(&r->sock.udp, reinterpret_cast<sockaddr*>(&any), 0);
    if (rc == 0) rc = uv_udp_connect(&r->sock.udp, reinterpret_cast<sockaddr*>(&ss));
    if (rc == 0)
      rc = uv_udp_recv_start(
          &r->sock.udp,
          [](uv_handle_t*, size_t, uv_buf_t* buf) {
            // One buffer per thread: a datagram is parsed before the next read.
            static thread_local char datagram[65536];
            *buf = uv_buf_init(datagram, sizeof datagram);
          },
          [](uv_udp_t* u, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
            auto* r = static_cast<Request*>(u->data);
            if (r->done || n == 0) return;
            if (n < 0) {
              if (n == UV_ECONNREFUSED) r->owner->finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
              return;
            }
            if (!from || !(IpAddress::from_sockaddr(from) == r->addr) || port_of(from) != r->port) {
              ++r->owner->stats_.mismatched;
              return;
            }
            UpstreamResult res{UpstreamResult::Kind::ok, {}, 0, static_cast<std::size_t>(n)};
            if (!r->accept(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(n), &res.message))
              return;
            r->owner->finish(r, std::move(res));
          });
    if (rc == 0) {
      uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(r->wire.data()), static_cast<unsigned>(r->wire.size()));
      r->send_req.data = r;
      rc = uv_udp_send(&r->send_req, &r->sock.udp, &b, 1, nullptr, [](uv_udp_send_t*, int) {});
    }
    if (rc != 0) fail_soon(rc);
    return handle;
  }

  ++stats_.tcp_sent;
  uv_tcp_init(loop_, &r->sock.tcp_handle);
  r->sock.tcp_handle.data = r;
  ++r->open_handles;
  r->connect_req.data = r;
  int rc = uv_tcp_connect(&r->connect_req, &r->sock.tcp_handle, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* c, int status) {
    auto* r = static_cast<Request*>(c->data);
    if (r->done || status == UV_ECANCELED) return;
    if (status != 0) {
      r->owner->finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
      return;
    }
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(r->wire.data()), static_cast<unsigned>(r->wire.size()));
    r->write_req.data = r;
    uv_write(&r->write_req, reinterpret_cast<uv_stream_t*>(&r->sock.tcp_handle), &b, 1, [](uv_write_t*, int) {});
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&r->sock.tcp_handle),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static thread_local char chunk[65536];
          *buf = uv_buf_init(chunk, sizeof chunk);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* r = static_cast<Request*>(s->data);
          if (r->done) return;
          if (n < 0) {
            r->owner->finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
            return;
          }
          r->inbuf.insert(r->inbuf.end(), buf->base, buf->base + n);
          if (r->inbuf.size() < 2) return;
          std::size_t len = static_cast<std::size_t>(r->inbuf[0]) << 8 | r->inbuf[1];
          if (r->inbuf.size() < 2 + len) return;
          UpstreamResult res{UpstreamResult::Kind::ok, {}, 0, len};
          if (!r->accept(r->inbuf.data() + 2, len, &res.message)) {
            r->owner->finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
            return;
          }
          r->owner->finish(r, std::move(res));
        });
  });
  if (rc != 0) fail_soon(rc);
  return handle;
}

}  // namespace outpost::dns
