// Load generator for the benchmark suite (issue 6), one binary with five modes: a synthetic
// origin, a trace replayer through a forward proxy, CONNECT tunnel throughput, idle
// connections, and HTTP(S) requests through a proxy (CONNECT + TLS, or absolute-form).
// Loopback only. Figures go to stdout as one JSON line, diagnostics to stderr. See
// bench/README.md.
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>

#include "bench/loadgen/modes.hpp"
#include "bench/loadgen/options.hpp"

namespace {

const char kUsage[] =
    R"(usage: loadgen MODE [options]        (every ADDR is 127.x.y.z:port: loopback only)
  loadgen origin --listen ADDR [--blast ADDR] [--threads N]
  loadgen replay --proxy ADDR --origin ADDR --trace SPEC [--concurrency 32]
                 [--warmup-fraction 0] [--timeout-ms 30000]
      SPEC  synthetic:objects=N,requests=M[,alpha=0.8,seed=1,size_median=8192,size_sigma=1.5,
                      size_max=4194304,mix=c80/n5/s10/v5,reval=10,scan=0,big_min=262144,chunk=65536]
            mix kinds: c cacheable, n no-store, s short TTL, v no-cache, r media fetched in
            chunk-sized ranges (sizes big_min..size_max), l varies on Accept-Encoding/-Language
            file:PATH    one request per line, "timestamp key size"
  loadgen connect --proxy ADDR --target ADDR --tunnels N --seconds D
  loadgen idle --proxy ADDR --connections N [--request http://127.x.y.z:port/path]
  loadgen tls --server ADDR --target NAME:PORT [--path /] [--via proxy|direct] [--tls on|off]
              [--ca FILE] [--connections 16] [--threads 2] [--requests-per-connection 0]
              [--warmup 1] [--seconds 10]
)";

int dispatch(std::string_view mode, int argc, char** argv) {
  using loadgen::Options;
  if (mode == "origin") return loadgen::run_origin(Options(argc, argv, 2, {"listen", "blast", "threads"}));
  if (mode == "replay")
    return loadgen::run_replay(
        Options(argc, argv, 2, {"proxy", "origin", "trace", "concurrency", "warmup-fraction", "timeout-ms"}));
  if (mode == "connect") return loadgen::run_connect(Options(argc, argv, 2, {"proxy", "target", "tunnels", "seconds"}));
  if (mode == "idle") return loadgen::run_idle(Options(argc, argv, 2, {"proxy", "connections", "request"}));
  if (mode == "tls")
    return loadgen::run_tls(Options(argc, argv, 2,
                                    {"server", "target", "path", "via", "tls", "ca", "connections", "threads",
                                     "requests-per-connection", "warmup", "seconds"}));
  throw loadgen::UsageError("unknown mode '" + std::string(mode) + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer closing mid-write is an error code, not a signal
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "-h" || mode == "--help" || mode == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    if (mode.empty()) throw loadgen::UsageError("no mode given");
    return dispatch(mode, argc, argv);
  } catch (const loadgen::UsageError& e) {
    std::fprintf(stderr, "loadgen: %s\n%s", e.what(), kUsage);
    return 2;
  }
}
