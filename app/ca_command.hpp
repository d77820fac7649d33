// `outpost ca init` and `outpost ca show`: the local CA for HTTPS interception (tls/ca).
#pragma once
#include <CLI/CLI.hpp>

namespace outpost {

struct CaCommand {
  CLI::App* init = nullptr;
  CLI::App* show = nullptr;
  std::string cert_file = "outpost-ca.pem";
  std::string key_file = "outpost-ca.key";
  bool rsa = false;
  bool force = false;
  std::string name;
};

// Adds `ca init` and `ca show` to `cli`; the options land in `c`.
void add_ca_command(CLI::App& cli, CaCommand& c);
// Runs whichever was parsed: the exit code, or -1 when neither was.
int run_ca_command(const CaCommand& c);

}  // namespace outpost
