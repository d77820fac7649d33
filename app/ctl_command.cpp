#include "app/ctl_command.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "core/config.hpp"
#include "services/control/control_protocol.hpp"

namespace outpost {

void add_ctl_command(CLI::App& cli, CtlCommand& c) {
  c.app = cli.add_subcommand("ctl", "Send a command to a running Outpost (control channel); `outpost ctl help` lists them");
  c.app->add_option("-s,--socket", c.socket, "Control socket (default: [control] socket of the configuration)");
  c.app->add_option("-c,--config", c.config, "Configuration file whose [control] socket to use");
  c.app->add_option("-t,--timeout", c.timeout, "Seconds to wait for the answer")->check(CLI::Range(0.1, 3600.0));
  // Everything from the first word on is the command, options such as --prefix included.
  c.app->prefix_command();
}

namespace {

int fail(const std::string& why) {
  std::cerr << "outpost ctl: " << why << "\n";
  return 2;
}

}  // namespace

int run_ctl_command(const CtlCommand& c, const std::string& global_config) {
  if (!c.app || !c.app->parsed()) return -1;
  std::vector<std::string> words = c.app->remaining();
  if (words.empty()) words = {"help"};
  std::string path = c.socket;
  if (path.empty()) {
    std::string cfg = c.config.empty() ? global_config : c.config;
    try {
      Config config = cfg.empty() ? Config::load_default() : Config::load_file(cfg);
      path = config.control.socket;
    } catch (const ConfigError& e) {
      return fail(std::string("configuration error: ") + e.what());
    }
    if (path.empty())
      return fail("no control socket: give --socket, or a configuration (-c) whose [control] socket is set");
  }
  std::string line = control::format_command(words);
  std::vector<std::string> check;
  std::string error;
  if (!control::parse_command_line(std::string_view(line).substr(0, line.size() - 1), &check, &error))
    return fail(error);
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) return fail("socket path too long: " + path);
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    ::close(fd);
    return fail("cannot connect to " + path + ": " + std::strerror(e) +
                (e == ENOENT || e == ECONNREFUSED ? " (is Outpost running with this [control] socket?)" : ""));
  }
  std::size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      return fail("cannot send the command: " + std::string(std::strerror(e)));
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(c.timeout);
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::close(fd);
      return fail("no answer within " + std::to_string(c.timeout) + " s");
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
      return fail("reading the answer: " + std::string(std::strerror(e)));
    }
    if (n == 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  bool ok = false;
  std::string text;
  if (!control::parse_answer(answer, &ok, &text))
    return fail(answer.empty() ? "the server closed without an answer" : "not a control answer");
  (ok ? std::cout : std::cerr) << text;
  return ok ? 0 : 1;
}

}  // namespace outpost
