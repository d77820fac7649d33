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

#include "services/control/control_protocol.hpp"

namespace outpost::control {

namespace {

constexpr std::uint64_t kLingerMs = 1000;

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

  bool start(const Config::Control& cfg, std::string* error) {
    timeout_ms_ = static_cast<std::uint64_t>(cfg.timeout * 1000);
    path_ = cfg.socket;
    uv_pipe_init(worker_.loop(), &pipe_, 0);
    pipe_.data = this;
    open_ = true;
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
      static_cast<Local*>(s->data)->on_connection(status);
    });
    if (rc != 0) {
      *error = "control: cannot listen on " + path_ + ": " + uv_strerror(rc);
      return false;
    }
    return true;
  }

  void set_timeout(double seconds) { timeout_ms_ = static_cast<std::uint64_t>(seconds * 1000); }

  void drain(std::function<void()> done);

  void collect(MetricsVisitor& out) const {
    out.counter("outpost_control_commands_total", "Commands on the control channel, by result", {{"result", "ok"}},
                static_cast<double>(ok_));
    out.counter("outpost_control_commands_total", "Commands on the control channel, by result",
                {{"result", "error"}}, static_cast<double>(errors_));
  }

 private:
  class Connection;
  void on_connection(int status);
  void closed(Connection* c) {
    conns_.erase(c);
    maybe_drained();
  }
  void maybe_drained() {
    if (!draining_ || !conns_.empty() || open_ || !on_drained_) return;
    auto done = std::move(on_drained_);
    on_drained_ = nullptr;
    done();
  }

  ControlService& owner_;
  Worker& worker_;
  uv_pipe_t pipe_;
  std::string path_;
  bool open_ = false;
  bool bound_ = false;
  std::uint64_t timeout_ms_ = 30000;
  std::unordered_set<Connection*> conns_;
  std::uint64_t ok_ = 0, errors_ = 0;
  bool draining_ = false;
  std::function<void()> on_drained_;
};

// One command: read the line (bounded, timed), run it, write the answer, shut down, linger
// until the client closes, close.
class ControlService::Local::Connection {
 public:
  explicit Connection(Local& local) : local_(local) {}

  bool open() {
    uv_loop_t* loop = local_.worker_.loop();
    uv_pipe_init(loop, &pipe_, 0);
    uv_timer_init(loop, &timer_);
    pipe_.data = timer_.data = this;
    if (int rc = uv_accept(reinterpret_cast<uv_stream_t*>(&local_.pipe_), reinterpret_cast<uv_stream_t*>(&pipe_));
        rc != 0) {
      spdlog::warn("control: cannot accept a connection: {}", uv_strerror(rc));
      close();
      return false;
    }
    arm_timer(local_.timeout_ms_);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&pipe_),
        [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
          auto* self = static_cast<Connection*>(h->data);
          *b = uv_buf_init(self->buf_, sizeof self->buf_);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) { static_cast<Connection*>(s->data)->on_read(n); });
    return true;
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    *alive_ = false;
    auto closed = [](uv_handle_t* h) {
      auto* self = static_cast<Connection*>(h->data);
      if (--self->handles_open_ > 0) return;
      self->local_.closed(self);
      delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closed);
  }

 private:
  void arm_timer(std::uint64_t ms) {
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_timeout(); }, ms, 0);
  }

  void on_read(ssize_t n) {
    if (n == 0 || closing_) return;
    if (n < 0) {
      // A client that half-closes after its command still reads the answer: EOF ends the
      // connection only once answered (lingering over) or when no command came.
      if (n == UV_EOF && !answered_) {
        if (running_) return;
        if (!line_.empty()) {  // a last line without its "\n": the command
          run();
          return;
        }
      }
      close();
      return;
    }
    if (answered_ || running_) return;  // more than one line: ignored, the answer is for the first
    line_.append(buf_, static_cast<std::size_t>(n));
    auto end = line_.find('\n');
    if (end == std::string::npos) {
      if (line_.size() > kMaxCommandLine + 1) {
        line_.clear();
        finish(false, "command line longer than " + std::to_string(kMaxCommandLine) + " bytes");
      }
      return;
    }
    line_.resize(end);
    run();
  }

  void run() {
    std::vector<std::string> words;
    std::string error;
    std::string line = std::move(line_);
    line_.clear();
    command_ = line.substr(0, 200);
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
    cmd->run(local_.worker_, args, [this, alive = alive_](bool ok, std::string text) {
      if (!*alive || !running_) return;  // the client went away, or the command timed out
      running_ = false;
      finish(ok, text);
    });
  }

  void on_timeout() {
    if (running_) {
      running_ = false;
      finish(false, "no answer within control.timeout (a worker did not answer)");
    } else if (!answered_) {
      finish(false, "no complete command within control.timeout");
    } else {
      close();  // the answer was not read in time, or lingering is over
    }
  }

  // Writes the answer, then shuts our side down and lingers until the client closes.
  void finish(bool ok, const std::string& text) {
    if (answered_ || closing_) return;
    answered_ = true;
    (ok ? local_.ok_ : local_.errors_)++;
    // The command as received (printable ASCII once parsed; an unparsable one is not echoed).
    if (!ok)
      spdlog::info("control: '{}' failed: {}", words_ok_ ? command_ : "(unreadable)", text.substr(0, text.find('\n')));
    else
      spdlog::info("control: {}", command_);
    out_ = format_answer(ok, text);
    arm_timer(local_.timeout_ms_);
    uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    write_.data = this;
    int rc = uv_write(&write_, reinterpret_cast<uv_stream_t*>(&pipe_), &b, 1, [](uv_write_t* w, int status) {
      auto* self = static_cast<Connection*>(w->data);
      if (status < 0 || self->closing_) {
        self->close();
        return;
      }
      self->out_ = std::string();
      self->shutdown_.data = self;
      if (uv_shutdown(&self->shutdown_, reinterpret_cast<uv_stream_t*>(&self->pipe_), [](uv_shutdown_t*, int) {}) !=
          0) {
        self->close();
        return;
      }
      self->arm_timer(std::min(kLingerMs, self->local_.timeout_ms_));
    });
    if (rc != 0) close();
  }

  Local& local_;
  uv_pipe_t pipe_;
  uv_timer_t timer_;
  uv_write_t write_;
  uv_shutdown_t shutdown_;
  int handles_open_ = 2;
  char buf_[4096];
  std::string line_;
  std::string command_;
  std::string out_;
  bool running_ = false;
  bool words_ok_ = false;
  bool answered_ = false;
  bool closing_ = false;
  // Read by a command's reply, which may come after this connection is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

void ControlService::Local::on_connection(int status) {
  if (status < 0) {
    spdlog::warn("control: accepting on {} failed: {}", path_, uv_strerror(status));
    return;
  }
  auto* c = new Connection(*this);
  if (draining_ || conns_.size() >= kMaxConnections) {
    // Accepted and closed at once: the client sees EOF without an answer.
    conns_.insert(c);
    if (c->open()) c->close();
    return;
  }
  conns_.insert(c);
  c->open();
}

void ControlService::Local::drain(std::function<void()> done) {
  draining_ = true;
  on_drained_ = std::move(done);
  if (bound_) ::unlink(path_.c_str());
  bound_ = false;
  std::vector<Connection*> open(conns_.begin(), conns_.end());
  for (auto* c : open) c->close();
  if (open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), [](uv_handle_t* h) {
      auto* self = static_cast<Local*>(h->data);
      self->open_ = false;
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

bool ControlService::start(Worker& worker, std::string* error) {
  if (config_.socket.empty() || worker.index() != 0) return true;
  local_ = std::make_unique<Local>(*this, worker);
  return local_->start(config_, error);
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
  if (local_ && !workers_.empty())
    workers_[0]->post([this, t = fresh.timeout] {
      if (local_) local_->set_timeout(t);
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
