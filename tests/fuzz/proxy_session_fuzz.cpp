// Fuzz target for whole proxy connections: a real ProxyWorker (sessions, origin pool, HTTP
// cache, access log) on a loop driven by this thread, with hostile bytes on both sides. The
// fuzzer scripts up to 4 clients of the proxy and a scripted origin server that answers
// every connection the proxy opens to it with bytes from the input. Crashes and sanitizer
// reports are the first findings; after each input every connection is closed and the proxy
// must let go of everything: no session, no refusal, no idle origin connection and no libuv
// handle may outlive the input (a session that ignores its client going away is a finding).
//
// Input: byte 0 picks the settings (bit 0 short timeouts, bit 1 no HTTP cache, bit 2 small
// limits, bit 3 no Via and X-Forwarded-For deleted); then operations, each one byte
// (low 3 bits: what, high 5 bits: which connection) and its arguments:
//   0 client send: u16 length (big-endian), bytes (a closed client slot connects anew)
//   1 origin send: u16 length, bytes, on one of the proxy's connections to the origin (see origin())
//   2 client half-close (bit 2 of which: stop/start reading instead)
//   3 client close (bit 2 of which: with a reset)
//   4 origin half-close (bit 3 of which: stop/start reading instead)
//   5 origin close (bit 3 of which: with a reset)
//   6 wait: u8 milliseconds (for the short timeouts; at most kWaitBudgetMs an input)
//   7 origin sends u8 KiB of filler (large bodies, back-pressure)
// After each operation the loop runs until nothing moves for a few turns.
//
// Network: the proxy listens on 127.0.0.1:3128 and the origin on 127.0.0.1:8080 inside a
// private network namespace of this process, so nothing the fuzzer writes can reach a real
// service; the proxy's destinations are limited to 127.0.0.0/8 and names never reach DNS (a
// scripted resolver answers them: names containing "fail" fail, "none" resolve to nothing,
// "deny" to ::1, "multi" to 127.0.0.2 (refused) then 127.0.0.1, others to 127.0.0.1; names
// containing "sync" are answered inside resolve()). Without a namespace (not root and no
// user namespaces) the inputs are skipped with a note.
#include <net/if.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.hpp"
#include "core/config.hpp"
#include "core/worker_pool.hpp"
#include "proxy/access_log.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/name_resolver.hpp"
#include "proxy/proxy_worker.hpp"

using namespace outpost;

namespace {

constexpr std::uint16_t kProxyPort = 3128;
constexpr std::uint16_t kOriginPort = 8080;
constexpr std::size_t kClients = 4;
constexpr std::size_t kMaxOps = 256;
constexpr unsigned kWaitBudgetMs = 40;
constexpr int kSocketBuffer = 16 * 1024;  // small socket buffers make back-pressure reachable

// Callbacks of our own sockets and of the resolver count as progress (see run_until_quiet).
unsigned long long g_activity = 0;
bool g_fuzzing = false;  // set by LLVMFuzzerInitialize: libFuzzer, not the corpus replay
// PROXY_SESSION_FUZZ_VERBOSE=1: the proxy's debug log and every byte our sockets receive, on
// stderr (for writing seeds and reading findings).
bool g_verbose = false;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "proxy_session_fuzz: %s\n", what);
  std::abort();
}

// A private network namespace with its loopback up: as root, or as a user with user
// namespaces (which must be created before the process has threads).
bool isolate_network() {
  if (::unshare(CLONE_NEWNET) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return false;
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  ok = ok && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  ::close(fd);
  return ok;
}

// Answers names without DNS, mostly on the next loop turn (as a real lookup would), so a
// session can go away while its lookup is pending.
class ScriptedResolver : public NameResolver {
 public:
  explicit ScriptedResolver(uv_loop_t* loop) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
  }
  std::unique_ptr<ResolveRequest> resolve(uv_loop_t*, const std::string& host, ResolveCallback cb) override {
    ++g_activity;
    if (host.find("sync") != std::string::npos) {
      cb(answer(host));
      return nullptr;
    }
    auto cancelled = std::make_shared<bool>(false);
    queue_.push_back({host, std::move(cb), cancelled});
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<ScriptedResolver*>(t->data)->deliver(); }, 0, 0);
    return std::make_unique<Request>(cancelled);
  }
  bool idle() const { return queue_.empty(); }

 private:
  struct Pending {
    std::string host;
    ResolveCallback cb;
    std::shared_ptr<bool> cancelled;
  };
  class Request : public ResolveRequest {
   public:
    explicit Request(std::shared_ptr<bool> c) : cancelled_(std::move(c)) {}
    ~Request() override { cancel(); }
    void cancel() override { *cancelled_ = true; }

   private:
    std::shared_ptr<bool> cancelled_;
  };

  static ResolveResult answer(const std::string& host) {
    ResolveResult r;
    auto has = [&](const char* s) { return host.find(s) != std::string::npos; };
    if (has("fail")) {
      r.status = UV_EAI_NONAME;
      r.error = "scripted failure";
    } else if (has("none")) {
      // status 0 and no address: a resolver may do that; the session must cope.
    } else if (has("deny")) {
      r.addresses.push_back(*IpAddress::parse("::1"));
    } else if (has("multi")) {
      r.addresses.push_back(*IpAddress::parse("127.0.0.2"));
      r.addresses.push_back(*IpAddress::parse("127.0.0.1"));
    } else {
      r.addresses.push_back(*IpAddress::parse("127.0.0.1"));
    }
    return r;
  }
  void deliver() {
    auto q = std::move(queue_);
    queue_.clear();
    for (auto& p : q) {
      if (*p.cancelled) continue;
      ++g_activity;
      auto cb = std::move(p.cb);
      cb(answer(p.host));
    }
  }

  uv_timer_t timer_;
  std::vector<Pending> queue_;
};

// One socket of ours: a client of the proxy, or the origin's end of a proxy connection.
struct Peer {
  uv_tcp_t tcp;
  bool reading = false;
  bool writable = true;  // false after our half-close
  bool origin_side = false;
  bool eof = false;  // the proxy closed its end (or reset it)
  unsigned long long last_heard = 0;  // g_activity when the proxy last wrote to it (or connected)
};

// What the proxy sends us is read and dropped (one thread: one buffer for every socket).
char g_read_buffer[65536];

void on_peer_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  if (n == 0) return;
  static_cast<Peer*>(s->data)->last_heard = ++g_activity;
  if (g_verbose)
    std::fprintf(stderr, "[%s %p] %s\n%.*s\n", static_cast<Peer*>(s->data)->origin_side ? "origin" : "client",
                 s->data, n < 0 ? uv_err_name(static_cast<int>(n)) : "read", n < 0 ? 0 : static_cast<int>(n), g_read_buffer);
  if (n < 0) {  // EOF or error: nothing more will come
    uv_read_stop(s);
    static_cast<Peer*>(s->data)->reading = false;
    static_cast<Peer*>(s->data)->eof = true;
  }
}

void start_reading(Peer* p) {
  if (p->reading) return;
  p->reading = uv_read_start(
                   reinterpret_cast<uv_stream_t*>(&p->tcp),
                   [](uv_handle_t*, std::size_t, uv_buf_t* b) { *b = uv_buf_init(g_read_buffer, sizeof g_read_buffer); },
                   on_peer_read) == 0;
}

void toggle_reading(Peer* p) {
  if (p->reading) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&p->tcp));
    p->reading = false;
  } else {
    start_reading(p);
  }
}

void send_bytes(Peer* p, std::string bytes) {
  if (!p->writable || bytes.empty()) return;
  struct Write {
    uv_write_t req;
    std::string data;
  };
  auto* w = new Write{{}, std::move(bytes)};
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&p->tcp), &b, 1, [](uv_write_t* r, int) {
        ++g_activity;
        delete reinterpret_cast<Write*>(r);
      }) != 0)
    delete w;
}

void half_close(Peer* p) {
  if (!p->writable) return;
  p->writable = false;
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&p->tcp), [](uv_shutdown_t* r, int) {
        ++g_activity;
        delete r;
      }) != 0)
    delete req;
}

void close_peer(Peer* p, bool reset) {
  auto done = [](uv_handle_t* h) {
    ++g_activity;
    delete static_cast<Peer*>(h->data);
  };
  // A reset needs an open, connected socket; otherwise an ordinary close.
  if (!reset || uv_tcp_close_reset(&p->tcp, done) != 0) uv_close(reinterpret_cast<uv_handle_t*>(&p->tcp), done);
}

std::size_t count_handles(uv_loop_t* loop) {
  std::size_t n = 0;
  uv_walk(loop, [](uv_handle_t*, void* arg) { ++*static_cast<std::size_t*>(arg); }, &n);
  return n;
}

// The settings for byte 0 of an input (see the top of this file).
std::shared_ptr<const ProxySettings> make_settings(unsigned variant) {
  bool quick = variant & 1, no_cache = variant & 2, small = variant & 4, plain = variant & 8;
  std::string t = quick ? "0.02" : "10";
  std::string toml = "[server]\nworkers = 1\nname = \"outpost\"\n"
                     "[proxy]\nlisten = [\"127.0.0.1:3128\"]\n"
                     "header_timeout = " + t + "\nbody_timeout = " + t + "\nidle_timeout = " + t +
                     "\nwrite_timeout = " + t + "\ntunnel_idle_timeout = " + t + "\n";
  toml += small ? "max_request_line = 256\nmax_header_size = 1024\nmax_request_body = 64\nmax_connections_per_worker = 2\n"
                : "max_connections_per_worker = 64\n";
  toml += plain ? "via = false\nforwarded_for = \"delete\"\n" : "";
  toml += "[origin]\nconnect_timeout = " + t + "\nread_timeout = " + t + "\nidle_timeout = " + t +
          "\nmax_idle_per_host = 2\n"
          "[acl]\nallow_clients = [\"127.0.0.0/8\"]\nconnect_ports = [443, 8080]\n"
          "allow_networks = [\"127.0.0.0/8\"]\ndeny_hosts = [\"denied.test\"]\n"
          "[cache]\nmemory_size = 1048576\n";
  toml += small ? "max_object_size = 256\n" : "max_object_size = 65536\n";
  toml += "[http_cache]\nenabled = " + std::string(no_cache ? "false" : "true") +
          "\nrefresh_patterns = [{ pattern = \"\\\\.img$\", min = 60, percent = 50, max = 600 }]\n";
  return ProxySettings::make(Config::parse(toml, "<proxy_session_fuzz>"));
}

class Harness {
 public:
  Harness() : worker_(0), resolver_(worker_.loop()) {
    std::signal(SIGPIPE, SIG_IGN);  // as the app does: writes to closed sockets are errors, not signals
    g_verbose = std::getenv("PROXY_SESSION_FUZZ_VERBOSE") != nullptr;
    spdlog::set_level(g_verbose ? spdlog::level::debug : spdlog::level::off);
    std::string err;
    if (!alog_file_.open(g_verbose ? "-" : "/dev/null", &err)) fail("cannot open the access log");
    for (unsigned v = 0; v < 16; ++v) settings_.push_back(make_settings(v));

    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);  // inherited by accepted sockets
    uv_tcp_init(loop(), &origin_listener_);
    origin_listener_.data = this;
    sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", kOriginPort, &sa);
    if (uv_tcp_open(&origin_listener_, fd) != 0 || uv_tcp_bind(&origin_listener_, reinterpret_cast<sockaddr*>(&sa), 0) != 0 ||
        uv_listen(reinterpret_cast<uv_stream_t*>(&origin_listener_), 128,
                  [](uv_stream_t* s, int status) { static_cast<Harness*>(s->data)->on_origin_connection(status); }) != 0)
      fail("cannot listen on 127.0.0.1:8080");
    uv_timer_init(loop(), &wait_timer_);
    baseline_handles_ = count_handles(loop());
  }

  void run(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return;
    auto settings = settings_[data[0] & 15];
    const auto& cfg = settings->config;
    cache::StoreOptions so = cache::StoreOptions::from_config(cfg.cache);
    so.shards = 4;
    auto store = cache::Store::open(so);
    std::unique_ptr<http::HttpCache> cache;
    if (cfg.http_cache.enabled) cache = std::make_unique<http::HttpCache>(*store, cfg.http_cache);
    {
      ProxyWorker proxy(worker_, settings, resolver_, alog_file_, cache.get());
      std::string err;
      if (!proxy.start(&err)) fail(err.c_str());
      play(data + 1, size - 1);
      tear_down(proxy);
    }
    cache.reset();
    store.reset();
  }

 private:
  uv_loop_t* loop() { return worker_.loop(); }

  void on_origin_connection(int status) {
    if (status != 0) return;
    auto* p = new Peer;
    p->origin_side = true;
    uv_tcp_init(loop(), &p->tcp);
    p->tcp.data = p;
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&origin_listener_), reinterpret_cast<uv_stream_t*>(&p->tcp)) != 0) {
      close_peer(p, false);
      return;
    }
    p->last_heard = ++g_activity;
    start_reading(p);
    origins_.push_back(p);
  }

  Peer* client(unsigned i, bool connect) {
    if (!clients_[i] && connect) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
      auto* p = new Peer;
      uv_tcp_init(loop(), &p->tcp);
      p->tcp.data = p;
      if (uv_tcp_open(&p->tcp, fd) != 0) fail("uv_tcp_open");
      sockaddr_in sa;
      uv_ip4_addr("127.0.0.1", kProxyPort, &sa);
      auto* req = new uv_connect_t;
      if (uv_tcp_connect(req, &p->tcp, reinterpret_cast<sockaddr*>(&sa), [](uv_connect_t* r, int) {
            ++g_activity;
            delete r;
          }) != 0)
        fail("uv_tcp_connect");
      start_reading(p);
      clients_[i] = p;
    }
    return clients_[i];
  }

  // The proxy's open connections to the origin, the one it wrote to last first (usually
  // the one waiting for an answer); past the end, the one idle longest.
  Peer* origin(unsigned n) {
    std::vector<Peer*> live;
    for (auto* o : origins_)
      if (!o->eof) live.push_back(o);
    if (live.empty()) return nullptr;
    std::sort(live.begin(), live.end(), [](Peer* a, Peer* b) { return a->last_heard > b->last_heard; });
    return live[std::min<std::size_t>(n, live.size() - 1)];
  }

  void play(const std::uint8_t* p, std::size_t size) {
    std::size_t pos = 0, ops = 0;
    unsigned waited_ms = 0;
    auto u8 = [&]() -> unsigned { return pos < size ? p[pos++] : 0; };
    auto bytes = [&]() {
      std::size_t len = u8() << 8;
      len |= u8();
      len = std::min(len, size - pos);
      std::string s(reinterpret_cast<const char*>(p + pos), len);
      pos += len;
      return s;
    };
    while (pos < size && ops++ < kMaxOps) {
      unsigned op = p[pos] & 7, which = p[pos] >> 3;
      ++pos;
      if (g_verbose) std::fprintf(stderr, "== op %u which %u\n", op, which);
      switch (op) {
        case 0:
          send_bytes(client(which & 3, true), bytes());
          break;
        case 1:
          if (auto s = bytes(); Peer* o = origin(which & 7)) send_bytes(o, std::move(s));
          break;
        case 2:
          if (Peer* c = client(which & 3, false)) (which & 4) ? toggle_reading(c) : half_close(c);
          break;
        case 3:
          if (Peer* c = client(which & 3, false)) {
            close_peer(c, which & 4);
            clients_[which & 3] = nullptr;
          }
          break;
        case 4:
          if (Peer* o = origin(which & 7)) (which & 8) ? toggle_reading(o) : half_close(o);
          break;
        case 5:
          if (Peer* o = origin(which & 7)) close_origin(o, which & 8);
          break;
        case 6: {
          unsigned ms = std::min(u8() % 32, kWaitBudgetMs - waited_ms);
          waited_ms += ms;
          wait(ms);
          break;
        }
        case 7:
          if (std::size_t kib = u8(); Peer* o = origin(which & 7)) send_bytes(o, std::string(kib * 1024, 'x'));
          break;
      }
      run_until_quiet();
    }
  }

  void close_origin(Peer* o, bool reset) {
    std::erase(origins_, o);
    close_peer(o, reset);
  }

  // Runs the loop without blocking until a few turns in a row show no progress on our side.
  void run_until_quiet() {
    int quiet = 0;
    for (int i = 0; i < 256 && quiet < 4; ++i) {
      auto before = g_activity;
      uv_run(loop(), UV_RUN_NOWAIT);
      quiet = g_activity == before ? quiet + 1 : 0;
    }
  }

  // Lets time pass for the proxy's timers (the short-timeout settings are 20 ms).
  void wait(unsigned ms) {
    if (ms == 0) return;
    bool fired = false;
    wait_timer_.data = &fired;
    uv_timer_start(&wait_timer_, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, ms, 0);
    while (!fired) uv_run(loop(), UV_RUN_ONCE);
  }

  // Every connection of ours closes; the proxy must then release everything without waiting
  // for a timer. A proxy that keeps a session, a refusal, a pooled connection or a handle
  // beyond this is reported as a crash.
  void tear_down(ProxyWorker& proxy) {
    run_until_quiet();
    for (auto*& c : clients_)
      if (c) {
        close_peer(c, false);
        c = nullptr;
      }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    auto until = [&](auto done, const char* what) {
      while (!done()) {
        // Connections the proxy still opens to the origin are closed as they come.
        for (auto* o : origins_) close_peer(o, false);
        origins_.clear();
        uv_run(loop(), UV_RUN_NOWAIT);
        if (std::chrono::steady_clock::now() > deadline) fail(what);
      }
    };
    until([&] { return proxy.session_count() == 0 && proxy.refusal_count() == 0; },
          "sessions or refusals left 5 s after every client and origin connection closed");
    bool drained = false;
    proxy.begin_shutdown(0, [&] { drained = true; });
    until([&] { return drained; }, "shutdown did not finish with no session left");
    if (proxy.pool().idle_count() != 0) fail("idle origin connections left after shutdown");
    until([&] { return resolver_.idle() && count_handles(loop()) == baseline_handles_; },
          "libuv handles left after shutdown");
    // Work posted to the worker (freeing background refreshes) runs on the next turns.
    for (int i = 0; i < 4; ++i) uv_run(loop(), UV_RUN_NOWAIT);
  }

  Worker worker_;  // never started: its loop runs on this thread, driven from here
  ScriptedResolver resolver_;
  AccessLogFile alog_file_;
  std::vector<std::shared_ptr<const ProxySettings>> settings_;
  uv_tcp_t origin_listener_;
  uv_timer_t wait_timer_;
  std::size_t baseline_handles_ = 0;
  Peer* clients_[kClients] = {};
  std::vector<Peer*> origins_;
};

Harness* harness() {
  static Harness* h = [] {
    if (!isolate_network()) {
      if (g_fuzzing) fail("needs a private network namespace: run as root (or with user namespaces enabled)");
      std::fprintf(stderr, "proxy_session_fuzz: no private network namespace (not root?); inputs skipped\n");
      return static_cast<Harness*>(nullptr);
    }
    return new Harness;  // lives as long as the process
  }();
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_fuzzing = true;
  harness();  // namespaces before libFuzzer starts its threads
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (Harness* h = harness()) h->run(data, size);
  return 0;
}
