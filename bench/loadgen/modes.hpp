// The load generator's modes, one entry point each (main.cpp picks one by name).
#pragma once

namespace loadgen {

class Options;

int run_origin(const Options& opts);   // origin.cpp
int run_replay(const Options& opts);   // replay.cpp
int run_connect(const Options& opts);  // tunnels.cpp
int run_idle(const Options& opts);     // idle.cpp
int run_tls(const Options& opts);      // tls_client.cpp

}  // namespace loadgen
