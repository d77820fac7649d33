// `loadgen connect`: CONNECT tunnel throughput. N tunnels through the proxy to a blast
// listener (see origin.cpp); once every tunnel is up (or has failed), one second of warm-up,
// then the bytes read over the rest of D seconds. Output: one JSON line on stdout.
#include <uv.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/modes.hpp"
#include "bench/loadgen/net.hpp"
#include "bench/loadgen/options.hpp"

namespace loadgen {
namespace {

constexpr std::size_t kMaxReplyHead = 16 * 1024;
constexpr std::uint64_t kEstablishTimeoutMs = 30000;

class TunnelRun;

struct Tunnel {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  TunnelRun* run = nullptr;
  std::string reply;  // the proxy's reply head, until the blank line
  bool established = false;
  bool closed = false;
};

class TunnelRun {
 public:
  TunnelRun(uv_loop_t* loop, sockaddr_in proxy, std::string target, unsigned tunnels, double seconds)
      : loop_(loop), proxy_(proxy), target_(std::move(target)), seconds_(seconds) {
    request_ = "CONNECT " + target_ + " HTTP/1.1\r\nHost: " + target_ + "\r\n\r\n";
    for (unsigned i = 0; i < tunnels; ++i) tunnels_.push_back(std::make_unique<Tunnel>());
  }

  int run();

 private:
  enum class Phase { establishing, warmup, measuring, done };

  static void on_connect(uv_connect_t* req, int status);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void open(Tunnel& t);
  void read_reply(Tunnel& t, const char* data, std::size_t len);
  void lost(Tunnel& t);
  void settled();
  void after(double seconds, void (TunnelRun::*then)());
  void start_measuring();
  void end_measuring();

  uv_loop_t* loop_;
  sockaddr_in proxy_;
  std::string target_, request_;
  double seconds_;
  double warmup_ = 0;
  std::vector<std::unique_ptr<Tunnel>> tunnels_;
  uv_timer_t timer_;
  void (TunnelRun::*timer_then_)() = nullptr;
  Phase phase_ = Phase::establishing;
  std::size_t established_ = 0, failed_ = 0, dropped_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t start_ns_ = 0;
};

void close_tunnel(Tunnel& t) {
  t.closed = true;
  if (!uv_is_closing(as_handle(&t.tcp))) uv_close(as_handle(&t.tcp), nullptr);
}

int TunnelRun::run() {
  warmup_ = seconds_ >= 3 ? 1.0 : 0.0;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  after(kEstablishTimeoutMs / 1000.0, &TunnelRun::settled);  // a deadline for the stragglers
  for (auto& t : tunnels_) open(*t);
  uv_run(loop_, UV_RUN_DEFAULT);
  return 0;
}

void TunnelRun::after(double seconds, void (TunnelRun::*then)()) {
  timer_then_ = then;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<TunnelRun*>(timer->data);
        (self->*self->timer_then_)();
      },
      static_cast<std::uint64_t>(seconds * 1000), 0);
}

void TunnelRun::open(Tunnel& t) {
  t.run = this;
  uv_tcp_init(loop_, &t.tcp);
  t.tcp.data = &t;
  int rc = uv_tcp_connect(&t.connect, &t.tcp, reinterpret_cast<const sockaddr*>(&proxy_), on_connect);
  if (rc != 0) {
    std::fprintf(stderr, "connect: cannot open a connection: %s\n", uv_strerror(rc));
    lost(t);
  }
}

void TunnelRun::on_connect(uv_connect_t* req, int status) {
  auto& t = *static_cast<Tunnel*>(req->handle->data);
  if (t.closed) return;
  if (status < 0) {
    std::fprintf(stderr, "connect: cannot connect to the proxy: %s\n", uv_strerror(status));
    t.run->lost(t);
    return;
  }
  uv_tcp_nodelay(&t.tcp, 1);
  uv_buf_t buf = uv_buf_init(t.run->request_.data(), static_cast<unsigned>(t.run->request_.size()));
  uv_write(&t.write, as_stream(&t.tcp), &buf, 1, [](uv_write_t* w, int status) {
    auto& tunnel = *static_cast<Tunnel*>(w->handle->data);
    if (status < 0 && !tunnel.closed) tunnel.run->lost(tunnel);
  });
  uv_read_start(as_stream(&t.tcp), alloc_read_buffer, on_read);
}

void TunnelRun::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto& t = *static_cast<Tunnel*>(stream->data);
  TunnelRun* self = t.run;
  if (nread < 0) {
    self->lost(t);
  } else if (!t.established) {
    self->read_reply(t, buf->base, static_cast<std::size_t>(nread));
  } else if (self->phase_ == Phase::measuring) {
    self->bytes_ += static_cast<std::uint64_t>(nread);
  }
}

// Collects the reply head; "HTTP/1.x 200" opens the tunnel, and bytes after the blank
// line are already tunnel data.
void TunnelRun::read_reply(Tunnel& t, const char* data, std::size_t len) {
  std::size_t before = t.reply.size();
  t.reply.append(data, len);
  std::size_t end = t.reply.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (t.reply.size() > kMaxReplyHead) {
      std::fprintf(stderr, "connect: no reply head from the proxy in %zu bytes\n", kMaxReplyHead);
      lost(t);
    }
    return;
  }
  std::string_view status_line(t.reply.data(), t.reply.find("\r\n"));
  bool ok = status_line.substr(0, 7) == "HTTP/1." && status_line.substr(8, 4) == " 200" &&
            (status_line.size() == 12 || status_line[12] == ' ');
  if (!ok) {
    std::fprintf(stderr, "connect: the proxy refused the tunnel: %.*s\n", static_cast<int>(status_line.size()),
                 status_line.data());
    lost(t);
    return;
  }
  t.established = true;
  ++established_;
  if (phase_ == Phase::measuring) bytes_ += len - (end + 4 - before);
  t.reply.clear();
  t.reply.shrink_to_fit();
  if (established_ + failed_ == tunnels_.size()) settled();
}

// A tunnel failed to open, or broke after it was open.
void TunnelRun::lost(Tunnel& t) {
  if (t.closed) return;
  if (t.established)
    ++dropped_;
  else
    ++failed_;
  close_tunnel(t);
  if (phase_ == Phase::establishing && established_ + failed_ == tunnels_.size()) settled();
}

// Every tunnel is open or has failed (or the deadline passed): warm up, then measure.
void TunnelRun::settled() {
  if (phase_ != Phase::establishing) return;
  phase_ = Phase::warmup;
  for (auto& t : tunnels_)
    if (!t->established && !t->closed) lost(*t);  // past the deadline
  std::fprintf(stderr, "connect: %zu tunnels open, %zu failed\n", established_, failed_);
  if (established_ == 0) {
    start_ns_ = uv_hrtime();
    end_measuring();  // nothing to measure
    return;
  }
  after(warmup_, &TunnelRun::start_measuring);
}

void TunnelRun::start_measuring() {
  phase_ = Phase::measuring;
  bytes_ = 0;
  start_ns_ = uv_hrtime();
  after(seconds_ - warmup_, &TunnelRun::end_measuring);
}

void TunnelRun::end_measuring() {
  double seconds = static_cast<double>(uv_hrtime() - start_ns_) / 1e9;
  phase_ = Phase::done;
  std::printf("{\"tunnels\":%zu,\"seconds\":%.3f,\"bytes\":%" PRIu64 ",\"mbytes_per_s\":%.1f,\"errors\":%zu}\n",
              established_, seconds, bytes_, seconds > 0 ? static_cast<double>(bytes_) / 1e6 / seconds : 0.0,
              failed_ + dropped_);
  std::fflush(stdout);
  for (auto& t : tunnels_) close_tunnel(*t);
  uv_close(as_handle(&timer_), nullptr);
}

}  // namespace

int run_connect(const Options& opts) {
  sockaddr_in proxy = opts.loopback("proxy");
  std::string target = to_text(opts.loopback("target"));
  if (!opts.has("tunnels") || !opts.has("seconds")) throw UsageError("connect needs --tunnels and --seconds");
  auto tunnels = static_cast<unsigned>(opts.integer("tunnels", 0, 1, 100000));
  double seconds = opts.real("seconds", 0, 0.1, 86400);
  raise_fd_limit(tunnels + 100);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = TunnelRun(&loop, proxy, target, tunnels, seconds).run();
  uv_loop_close(&loop);
  return rc;
}

}  // namespace loadgen
