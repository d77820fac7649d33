// `loadgen tls`: HTTP(S) requests through a forward proxy, the client side of bench/tls_bump.py.
// C connections spread over T threads (one epoll loop each, non-blocking sockets, OpenSSL on
// the socket). Each connection: TCP connect to --server; with --via proxy and --tls on,
// `CONNECT NAME:PORT` and a TLS handshake inside the tunnel (SNI = NAME, the chain verified
// against --ca only and the name checked; no session is ever reused, so every handshake is a
// full one); then GET PATH, one request outstanding, R requests per connection (0 = until
// the end), then close and open the next one. --tls off sends absolute-form requests
// (http://NAME:PORT/PATH) to the proxy; --via direct skips the CONNECT (straight to an
// origin). Figures cover the D seconds after W seconds of warm-up; totals cover the whole run.
// Output: one JSON line on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/loadgen/modes.hpp"
#include "bench/loadgen/net.hpp"
#include "bench/loadgen/options.hpp"

namespace loadgen {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kReadBuffer = 256 * 1024;

struct Settings {
  sockaddr_in server{};
  std::string target;  // NAME:PORT
  std::string name;    // NAME (SNI, name check, Host)
  std::string path;
  bool via_proxy = true;
  bool tls = true;
  std::uint64_t per_connection = 0;  // 0 = unlimited
  unsigned connections = 16;
  unsigned threads = 2;
  double warmup = 1, seconds = 10;
  std::string request;  // the request bytes, same for every request
  std::string connect;  // the CONNECT request
};

struct Stats {
  // In the measured window.
  std::uint64_t requests = 0, body_bytes = 0, handshakes = 0, errors = 0;
  std::vector<float> latency_ms, handshake_ms;
  // The whole run (warm-up included).
  std::uint64_t total_requests = 0, total_handshakes = 0, total_errors = 0;
  std::string first_error;
  std::uint64_t bad_status = 0;
};

enum class State { connecting, send_connect, read_connect_reply, handshake, send_request, read_head, read_body };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::connecting;
  std::uint32_t events = 0;  // current epoll interest
  std::size_t out_off = 0;
  std::string head;
  std::uint64_t body_left = 0;
  std::uint64_t content_length = 0;
  std::uint64_t done_here = 0;  // requests completed on this connection
  Clock::time_point opened, request_sent;
};

enum class Want { in, out, done, fail };

class Worker {
 public:
  Worker(const Settings& s, SSL_CTX* ctx, unsigned conns, Clock::time_point warm_end, Clock::time_point end)
      : s_(s), ctx_(ctx), conns_(conns), warm_end_(warm_end), end_(end) {}

  void run();
  Stats stats;

 private:
  void open(Conn& c);
  void close_conn(Conn& c, bool graceful);
  void fail(Conn& c, const std::string& why);
  void drive(Conn& c);
  Want step(Conn& c);
  Want ssl_want(Conn& c, int rc, const char* what);
  void set_events(Conn& c, std::uint32_t ev);
  bool measuring(Clock::time_point t) const { return t >= warm_end_ && t < end_; }
  bool parse_head(Conn& c, std::size_t extra);
  Want consume(Conn& c, const char* data, std::size_t n);

  const Settings& s_;
  SSL_CTX* ctx_;
  unsigned conns_;
  Clock::time_point warm_end_, end_;
  int ep_ = -1;
  std::vector<Conn> pool_;
  std::unique_ptr<char[]> buf_{new char[kReadBuffer]};
  std::string error_;
  bool stop_ = false;
};

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char b[256];
    ERR_error_string_n(e, b, sizeof b);
    if (!out.empty()) out += "; ";
    out += b;
  }
  return out;
}

void Worker::set_events(Conn& c, std::uint32_t ev) {
  if (c.events == ev) return;
  epoll_event e{};
  e.events = ev;
  e.data.ptr = &c;
  epoll_ctl(ep_, c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &e);
  c.events = ev;
}

void Worker::open(Conn& c) {
  c = Conn{};
  c.opened = Clock::now();
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    fail(c, errno_text("socket", errno));
    return;
  }
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&s_.server), sizeof s_.server);
  if (rc < 0 && errno != EINPROGRESS) {
    fail(c, errno_text("connect", errno));
    return;
  }
  c.state = State::connecting;
  set_events(c, EPOLLOUT);
}

void Worker::close_conn(Conn& c, bool graceful) {
  if (c.ssl) {
    if (graceful) SSL_shutdown(c.ssl);  // close_notify, not waiting for the peer's
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  if (c.fd >= 0) {
    if (c.events) epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
  }
  c.events = 0;
}

void Worker::fail(Conn& c, const std::string& why) {
  ERR_clear_error();
  auto now = Clock::now();
  ++stats.total_errors;
  if (measuring(now)) ++stats.errors;
  if (stats.first_error.empty()) stats.first_error = why;
  close_conn(c, false);
  // Nothing ever worked: stop instead of spinning on a refusal.
  if (stats.total_errors >= 200 && stats.total_requests == 0) stop_ = true;
}

Want Worker::ssl_want(Conn& c, int rc, const char* what) {
  int err = SSL_get_error(c.ssl, rc);
  if (err == SSL_ERROR_WANT_READ) return Want::in;
  if (err == SSL_ERROR_WANT_WRITE) return Want::out;
  std::string why = std::string(what) + " failed";
  long v = SSL_get_verify_result(c.ssl);
  if (v != X509_V_OK) why += std::string(": certificate verify: ") + X509_verify_cert_error_string(v);
  std::string ossl = openssl_errors();
  if (!ossl.empty()) why += ": " + ossl;
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ossl.empty())) why += ": connection closed";
  error_ = why;
  return Want::fail;
}

// The response head is complete in c.head (`extra` bytes of body follow it there).
bool Worker::parse_head(Conn& c, std::size_t head_len) {
  std::string_view h(c.head.data(), head_len);
  if (h.substr(0, 7) != "HTTP/1." || h.size() < 12) {
    error_ = "not an HTTP response";
    return false;
  }
  if (h.substr(9, 3) != "200") {
    ++stats.bad_status;
    error_ = "status " + std::string(h.substr(9, 3));
    return false;
  }
  std::size_t pos = 0;
  while ((pos = h.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    if (h.size() - pos >= 15 && strncasecmp(h.data() + pos, "content-length:", 15) == 0) {
      std::size_t v = pos + 15;
      while (v < h.size() && h[v] == ' ') ++v;
      std::size_t e = h.find("\r\n", v);
      auto n = parse_u64(h.substr(v, e - v));
      if (!n) break;
      c.body_left = *n;
      c.content_length = *n;
      return true;
    }
  }
  error_ = "no Content-Length";
  return false;
}

// Bytes of the response; Want::done when it is complete.
Want Worker::consume(Conn& c, const char* data, std::size_t n) {
  if (c.state == State::read_head) {
    std::size_t old = c.head.size();
    c.head.append(data, n);
    std::size_t end = c.head.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos) {
      if (c.head.size() > kMaxHead) {
        error_ = "response head too large";
        return Want::fail;
      }
      return Want::in;
    }
    if (!parse_head(c, end + 4)) return Want::fail;
    std::size_t extra = c.head.size() - (end + 4);
    c.state = State::read_body;
    if (extra > c.body_left) {
      error_ = "bytes after the response";
      return Want::fail;
    }
    c.body_left -= extra;
    c.head.clear();
  } else {
    if (n > c.body_left) {
      error_ = "bytes after the response";
      return Want::fail;
    }
    c.body_left -= n;
  }
  return c.body_left == 0 ? Want::done : Want::in;
}

// Advances one connection as far as it can go without blocking.
Want Worker::step(Conn& c) {
  for (;;) {
    switch (c.state) {
      case State::connecting: {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == EINPROGRESS) return Want::out;
        if (err != 0) {
          error_ = errno_text("connect", err);
          return Want::fail;
        }
        c.out_off = 0;
        if (s_.via_proxy && s_.tls)
          c.state = State::send_connect;
        else if (s_.tls)
          c.state = State::handshake;
        else
          c.state = State::send_request;
        break;
      }
      case State::send_connect: {
        ssize_t w = ::send(c.fd, s_.connect.data() + c.out_off, s_.connect.size() - c.out_off, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EAGAIN) return Want::out;
          error_ = errno_text("send CONNECT", errno);
          return Want::fail;
        }
        c.out_off += static_cast<std::size_t>(w);
        if (c.out_off == s_.connect.size()) c.state = State::read_connect_reply;
        break;
      }
      case State::read_connect_reply: {
        ssize_t r = ::recv(c.fd, buf_.get(), 4096, 0);
        if (r < 0) {
          if (errno == EAGAIN) return Want::in;
          error_ = errno_text("recv CONNECT reply", errno);
          return Want::fail;
        }
        if (r == 0) {
          error_ = "proxy closed before answering CONNECT";
          return Want::fail;
        }
        c.head.append(buf_.get(), static_cast<std::size_t>(r));
        std::size_t end = c.head.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (c.head.size() > kMaxHead) {
            error_ = "CONNECT reply too large";
            return Want::fail;
          }
          break;
        }
        std::string_view line(c.head.data(), c.head.find("\r\n"));
        if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line.substr(9, 3) != "200") {
          error_ = "CONNECT refused: " + std::string(line);
          return Want::fail;
        }
        if (end + 4 != c.head.size()) {
          error_ = "bytes after the CONNECT reply";
          return Want::fail;
        }
        c.head.clear();
        c.state = State::handshake;
        break;
      }
      case State::handshake: {
        if (!c.ssl) {
          c.ssl = SSL_new(ctx_);
          SSL_set_fd(c.ssl, c.fd);
          SSL_set_tlsext_host_name(c.ssl, s_.name.c_str());
          SSL_set1_host(c.ssl, s_.name.c_str());
          SSL_set_connect_state(c.ssl);
        }
        int rc = SSL_do_handshake(c.ssl);
        if (rc != 1) return ssl_want(c, rc, "TLS handshake");
        auto now = Clock::now();
        ++stats.total_handshakes;
        if (measuring(now)) {
          ++stats.handshakes;
          stats.handshake_ms.push_back(std::chrono::duration<float, std::milli>(now - c.opened).count());
        }
        c.out_off = 0;
        c.state = State::send_request;
        break;
      }
      case State::send_request: {
        if (c.out_off == 0) c.request_sent = Clock::now();
        const std::string& req = s_.request;
        if (c.ssl) {
          int rc = SSL_write(c.ssl, req.data(), static_cast<int>(req.size()));
          if (rc <= 0) return ssl_want(c, rc, "TLS write");
          c.out_off = req.size();
        } else {
          ssize_t w = ::send(c.fd, req.data() + c.out_off, req.size() - c.out_off, MSG_NOSIGNAL);
          if (w < 0) {
            if (errno == EAGAIN) return Want::out;
            error_ = errno_text("send request", errno);
            return Want::fail;
          }
          c.out_off += static_cast<std::size_t>(w);
        }
        if (c.out_off == req.size()) {
          c.state = State::read_head;
          c.head.clear();
        } else {
          // An unfinished plain send: the next turn continues it (out_off != 0 keeps the time).
          return Want::out;
        }
        break;
      }
      case State::read_head:
      case State::read_body: {
        Want w;
        if (c.ssl) {
          int rc = SSL_read(c.ssl, buf_.get(), static_cast<int>(kReadBuffer));
          if (rc <= 0) return ssl_want(c, rc, "TLS read");
          w = consume(c, buf_.get(), static_cast<std::size_t>(rc));
        } else {
          ssize_t r = ::recv(c.fd, buf_.get(), kReadBuffer, 0);
          if (r < 0) {
            if (errno == EAGAIN) return Want::in;
            error_ = errno_text("recv", errno);
            return Want::fail;
          }
          if (r == 0) {
            error_ = "closed mid-response";
            return Want::fail;
          }
          w = consume(c, buf_.get(), static_cast<std::size_t>(r));
        }
        if (w == Want::fail) return w;
        if (w == Want::done) {
          auto now = Clock::now();
          ++stats.total_requests;
          if (measuring(now)) {
            ++stats.requests;
            stats.body_bytes += c.content_length;
            stats.latency_ms.push_back(std::chrono::duration<float, std::milli>(now - c.request_sent).count());
          }
          ++c.done_here;
          if (s_.per_connection && c.done_here >= s_.per_connection) return Want::done;
          c.out_off = 0;
          c.state = State::send_request;
        }
        break;
      }
    }
  }
}

void Worker::drive(Conn& c) {
  Want w = step(c);
  switch (w) {
    case Want::in:
      set_events(c, EPOLLIN);
      break;
    case Want::out:
      set_events(c, EPOLLOUT);
      break;
    case Want::done:
      close_conn(c, true);
      if (!stop_ && Clock::now() < end_) open(c);
      break;
    case Want::fail:
      fail(c, error_);
      if (!stop_ && Clock::now() < end_) open(c);
      break;
  }
}

void Worker::run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  pool_.resize(conns_);
  for (auto& c : pool_) open(c);
  std::vector<epoll_event> events(256);
  while (!stop_) {
    auto now = Clock::now();
    if (now >= end_) break;
    int timeout = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end_ - now).count()) + 1;
    int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), std::min(timeout, 100));
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c->fd >= 0) drive(*c);
    }
    for (auto& c : pool_)  // a connection whose open() failed before reaching epoll
      if (c.fd < 0 && !stop_ && Clock::now() < end_) open(c);
  }
  for (auto& c : pool_) close_conn(c, false);
  ::close(ep_);
}

double percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out;
}

}  // namespace

int run_tls(const Options& opts) {
  Settings s;
  s.server = opts.loopback("server");
  s.target = opts.text("target");
  std::size_t colon = s.target.rfind(':');
  if (colon == std::string::npos || colon == 0) throw UsageError("--target wants NAME:PORT");
  ranged_integer("--target port", s.target.substr(colon + 1), 1, 65535);
  s.name = s.target.substr(0, colon);
  s.path = opts.has("path") ? opts.text("path") : "/";
  if (s.path.empty() || s.path[0] != '/') throw UsageError("--path must start with /");
  std::string via = opts.has("via") ? opts.text("via") : "proxy";
  std::string tls = opts.has("tls") ? opts.text("tls") : "on";
  if (via != "proxy" && via != "direct") throw UsageError("--via is proxy or direct");
  if (tls != "on" && tls != "off") throw UsageError("--tls is on or off");
  s.via_proxy = via == "proxy";
  s.tls = tls == "on";
  s.connections = static_cast<unsigned>(opts.integer("connections", 16, 1, 100000));
  s.threads = static_cast<unsigned>(opts.integer("threads", 2, 1, 64));
  s.threads = std::min(s.threads, s.connections);
  s.per_connection = opts.integer("requests-per-connection", 0, 0, UINT64_MAX);
  s.warmup = opts.real("warmup", 1, 0, 3600);
  s.seconds = opts.real("seconds", 10, 0.1, 86400);
  std::string uri = (!s.tls && s.via_proxy) ? "http://" + s.target + s.path : s.path;
  s.request = "GET " + uri + " HTTP/1.1\r\nHost: " + s.target + "\r\nUser-Agent: loadgen-tls\r\n\r\n";
  s.connect = "CONNECT " + s.target + " HTTP/1.1\r\nHost: " + s.target + "\r\n\r\n";

  SSL_CTX* ctx = nullptr;
  if (s.tls) {
    std::string ca = opts.text("ca");
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
      std::fprintf(stderr, "tls: cannot load --ca %s: %s\n", ca.c_str(), openssl_errors().c_str());
      SSL_CTX_free(ctx);
      return 1;
    }
  }
  raise_fd_limit(s.connections + 100);

  auto start = Clock::now();
  auto warm_end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.warmup));
  auto end = warm_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.seconds));
  double cpu0 = cpu_seconds();
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < s.threads; ++i) {
    unsigned n = s.connections / s.threads + (i < s.connections % s.threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(s, ctx, n, warm_end, end));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  for (auto& t : threads) t.join();
  double cpu = cpu_seconds() - cpu0;
  double wall = std::chrono::duration<double>(Clock::now() - start).count();

  Stats all;
  for (auto& w : workers) {
    Stats& st = w->stats;
    all.requests += st.requests;
    all.body_bytes += st.body_bytes;
    all.handshakes += st.handshakes;
    all.errors += st.errors;
    all.total_requests += st.total_requests;
    all.total_handshakes += st.total_handshakes;
    all.total_errors += st.total_errors;
    all.bad_status += st.bad_status;
    all.latency_ms.insert(all.latency_ms.end(), st.latency_ms.begin(), st.latency_ms.end());
    all.handshake_ms.insert(all.handshake_ms.end(), st.handshake_ms.begin(), st.handshake_ms.end());
    if (all.first_error.empty()) all.first_error = st.first_error;
  }
  double secs = s.seconds;
  std::printf(
      "{\"connections\":%u,\"threads\":%u,\"seconds\":%.3f,\"requests\":%" PRIu64 ",\"rps\":%.1f,"
      "\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.1f,\"errors\":%" PRIu64 ",\"bad_status\":%" PRIu64 ","
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"handshake_p50_ms\":%.3f,\"handshake_p99_ms\":%.3f,"
      "\"body_bytes\":%" PRIu64 ",\"mbytes_per_s\":%.1f,\"total_requests\":%" PRIu64 ",\"total_handshakes\":%" PRIu64 ",\"total_errors\":%" PRIu64
      ",\"wall_seconds\":%.3f,\"client_cpu_s\":%.3f,\"first_error\":\"%s\"}\n",
      s.connections, s.threads, secs, all.requests, static_cast<double>(all.requests) / secs, all.handshakes,
      static_cast<double>(all.handshakes) / secs, all.errors, all.bad_status, percentile(all.latency_ms, 0.5),
      percentile(all.latency_ms, 0.99), percentile(all.handshake_ms, 0.5), percentile(all.handshake_ms, 0.99),
      all.body_bytes, static_cast<double>(all.body_bytes) / 1e6 / secs, all.total_requests, all.total_handshakes,
      all.total_errors, wall, cpu, json_escape(all.first_error).c_str());
  std::fflush(stdout);
  if (ctx) SSL_CTX_free(ctx);
  return all.total_requests == 0 ? 1 : 0;
}

}  // namespace loadgen
