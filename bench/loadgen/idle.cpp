// `loadgen idle`: holds N idle connections to the proxy, for measuring what an idle
// connection costs. Opens them paced (at most kInProgress at a time), optionally completes
// one GET on each so that it is an idle keep-alive connection after a full exchange, prints
// one JSON line, then holds them until stdin reaches EOF or SIGTERM/SIGINT arrives.
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/http_client.hpp"
#include "bench/loadgen/modes.hpp"
#include "bench/loadgen/net.hpp"
#include "bench/loadgen/options.hpp"

namespace loadgen {
namespace {

constexpr std::size_t kInProgress = 500;
constexpr std::uint64_t kTimeoutMs = 30000;

// "http://127.x.y.z:port/path" -> the request bytes (absolute-form, with Host), or throws.
std::string idle_request(std::string url) {
  std::string_view rest(url);
  if (rest.substr(0, 7) != "http://") throw UsageError("--request wants http://127.x.y.z:port/path");
  rest.remove_prefix(7);
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (!parse_loopback(authority)) throw UsageError("--request must name a loopback host with a port (127.x.y.z:port)");
  if (authority.size() == rest.size()) url += '/';
  return "GET " + url + " HTTP/1.1\r\nHost: " + std::string(authority) + "\r\n\r\n";
}

class IdleRun {
 public:
  IdleRun(uv_loop_t* loop, sockaddr_in proxy, std::size_t n, std::string request)
      : loop_(loop), proxy_(proxy), request_(std::move(request)) {
    for (std::size_t i = 0; i < n; ++i) conns_.push_back(std::make_unique<ClientConnection>(loop));
  }

  int run();

 private:
  void pump();
  void open(ClientConnection& c);
  void opened(ClientConnection& c, bool ok);
  void hold();
  void stdin_closed();
  void end();

  uv_loop_t* loop_;
  sockaddr_in proxy_;
  std::string request_;  // empty: connect only
  std::vector<std::unique_ptr<ClientConnection>> conns_;
  std::size_t started_ = 0, in_progress_ = 0, held_ = 0, failed_ = 0, closed_by_peer_ = 0;
  bool holding_ = false;
  bool stdin_closed_ = false;
  bool ended_ = false;
  uv_signal_t sigterm_, sigint_;
};

// Woken by the stdin thread, which may outlive the run: never closed (unreferenced, so it
// does not keep the loop running), on the default loop, which is never freed either.
uv_async_t g_stdin_eof;

int IdleRun::run() {
  // The end can come at any time, also while connections are still being opened.
  uv_signal_init(loop_, &sigterm_);
  uv_signal_init(loop_, &sigint_);
  sigterm_.data = sigint_.data = g_stdin_eof.data = this;
  auto on_signal = [](uv_signal_t* s, int) { static_cast<IdleRun*>(s->data)->end(); };
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_async_init(loop_, &g_stdin_eof, [](uv_async_t* a) {
    if (a->data) static_cast<IdleRun*>(a->data)->stdin_closed();
  });
  uv_unref(as_handle(&g_stdin_eof));
  // A blocking read on its own thread works for every kind of stdin (pipe, file, tty).
  std::thread([async = &g_stdin_eof] {
    char buf[4096];
    for (ssize_t n; (n = ::read(0, buf, sizeof buf)) != 0;)
      if (n < 0 && errno != EINTR) break;
    uv_async_send(async);
  }).detach();
  pump();
  uv_run(loop_, UV_RUN_DEFAULT);
  g_stdin_eof.data = nullptr;
  std::fprintf(stderr, "{\"closed_by_peer\":%zu}\n", closed_by_peer_);
  return 0;
}

void IdleRun::pump() {
  while (!ended_ && in_progress_ < kInProgress && started_ < conns_.size()) open(*conns_[started_++]);
  if (in_progress_ == 0 && started_ == conns_.size()) hold();
}

void IdleRun::open(ClientConnection& c) {
  ++in_progress_;
  c.connect(proxy_, kTimeoutMs, [this, &c](int err) {
    if (err || request_.empty()) {
      opened(c, err == 0);
      return;
    }
    c.request(request_, false, kTimeoutMs, [this, &c](int err, const Response& r) {
      bool ok = err == 0 && ((r.status >= 200 && r.status < 300) || r.status == 304) && c.connected();
      opened(c, ok);
    });
  });
}

void IdleRun::opened(ClientConnection& c, bool ok) {
  --in_progress_;
  if (ok) {
    ++held_;
    c.on_peer_closed([this](int) { ++closed_by_peer_; });
  } else {
    ++failed_;
    c.close();
  }
  pump();
}

void IdleRun::hold() {
  holding_ = true;
  std::printf("{\"connections\":%zu,\"failed\":%zu}\n", held_, failed_);
  std::fflush(stdout);
  if (stdin_closed_) end();
}

// EOF on stdin ends the hold, but only after the figures are out (stdin may be /dev/null).
void IdleRun::stdin_closed() {
  stdin_closed_ = true;
  if (holding_) end();
}

// Closes everything so that uv_run returns. The stdin thread may still be blocked in read();
// it is detached and the process ends with it.
void IdleRun::end() {
  if (ended_) return;
  ended_ = true;
  conns_.clear();  // each closes its socket and timer
  uv_close(as_handle(&sigterm_), nullptr);
  uv_close(as_handle(&sigint_), nullptr);
}

}  // namespace

int run_idle(const Options& opts) {
  sockaddr_in proxy = opts.loopback("proxy");
  if (!opts.has("connections")) throw UsageError("idle needs --connections");
  auto n = static_cast<std::size_t>(opts.integer("connections", 0, 1, 1'000'000));
  std::string request = opts.has("request") ? idle_request(opts.text("request")) : std::string();
  std::uint64_t limit = raise_fd_limit(n + 100);
  if (limit < n + 20)
    std::fprintf(stderr, "idle: the open-file limit is %" PRIu64 ", too low for %zu connections\n", limit, n);
  return IdleRun(uv_default_loop(), proxy, n, std::move(request)).run();
}

}  // namespace loadgen
