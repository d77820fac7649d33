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
  bool rd = false, edns = true;
  bool caps = false;           // 0x20
  bool case_mismatch = false;  // a reply came back in another case (0x20)
  std::vector<std::pair<std::uint64_t, Callback>> waiters;  // (handle, callback) of each sender
  std::vector<std::uint8_t> wire;   // the UDP query
  std::uint64_t sent_ms = 0;
  uv_timer_t timer;
  uv_udp_t udp;
  uv_udp_send_t send_req;
  // TCP: the connection carrying the query (null before and after), whether the query opened
  // it, whether its bytes have gone out on it, and whether it has been sent a second time.
  TcpConn* conn = nullptr;
  bool opened_conn = false, written = false, retried = false;
  int open_handles = 0;
  bool done = false;

  void close() {
    if (conn) owner->tcp_detach(this, true);
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
    if (!tcp && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&udp))) uv_close(reinterpret_cast<uv_handle_t*>(&udp), on_close);
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

// One TCP connection to a server, shared by the queries to it (RFC 7766 section 6.2.1).
// Freed when its two handles have closed; callbacks that run before that (a cancelled
// connect, writes) see `closing`.
struct Upstream::TcpConn {
  Upstream* owner = nullptr;
  std::string key;  // the server: address and port
  IpAddress addr;
  uv_tcp_t handle;
  uv_timer_t idle_timer;
  uv_connect_t connect_req;
  int open_handles = 0;
  bool connected = false;
  bool closing = false;
  bool exclusive = false;  // a retry's own connection: no other query joins it while it is busy
  bool draining = false;   // a query timed out on it: no new queries, closed once empty
  bool broken = false;     // a write could not start: lost on the next loop turn (idle_timer)
  bool idle = false;
  std::list<TcpConn*>::iterator idle_pos;
  unsigned used = 0;  // queries ever attached
  std::unordered_map<std::uint16_t, Request*> pending;  // by ID: queued or sent, not answered
  std::vector<Request*> queued;                         // attached before the connect finished
  std::vector<std::uint16_t> abandoned;  // IDs sent whose requests have gone: late replies dropped
  std::vector<std::uint8_t> inbuf;

  bool id_taken(std::uint16_t id) const {
    return pending.count(id) || std::find(abandoned.begin(), abandoned.end(), id) != abandoned.end();
  }
  void close() {
    if (closing) return;
    closing = true;
    auto on_close = [](uv_handle_t* h) {
      auto* c = static_cast<TcpConn*>(h->data);
      if (--c->open_handles == 0) delete c;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_timer), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle), on_close);
  }
};

struct Upstream::TcpWrite {
  uv_write_t req;
  TcpConn* conn;
  std::vector<std::uint8_t> bytes;
};

Upstream::Upstream(uv_loop_t* loop) : loop_(loop) {}

Upstream::~Upstream() { close_all(); }

void Upstream::close_all() {
  // Connections first: the requests' detaching then leaves them alone.
  for (auto& [k, conns] : tcp_)
    for (TcpConn* c : conns) c->close();
  tcp_.clear();
  idle_.clear();
  auto all = std::move(in_flight_);
  in_flight_.clear();
  active_.clear();
  for (auto& [k, r] : all) {
    r->done = true;
    r->close();
  }
}

std::size_t Upstream::tcp_connections() const {
  std::size_t n = 0;
  for (auto& [k, conns] : tcp_) n += conns.size();
  return n;
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
  r->tcp = tcp;
  r->rd = rd;
  r->edns = edns;
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
        // A connection that let a query time out takes no more.
        if (r->conn) r->conn->draining = true;
        r->owner->finish(r, std::move(res));
      },
      timeout_ms, 0);

  if (tcp) {
    ++stats_.tcp_sent;
    start_tcp(r, false);
    return handle;
  }

  r->id = random_id();
  r->wire = write_message(query_message(r->id, r->question.name, q.type, rd, edns));
  sockaddr_storage ss;
  to_sockaddr(addr, port, &ss);
  ++stats_.udp_sent;
  uv_udp_init(loop_, &r->udp);
  r->udp.data = r;
  ++r->open_handles;
  // Port 0: the kernel picks a random ephemeral port for every socket.
  sockaddr_storage any;
  std::memset(&any, 0, sizeof any);
  any.ss_family = ss.ss_family;
  int rc = uv_udp_bind(&r->udp, reinterpret_cast<sockaddr*>(&any), 0);
  if (rc == 0) rc = uv_udp_connect(&r->udp, reinterpret_cast<sockaddr*>(&ss));
  if (rc == 0)
    rc = uv_udp_recv_start(
        &r->udp,
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
    rc = uv_udp_send(&r->send_req, &r->udp, &b, 1, nullptr, [](uv_udp_send_t*, int) {});
  }
  if (rc != 0) {
    spdlog::debug("dns upstream {}: {}", r->addr.to_string(), uv_strerror(rc));
    fail_soon(r);
  }
  return handle;
}

// A network error for `r`, reported from its timer on the next loop turn, so that the callback
// never runs inside send().
void Upstream::fail_soon(Request* r) {
  uv_timer_start(
      &r->timer,
      [](uv_timer_t* t) {
        auto* r = static_cast<Request*>(t->data);
        r->owner->finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
      },
      0, 0);
}

// ---- TCP: connections shared by the queries to one server ------------------------------------

void Upstream::start_tcp(Request* r, bool own_connection) {
  std::string key(reinterpret_cast<const char*>(r->addr.bytes.data()), r->addr.bytes.size());
  key += static_cast<char>(r->port >> 8);
  key += static_cast<char>(r->port);
  TcpConn* use = nullptr;
  if (!own_connection) {
    // The open connection with the fewest queries in flight, else one still connecting.
    for (TcpConn* c : tcp_[key]) {
      if (c->closing || c->exclusive || c->draining || c->pending.size() >= kMaxPipelined) continue;
      if (!use || (c->connected && !use->connected) ||
          (c->connected == use->connected && c->pending.size() < use->pending.size()))
        use = c;
    }
  }
  if (!use) {
    use = open_tcp(r->addr, r->port, key, own_connection);
    if (!use) {
      fail_soon(r);
      return;
    }
    r->opened_conn = true;
  } else {
    r->opened_conn = false;
  }
  tcp_attach(use, r);
}

Upstream::TcpConn* Upstream::open_tcp(const IpAddress& addr, std::uint16_t port, const std::string& key,
                                      bool exclusive) {
  auto* c = new TcpConn;
  c->owner = this;
  c->key = key;
  c->addr = addr;
  c->exclusive = exclusive;
  uv_tcp_init(loop_, &c->handle);
  c->handle.data = c;
  uv_timer_init(loop_, &c->idle_timer);
  c->idle_timer.data = c;
  uv_unref(reinterpret_cast<uv_handle_t*>(&c->idle_timer));  // runs only while idle
  c->open_handles = 2;
  sockaddr_storage ss;
  to_sockaddr(addr, port, &ss);
  c->connect_req.data = c;
  int rc = uv_tcp_connect(&c->connect_req, &c->handle, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* req, int status) {
    auto* c = static_cast<TcpConn*>(req->data);
    if (c->closing) return;
    if (status != 0) {
      spdlog::debug("dns upstream {} over TCP: {}", c->addr.to_string(), uv_strerror(status));
      c->owner->tcp_lost(c, false);
      return;
    }
    c->connected = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->handle),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static thread_local char chunk[65536];
          *buf = uv_buf_init(chunk, sizeof chunk);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* c = static_cast<TcpConn*>(s->data);
          if (c->closing) return;
          if (n < 0) {
            // Closed or reset by the server (at once if idle: never a dead connection kept).
            spdlog::debug("dns upstream {} over TCP: {} ({} queries waiting)", c->addr.to_string(),
                          n == UV_EOF ? "closed by the server" : uv_strerror(static_cast<int>(n)), c->pending.size());
            c->owner->tcp_lost(c, true);
            return;
          }
          c->owner->tcp_read(c, buf->base, static_cast<std::size_t>(n));
        });
    auto queued = std::move(c->queued);
    c->queued.clear();
    for (Request* r : queued) {
      if (c->closing) break;
      c->owner->tcp_write(c, r);
    }
  });
  if (rc != 0) {
    spdlog::debug("dns upstream {} over TCP: {}", addr.to_string(), uv_strerror(rc));
    c->close();
    return nullptr;
  }
  ++stats_.tcp_connections;
  tcp_[key].push_back(c);
  return c;
}

void Upstream::tcp_attach(TcpConn* c, Request* r) {
  if (c->used > 0) ++stats_.tcp_reused;
  ++c->used;
  tcp_busy(c);
  do r->id = random_id();
  while (c->id_taken(r->id));
  r->conn = c;
  r->written = false;
  c->pending[r->id] = r;
  if (c->connected)
    tcp_write(c, r);
  else
    c->queued.push_back(r);
}

Message Upstream::query_message(std::uint16_t id, const Name& qname, std::uint16_t qtype, bool rd, bool edns) const {
  Message m = make_query(id, qname, qtype, rd, edns);
  if (m.edns) m.edns->do_bit = dnssec_ok_;
  return m;
}

void Upstream::tcp_write(TcpConn* c, Request* r) {
  auto wire = write_message(query_message(r->id, r->question.name, r->question.type, r->rd, r->edns));
  auto* w = new TcpWrite;
  w->conn = c;
  w->req.data = w;
  // Two length bytes, then the message (RFC 1035 §4.2.2). Sized once and copied: GCC 12's
  // -Warray-bounds misreads an insert after a two-element initializer list at -O2.
  w->bytes.resize(2 + wire.size());
  w->bytes[0] = static_cast<std::uint8_t>(wire.size() >> 8);
  w->bytes[1] = static_cast<std::uint8_t>(wire.size());
  if (!wire.empty()) std::memcpy(w->bytes.data() + 2, wire.data(), wire.size());
  r->written = true;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->bytes.data()), static_cast<unsigned>(w->bytes.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->handle), &b, 1, [](uv_write_t* req, int status) {
    auto* w = static_cast<TcpWrite*>(req->data);
    TcpConn* c = w->conn;
    delete w;
    // A write the server refused (reset, broken pipe): the connection is gone.
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
      spdlog::debug("dns upstream {} over TCP: {}", c->addr.to_string(), uv_strerror(status));
      c->owner->tcp_lost(c, true);
    }
  });
  if (rc != 0) {
    delete w;
    // Reported on the next loop turn (never inside send()): the connection counts as lost.
    c->broken = c->draining = true;
    uv_ref(reinterpret_cast<uv_handle_t*>(&c->idle_timer));
    uv_timer_start(
        &c->idle_timer, [](uv_timer_t* t) {
          auto* c = static_cast<TcpConn*>(t->data);
          c->owner->tcp_lost(c, true);
        },
        0, 0);
  }
}

void Upstream::tcp_detach(Request* r, bool abandon) {
  TcpConn* c = r->conn;
  r->conn = nullptr;
  if (c->closing) return;
  c->pending.erase(r->id);
  std::erase(c->queued, r);
  // The answer may still come: its ID stays taken until then or until the connection ends.
  if (abandon && r->written) c->abandoned.push_back(r->id);
  if (c->pending.empty()) tcp_idle(c);
}

void Upstream::tcp_read(TcpConn* c, const char* data, std::size_t n) {
  c->inbuf.insert(c->inbuf.end(), data, data + n);
  std::size_t at = 0;
  while (!c->closing && c->inbuf.size() - at >= 2) {
    std::size_t len = static_cast<std::size_t>(c->inbuf[at]) << 8 | c->inbuf[at + 1];
    if (c->inbuf.size() - at < 2 + len) break;
    const std::uint8_t* msg = c->inbuf.data() + at + 2;
    at += 2 + len;
    if (len < 2) {
      ++stats_.malformed;
      continue;
    }
    std::uint16_t id = static_cast<std::uint16_t>(msg[0] << 8 | msg[1]);
    if (auto a = std::find(c->abandoned.begin(), c->abandoned.end(), id); a != c->abandoned.end()) {
      c->abandoned.erase(a);  // the late answer to a query that timed out or was cancelled
      continue;
    }
    auto it = c->pending.find(id);
    if (it == c->pending.end() || !it->second->written) {
      ++stats_.mismatched;
      continue;
    }
    Request* r = it->second;
    c->pending.erase(it);
    r->conn = nullptr;
    // Copied out: callbacks may send on this connection and grow the buffer.
    std::vector<std::uint8_t> copy(msg, msg + len);
    UpstreamResult res{UpstreamResult::Kind::ok, {}, 0, len};
    if (!r->accept(copy.data(), len, &res.message)) {
      spdlog::debug("dns upstream {} over TCP: a reply with the ID of {} {} is not its answer", c->addr.to_string(),
                    r->question.name.to_text(), type_to_text(r->question.type));
      finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
    } else {
      finish(r, std::move(res));
    }
  }
  if (c->closing) return;
  c->inbuf.erase(c->inbuf.begin(), c->inbuf.begin() + static_cast<std::ptrdiff_t>(at));
  if (c->pending.empty()) tcp_idle(c);
}

void Upstream::tcp_lost(TcpConn* c, bool connected) {
  std::vector<Request*> lost;
  for (auto& [id, r] : c->pending) lost.push_back(r);
  c->pending.clear();
  c->queued.clear();
  close_tcp(c);
  for (Request* r : lost) r->conn = nullptr;
  for (Request* r : lost) {
    if (r->done) continue;
    // Sent on a connection another query opened, which the server closed (an idle timeout,
    // or it answers one query per connection): once more, on a connection of its own.
    if (connected && !r->opened_conn && !r->retried) {
      r->retried = true;
      ++stats_.tcp_retries;
      start_tcp(r, true);
      continue;
    }
    finish(r, UpstreamResult{UpstreamResult::Kind::network_error, {}, 0, 0});
  }
}

void Upstream::tcp_busy(TcpConn* c) {
  if (!c->broken) uv_timer_stop(&c->idle_timer);
  uv_ref(reinterpret_cast<uv_handle_t*>(&c->handle));
  if (c->idle) {
    idle_.erase(c->idle_pos);
    c->idle = false;
  }
}

void Upstream::tcp_idle(TcpConn* c) {
  if (c->closing || c->idle) return;
  if (c->draining || !c->connected) {
    close_tcp(c);
    return;
  }
  c->exclusive = false;
  unsigned idle_here = 0;
  for (TcpConn* o : tcp_[c->key]) idle_here += o->idle;
  if (idle_here >= kMaxIdlePerServer) {
    close_tcp(c);
    return;
  }
  if (idle_.size() >= kMaxIdleTotal) close_tcp(idle_.front());
  c->idle = true;
  c->idle_pos = idle_.insert(idle_.end(), c);
  uv_unref(reinterpret_cast<uv_handle_t*>(&c->handle));  // an idle connection keeps no loop alive
  uv_timer_start(
      &c->idle_timer, [](uv_timer_t* t) { static_cast<TcpConn*>(t->data)->owner->close_tcp(static_cast<TcpConn*>(t->data)); },
      tcp_idle_ms_, 0);
}

void Upstream::close_tcp(TcpConn* c) {
  if (c->closing) return;
  if (c->idle) {
    idle_.erase(c->idle_pos);
    c->idle = false;
  }
  if (auto it = tcp_.find(c->key); it != tcp_.end()) {
    std::erase(it->second, c);
    if (it->second.empty()) tcp_.erase(it);
  }
  c->close();
}

}  // namespace outpost::dns
