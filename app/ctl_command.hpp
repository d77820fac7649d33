// `outpost ctl COMMAND ...`: the client of the control channel (services/control/), like
// unbound-control. It sends one command line and prints the answer, and exits 0 (ok), 1 (the
// command failed) or 2 (no answer: no socket, refused, TLS refused, timed out, not an
// Outpost).
//
// Where it connects, in this order:
//   --socket PATH          the Unix socket;
//   --server HOST:PORT     TCP with mutual TLS: --cert/--key (the client's certificate),
//                          --ca (the CA the server's certificate must chain to) and
//                          --server-name (the name it must carry), each defaulting to the
//                          configuration's [control] ctl_certificate, ctl_key, tls_ca and
//                          tls_server_name, as unbound-control reads control-cert-file and
//                          server-cert-file from unbound.conf;
//   the configuration (-c, or the main --config, or the embedded default): its [control]
//   socket if set, else TCP with mutual TLS to its first tls_listen address (a wildcard
//   address means loopback) with the files above.
//
// `outpost ctl setup DIR [--force] [--name NAME]...` is local (unbound-control-setup): it
// makes DIR/ca.{pem,key}, a server certificate (server.{pem,key}, for tls_server_name
// "outpost-control" and each NAME) and a client certificate (client.{pem,key}), and prints
// the [control] lines that use them.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace outpost {

struct CtlCommand {
  CLI::App* app = nullptr;
  std::string socket;
  std::string config;
  std::string server, cert, key, ca, server_name;
  double timeout = 60;
};

// Adds `ctl` to `cli`; the options land in `c`.
void add_ctl_command(CLI::App& cli, CtlCommand& c);
// Runs it if it was parsed: the exit code, or -1 when it was not. `global_config` is the
// main --config (used when ctl's own is not given).
int run_ctl_command(const CtlCommand& c, const std::string& global_config);

}  // namespace outpost
