// One client connection: parses requests (llhttp, strict), applies the access rules,
// forwards each request to an origin through the worker's pool and streams the response
// back with back-pressure in both directions, or relays a CONNECT tunnel. Pipelined
// requests are answered strictly in order: the parser pauses after each request until
// its response is complete.
#pragma once
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "core/chunk.hpp"
#include "core/net_address.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/name_resolver.hpp"
#include "proxy/origin_pool.hpp"
#include "proxy/outcome.hpp"
#include "proxy/proxy_worker.hpp"
#include "proxy/url.hpp"

namespace outpost {

// Bytes read but not parsed yet, in order: a vector with a read index. It allocates nothing
// until the first read and keeps a few slots after (std::deque allocates about 600 bytes up
// front, which every idle keep-alive connection would carry).
class SliceQueue {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  Slice& front() noexcept { return items_[head_]; }
  void push_back(Slice s) { items_.push_back(std::move(s)); }
  void pop_front() {
    items_[head_++] = Slice{};
    if (empty()) {
      clear();
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      // A client that keeps pipelining may never let the queue run empty: drop the consumed
      // prefix now and then, so the vector does not grow with every read.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void push_front(Slice s) {
    if (head_ > 0) items_[--head_] = std::move(s);
    else items_.insert(items_.begin(), std::move(s));
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }
  auto begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() noexcept { return items_.end(); }
  std::size_t slots() const noexcept { return items_.size(); }  // live and consumed, for tests

 private:
  std::vector<Slice> items_;
  std::size_t head_ = 0;
};

class ClientSession : private http::ParserListener, private OriginEvents {
 public:
  ClientSession(ProxyWorker& worker, uv_tcp_t* tcp);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  void start();
  // Graceful shutdown: idle connections close now, busy ones after their response.
  void on_shutdown();
  // Closes at once (grace period over, or a broken exchange).
  void abort();

 private:
  enum class Phase { kIdle, kHead, kBody, kWaiting, kTunnel, kLingering };

  struct Exchange {
    bool active = false;
    http::MessageHead req;
    http::Url url;
    std::string url_text;
    double start_time = 0;
    std::uint64_t start_ms = 0;
    std::uint64_t first_byte_ms = 0;  // uv_now() when the first response byte was queued (0: none)
    bool request_done = false;
    bool response_started = false;
    bool response_done = false;
    bool chunked_out = false;
    bool close_after = false;
    bool discard_body = false;
    bool head_request = false;
    bool has_body = false;
    bool to_origin_chunked = false;
    bool origin_head_sent = false;
    bool origin_body_done = false;
    bool origin_reused = false;
    bool origin_connected = false;
    bool retried = false;
    bool tunnel = false;
    bool tunnel_open = false;
    bool client_eof = false;
    bool origin_eof = false;
    int status = 0;
    Outcome code = Outcome::kMiss;
    std::string hierarchy = "HIER_NONE";
    std::string peer;
    std::string content_type;
    std::uint64_t bytes_out = 0;
    std::uint64_t body_in = 0;
    std::uint64_t body_sent = 0;
    std::uint64_t body_relayed = 0;  // origin body bytes sent to the client directly
    std::vector<IpAddress> addrs;
    std::size_t next_addr = 0;
    std::unique_ptr<ResolveRequest> resolving;
    OriginConnection* origin = nullptr;
    std::vector<Slice> pending;  // request body (or tunnel bytes) waiting for the origin
    std::size_t pending_bytes = 0;
    // HTTP cache (see client_session_cache.cpp)
    bool cache_get = false;        // GET/HEAD that the cache may answer
    std::string cache_key;
    http::CacheControl req_cc;
    std::int64_t request_time = 0;  // when the request went to the origin
    bool leader = false;            // registered as the one fetching cache_key
    bool followed = false;          // already waited for a leader once
    bool revalidating = false;      // conditional request for a stale entry
    bool absorb = false;            // origin's answer is not relayed (304 refresh, stale-if-error)
    bool serve_stale_on_end = false;
    cache::Handle stale;
    std::optional<http::StoredResponse> stale_meta;
    std::string stale_store_key;
    cache::Writer writer;
    cache::Reader reader;           // following an object being written
    bool reader_chunked = false;
    bool reader_waiting = false;
    std::uint64_t reader_skip = 0;  // bytes of the reader's object the client already has
    // The origin's body goes only into the store writer while this client reads the stored
    // copy at its own pace (it fell behind; see follow_own_writer()).
    bool follows_own_writer = false;
    bool origin_length_known = false;  // the response has a Content-Length
    std::string cache_status;       // Cache-Status (RFC 9211) value for a forwarded response
  };

  // http::ParserListener (the client's requests)
  int on_message_head(http::MessageHead& head) override;
  int on_message_body(Slice body) override;
  int on_message_end() override;
  // OriginEvents
  void on_origin_connected() override;
  void on_origin_interim(http::MessageHead& head) override;
  int on_origin_head(http::MessageHead& head) override;
  int on_origin_body(Slice body) override;
  int on_origin_end() override;
  void on_origin_raw(Slice data) override;
  void on_origin_eof() override;
  void on_origin_error(int uv_status, bool timeout, const std::string& what) override;
  void on_origin_write_done() override;
  void on_origin_read_processed() override;

  // caching (client_session_cache.cpp)
  void start_cache_lookup();
  void on_cache_lookup(http::CacheLookup r);
  void serve_stored(const cache::Handle& h, const http::StoredResponse& meta, std::int64_t age, Outcome code,
                    const std::string& cache_status);
  void follow_reader(cache::Reader reader, const http::StoredResponse& meta);
  bool follow_own_writer();
  void pump_reader();
  void begin_storing(const http::MessageHead& head);
  void refresh_from_304(const http::MessageHead& head);
  void handle_purge();
  void invalidate_after_unsafe(const http::MessageHead& head);
  void end_cache_participation();
  void add_revalidation_headers(http::HeaderList& h);

  static std::vector<std::unique_ptr<Exchange>>& exchange_free_list();
  void new_exchange();      // ex_ = a fresh Exchange; bumps ex_gen_
  void release_exchange();  // ex_ back to the free list; bumps ex_gen_
  void on_read(ssize_t nread);
  void pump();
  void handle_connect();
  void handle_local();
  void start_forward();
  void on_resolved(ResolveResult r);
  void connect_next();
  void send_request_head();
  void forward_body(const Slice& s);
  void reject(int status, const std::string& detail, Outcome code, bool close = false);
  // Queues slices for the client; they go out in one write at flush_client() (at the end
  // of processing an origin read), or at once outside of origin reads.
  void send_to_client(std::vector<Slice> slices);
  void flush_client();
  // Arms the write timeout while output is queued: a client that reads nothing of it for
  // proxy.write_timeout is cut (the timer is allocated the first time it is needed).
  void watch_write_progress();
  void on_client_write_done(int status);
  void maybe_finish();
  void finish_exchange();
  void log_exchange();
  void close_after_flush();
  void update_reading();
  void set_timer(std::uint64_t ms, Phase phase);
  void on_timer();

  ProxyWorker& w_;
  std::shared_ptr<const ProxySettings> settings_;
  uv_tcp_t* tcp_;
  uv_timer_t timer_;
  uv_timer_t* write_timer_ = nullptr;
  uv_shutdown_t shutdown_req_;
  http::HttpParser parser_;
  IpAddress client_ip_;
  std::string client_text_;
  ChunkRef rbuf_;
  SliceQueue unparsed_;
  std::size_t unparsed_bytes_ = 0;
  Phase phase_ = Phase::kIdle;
  // The request in flight (and, after a Connection: close answer, the one that ended the
  // connection). Null between requests: an idle keep-alive connection holds no request
  // state. Exchanges are recycled through a per-thread free list.
  std::unique_ptr<Exchange> ex_;
  unsigned block_reading_ = 0;  // reasons to stop reading the client (bit mask)
  bool reading_ = false;
  bool parser_paused_ = false;
  bool in_pump_ = false;
  bool closing_ = false;
  bool origin_paused_ = false;  // we paused the origin because the client is slow
  bool batching_ = false;       // inside an origin read: collect output in out_
  std::vector<Slice> out_;
  std::size_t out_bytes_ = 0;
  int handles_open_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // weak_ptrs to it guard async callbacks
  std::uint64_t ex_gen_ = 0;                               // bumps with every exchange
};

}  // namespace outpost
