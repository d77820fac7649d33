#include "services/snmp/agentx_subagent.hpp"

#include <spdlog/spdlog.h>

#include <cmath>

#include "core/net_address.hpp"
#include "services/snmp/agentx.hpp"

namespace outpost::snmp {

using namespace agentx;

struct Subagent::Conn {
  union {
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  } h;
  uv_connect_t req;
  Subagent* owner = nullptr;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  char buf[16384];
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&h); }
};

namespace {
struct WriteReq {
  uv_write_t req;
  std::vector<std::uint8_t> data;
};
}  // namespace

Subagent::Subagent(uv_loop_t* loop, Options options, ViewFn view)
    : loop_(loop), opt_(std::move(options)), view_(std::move(view)) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

Subagent::~Subagent() { *alive_ = false; }

void Subagent::start() { connect(); }

void Subagent::arm(double seconds, void (*cb)(uv_timer_t*)) {
  if (!timer_open_) return;
  uv_timer_start(&timer_, cb, static_cast<std::uint64_t>(std::llround(seconds * 1000)), 0);
}

void Subagent::connect() {
  if (closing_ || conn_) return;
  auto* c = new Conn;
  c->owner = this;
  c->h.tcp.data = c;
  c->req.data = c;
  ++conns_open_;
  conn_ = c;
  state_ = State::kConnecting;
  auto on_connect = [](uv_connect_t* req, int status) {
    auto* conn = static_cast<Conn*>(req->data);
    if (!*conn->alive) return;  // dropped meanwhile (its handle is closing)
    conn->owner->on_connected(status);
  };
  if (opt_.address.front() == '/') {
    uv_pipe_init(loop_, &c->h.pipe, 0);
    c->h.pipe.data = c;
    uv_pipe_connect(&c->req, &c->h.pipe, opt_.address.c_str(), on_connect);
  } else {
    uv_tcp_init(loop_, &c->h.tcp);
    c->h.tcp.data = c;
    sockaddr_storage sa{};
    socklen_t len = 0;
    auto ep = Endpoint::parse(opt_.address.substr(4));
    int rc = ep && ep->to_sockaddr(&sa, &len) ? uv_tcp_connect(&c->req, &c->h.tcp, reinterpret_cast<sockaddr*>(&sa), on_connect)
                                              : UV_EINVAL;
    if (rc != 0) {
      drop(std::string("cannot connect: ") + uv_strerror(rc), true);
      return;
    }
  }
  arm(opt_.timeout, [](uv_timer_t* t) { static_cast<Subagent*>(t->data)->drop("no answer from the master", true); });
}

void Subagent::on_connected(int status) {
  if (status < 0) {
    drop(std::string("cannot connect: ") + uv_strerror(status), true);
    return;
  }
  uv_read_start(
      conn_->stream(),
      [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
        auto* c = static_cast<Conn*>(h->data);
        *b = uv_buf_init(c->buf, sizeof c->buf);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
        auto* c = static_cast<Conn*>(s->data);
        if (!*c->alive) return;
        if (n < 0) {
          c->owner->drop(n == UV_EOF ? "the master closed the connection" : std::string("read: ") + uv_strerror(static_cast<int>(n)),
                         false);
          return;
        }
        c->owner->on_read(b->base, static_cast<std::size_t>(n));
      });
  state_ = State::kOpening;
  open_packet_ = next_packet_++;
  auto timeout = static_cast<std::uint8_t>(std::clamp(std::lround(opt_.timeout), 1L, 255L));
  send(encode_open(open_packet_, timeout, kOutpostMib, opt_.description));
}

void Subagent::on_read(const char* data, std::size_t n) {
  in_.insert(in_.end(), data, data + n);
  std::size_t used = 0;
  while (conn_ && in_.size() - used >= kHeaderSize) {
    Header h;
    std::string why;
    if (!parse_header({in_.data() + used, in_.size() - used}, &h, &why)) {
      ++stats_.protocol_errors;
      drop("bad PDU from the master: " + why, true);
      return;
    }
    if (in_.size() - used < kHeaderSize + h.payload_length) break;
    std::vector<std::uint8_t> pdu(in_.begin() + static_cast<std::ptrdiff_t>(used),
                                  in_.begin() + static_cast<std::ptrdiff_t>(used + kHeaderSize + h.payload_length));
    used += kHeaderSize + h.payload_length;
    handle(pdu);
  }
  if (conn_) in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
}

void Subagent::handle(const std::vector<std::uint8_t>& pdu) {
  Header h;
  std::string why;
  parse_header(pdu, &h, &why);  // checked by on_read
  std::span<const std::uint8_t> payload(pdu.data() + kHeaderSize, h.payload_length);
  switch (h.type) {
    case PduType::kResponse: {
      Response r;
      if (!parse_response(h, payload, &r, &why)) {
        ++stats_.protocol_errors;
        drop("bad Response from the master: " + why, true);
        return;
      }
      if (state_ == State::kOpening && h.packet_id == open_packet_) {
        if (r.error != kNoError) {
          drop("the master refused the session (error " + std::to_string(r.error) + ")", true);
          return;
        }
        session_ = h.session_id;
        state_ = State::kRegistering;
        registers_pending_ = opt_.subtrees.size();
        auto timeout = static_cast<std::uint8_t>(std::clamp(std::lround(opt_.timeout), 1L, 255L));
        for (const auto& oid : opt_.subtrees) send(encode_register(session_, next_packet_++, timeout, 127, oid));
        return;
      }
      if (state_ == State::kRegistering && registers_pending_ > 0) {
        if (r.error != kNoError)
          spdlog::warn("snmp: the AgentX master at {} refused a registration (error {}{})", opt_.address, r.error,
                       r.error == kDuplicateRegistration ? ": another subagent holds the subtree" : "");
        if (--registers_pending_ == 0) {
          state_ = State::kReady;
          stats_.connected = true;
          ++stats_.sessions;
          failed_logged_ = false;
          uv_timer_stop(&timer_);
          spdlog::info("snmp: AgentX session {} with the master at {}: {} subtree(s) registered", session_, opt_.address,
                       opt_.subtrees.size());
        }
      }
      return;
    }
    case PduType::kGet:
    case PduType::kGetNext:
    case PduType::kGetBulk: {
      auto req = std::make_shared<Request>();
      if (!parse_request(h, payload, req.get(), &why)) {
        ++stats_.protocol_errors;
        spdlog::warn("snmp: bad AgentX request from the master at {}: {}", opt_.address, why);
        send(encode_response(h, kParseError, 0, {}));
        return;
      }
      view_([this, req, alive = conn_->alive](const MibView* view) {
        if (!*alive) return;  // the connection went meanwhile
        ++stats_.requests;
        if (!view) {
          send(encode_response(req->header, kGenErr, 0, {}));
          return;
        }
        send(encode_response(req->header, kNoError, 0, answer(*req, *view)));
      });
      return;
    }
    case PduType::kTestSet:
      ++stats_.sets_refused;
      send(encode_response(h, kNotWritable, 1, {}));
      return;
    case PduType::kCommitSet:
    case PduType::kUndoSet:
      send(encode_response(h, kNoError, 0, {}));
      return;
    case PduType::kCleanupSet:
      return;  // no answer (§7.2.4.4)
    case PduType::kClose:
      drop("the master closed the session", false);
      return;
    default:
      ++stats_.protocol_errors;
      spdlog::debug("snmp: AgentX PDU type {} from the master ignored", static_cast<int>(h.type));
      return;
  }
}

void Subagent::send(std::vector<std::uint8_t> bytes) {
  if (!conn_) return;
  auto* w = new WriteReq;
  w->data = std::move(bytes);
  w->req.data = conn_;
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, conn_->stream(), &buf, 1, [](uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<Conn*>(req->data);
    bool live = *c->alive;
    Subagent* owner = c->owner;
    delete w;
    if (status < 0 && status != UV_ECANCELED && live) owner->drop(std::string("write: ") + uv_strerror(status), true);
  });
  if (rc != 0) {
    delete w;
    drop(std::string("write: ") + uv_strerror(rc), true);
  }
}

void Subagent::drop(const std::string& why, bool error) {
  bool was_ready = state_ == State::kReady;
  bool connecting = state_ == State::kConnecting;
  if (conn_) {
    Conn* c = conn_;
    conn_ = nullptr;
    *c->alive = false;
    uv_close(c->handle(), [](uv_handle_t* h) {
      auto* c = static_cast<Conn*>(h->data);
      Subagent* owner = c->owner;
      delete c;
      --owner->conns_open_;
      owner->maybe_done();
    });
  }
  state_ = State::kIdle;
  stats_.connected = false;
  session_ = 0;
  in_.clear();
  if (closing_) return;
  if (connecting) ++stats_.connect_failures;
  if (was_ready)
    spdlog::warn("snmp: AgentX session with the master at {} ended: {}; trying again every {} s", opt_.address, why,
                 opt_.retry);
  else if (!failed_logged_) {
    failed_logged_ = true;  // once until a session opens: a master that stays down is one line
    spdlog::warn("snmp: AgentX master at {}: {}{}; trying again every {} s", opt_.address, why,
                 error ? "" : " (before the session was open)", opt_.retry);
  } else {
    spdlog::debug("snmp: AgentX master at {}: {}", opt_.address, why);
  }
  arm(opt_.retry, [](uv_timer_t* t) { static_cast<Subagent*>(t->data)->connect(); });
}

void Subagent::close(std::function<void()> done) {
  closing_ = true;
  on_closed_ = std::move(done);
  if (conn_ && state_ == State::kReady) {
    auto bytes = encode_close(session_, next_packet_++, kReasonShutdown);
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
    uv_try_write(conn_->stream(), &buf, 1);  // a small PDU on an idle socket; lost if not, which the master survives
  }
  drop("shutting down", false);
  if (timer_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<Subagent*>(h->data);
      self->timer_open_ = false;
      self->maybe_done();
    });
  }
}

void Subagent::maybe_done() {
  if (!closing_ || conns_open_ > 0 || timer_open_ || !on_closed_) return;
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

}  // namespace outpost::snmp
