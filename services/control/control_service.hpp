// The control channel ([control]): `outpost ctl` commands over a Unix socket, like
// unbound-control or varnishadm, and optionally over TCP with mutual TLS (unbound-control's
// control-use-cert). A Service (core/service.hpp).
//
// The Unix socket is off unless control.socket is set. It lives on worker 0 only (commands
// are rare; one loop serves them); the file is created with control.mode (0600 by default):
// whoever can open it controls Outpost, so its permissions are the access control. At
// start-up a socket file left by a dead Outpost is replaced; one that a live process answers
// on is an error (never two Outposts on one socket). At shutdown the file is removed.
//
// TCP (control.tls_listen, off by default), also on worker 0: TLS 1.2 or later
// (tls::TlsStream over core's Acceptor and TcpStream), the server's certificate from
// tls_certificate/tls_key, and the client must present a certificate from tls_ca — the
// certificate is the access control. A client without one, with one from another CA or an
// expired one fails the handshake and is logged ("control: TLS client ADDRESS refused:
// ..."), as is one whose handshake does not finish within control.timeout. At most
// kMaxConnections at once on each of the two (a flood of half-open handshakes cannot lock
// out the Unix socket); more are closed at once. A reload reads the certificate files
// again and moves the listener when tls_listen changed.
//
// A connection carries one command (control_protocol.hpp): a line of words in, "ok"/"error"
// and text out, then the server closes. The command must arrive within control.timeout and
// its answer be ready within it (a command waiting for a stuck worker gets "error" then).
// The commands themselves are added by app/ (add()), which owns what they act on; the
// service knows only the words, the usage text and a handler.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/service.hpp"

namespace outpost::tls {
class ServerContext;
}

namespace outpost::control {

class ControlService final : public Service {
 public:
  static constexpr std::size_t kMaxConnections = 16;

  // A command's answer: call once, on the home worker's loop thread (the one `run` got).
  // Calling it after the client went away is harmless.
  using Reply = std::function<void(bool ok, std::string text)>;
  // `args`: the words after the command's own words.
  using Handler = std::function<void(Worker& home, const std::vector<std::string>& args, Reply reply)>;

  explicit ControlService(std::vector<Worker*> workers);
  ~ControlService() override;

  // Adds a command: `words` is its name ("status", "dns flush"), `usage` what follows it in
  // the help ("NAME | --zone NAME"), `help` one line. Before start().
  void add(std::string words, std::string usage, std::string help, Handler run);

  std::string_view name() const override { return "control"; }
  bool configure(const Config& config, std::string* error) override;
  bool start(Worker& worker, std::string* error) override;
  void collect_metrics(Worker& worker, MetricsVisitor& out) override;
  std::vector<std::string> reload(const Config& config) override;
  void drain(Worker& worker, std::function<void()> done) override;

  // The help text (every command with its usage).
  std::string help() const;

 private:
  struct Command {
    std::vector<std::string> words;
    std::string usage, help;
    Handler run;
  };
  class Local;
  friend class Local;
  // The command `words` names (the longest match), with the number of words it used.
  const Command* find(const std::vector<std::string>& words, std::size_t* used) const;

  static std::shared_ptr<tls::ServerContext> make_tls_context(const Config::Control& c, std::string* error);

  Config::Control config_;
  std::shared_ptr<tls::ServerContext> tls_;  // made on the main thread, used on worker 0's
  std::vector<Worker*> workers_;
  std::vector<Command> commands_;
  std::unique_ptr<Local> local_;  // on worker 0
};

// Runs `task(i)` on every worker's loop thread and hands the results, in worker order, to
// `done` on `home`'s loop thread. A worker that never runs its task (a stuck loop) means
// `done` never runs: callers rely on the control timeout.
void on_each_worker(const std::vector<Worker*>& workers, Worker& home, std::function<std::string(unsigned)> task,
                    std::function<void(std::vector<std::string>)> done);

}  // namespace outpost::control
