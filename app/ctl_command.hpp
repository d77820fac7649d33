// `outpost ctl COMMAND ...`: the client of the control channel (services/control/). It finds
// the socket from --socket or the configuration's [control] socket, sends one command line,
// prints the answer and exits 0 (ok), 1 (the command failed) or 2 (no answer: no socket,
// refused, timed out, not an Outpost).
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace outpost {

struct CtlCommand {
  CLI::App* app = nullptr;
  std::string socket;
  std::string config;
  double timeout = 60;
};

// Adds `ctl` to `cli`; the options land in `c`.
void add_ctl_command(CLI::App& cli, CtlCommand& c);
// Runs it if it was parsed: the exit code, or -1 when it was not. `global_config` is the
// main --config (used when ctl's own is not given).
int run_ctl_command(const CtlCommand& c, const std::string& global_config);

}  // namespace outpost
