// A CONNECT tunnel: splices two byte streams (the client's and the origin's), each
// direction with back-pressure (reading one side stops while the other's write queue is
// above the high-water mark), half-close passed through (EOF on one side shuts down writing
// on the other), and an idle timeout over both directions. Works on any Stream, so a TLS
// stream on either side changes nothing here.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/lazy_timer.hpp"
#include "core/stream.hpp"

namespace outpost {

class Tunnel {
 public:
  struct Totals {
    std::uint64_t to_client = 0;  // bytes the origin sent through the tunnel
    std::uint64_t to_origin = 0;
    std::string why;              // how it ended: "closed", "idle timeout", an error
  };
  using Done = std::function<void(const Totals&)>;

  // Starts relaying at once; `early` (client bytes read after the CONNECT head) go to the
  // origin first; `client_eof`: the client already half-closed (its FIN goes on at once). `done` runs once, on the loop, when both sides are finished or one
  // failed; the tunnel has then closed both streams and frees itself.
  static Tunnel* start(uv_loop_t* loop, StreamPtr client, StreamPtr origin, std::vector<Slice> early,
                       bool client_eof, double idle_timeout_s, Done done);
  // Closes both streams now (shutdown grace over, the client connection aborted); `done`
  // does not run.
  void cancel();
  const Totals& totals() const { return totals_; }

 private:
  struct Side final : StreamHandler {
    Tunnel* t = nullptr;
    Side* other = nullptr;
    StreamPtr stream;
    std::uint64_t* received = nullptr;
    bool eof = false;
    bool held = false;  // reading stopped for the other side's queue
    void on_read(Slice data) override;
    void on_eof() override;
    void on_error(int status, std::string_view what) override;
    void on_write_done() override;
  };
  Tunnel(uv_loop_t* loop, StreamPtr client, StreamPtr origin, double idle_timeout_s, Done done);
  ~Tunnel() = default;
  void touch();
  void finish(std::string why);
  void close_all();

  Side client_, origin_;
  LazyTimer timer_;
  std::uint64_t idle_ms_;
  Totals totals_;
  Done done_;
  bool closed_ = false;
};

}  // namespace outpost
