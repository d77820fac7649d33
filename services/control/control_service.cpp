#include "services/control/control_service.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "core/log.hpp"
#include "core/one_shot_connection.hpp"
#include "core/tcp_stream.hpp"
#include "services/control/control_protocol.hpp"
#include "tls/tls_context.hpp"
#include "tls/tls_stream.hpp"

namespace outpost::control {

namespace {

// Whether a process accepts connections on the Unix socket at `path` (a blocking connect on
// the main thread at start-up: a Unix socket answers at once or refuses).
bool socket_answers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), std::min(path.size(), sizeof sa.sun_path - 1));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

void on_each_worker(const std::vector<Worker*>& workers, Worker& home, std::function<std::string(unsigned)> task,
                    std::function<void(std::vector<std::string>)> done) {
  struct State {
    std::vector<std::string> results;
    std::size_t left;
    std::function<std::string(unsigned)> task;
    std::function<void(std::vector<std::string>)> done;
  };
  auto st = std::make_shared<State>();
  st->results.resize(workers.size());
  st->left = workers.size();
  st->task = std::move(task);
  st->done = std::move(done);
  if (workers.empty()) {
    home.post([st] { st->done({}); });
    return;
  }
  for (std::size_t i = 0; i < workers.size(); ++i)
    workers[i]->post([st, i, &home] {
      std::string r = st->task(static_cast<unsigned>(i));
      home.post([st, i, r = std::move(r)]() mutable {
        st->results[i] = std::move(r);
        if (--st->left == 0) st->done(std::move(st->results));
      });
    });
}

class ControlService::Local {
 public:
  Local(ControlService& owner, Worker& worker) : owner_(owner), worker_(worker) {}

  bool start(const Config::Control& cfg, std::shared_ptr<tls::ServerContext> tls, std::string* error) {
    timeout_ms_ = static_cast<std::uint64_t>(cfg.timeout * 1000);
    if (!cfg.socket.empty() && !start_unix(cfg, error)) return false;
    if (!cfg.tls_listen.empty() && !listen_tls(cfg.tls_listen, {}, error)) return false;
    tls_ = std::move(tls);
    return true;
  }

  void set_timeout(double seconds) { timeout_ms_ = static_cast<std::uint64_t>(seconds * 1000); }

  // A reload: new connections use `tls` (certificates read again); the listener moves when
  // `listen` differs from the running one (kept if the new one cannot be opened).
  void update_tls(std::vector<Endpoint> listen, std::shared_ptr<tls::ServerContext> tls) {
    if (draining_) return;
    auto text = [](const std::vector<Endpoint>& eps) {
      std::string t;
      for (const auto& ep : eps) t += ep.to_string() + " ";
      return t;
    };
    if (text(listen) != text(tls_listen_)) {
      std::string error;
      auto old = std::move(acceptor_);
      auto old_listen = std::move(tls_listen_);
      tls_listen_.clear();
      if (!listen.empty() && !listen_tls(listen, old_listen, &error)) {
        spdlog::error("{} (the TLS listener stays {})", error, old ? "on " + text(old_listen) : "off");
        acceptor_ = std::move(old);
        tls_listen_ = std::move(old_listen);
      } else {
        if (old) old->close();
        spdlog::info("control: TLS listener {}", listen.empty() ? "closed" : "on " + text(listen));
      }
    }
    if (tls) tls_ = std::move(tls);
  }

  void drain(std::function<void()> done);

  void collect(MetricsVisitor& out) const {
    if (!used_) return;  // no control channel
    out.counter("outpost_control_commands_total", "Commands on the control channel, by result", {{"result", "ok"}},
                static_cast<double>(ok_));
    out.counter("outpost_control_commands_total", "Commands on the control channel, by result",
                {{"result", "error"}}, static_cast<double>(errors_));
    out.counter("outpost_control_tls_refused_total",
                "TLS clients of the control channel refused (no or a bad certificate, no handshake in time, "
                "over the connection limit)",
                {}, static_cast<double>(tls_refused_));
    out.gauge("outpost_control_connections", "Open connections of the control channel", {{"transport", "unix"}},
              static_cast<double>(open_[0]));
    out.gauge("outpost_control_connections", "Open connections of the control channel", {{"transport", "tls"}},
              static_cast<double>(open_[1]));
  }

 private:
  class Connection;

  bool start_unix(const Config::Control& cfg, std::string* error) {
    used_ = true;
    path_ = cfg.socket;
    uv_pipe_init(worker_.loop(), &pipe_, 0);
    pipe_.data = this;
    open_pipe_ = true;
    if (int rc = uv_pipe_bind(&pipe_, path_.c_str()); rc != 0) {
      *error = "control: cannot create the socket " + path_ + ": " + uv_strerror(rc);
      return false;
    }
    bound_ = true;
    // The permissions are set before listen(): until then nobody can connect.
    if (::chmod(path_.c_str(), cfg.mode) != 0) {
      *error = "control: cannot set the permissions of " + path_ + ": " + std::strerror(errno);
      return false;
    }
    int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&pipe_), 16, [](uv_stream_t* s, int status) {
      static_cast<Local*>(s->data)->on_unix_connection(status);
    });
    if (rc != 0) {
      *error = "control: cannot listen on " + path_ + ": " + uv_strerror(rc);
      return false;
    }
    return true;
  }

  // A new acceptor on `listen` (acceptor_, tls_listen_); false with *error if an address
  // cannot be opened (then acceptor_ is empty). An address not in `held` (ours already) that
  // another socket holds is refused, never shared through SO_REUSEPORT.
  bool listen_tls(const std::vector<Endpoint>& listen, const std::vector<Endpoint>& held, std::string* error) {
    used_ = true;
    for (const auto& ep : listen) {
      bool ours = std::any_of(held.begin(), held.end(), [&](const Endpoint& h) { return h.to_string() == ep.to_string(); });
      if (int rc = ours ? 0 : probe_address(ep, true); rc != 0) {
        *error = "control: cannot listen on " + ep.to_string() + ": " + std::strerror(-rc);
        return false;
      }
    }
    acceptor_ = std::make_unique<Acceptor>(
        worker_.loop(), "",
        Acceptor::Callbacks{[this](int fd, const sockaddr_storage& peer) { on_tls_accepted(fd, peer); },
                            [this](int e, std::size_t, bool first) {
                              if (first) spdlog::warn("control: cannot accept TLS connections: {}", uv_strerror(e));
                            },
                            [] {}});
    for (const auto& ep : listen) {
      if (int rc = acceptor_->listen(ep); rc != 0) {
        *error = "control: cannot listen on " + ep.to_string() + ": " + uv_strerror(rc);
        acceptor_->close();
        acceptor_.reset();
        return false;
      }
    }
    tls_listen_ = listen;
    return true;
  }

  void on_unix_connection(int status);
  void on_tls_accepted(int fd, const sockaddr_storage& peer);
  // Every refused handshake is logged (at most kMaxConnections are under way at once); the
  // connections over the limit, which cost nothing, at most once a second.
  void refuse_tls(const std::string& peer, const std::string& why, bool over_limit = false) {
    ++tls_refused_;
    std::uint64_t held = 0;
    if (!over_limit)
      spdlog::warn("control: TLS client {} refused: {}", peer, why);
    else if (over_limit_log_.allow(uv_now(worker_.loop()), &held))
      spdlog::warn("control: TLS client {} refused: {}{}", peer, why,
                   held ? " (" + std::to_string(held) + " more since the last line)" : "");
  }
  void closed(Connection* c, bool tls) {
    conns_.erase(c);
    --open_[tls ? 1 : 0];
    maybe_drained();
  }
  void maybe_drained() {
    if (!draining_ || !conns_.empty() || open_pipe_ || !on_drained_) return;
    auto done = std::move(on_drained_);
    on_drained_ = nullptr;
    done();
  }

  ControlService& owner_;
  Worker& worker_;
  uv_pipe_t pipe_;
  std::string path_;
  bool open_pipe_ = false;
  bool bound_ = false;
  std::unique_ptr<Acceptor> acceptor_;
  std::vector<Endpoint> tls_listen_;
  std::shared_ptr<tls::ServerContext> tls_;
  std::uint64_t timeout_ms_ = 30000;
  std::unordered_set<Connection*> conns_;
  std::size_t open_[2] = {0, 0};  // Unix, TLS
  std::uint64_t ok_ = 0, errors_ = 0, tls_refused_ = 0;
  log::Limiter over_limit_log_{1000};
  bool used_ = false;  // a socket or a listener was opened
  bool draining_ = false;
  std::function<void()> on_drained_;
};

// One command (core/one_shot_connection.hpp): read the line, run it, answer, linger, close.
// Over TLS the handshake comes first (the stream runs it): a client without a good
// certificate never gets to send a line.
class ControlService::Local::Connection final : public OneShotConnection {
 public:
  Connection(Local& local, StreamPtr stream, tls::TlsStream* tls, std::shared_ptr<tls::ServerContext> ctx,
             std::string peer)
      : OneShotConnection(local.worker_.loop(), std::move(stream), local.timeout_ms_),
        local_(local),
        tls_(tls),
        ctx_(std::move(ctx)),
        peer_(std::move(peer)) {}

 private:
  void on_input(std::string& input, bool eof) override {
    auto end = input.find('\n');
    std::string line;
    if (end != std::string::npos) {
      line = input.substr(0, end);
    } else if (input.size() > kMaxCommandLine + 1) {
      stop_input();
      finish(false, "command line longer than " + std::to_string(kMaxCommandLine) + " bytes");
      return;
    } else if (eof && !input.empty()) {
      line = input;  // a last line without its "\n": the command
    } else {
      return;  // more to come (or, at EOF with nothing, the client gave up)
    }
    stop_input();
    run(std::move(line));
  }

  void run(std::string line) {
    std::vector<std::string> words;
    std::string error;
    command_ = line.substr(0, 200);
    if (tls_) from_ = " (from " + peer_ + ", " + tls_->peer_subject() + ")";
    if (!parse_command_line(line, &words, &error)) {
      finish(false, error);
      return;
    }
    words_ok_ = true;
    std::size_t used = 0;
    const Command* cmd = local_.owner_.find(words, &used);
    if (!cmd) {
      finish(false, "unknown command '" + words[0] + "'; the commands are:\n" + local_.owner_.help());
      return;
    }
    running_ = true;
    std::vector<std::string> args(words.begin() + static_cast<std::ptrdiff_t>(used), words.end());
    cmd->run(local_.worker_, args, [this, alive = alive()](bool ok, std::string text) {
      if (!*alive || !running_) return;  // the client went away, or the command timed out
      running_ = false;
      finish(ok, text);
    });
  }

  void on_deadline() override {
    if (running_) {
      running_ = false;
      finish(false, "no answer within control.timeout (a worker did not answer)");
    } else if (tls_ && !tls_->handshake_done()) {
      local_.refuse_tls(peer_, "no TLS handshake within control.timeout");  // closed without an answer
    } else {
      finish(false, "no complete command within control.timeout");
    }
  }

  void on_stream_error(int, std::string_view what) override {
    if (tls_ && !tls_->handshake_done())
      local_.refuse_tls(peer_, std::string(what));
    else
      spdlog::debug("control: connection{} ended: {}", from_, what);
  }

  void on_closed() override { local_.closed(this, tls_ != nullptr); }

  void finish(bool ok, const std::string& text) {
    if (answered()) return;
    (ok ? local_.ok_ : local_.errors_)++;
    // The command as received (printable ASCII once parsed; an unparsable one is not echoed).
    if (!ok)
      spdlog::info("control: '{}' failed{}: {}", words_ok_ ? command_ : "(unreadable)", from_,
                   text.substr(0, text.find('\n')));
    else
      spdlog::info("control: {}{}", command_, from_);
    answer(format_answer(ok, text));
  }

  Local& local_;
  tls::TlsStream* tls_;  // the stream, when it is TLS (owned by the base)
  std::shared_ptr<tls::ServerContext> ctx_;  // the context tls_ was made from outlives it
  std::string peer_;
  std::string command_;
  std::string from_;  // " (from ADDRESS, SUBJECT)" over TLS
  bool running_ = false;
  bool words_ok_ = false;
};

void ControlService::Local::on_unix_connection(int status) {
  if (status < 0) {
    spdlog::warn("control: accepting on {} failed: {}", path_, uv_strerror(status));
    return;
  }
  auto* t = TcpStream::make_unix(worker_.loop());
  StreamPtr stream(t);
  if (int rc = t->accept_from(reinterpret_cast<uv_stream_t*>(&pipe_)); rc != 0) {
    spdlog::warn("control: cannot accept a connection: {}", uv_strerror(rc));
    return;
  }
  // Over the limit, or draining: closed at once, the client sees EOF without an answer.
  if (draining_ || open_[0] >= kMaxConnections) return;
  auto* c = new Connection(*this, std::move(stream), nullptr, nullptr, "unix");
  conns_.insert(c);
  ++open_[0];
  c->start();
}

void ControlService::Local::on_tls_accepted(int fd, const sockaddr_storage& peer) {
  std::string who = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer))
                        .value_or(SocketAddress{})
                        .to_string();
  if (draining_ || !tls_ || open_[1] >= kMaxConnections) {
    // Half-open handshakes hold at most kMaxConnections slots; the rest are closed at once.
    ::close(fd);
    if (!draining_) refuse_tls(who, "more than " + std::to_string(kMaxConnections) + " connections open", true);
    return;
  }
  auto* t = new TcpStream(worker_.loop());
  StreamPtr transport(t);
  if (int rc = t->open(fd); rc != 0) {
    spdlog::warn("control: cannot use an accepted connection: {}", uv_strerror(rc));
    ::close(fd);
    return;
  }
  StreamPtr stream = tls::make_server_stream(*tls_, std::move(transport));
  if (!stream) return;
  auto* tls = static_cast<tls::TlsStream*>(stream.get());
  auto* c = new Connection(*this, std::move(stream), tls, tls_, std::move(who));
  conns_.insert(c);
  ++open_[1];
  c->start();
}

void ControlService::Local::drain(std::function<void()> done) {
  draining_ = true;
  on_drained_ = std::move(done);
  if (bound_) ::unlink(path_.c_str());
  bound_ = false;
  if (acceptor_) acceptor_->close();
  std::vector<Connection*> open(conns_.begin(), conns_.end());
  for (auto* c : open) c->close();
  if (open_pipe_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), [](uv_handle_t* h) {
      auto* self = static_cast<Local*>(h->data);
      self->open_pipe_ = false;
      self->maybe_drained();
    });
    return;
  }
  maybe_drained();
}

ControlService::ControlService(std::vector<Worker*> workers) : workers_(std::move(workers)) {
  add("help", "", "this list", [this](Worker&, const std::vector<std::string>&, Reply reply) {
    reply(true, help());
  });
}

ControlService::~ControlService() = default;

void ControlService::add(std::string words, std::string usage, std::string help, Handler run) {
  Command c;
  std::string error;
  parse_command_line(words, &c.words, &error);
  c.usage = std::move(usage);
  c.help = std::move(help);
  c.run = std::move(run);
  commands_.push_back(std::move(c));
}

const ControlService::Command* ControlService::find(const std::vector<std::string>& words, std::size_t* used) const {
  const Command* best = nullptr;
  for (const auto& c : commands_) {
    if (c.words.size() > words.size() || (best && best->words.size() >= c.words.size())) continue;
    if (std::equal(c.words.begin(), c.words.end(), words.begin())) best = &c;
  }
  if (best) *used = best->words.size();
  return best;
}

std::string ControlService::help() const {
  std::string out;
  for (const auto& c : commands_) {
    std::string left;
    for (const auto& w : c.words) left += (left.empty() ? "" : " ") + w;
    if (!c.usage.empty()) left += " " + c.usage;
    out += "  " + left;
    out += std::string(left.size() < 34 ? 34 - left.size() : 1, ' ');
    out += c.help + "\n";
  }
  return out;
}

bool ControlService::configure(const Config& config, std::string* error) {
  config_ = config.control;
  if (!config_.tls_listen.empty() && !(tls_ = make_tls_context(config_, error))) return false;
  if (config_.socket.empty()) return true;
  struct stat st{};
  if (::lstat(config_.socket.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = "control.socket " + config_.socket + " exists and is not a socket (not replaced)";
      return false;
    }
    if (socket_answers(config_.socket)) {
      *error = "control.socket " + config_.socket + ": another process (another Outpost?) answers on it";
      return false;
    }
    // Left by a process that is gone: ours now.
    if (::unlink(config_.socket.c_str()) != 0) {
      *error = "control.socket " + config_.socket + ": cannot remove the stale socket: " + std::strerror(errno);
      return false;
    }
    spdlog::warn("control: removed the stale socket {} (left by a process that is gone)", config_.socket);
  }
  return true;
}

std::shared_ptr<tls::ServerContext> ControlService::make_tls_context(const Config::Control& c, std::string* error) {
  std::string why;
  // Only the control protocol: no ALPN is negotiated.
  std::shared_ptr<tls::ServerContext> ctx = tls::ServerContext::create({c.tls_certificate, c.tls_key, {}, c.tls_ca}, &why);
  if (!ctx)
    *error = "control: cannot use " + c.tls_certificate + " with " + c.tls_key + " and CA " + c.tls_ca + ": " + why;
  return ctx;
}

bool ControlService::start(Worker& worker, std::string* error) {
  if (worker.index() != 0) return true;
  // Always there on worker 0, so that a reload can open the TLS listener.
  local_ = std::make_unique<Local>(*this, worker);
  return local_->start(config_, tls_, error);
}

void ControlService::collect_metrics(Worker& worker, MetricsVisitor& out) {
  if (local_ && worker.index() == 0) local_->collect(out);
}

std::vector<std::string> ControlService::reload(const Config& config) {
  std::vector<std::string> restart;
  const auto& fresh = config.control;
  if (fresh.socket != config_.socket) restart.push_back("control.socket");
  if (!config_.socket.empty() && fresh.mode != config_.mode) {
    if (::chmod(config_.socket.c_str(), fresh.mode) != 0)
      spdlog::error("control: cannot set the permissions of {}: {}", config_.socket, std::strerror(errno));
    config_.mode = fresh.mode;
  }
  config_.timeout = fresh.timeout;
  // TLS: the files are read again (a renewed certificate or CA applies to new connections),
  // and the listener follows tls_listen. A context that cannot be made keeps the old one
  // (the configuration check made one, so the files changed since).
  std::shared_ptr<tls::ServerContext> ctx;
  if (!fresh.tls_listen.empty()) {
    std::string error;
    ctx = make_tls_context(fresh, &error);
    if (!ctx) spdlog::error("{} (the TLS listener keeps its settings)", error);
  }
  if (ctx || fresh.tls_listen.empty()) {
    config_.tls_listen = fresh.tls_listen;
    config_.tls_certificate = fresh.tls_certificate;
    config_.tls_key = fresh.tls_key;
    config_.tls_ca = fresh.tls_ca;
    if (ctx) tls_ = ctx;
  }
  config_.ctl_certificate = fresh.ctl_certificate;
  config_.ctl_key = fresh.ctl_key;
  config_.tls_server_name = fresh.tls_server_name;
  if (local_ && !workers_.empty())
    workers_[0]->post([this, t = fresh.timeout, listen = config_.tls_listen, ctx] {
      if (!local_) return;
      local_->set_timeout(t);
      local_->update_tls(listen, ctx);
    });
  return restart;
}

void ControlService::drain(Worker& worker, std::function<void()> done) {
  if (!local_ || worker.index() != 0) {
    done();
    return;
  }
  local_->drain(std::move(done));
}

}  // namespace outpost::control
