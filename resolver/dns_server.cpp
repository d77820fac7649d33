#include "resolver/dns_server.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/log.hpp"
#include "core/worker_pool.hpp"
#include "resolver/query_types.hpp"
#include "resolver/resolver_core.hpp"

namespace outpost::dns {

namespace {

constexpr std::size_t kMaxUdpPayload = kEdnsUdpSize;  // our own limit, whatever the client offers
constexpr std::uint16_t kBadVers = 16;

}  // namespace

Message make_reply(const Message& query, std::uint16_t rc) {
  Message r;
  r.header.id = query.header.id;
  r.header.qr = true;
  r.header.opcode = query.header.opcode;
  r.header.rd = query.header.rd;
  r.header.cd = query.header.cd;
  r.header.rcode = rc;
  r.question = query.question;
  if (query.edns) {
    r.edns = Edns{};
    r.edns->do_bit = query.edns->do_bit;  // RFC 3225 section 3: the DO bit is copied into the reply
  }
  return r;
}

// ---- query handling --------------------------------------------------------------------------

namespace {

std::size_t reply_limit(bool tcp, bool edns, std::uint16_t udp_size) {
  // The client's UDP limit: 512 without EDNS, else what it offers, within our own limit.
  if (tcp) return 65535;
  return edns ? std::clamp<std::size_t>(udp_size, 512, kMaxUdpPayload) : 512;
}

}  // namespace

bool DnsServer::answer_from_replies(const PlainQuery& pq, std::span<const std::uint8_t> wire, const IpAddress& client,
                                    bool tcp, std::vector<std::uint8_t>* out) {
  if (!opt_.allow_recursion.contains(client)) return false;
  std::uint64_t started_ns = uv_hrtime();
  if (!replies_.answer(pq, wire, uv_now(loop_), reply_limit(tcp, pq.edns, pq.udp_size), out)) return false;
  ++stats_.queries;
  ++stats_.answered;
  resolver_.metrics().record(ResolverMetrics::kClient, true, false, static_cast<double>(uv_hrtime() - started_ns) / 1e9);
  return true;
}

void DnsServer::handle(std::span<const std::uint8_t> wire, const IpAddress& client, bool tcp, Reply reply) {
  PlainQuery pq;
  const bool plain = parse_plain_query(wire, &pq);
  if (plain) {
    std::vector<std::uint8_t> out;
    if (answer_from_replies(pq, wire, client, tcp, &out)) {
      reply(std::move(out));
      return;
    }
  }
  handle_parsed(wire, client, tcp, plain ? &pq : nullptr, std::move(reply));
}

void DnsServer::handle_parsed(std::span<const std::uint8_t> wire, const IpAddress& client, bool tcp,
                              const PlainQuery* plain, Reply reply) {
  ++stats_.queries;
  Header h;
  if (parse_header(wire, &h) != Status::ok || h.qr) {
    ++stats_.dropped;  // too short to answer, or a response (never answer those: reflection loops)
    reply({});
    return;
  }
  Message q;
  Status st = parse_message(wire, &q);
  auto send = [this, reply](const Message& m, std::size_t limit) {
    auto out = write_message(m, limit);
    if (out.size() > 2 && (out[2] & 0x02)) ++stats_.truncated;
    ++stats_.answered;
    reply(std::move(out));
  };
  if (st != Status::ok) {
    ++stats_.formerr;
    spdlog::debug("dns: malformed query from {}: {}", client.to_string(), to_string(st));
    Message err;
    err.header = h;
    err.header.qr = true;
    err.header.aa = err.header.tc = err.header.ra = err.header.ad = false;
    err.header.rcode = rcode::FORMERR;
    send(err, 512);
    return;
  }
  const std::size_t limit = reply_limit(tcp, q.edns.has_value(), q.edns ? q.edns->udp_size : 0);
  if (q.header.opcode != opcode::QUERY) {
    ++stats_.notimp;
    Message r = make_reply(q, rcode::NOTIMP);
    send(r, limit);
    return;
  }
  if (q.question.size() != 1) {
    ++stats_.formerr;
    send(make_reply(q, rcode::FORMERR), limit);
    return;
  }
  if (q.edns && q.edns->version > 0) {
    send(make_reply(q, kBadVers), limit);
    return;
  }
  const Question& question = q.question[0];
  bool allowed = opt_.allow_recursion.contains(client);
  if (!allowed || question.cls != kClassIN) {
    ++stats_.refused;
    Message r = make_reply(q, rcode::REFUSED);
    send(r, limit);
    return;
  }
  if (auto rc = unresolvable_type_rcode(question.type)) {
    ++(*rc == rcode::REFUSED ? stats_.refused : stats_.formerr);
    spdlog::debug("dns: {} for a {} question from {}", rcode_to_text(*rc), type_to_text(question.type),
                  client.to_string());
    send(make_reply(q, *rc), limit);
    return;
  }
  // From here on the question is a resolution (ResolverMetrics), timed to its answer.
  std::shared_ptr<PlainQuery> keep;  // set: the reply may be kept (ReplyCache)
  if (plain) keep = std::make_shared<PlainQuery>(*plain);
  auto respond = [this, q, limit, keep, reply, started_ns = uv_hrtime()](const Resolution& res) {
    resolver_.metrics().record(ResolverMetrics::kClient, res.from_cache || res.authoritative,
                               res.rcode == rcode::SERVFAIL, static_cast<double>(uv_hrtime() - started_ns) / 1e9);
    Message r = make_reply(q, res.rcode);
    r.header.ra = true;
    r.header.aa = res.authoritative;
    r.answer = res.answer;
    r.authority = res.authority;
    if (!q.edns || !q.edns->do_bit) {
      // RFC 4035 section 3.2.1: RRSIG, NSEC and NSEC3 records only to clients that set DO
      // (or that ask for those types).
      const std::uint16_t asked = q.question[0].type;
      auto dnssec_only = [asked](const ResourceRecord& rr) {
        return (rr.type == type::RRSIG || rr.type == type::NSEC || rr.type == type::NSEC3) && rr.type != asked &&
               asked != type::ANY;
      };
      std::erase_if(r.answer, dnssec_only);
      std::erase_if(r.authority, dnssec_only);
    }
    if (res.stale && r.edns) add_extended_error(&*r.edns, ede::STALE_ANSWER);  // RFC 8767 section 6
    // DNSSEC: AD for a validated answer to a client that shows it understands it (AD or DO set,
    // RFC 6840 section 5.7); a bogus one's reason as an Extended DNS Error (RFC 8914).
    r.header.ad = res.security == Security::secure && res.rcode != rcode::SERVFAIL &&
                  (q.header.ad || (q.edns && q.edns->do_bit));
    if (res.ede && r.edns) add_extended_error(&*r.edns, *res.ede);
    if (res.rcode == rcode::SERVFAIL) {
      ++stats_.servfail;
      spdlog::debug("dns: SERVFAIL for {} {}: {}", q.question[0].name.to_text(), type_to_text(q.question[0].type),
                    res.why);
    }
    auto out = write_message(r, limit);
    if (out.size() > 2 && (out[2] & 0x02)) ++stats_.truncated;
    else if (keep && res.reuse_ms && !res.stale && !res.ede)
      replies_.store(*keep, out, uv_now(loop_), res.reuse_ms, res.security == Security::secure);
    ++stats_.answered;
    reply(std::move(out));
  };
  if (!q.header.rd) {
    // No recursion wanted: what local zones and the cache know, nothing more.
    if (auto res = resolver_.answer_locally(question, q.header.cd)) respond(*res);
    else respond(Resolution{rcode::SERVFAIL, {}, {}, false, true, "not in cache"});
    return;
  }
  if (auto res = resolver_.answer_locally(question, q.header.cd)) {
    respond(*res);
    return;
  }
  if (resolver_.core().running() >= opt_.max_pending_queries) {
    // Overloaded: fail fast rather than hold ever more work.
    respond(Resolution{rcode::SERVFAIL, {}, {}, false, false, "overloaded"});
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  resolver_.query(
      question,
      [alive, respond](const Resolution& res) {
        if (alive.lock()) respond(res);
      },
      {}, q.header.cd);
}

// ---- TCP -----------------------------------------------------------------------------------

struct DnsServer::TcpConn : std::enable_shared_from_this<DnsServer::TcpConn> {
  DnsServer* server = nullptr;
  uv_tcp_t handle;
  uv_timer_t idle;
  IpAddress peer;
  std::vector<std::uint8_t> in;
  unsigned in_flight = 0;
  bool closing = false;
  std::shared_ptr<TcpConn> self;  // keeps the object until both handles are closed
  int open_handles = 0;

  void close() {
    if (closing) return;
    closing = true;
    auto on_close = [](uv_handle_t* h) {
      auto* c = static_cast<TcpConn*>(h->data);
      if (--c->open_handles == 0) c->self.reset();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&idle), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle), on_close);
    auto& conns = server->conns_;
    conns.erase(std::remove_if(conns.begin(), conns.end(), [this](auto& c) { return c.get() == this; }), conns.end());
  }

  void touch() { uv_timer_again(&idle); }

  // At most this many queries of one connection are resolved at once; beyond it the
  // connection is not read until answers have gone out (a pipelining client cannot make the
  // server hold unbounded work).
  static constexpr unsigned kMaxPipelined = 32;
  bool paused = false;

  static void alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
    static thread_local char chunk[65536];
    *buf = uv_buf_init(chunk, sizeof chunk);
  }
  static void read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<TcpConn*>(s->data);
    if (n < 0) {
      c->close();
      return;
    }
    c->in.insert(c->in.end(), buf->base, buf->base + n);
    c->touch();
    c->on_data();
  }
  void start_reading() { uv_read_start(reinterpret_cast<uv_stream_t*>(&handle), alloc_cb, read_cb); }

  void on_data() {
    // Every complete length-prefixed message is a query; they may be pipelined.
    while (in.size() >= 2 && in_flight < kMaxPipelined && !closing) {
      std::size_t len = static_cast<std::size_t>(in[0]) << 8 | in[1];
      if (in.size() < 2 + len) break;
      std::vector<std::uint8_t> msg(in.begin() + 2, in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
      in.erase(in.begin(), in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
      ++in_flight;
      std::weak_ptr<TcpConn> weak = shared_from_this();
      server->handle(msg, peer, true, [weak](std::vector<std::uint8_t> out) {
        auto c = weak.lock();
        if (!c || c->closing) return;
        --c->in_flight;
        if (!out.empty()) {
          c->write(std::move(out));
          c->touch();
        }
        if (c->paused && c->in_flight < kMaxPipelined) {
          c->paused = false;
          c->start_reading();
          c->on_data();
        }
      });
    }
    if (in_flight >= kMaxPipelined && !paused && !closing) {
      paused = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&handle));
    }
  }

  void write(std::vector<std::uint8_t> msg) {
    struct Write {
      uv_write_t req;
      std::vector<std::uint8_t> data;
    };
    auto* w = new Write;
    w->data.reserve(msg.size() + 2);
    w->data.push_back(static_cast<std::uint8_t>(msg.size() >> 8));
    w->data.push_back(static_cast<std::uint8_t>(msg.size()));
    w->data.insert(w->data.end(), msg.begin(), msg.end());
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
    w->req.data = w;
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&handle), &b, 1,
                 [](uv_write_t* r, int) { delete static_cast<Write*>(r->data); }) != 0)
      delete w;
  }
};

// ---- start / stop ----------------------------------------------------------------------------

DnsServer::DnsServer(uv_loop_t* loop, Resolver& resolver, DnsServerOptions options)
    : loop_(loop), resolver_(resolver), opt_(std::move(options)) {}

DnsServer::~DnsServer() { stop(); }

bool DnsServer::start(std::string* error) {
  // UDP through core's UdpListener (recvmmsg batches in, a batch's cache hits out with one
  // sendmmsg); replies that come after stop() are dropped by the alive_ token.
  udp_ = std::make_unique<UdpListener>(loop_, [this](std::span<const std::uint8_t> data, const UdpPeer& from) {
    // The hot path first: a kept reply goes out without building a callback.
    PlainQuery pq;
    const bool plain = parse_plain_query(data, &pq);
    IpAddress client = from.ip();
    if (plain) {
      std::vector<std::uint8_t> out;
      if (answer_from_replies(pq, data, client, false, &out)) {
        udp_->send(from, std::move(out));
        return;
      }
    }
    std::weak_ptr<bool> alive = alive_;
    handle_parsed(data, client, false, plain ? &pq : nullptr, [this, from, alive](std::vector<std::uint8_t> out) {
      if (!out.empty() && alive.lock()) udp_->send(from, std::move(out));
    });
  });
  for (auto& ep : opt_.listen) {
    if (int rc = udp_->listen(ep); rc != 0) {
      *error = "dns listen " + ep.to_string() + " (udp): " + std::strerror(-rc);
      return false;
    }

    // TCP through core's Acceptor, which stays safe at the descriptor limit (libuv 1.44's
    // own accept loop spins on EMFILE).
    if (!tcp_accept_) {
      tcp_accept_ = std::make_unique<Acceptor>(
          loop_, std::string(),
          Acceptor::Callbacks{[this](int fd, const sockaddr_storage& peer) { on_tcp_accepted(fd, peer); },
                              [](int err, std::size_t shed, bool first) {
                                if (first)
                                  spdlog::warn("dns: TCP accept failed ({}); {} connection(s) shed, pausing",
                                               std::strerror(-err), shed);
                              },
                              [] { spdlog::warn("dns: accepting TCP connections again"); }});
    }
    if (int rc = tcp_accept_->listen(ep); rc != 0) {
      *error = "dns listen " + ep.to_string() + " (tcp): " + std::strerror(-rc);
      return false;
    }
  }
  return true;
}

void DnsServer::on_tcp_accepted(int fd, const sockaddr_storage& peer) {
  if (conns_.size() >= opt_.max_tcp_connections) {
    ::close(fd);
    return;
  }
  auto c = std::make_shared<TcpConn>();
  c->server = this;
  uv_tcp_init(loop_, &c->handle);
  c->handle.data = c.get();
  c->self = c;
  if (uv_tcp_open(&c->handle, fd) != 0) {
    ::close(fd);
    c->open_handles = 1;
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), [](uv_handle_t* h) { static_cast<TcpConn*>(h->data)->self.reset(); });
    return;
  }
  c->peer = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
  c->open_handles = 2;
  uv_timer_init(loop_, &c->idle);
  c->idle.data = c.get();
  uv_timer_start(&c->idle, [](uv_timer_t* t) { static_cast<TcpConn*>(t->data)->close(); }, opt_.tcp_idle_timeout_ms,
                 opt_.tcp_idle_timeout_ms);
  conns_.push_back(c);
  c->start_reading();
}

void DnsServer::stop() {
  alive_ = std::make_shared<bool>(true);  // pending replies hold the old one weakly: they are dropped
  if (udp_) udp_->close();
  if (tcp_accept_) tcp_accept_->close();
  auto conns = conns_;
  for (auto& c : conns) c->close();
  conns_.clear();
}

}  // namespace outpost::dns
