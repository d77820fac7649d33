// `loadgen origin`: a synthetic HTTP/1.1 origin for the replay mode, plus an optional "blast"
// listener for CONNECT tunnel throughput. N threads, each its own libuv loop with
// SO_REUSEPORT listeners. Responses leave in request order (each is queued when its request
// completes, so pipelining is safe) and bodies are slices of one static pattern buffer,
// handed to the socket without a copy.
#include <llhttp.h>
#include <strings.h>
#include <uv.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/loadgen/modes.hpp"
#include "bench/loadgen/net.hpp"
#include "bench/loadgen/options.hpp"

namespace loadgen {
namespace {

constexpr std::uint64_t kMaxBody = 16u << 20;
constexpr std::size_t kPatternSlack = 4096;        // bodies start at an id-dependent offset
constexpr std::size_t kWriteQueueHigh = 8u << 20;  // stop reading a client above this backlog
constexpr std::size_t kWriteQueueLow = 1u << 20;   // and resume below this
constexpr std::size_t kMaxUrl = 8192;
constexpr std::size_t kMaxHeaderValue = 8192;
constexpr std::size_t kBlastChunk = 256 * 1024;
constexpr int kBlastWritesInFlight = 4;

// What each kind of object says about caching. Kinds with validators answer conditional
// requests with 304 when the validator matches.
// Kind r (media) answers a "Range: bytes=A-B" inside the object with a 206; kind l varies
// on Accept-Encoding and Accept-Language (the body is the same: identity, one language).
struct Kind {
  char code;
  const char* cache_control;
  bool validators;  // ETag and Last-Modified
  bool ranges = false;
  bool vary = false;
};
constexpr Kind kKinds[] = {{'c', "max-age=3600", true},        {'n', "no-store", false},
                           {'s', "max-age=2", true},           {'v', "no-cache", true},
                           {'r', "max-age=3600", true, true},  {'l', "max-age=3600", true, false, true}};

struct ObjectRequest {
  std::uint64_t id;
  std::uint64_t size;
  const Kind* kind;
};

// Per-thread counters of /o/ requests; /__stats sums them over the threads. Relaxed atomics:
// these are figures, not synchronisation.
struct alignas(64) Counters {
  std::atomic<std::uint64_t> requests{0}, full{0}, not_modified{0}, body_bytes{0}, connections{0};
};

struct Worker {
  uv_loop_t loop;
  uv_tcp_t http;
  uv_tcp_t blast;
  Counters counters;
  std::time_t date_second = -1;
  char date[40] = "";
  std::thread thread;
};

// Shared, read-only once the threads run (except the atomics).
struct Origin {
  std::vector<char> pattern;  // the bytes every body and blast write is cut from
  std::vector<std::unique_ptr<Worker>> workers;
  std::time_t last_modified = 0;
  char last_modified_text[40] = "";
};
Origin g_origin;

struct HttpConn {
  uv_tcp_t tcp;
  llhttp_t parser;
  Worker* worker = nullptr;
  std::string url, field, if_none_match, if_modified_since, range;
  std::string* value = nullptr;  // the header value being collected, when it is one we use
  bool has_if_none_match = false;
  bool close_after = false;  // the request asked for the connection to end
  bool reading = true;
};

// One response: the head is formatted in place; a body, when there is one, points into the
// pattern buffer.
struct ResponseWrite {
  uv_write_t req;
  char head[512];
};

void http_date(std::time_t t, char (&out)[40]) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

const char* worker_date(Worker* w) {
  std::time_t now = std::time(nullptr);
  if (now != w->date_second) {
    w->date_second = now;
    http_date(now, w->date);
  }
  return w->date;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// If-None-Match: "*" or a comma-separated list of entity tags, compared weakly (W/ ignored).
bool etag_matches(std::string_view list, std::string_view etag) {
  if (trim(list) == "*") return true;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view tag = trim(list.substr(0, comma));
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

// If-Modified-Since in IMF-fixdate; an unparsable date never matches.
bool not_modified_since(const std::string& date, std::time_t last_modified) {
  std::tm tm{};
  const char* end = strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return end != nullptr && timegm(&tm) >= last_modified;
}

// "/o/<id>/<size>/<kind>", nothing more.
std::optional<ObjectRequest> parse_object_path(std::string_view path) {
  if (path.substr(0, 3) != "/o/") return std::nullopt;
  path.remove_prefix(3);
  std::size_t a = path.find('/');
  std::size_t b = a == std::string_view::npos ? a : path.find('/', a + 1);
  if (b == std::string_view::npos || path.size() != b + 2) return std::nullopt;
  auto id = parse_u64(path.substr(0, a));
  auto size = parse_u64(path.substr(a + 1, b - a - 1));
  if (!id || !size || *size > kMaxBody) return std::nullopt;
  for (const Kind& k : kKinds)
    if (k.code == path[b + 1]) return ObjectRequest{*id, *size, &k};
  return std::nullopt;
}

// The path of an origin-form or absolute-form request target.
std::string_view request_path(std::string_view target) {
  if (target.substr(0, 7) != "http://") return target;
  std::size_t slash = target.find('/', 7);
  return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
}

void close_http(HttpConn* c) {
  if (!uv_is_closing(as_handle(&c->tcp)))
    uv_close(as_handle(&c->tcp), [](uv_handle_t* h) { delete static_cast<HttpConn*>(h->data); });
}

// Ends the connection once every queued response has been written.
void finish_http(HttpConn* c) {
  uv_read_stop(as_stream(&c->tcp));
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, as_stream(&c->tcp), [](uv_shutdown_t* r, int) {
        close_http(static_cast<HttpConn*>(r->handle->data));
        delete r;
      }) != 0) {
    delete req;
    close_http(c);
  }
}

void on_http_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

void on_response_written(uv_write_t* req, int status) {
  auto* c = static_cast<HttpConn*>(req->handle->data);
  delete reinterpret_cast<ResponseWrite*>(req);
  if (uv_is_closing(as_handle(&c->tcp))) return;
  if (status < 0) {
    close_http(c);
  } else if (!c->reading && c->tcp.write_queue_size < kWriteQueueLow) {
    c->reading = true;
    uv_read_start(as_stream(&c->tcp), alloc_read_buffer, on_http_read);
  }
}

void send_response(HttpConn* c, ResponseWrite* w, int head_len, const char* body, std::size_t body_len) {
  uv_buf_t bufs[2] = {uv_buf_init(w->head, static_cast<unsigned>(head_len)),
                      uv_buf_init(const_cast<char*>(body), static_cast<unsigned>(body_len))};
  if (uv_write(&w->req, as_stream(&c->tcp), bufs, body_len ? 2 : 1, on_response_written) != 0) {
    delete w;
    close_http(c);
  }
}

// A small response whose body fits in the head buffer (errors, stats).
void send_text(HttpConn* c, const char* status, const char* type, const char* body) {
  auto* w = new ResponseWrite;
  int n = std::snprintf(w->head, sizeof w->head,
                        "HTTP/1.1 %s\r\nDate: %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                        "Content-Length: %zu\r\n%s\r\n%s",
                        status, worker_date(c->worker), type, std::strlen(body),
                        c->close_after ? "Connection: close\r\n" : "", body);
  send_response(c, w, n, nullptr, 0);
}

void serve_object(HttpConn* c, const ObjectRequest& obj, bool head_only) {
  Counters& n = c->worker->counters;
  char etag[32];
  std::snprintf(etag, sizeof etag, "\"%" PRIu64 "-1\"", obj.id);
  bool not_modified = obj.kind->validators &&
                      (c->has_if_none_match ? etag_matches(c->if_none_match, etag)
                                            : !c->if_modified_since.empty() &&
                                                  not_modified_since(c->if_modified_since, g_origin.last_modified));
  // "bytes=A-B" (or "bytes=A-") inside the object, for the kinds that serve ranges.
  std::uint64_t first = 0, last = obj.size - 1;
  bool partial = false;
  if (obj.kind->ranges && !not_modified && c->range.substr(0, 6) == "bytes=") {
    std::string_view spec = std::string_view(c->range).substr(6);
    std::size_t dash = spec.find('-');
    auto a = dash == std::string_view::npos ? std::nullopt : parse_u64(spec.substr(0, dash));
    auto b = dash == std::string_view::npos || dash + 1 == spec.size() ? std::optional<std::uint64_t>(obj.size - 1)
                                                                        : parse_u64(spec.substr(dash + 1));
    if (a && b && *a <= *b && *a < obj.size) {
      first = *a;
      last = std::min(*b, obj.size - 1);
      partial = true;
    }
  }
  auto* w = new ResponseWrite;
  int len = std::snprintf(w->head, sizeof w->head, "HTTP/1.1 %s\r\nDate: %s\r\nCache-Control: %s\r\n",
                          not_modified ? "304 Not Modified" : partial ? "206 Partial Content" : "200 OK",
                          worker_date(c->worker), obj.kind->cache_control);
  if (obj.kind->validators)
    len += std::snprintf(w->head + len, sizeof w->head - len, "ETag: %s\r\nLast-Modified: %s\r\n", etag,
                         g_origin.last_modified_text);
  if (obj.kind->vary) len += std::snprintf(w->head + len, sizeof w->head - len, "Vary: Accept-Encoding, Accept-Language\r\n");
  if (obj.kind->ranges) len += std::snprintf(w->head + len, sizeof w->head - len, "Accept-Ranges: bytes\r\n");
  if (partial)
    len += std::snprintf(w->head + len, sizeof w->head - len, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
                         first, last, obj.size);
  if (!not_modified)
    len += std::snprintf(w->head + len, sizeof w->head - len,
                         "Content-Type: application/octet-stream\r\nContent-Length: %" PRIu64 "\r\n", last - first + 1);
  len += std::snprintf(w->head + len, sizeof w->head - len, "%s\r\n", c->close_after ? "Connection: close\r\n" : "");
  if (not_modified) {
    n.not_modified.fetch_add(1, std::memory_order_relaxed);
    send_response(c, w, len, nullptr, 0);
    return;
  }
  std::size_t body_len = head_only ? 0 : last - first + 1;
  if (!head_only) {
    n.full.fetch_add(1, std::memory_order_relaxed);
    n.body_bytes.fetch_add(body_len, std::memory_order_relaxed);
  }
  // Deterministic content per id: the pattern from an id-dependent offset.
  const char* body = g_origin.pattern.data() + (obj.id * 2654435761u) % kPatternSlack + first;
  send_response(c, w, len, body, body_len);
}

void serve_stats(HttpConn* c) {
  std::uint64_t requests = 0, full = 0, not_modified = 0, body_bytes = 0, connections = 0;
  for (auto& w : g_origin.workers) {
    requests += w->counters.requests.load(std::memory_order_relaxed);
    full += w->counters.full.load(std::memory_order_relaxed);
    not_modified += w->counters.not_modified.load(std::memory_order_relaxed);
    body_bytes += w->counters.body_bytes.load(std::memory_order_relaxed);
    connections += w->counters.connections.load(std::memory_order_relaxed);
  }
  char json[256];
  std::snprintf(json, sizeof json,
                "{\"requests\":%" PRIu64 ",\"full\":%" PRIu64 ",\"not_modified\":%" PRIu64 ",\"body_bytes\":%" PRIu64
                ",\"connections\":%" PRIu64 "}",
                requests, full, not_modified, body_bytes, connections);
  send_text(c, "200 OK", "application/json", json);
}

void reset_stats() {
  for (auto& w : g_origin.workers)
    for (auto* counter : {&w->counters.requests, &w->counters.full, &w->counters.not_modified, &w->counters.body_bytes,
                          &w->counters.connections})
      counter->store(0, std::memory_order_relaxed);
}

void respond(HttpConn* c) {
  auto method = static_cast<llhttp_method_t>(llhttp_get_method(&c->parser));
  std::string_view path = request_path(c->url);
  if (method != HTTP_GET && method != HTTP_HEAD) {
    send_text(c, "405 Method Not Allowed", "text/plain", "GET only\n");
  } else if (path.substr(0, 3) == "/o/") {
    c->worker->counters.requests.fetch_add(1, std::memory_order_relaxed);
    if (auto obj = parse_object_path(path); obj && c->url.size() < kMaxUrl)
      serve_object(c, *obj, method == HTTP_HEAD);
    else
      send_text(c, "404 Not Found", "text/plain", "no such object\n");
  } else if (path == "/__stats") {
    serve_stats(c);
  } else if (path == "/__reset") {
    reset_stats();
    send_text(c, "200 OK", "application/json", "{}");
  } else {
    send_text(c, "404 Not Found", "text/plain", "not found\n");
  }
}

// ---- llhttp callbacks (request side) ----

HttpConn* conn_of(llhttp_t* p) { return static_cast<HttpConn*>(p->data); }

void append_capped(std::string& to, const char* at, std::size_t len, std::size_t cap) {
  if (to.size() < cap) to.append(at, std::min(len, cap - to.size()));
}

int on_message_begin(llhttp_t* p) {
  HttpConn* c = conn_of(p);
  c->url.clear();
  c->field.clear();
  c->if_none_match.clear();
  c->if_modified_since.clear();
  c->range.clear();
  c->value = nullptr;
  c->has_if_none_match = false;
  return 0;
}

int on_url(llhttp_t* p, const char* at, std::size_t len) {
  append_capped(conn_of(p)->url, at, len, kMaxUrl);  // an over-long URL is answered 404
  return 0;
}

int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  append_capped(conn_of(p)->field, at, len, 64);  // longer names are none of ours
  return 0;
}

int on_header_field_complete(llhttp_t* p) {
  HttpConn* c = conn_of(p);
  c->value = nullptr;
  if (iequals(c->field, "if-none-match")) {
    if (c->has_if_none_match) c->if_none_match += ',';  // several headers form one list
    c->has_if_none_match = true;
    c->value = &c->if_none_match;
  } else if (iequals(c->field, "if-modified-since")) {
    c->if_modified_since.clear();
    c->value = &c->if_modified_since;
  } else if (iequals(c->field, "range")) {
    c->range.clear();
    c->value = &c->range;
  }
  c->field.clear();
  return 0;
}

int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  if (std::string* v = conn_of(p)->value) append_capped(*v, at, len, kMaxHeaderValue);
  return 0;
}

int on_header_value_complete(llhttp_t* p) {
  conn_of(p)->value = nullptr;
  return 0;
}

int on_message_complete(llhttp_t* p) {
  HttpConn* c = conn_of(p);
  c->close_after = !llhttp_should_keep_alive(p);
  respond(c);
  return c->close_after ? HPE_PAUSED : 0;  // stop parsing: nothing after it is answered
}

const llhttp_settings_t* request_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = on_message_begin;
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_field_complete = on_header_field_complete;
    s.on_header_value = on_header_value;
    s.on_header_value_complete = on_header_value_complete;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  return &settings;
}

// ---- HTTP connections ----

void on_http_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<HttpConn*>(stream->data);
  if (nread < 0) {
    if (nread == UV_EOF)
      finish_http(c);  // the client is done sending: answer what it asked, then close
    else
      close_http(c);
    return;
  }
  llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, static_cast<std::size_t>(nread));
  if (err == HPE_PAUSED && c->close_after) {
    finish_http(c);
  } else if (err != HPE_OK) {
    c->close_after = true;
    send_text(c, "400 Bad Request", "text/plain", "bad request\n");
    finish_http(c);
  } else if (c->tcp.write_queue_size > kWriteQueueHigh) {
    c->reading = false;  // the client is not reading its responses: stop taking requests
    uv_read_stop(stream);
  }
}

void on_http_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* w = static_cast<Worker*>(server->data);
  auto* c = new HttpConn;
  c->worker = w;
  uv_tcp_init(&w->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, as_stream(&c->tcp)) != 0) {
    close_http(c);
    return;
  }
  w->counters.connections.fetch_add(1, std::memory_order_relaxed);
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, request_settings());
  c->parser.data = c;
  uv_read_start(as_stream(&c->tcp), alloc_read_buffer, on_http_read);
}

// ---- blast: a TCP stream of pattern bytes as fast as the client takes them ----

struct BlastConn {
  uv_tcp_t tcp;
  uv_write_t writes[kBlastWritesInFlight];
};

void close_blast(BlastConn* b) {
  if (!uv_is_closing(as_handle(&b->tcp)))
    uv_close(as_handle(&b->tcp), [](uv_handle_t* h) { delete static_cast<BlastConn*>(h->data); });
}

void blast_write(BlastConn* b, uv_write_t* req);

void on_blast_written(uv_write_t* req, int status) {
  auto* b = static_cast<BlastConn*>(req->handle->data);
  if (uv_is_closing(as_handle(&b->tcp))) return;
  if (status < 0)
    close_blast(b);
  else
    blast_write(b, req);  // reuse the request: a fixed number of writes stay in flight
}

void blast_write(BlastConn* b, uv_write_t* req) {
  uv_buf_t buf = uv_buf_init(g_origin.pattern.data(), kBlastChunk);
  if (uv_write(req, as_stream(&b->tcp), &buf, 1, on_blast_written) != 0) close_blast(b);
}

void on_blast_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  if (nread < 0) close_blast(static_cast<BlastConn*>(stream->data));  // anything read is discarded
}

void on_blast_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* w = static_cast<Worker*>(server->data);
  auto* b = new BlastConn;
  uv_tcp_init(&w->loop, &b->tcp);
  b->tcp.data = b;
  if (uv_accept(server, as_stream(&b->tcp)) != 0) {
    close_blast(b);
    return;
  }
  uv_read_start(as_stream(&b->tcp), alloc_read_buffer, on_blast_read);
  for (uv_write_t& req : b->writes) {
    if (uv_is_closing(as_handle(&b->tcp))) break;
    blast_write(b, &req);
  }
}

std::vector<char> make_pattern() {
  std::vector<char> bytes(kMaxBody + kPatternSlack);
  std::uint64_t x = 0x9e3779b97f4a7c15u;
  for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
    std::memcpy(&bytes[i], &x, 8);
  }
  return bytes;
}

bool start_listener(Worker* w, uv_tcp_t* tcp, const sockaddr_in& addr, uv_connection_cb cb) {
  int rc = listen_reuseport(&w->loop, tcp, addr, cb);
  tcp->data = w;
  if (rc != 0) std::fprintf(stderr, "origin: cannot listen on %s: %s\n", to_text(addr).c_str(), uv_strerror(rc));
  return rc == 0;
}

}  // namespace

int run_origin(const Options& opts) {
  sockaddr_in http = opts.loopback("listen");
  std::optional<sockaddr_in> blast;
  if (opts.has("blast")) blast = opts.loopback("blast");
  auto threads = static_cast<unsigned>(opts.integer("threads", 1, 1, 256));
  raise_fd_limit(65536);

  g_origin.pattern = make_pattern();
  g_origin.last_modified = std::time(nullptr) - 86400;
  http_date(g_origin.last_modified, g_origin.last_modified_text);
  for (unsigned i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    uv_loop_init(&w->loop);
    if (!start_listener(w.get(), &w->http, http, on_http_connection)) return 1;
    if (blast && !start_listener(w.get(), &w->blast, *blast, on_blast_connection)) return 1;
    g_origin.workers.push_back(std::move(w));
  }
  for (auto& w : g_origin.workers) w->thread = std::thread([loop = &w->loop] { uv_run(loop, UV_RUN_DEFAULT); });
  std::printf("ready\n");
  std::fflush(stdout);
  for (auto& w : g_origin.workers) w->thread.join();  // runs until killed
  return 0;
}

}  // namespace loadgen
