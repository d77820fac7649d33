// Fuzz target for whole proxy connections: a real ProxyWorker (sessions, origin pool, HTTP
// cache, access log) on a loop driven by this thread, with hostile bytes on both sides. The
// fuzzer scripts up to 4 clients of the proxy and an origin server that answers every
// connection the proxy opens to it with bytes from the input. Each input gets a fresh proxy
// and cache, so every input replays alone.
//
// Findings, besides crashes and sanitizer reports:
//   - what the proxy sends a client must parse as HTTP/1.1 responses, at most one final
//     response per request (ClientChecker), and what it sends the origin's HTTP port must
//     parse as HTTP/1.1 requests with one Host each (OriginChecker), under the proxy's own
//     strict parser;
//   - after the input every connection of ours is closed and the proxy must let go of
//     everything without waiting for a timer: no session, refusal, idle origin connection or
//     libuv handle may be left (a session that ignores its client going away is a finding).
//
// Input: byte 0 picks the settings (bit 0 short timeouts, bit 1 no HTTP cache, bit 2 small
// limits, bit 3 no Via and X-Forwarded-For deleted); then operations, each one byte
// (low 3 bits: what, high 5 bits: which connection) and its arguments:
//   0 client send: u16 length (big-endian), bytes (a closed client slot connects anew)
//   1 origin send: u16 length, bytes, on one of the proxy's origin connections (origin())
//   2 client half-close (bit 2 of which: stop/start reading instead)
//   3 client close (bit 2 of which: with a reset)
//   4 origin half-close (bit 3 of which: stop/start reading instead)
//   5 origin close (bit 3 of which: with a reset)
//   6 wait: u8 milliseconds (for the short timeouts; at most kWaitBudgetMs an input); bit 0 of
//     which: graceful shutdown of the proxy instead, with a grace of u8 milliseconds
//   7 origin sends u8 times 4 KiB of filler (large bodies, back-pressure)
// After each operation the loop runs until nothing moves for a few turns.
// tests/fuzz/corpus/make_proxy_session_seeds.py writes seeds in this format.
//
// Network: a private network namespace of this process, so nothing the fuzzer writes can
// reach a real service. The proxy listens on 127.0.0.1:3128, the origin on 127.0.0.1:8080
// (HTTP) and 127.0.0.1:8443 (the only CONNECT port: anything may pass there). Destinations
// are limited to 127.0.0.0/8 and names never reach DNS: a scripted resolver answers names
// containing "fail" with an error, "none" with no address, "deny" with ::1, "multi" with
// 127.0.0.2 (refused) then 127.0.0.1, others with 127.0.0.1; names containing "sync" inside
// resolve(). TCP buffers in the namespace are small, so a client that stops reading holds
// the proxy back after a few tens of KiB. Without a namespace (not root, no user
// namespaces) the inputs are skipped with a note.
//
// PROXY_SESSION_FUZZ_VERBOSE=1: the proxy's debug log, access log and every byte our sockets
// receive, on stderr (for writing seeds and reading findings).
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

#include "cache/cache_config.hpp"
#include "cache/store.hpp"
#include "core/config.hpp"
#include "core/worker_pool.hpp"
#include "proxy/access_log.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/name_resolver.hpp"
#include "proxy/proxy_config.hpp"
#include "proxy/proxy_worker.hpp"

using namespace outpost;

namespace {

constexpr std::uint16_t kProxyPort = 3128;
constexpr std::uint16_t kOriginPort = 8080;  // HTTP: what arrives must be requests
constexpr std::uint16_t kTunnelPort = 8443;  // CONNECT is allowed here only: raw bytes
constexpr std::size_t kClients = 4;
constexpr std::size_t kMaxOps = 256;
constexpr unsigned kWaitBudgetMs = 40;
constexpr int kSocketBuffer = 16 * 1024;  // small socket buffers make back-pressure reachable

// Callbacks of our own sockets and of the resolver count as progress (see run_until_quiet).
unsigned long long g_activity = 0;
bool g_fuzzing = false;  // set by LLVMFuzzerInitialize: libFuzzer, not the corpus replay
bool g_verbose = false;  // PROXY_SESSION_FUZZ_VERBOSE (see the top of this file)

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
  // Best effort (these are per namespace): without them back-pressure needs megabytes.
  for (const char* knob : {"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"})
    if (FILE* f = std::fopen(knob, "w")) {
      std::fputs("4096 16384 32768\n", f);
      std::fclose(f);
    }
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

// Feeds bytes through a parser, resuming after each message; `go_on(result)` says whether to.
template <typename F>
void feed(http::HttpParser& p, std::string_view bytes, F go_on) {
  ChunkRef c = ChunkRef::make(bytes.size());
  c->append(bytes.data(), bytes.size());
  std::size_t off = 0;
  while (off < c->size()) {
    auto r = p.feed(c, c->data() + off, c->size() - off);
    off += r.consumed;
    if (!go_on(r)) return;
    if (r.kind == http::ParseResult::kPaused) p.resume();
  }
}

// The last bytes each way on one connection, shown when a check fails.
struct Transcript {
  std::string to_proxy, from_proxy;
  static void keep(std::string& log, std::string_view bytes) {
    log.append(bytes);
    if (log.size() > 8192) log.erase(0, log.size() - 8192);
  }
  [[noreturn]] void violation(const std::string& what) const {
    std::fprintf(stderr, "proxy_session_fuzz: %s\n--- to the proxy (last 8 KiB):\n%s\n--- from the proxy (last 8 KiB):\n%s\n---\n",
                 what.c_str(), to_proxy.c_str(), from_proxy.c_str());
    std::abort();
  }
};

// One client connection seen from outside: what the client sent is parsed as requests (by
// the proxy's own parser with the proxy's limits), and what the proxy sent back must parse
// as HTTP/1.1 responses with at most one final response per request, plus one for a
// request that was cut short or malformed, or a refusal. Checking stops at a tunnel.
class ClientChecker {
 public:
  explicit ClientChecker(const Config::Proxy& cfg)
      : requests_(http::HttpParser::Type::kRequest, {cfg.max_request_line, cfg.max_header_size}, &request_events_),
        responses_(http::HttpParser::Type::kResponse, {1 << 20, 1 << 20}, &response_events_) {}

  void sent(std::string_view bytes) {
    Transcript::keep(log_.to_proxy, bytes);
    if (!requests_open_) return;
    feed(requests_, bytes, [&](const http::ParseResult& r) {
      requests_open_ = r.kind != http::ParseResult::kError && r.kind != http::ParseResult::kUpgrade;
      return requests_open_;
    });
  }

  void received(std::string_view bytes) {
    Transcript::keep(log_.from_proxy, bytes);
    if (tunnel_) return;
    feed(responses_, bytes, [&](const http::ParseResult& r) {
      if (r.kind == http::ParseResult::kError) log_.violation("the proxy's output is not HTTP/1.1 responses: " + r.reason);
      return !tunnel_;
    });
  }

 private:
  struct RequestEvents : http::ParserListener {
    ClientChecker* self;
    explicit RequestEvents(ClientChecker* s) : self(s) {}
    int on_message_head(http::MessageHead& h) override {
      self->methods_.push_back(h.method);
      self->upgrades_.push_back(h.upgrade && !h.is_connect);
      return 0;
    }
    int on_message_body(Slice) override { return 0; }
    int on_message_end() override { return HPE_PAUSED; }
  };
  struct ResponseEvents : http::ParserListener {
    ClientChecker* self;
    explicit ResponseEvents(ClientChecker* s) : self(s) {}
    int on_message_head(http::MessageHead& h) override { return self->on_response(h); }
    int on_message_body(Slice) override { return 0; }
    int on_message_end() override { return HPE_PAUSED; }
  };

  int on_response(const http::MessageHead& h) {
    if (h.major != 1 || h.minor != 1) log_.violation("a response that is not HTTP/1.1");
    if (h.status == 101) {  // a switch: only to a request that asked for one, and nothing HTTP after it
      if (finals_ >= upgrades_.size() || !upgrades_[finals_]) log_.violation("a 101 to a request that asked for no upgrade");
      tunnel_ = true;
      return 0;
    }
    if (h.status < 200) return 0;  // interim: the final response follows
    std::size_t i = finals_++;
    if (i > methods_.size()) log_.violation("more final responses than requests");
    std::string_view method = i < methods_.size() ? std::string_view(methods_[i]) : std::string_view();
    if (method == "CONNECT" && h.status < 300) tunnel_ = true;
    return method == "HEAD" ? 1 : 0;  // 1: no body follows
  }

  RequestEvents request_events_{this};
  ResponseEvents response_events_{this};
  http::HttpParser requests_;
  http::HttpParser responses_;
  std::vector<std::string> methods_;
  std::vector<bool> upgrades_;  // per request: it asked for an upgrade (not CONNECT)
  std::size_t finals_ = 0;
  bool requests_open_ = true;
  bool tunnel_ = false;
  Transcript log_;
};

// One connection of the proxy to the origin's HTTP port (not the tunnel port): what the
// proxy sends must parse as HTTP/1.1 requests under the strict parser, each with exactly
// one Host field, whatever its clients sent (no request smuggling through the proxy).
class OriginChecker : http::ParserListener {
 public:
  void received(std::string_view bytes) {
    Transcript::keep(log_.from_proxy, bytes);
    if (!open_) return;
    feed(requests_, bytes, [&](const http::ParseResult& r) {
      if (r.kind == http::ParseResult::kError) log_.violation("the proxy sent an origin a malformed request: " + r.reason);
      if (r.kind == http::ParseResult::kUpgrade) {
        // A WebSocket handshake is the one upgrade the proxy asks for; what follows it on this
        // connection is the tunnel's (or nothing: the connection is not reused).
        if (!websocket_) log_.violation("the proxy sent an origin an upgrade other than WebSocket, or a CONNECT");
        open_ = false;
        return false;
      }
      return true;
    });
  }
  void sent(std::string_view bytes) { Transcript::keep(log_.to_proxy, bytes); }

 private:
  int on_message_head(http::MessageHead& h) override {
    std::size_t hosts = 0;
    for (const auto& f : h.headers) hosts += http::iequals(f.name, "Host");
    if (hosts != 1) log_.violation("a request to an origin with " + std::to_string(hosts) + " Host fields");
    websocket_ = h.upgrade && !h.is_connect && h.method == "GET" && h.headers.has_token("Upgrade", "websocket");
    return 0;
  }
  int on_message_body(Slice) override { return 0; }
  int on_message_end() override { return HPE_PAUSED; }

  http::HttpParser requests_{http::HttpParser::Type::kRequest, {1 << 20, 1 << 20}, this};
  bool websocket_ = false;  // the last request head was a WebSocket handshake
  bool open_ = true;        // still HTTP
  Transcript log_;
};

// One socket of ours: a client of the proxy, or the origin's end of a proxy connection.
struct Peer {
  uv_tcp_t tcp;
  std::unique_ptr<ClientChecker> client_checker;  // on our clients
  std::unique_ptr<OriginChecker> origin_checker;  // on the origin's HTTP port
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
  auto* p = static_cast<Peer*>(s->data);
  if (n > 0 && p->client_checker) p->client_checker->received({g_read_buffer, static_cast<std::size_t>(n)});
  if (n > 0 && p->origin_checker) p->origin_checker->received({g_read_buffer, static_cast<std::size_t>(n)});
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
  if (p->client_checker) p->client_checker->sent(bytes);
  if (p->origin_checker) p->origin_checker->sent(bytes);
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
          "[acl]\nallow_clients = [\"127.0.0.0/8\"]\nconnect_ports = [443, 8443]\n"
          "allow_networks = [\"127.0.0.0/8\"]\ndeny_hosts = [\"denied.test\"]\n"
          "[cache]\nmemory_size = 4194304\n";
  toml += small ? "max_object_size = 256\n" : "max_object_size = 1048576\n";
  toml += "[http_cache]\nenabled = " + std::string(no_cache ? "false" : "true") +
          "\nrefresh_patterns = [{ pattern = \"\\\\.img$\", min = 60, percent = 50, max = 600 }]\n";
  return ProxySettings::make(Config::parse(toml, "<proxy_session_fuzz>"));
}

class Harness {
 public:
  Harness() : worker_(0), resolver_(worker_.loop()) {
    proxy::register_config_sections();  // the sections make_settings() writes
    cache::register_config_section();
    std::signal(SIGPIPE, SIG_IGN);  // as the app does: writes to closed sockets are errors, not signals
    g_verbose = std::getenv("PROXY_SESSION_FUZZ_VERBOSE") != nullptr;
    spdlog::set_level(g_verbose ? spdlog::level::debug : spdlog::level::off);
    std::string err;
    if (!alog_file_.open(g_verbose ? "-" : "/dev/null", &err)) fail("cannot open the access log");
    for (unsigned v = 0; v < 16; ++v) settings_.push_back(make_settings(v));

    listen_origin(&http_listener_, kOriginPort);
    listen_origin(&tunnel_listener_, kTunnelPort);
    uv_timer_init(loop(), &wait_timer_);
    baseline_handles_ = count_handles(loop());
  }

  void run(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return;
    auto settings = settings_[data[0] & 15];
    const auto& cfg = settings->config;
    proxy_config_ = &cfg;
    cache::StoreOptions so = cache::StoreOptions::from_config(cfg.cache);
    so.shards = 4;
    auto store = cache::Store::open(so);
    std::unique_ptr<http::HttpCache> cache;
    if (cfg.http_cache.enabled) cache = std::make_unique<http::HttpCache>(*store);
    {
      ProxyWorker proxy(worker_, settings, resolver_, alog_file_, cache.get());
      std::string err;
      if (!proxy.start(&err)) fail(err.c_str());
      shutdown_started_ = drained_ = false;
      play(proxy, data + 1, size - 1);
      tear_down(proxy);
    }
  }

 private:
  uv_loop_t* loop() { return worker_.loop(); }

  void listen_origin(uv_tcp_t* l, std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);  // inherited by accepted sockets
    uv_tcp_init(loop(), l);
    l->data = this;
    sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    if (uv_tcp_open(l, fd) != 0 || uv_tcp_bind(l, reinterpret_cast<sockaddr*>(&sa), 0) != 0 ||
        uv_listen(reinterpret_cast<uv_stream_t*>(l), 128, [](uv_stream_t* s, int status) {
          if (status == 0) static_cast<Harness*>(s->data)->on_origin_connection(s);
        }) != 0)
      fail("cannot listen for the origin");
  }

  void on_origin_connection(uv_stream_t* listener) {
    auto* p = new Peer;
    p->origin_side = true;
    if (listener == reinterpret_cast<uv_stream_t*>(&http_listener_)) p->origin_checker = std::make_unique<OriginChecker>();
    uv_tcp_init(loop(), &p->tcp);
    p->tcp.data = p;
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&p->tcp)) != 0) {
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
      p->client_checker = std::make_unique<ClientChecker>(proxy_config_->proxy);
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

  void play(ProxyWorker& proxy, const std::uint8_t* p, std::size_t size) {
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
          unsigned ms = u8();
          if (which & 1) {
            begin_shutdown(proxy, ms / 1000.0);
          } else {
            ms = std::min(ms % 32, kWaitBudgetMs - waited_ms);
            waited_ms += ms;
            wait(ms);
          }
          break;
        }
        case 7:
          if (std::size_t n = u8(); Peer* o = origin(which & 7)) send_bytes(o, std::string(n * 4096, 'x'));
          break;
      }
      run_until_quiet();
    }
  }

  void close_origin(Peer* o, bool reset) {
    std::erase(origins_, o);
    close_peer(o, reset);
  }

  // What moves on our side: callbacks, and bytes leaving our write queues (a large write
  // drains over many turns without a callback).
  std::size_t progress() {
    std::size_t n = g_activity;
    auto queued = [](Peer* p) { return uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&p->tcp)); };
    for (auto* c : clients_)
      if (c) n += queued(c);
    for (auto* o : origins_) n += queued(o);
    return n;
  }

  // Runs the loop without blocking until a few turns in a row show no progress on our side.
  void run_until_quiet() {
    int quiet = 0;
    for (int i = 0; i < 1024 && quiet < 4; ++i) {
      auto before = progress();
      uv_run(loop(), UV_RUN_NOWAIT);
      quiet = progress() == before ? quiet + 1 : 0;
    }
  }

  void begin_shutdown(ProxyWorker& proxy, double grace_s) {
    if (shutdown_started_) return;
    shutdown_started_ = true;
    proxy.begin_shutdown(grace_s, [this] { drained_ = true; });
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
    begin_shutdown(proxy, 0);
    until([&] { return drained_; }, "shutdown did not finish with no session left");
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
  uv_tcp_t http_listener_, tunnel_listener_;
  uv_timer_t wait_timer_;
  std::size_t baseline_handles_ = 0;
  const Config* proxy_config_ = nullptr;  // the input's settings
  bool shutdown_started_ = false;
  bool drained_ = false;
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
