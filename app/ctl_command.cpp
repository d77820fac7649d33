#include "app/ctl_command.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "core/config.hpp"
#include "core/tcp_stream.hpp"
#include "services/control/control_protocol.hpp"
#include "tls/ca.hpp"
#include "tls/tls_context.hpp"
#include "tls/tls_stream.hpp"

namespace outpost {

void add_ctl_command(CLI::App& cli, CtlCommand& c) {
  c.app = cli.add_subcommand(
      "ctl", "Send a command to a running Outpost (control channel); `outpost ctl help` lists them; "
             "`outpost ctl setup DIR` makes certificates for TCP with mutual TLS");
  c.app->add_option("-s,--socket", c.socket, "Control socket (default: [control] socket of the configuration)");
  c.app->add_option("-c,--config", c.config, "Configuration file whose [control] settings to use");
  c.app->add_option("--server", c.server, "HOST:PORT: TCP with mutual TLS instead of the socket");
  c.app->add_option("--cert", c.cert, "Client certificate for --server (default: [control] ctl_certificate)");
  c.app->add_option("--key", c.key, "Its private key (default: [control] ctl_key)");
  c.app->add_option("--ca", c.ca, "CA the server's certificate must chain to (default: [control] tls_ca)");
  c.app->add_option("--server-name", c.server_name,
                    "Name the server's certificate must carry (default: [control] tls_server_name)");
  c.app->add_option("-t,--timeout", c.timeout, "Seconds to wait for the answer")->check(CLI::Range(0.1, 3600.0));
  // Everything from the first word on is the command, options such as --prefix included.
  c.app->prefix_command();
}

namespace {

int fail(const std::string& why) {
  std::cerr << "outpost ctl: " << why << "\n";
  return 2;
}

// The exchange over the Unix socket: "" and *answer, or why not.
std::string unix_exchange(const std::string& path, const std::string& line, double timeout, std::string* answer) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) return "socket path too long: " + path;
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    ::close(fd);
    return "cannot connect to " + path + ": " + std::strerror(e) +
           (e == ENOENT || e == ECONNREFUSED ? " (is Outpost running with this [control] socket?)" : "");
  }
  std::size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      return "cannot send the command: " + std::string(std::strerror(e));
    }
    sent += static_cast<std::size_t>(n);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::close(fd);
      return "no answer within " + std::to_string(timeout) + " s";
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return "reading the answer: " + std::string(std::strerror(e));
    }
    if (n == 0) break;
    answer->append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {};
}

struct TlsTarget {
  std::string server;  // HOST:PORT
  std::string cert, key, ca, server_name;
};

// HOST:PORT to an address: an IP literal, or a name looked up (the first address).
std::optional<SocketAddress> resolve(const std::string& server, std::string* error) {
  auto ep = Endpoint::parse(server);
  if (!ep) {
    *error = "--server " + server + ": expected HOST:PORT";
    return std::nullopt;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ep->to_sockaddr(&ss, &len)) return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(ep->host.c_str(), nullptr, &hints, &res); rc != 0 || !res) {
    *error = "cannot resolve " + ep->host + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  auto a = SocketAddress::from_sockaddr(res->ai_addr);
  ::freeaddrinfo(res);
  if (a) a->port = ep->port;
  return a;
}

// The exchange over TCP with mutual TLS, on a loop of its own with the proxy's TLS stream:
// "" and *answer, or why not.
std::string tls_exchange(const TlsTarget& t, const std::string& line, double timeout, std::string* answer) {
  std::string error;
  auto to = resolve(t.server, &error);
  if (!to) return error;
  auto ctx = tls::ClientContext::create({t.ca, {}, t.cert, t.key}, &error);
  if (!ctx) return "TLS settings: " + error;
  struct Exchange final : StreamHandler {
    StreamPtr stream;
    std::string line, *answer = nullptr, error;
    bool done = false, connected = false;
    uv_timer_t timer;
    void finish(std::string why) {
      if (done) return;
      done = true;
      error = std::move(why);
      stream.reset();
      uv_timer_stop(&timer);
    }
    void on_connected() override {
      connected = true;
      ChunkRef c = ChunkRef::copy_of(line);
      const char* p = c->data();
      std::vector<Slice> out{Slice{std::move(c), p, line.size()}};
      if (stream->write(std::move(out)) < 0) return finish("cannot send the command");
      stream->read_start();
    }
    void on_read(Slice data) override { answer->append(data.data, data.size); }
    void on_eof() override { finish({}); }
    void on_error(int, std::string_view what) override {
      // After our handshake, a TLS 1.3 server that refuses our certificate says so with an
      // alert on the first read.
      if (!answer->empty()) return finish({});  // the answer, then no close_notify: judged by its form
      std::string w(what);
      if (connected && answer->empty() && w.find("alert") != std::string::npos)
        w = "the server refused the connection: " + w + " (is the client certificate from the server's tls_ca?)";
      finish(w);
    }
  } x;
  uv_loop_t loop;
  uv_loop_init(&loop);
  x.line = line;
  x.answer = answer;
  uv_timer_init(&loop, &x.timer);
  x.timer.data = &x;
  uv_timer_start(
      &x.timer,
      [](uv_timer_t* h) {
        static_cast<Exchange*>(h->data)->finish("no answer within the timeout");
      },
      static_cast<std::uint64_t>(timeout * 1000), 0);
  x.stream = tls::make_client_stream(*ctx, StreamPtr(new TcpStream(&loop)), t.server_name, "");
  if (x.stream) x.stream->set_handler(&x);
  if (int rc = x.stream ? x.stream->connect(*to) : UV_EINVAL; rc != 0)
    x.finish("cannot connect to " + t.server + ": " + uv_strerror(rc));
  if (!x.done) uv_run(&loop, UV_RUN_DEFAULT);
  x.stream.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&x.timer), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);  // the closes
  uv_loop_close(&loop);
  if (!x.error.empty() && x.error.rfind("connect: ", 0) == 0)
    return "cannot connect to " + t.server + ": " + x.error.substr(9) + " (is Outpost listening there, [control] tls_listen?)";
  return x.error;
}

// `outpost ctl setup DIR [--force] [--name NAME]...`
int run_setup(const std::vector<std::string>& words) {
  std::string dir;
  std::vector<std::string> names = {"outpost-control"};
  bool force = false;
  for (std::size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "--force") {
      force = true;
    } else if (words[i] == "--name" && i + 1 < words.size()) {
      names.push_back(words[++i]);
    } else if (dir.empty() && !words[i].empty() && words[i][0] != '-') {
      dir = words[i];
    } else {
      return fail("usage: outpost ctl setup DIR [--force] [--name NAME]...");
    }
  }
  if (dir.empty()) return fail("usage: outpost ctl setup DIR [--force] [--name NAME]...");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail("cannot make " + dir + ": " + std::strerror(errno));
  char real[PATH_MAX];
  if (!::realpath(dir.c_str(), real)) return fail("cannot use " + dir + ": " + std::strerror(errno));
  dir = real;
  auto f = [&dir](const char* name) { return dir + "/" + name; };
  std::string error;
  tls::CaOptions ca;
  ca.cert_file = f("ca.pem");
  ca.key_file = f("ca.key");
  ca.common_name = "Outpost control CA";
  ca.overwrite = force;
  tls::IssueOptions server{f("ca.pem"), f("ca.key"), f("server.pem"), f("server.key"), "outpost-control", names, false,
                           3650, force};
  tls::IssueOptions client{f("ca.pem"), f("ca.key"), f("client.pem"), f("client.key"), "outpost-ctl", {}, true,
                           3650, force};
  if (!tls::create_ca(ca, &error) || !tls::issue_certificate(server, &error) ||
      !tls::issue_certificate(client, &error))
    return fail(error);
  std::cout << "made in " << dir << ":\n"
            << "  ca.pem, ca.key          the CA both ends trust (keep ca.key private: it can sign more clients)\n"
            << "  server.pem, server.key  Outpost's certificate, for the name(s)";
  for (const auto& n : names) std::cout << " " << n;
  std::cout << "\n  client.pem, client.key  outpost ctl's certificate (CN=outpost-ctl)\n"
            << "Add to the configuration (then restart, or reload):\n"
            << "[control]\n"
            << "tls_listen = [\"127.0.0.1:8953\"]\n"
            << "tls_certificate = \"" << f("server.pem") << "\"\n"
            << "tls_key = \"" << f("server.key") << "\"\n"
            << "tls_ca = \"" << f("ca.pem") << "\"\n"
            << "ctl_certificate = \"" << f("client.pem") << "\"\n"
            << "ctl_key = \"" << f("client.key") << "\"\n";
  return 0;
}

}  // namespace

int run_ctl_command(const CtlCommand& c, const std::string& global_config) {
  if (!c.app || !c.app->parsed()) return -1;
  std::vector<std::string> words = c.app->remaining();
  if (words.empty()) words = {"help"};
  if (words[0] == "setup") return run_setup(words);
  std::string path = c.socket;
  TlsTarget tls{c.server, c.cert, c.key, c.ca, c.server_name};
  bool need_config = path.empty() && (tls.server.empty() || tls.cert.empty() || tls.key.empty() || tls.ca.empty() ||
                                      tls.server_name.empty());
  if (need_config) {
    std::string cfg = c.config.empty() ? global_config : c.config;
    Config::Control control;
    try {
      control = (cfg.empty() ? Config::load_default() : Config::load_file(cfg)).control;
    } catch (const ConfigError& e) {
      return fail(std::string("configuration error: ") + e.what());
    }
    if (tls.server.empty()) {
      if (!control.socket.empty()) {
        path = control.socket;
      } else if (!control.tls_listen.empty()) {
        Endpoint ep = control.tls_listen.front();
        if (ep.host == "0.0.0.0") ep.host = "127.0.0.1";
        if (ep.host == "::" || ep.host == "[::]") ep.host = "::1";
        tls.server = ep.to_string();
      } else {
        return fail("no control socket: give --socket or --server, or a configuration (-c) whose [control] socket or "
                    "tls_listen is set");
      }
    }
    if (tls.cert.empty()) tls.cert = control.ctl_certificate;
    if (tls.key.empty()) tls.key = control.ctl_key;
    if (tls.ca.empty()) tls.ca = control.tls_ca;
    if (tls.server_name.empty()) tls.server_name = control.tls_server_name;
  }
  if (path.empty() && (tls.cert.empty() || tls.key.empty() || tls.ca.empty()))
    return fail("TCP with mutual TLS needs a client certificate, its key and the CA: --cert, --key and --ca, or a "
                "configuration whose [control] ctl_certificate, ctl_key and tls_ca are set");
  std::string line = control::format_command(words);
  std::vector<std::string> check;
  std::string error;
  if (!control::parse_command_line(std::string_view(line).substr(0, line.size() - 1), &check, &error))
    return fail(error);
  std::string answer;
  error = path.empty() ? tls_exchange(tls, line, c.timeout, &answer) : unix_exchange(path, line, c.timeout, &answer);
  if (!error.empty()) return fail(error);
  bool ok = false;
  std::string text;
  if (!control::parse_answer(answer, &ok, &text))
    return fail(answer.empty() ? "the server closed without an answer" : "not a control answer");
  (ok ? std::cout : std::cerr) << text;
  return ok ? 0 : 1;
}

}  // namespace outpost
