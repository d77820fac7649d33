// Connections to origin servers: one OriginConnection per connection (with its own response
// parser) over a byte stream (core/stream.hpp; TcpStream in production), and a per-worker
// pool of idle keep-alive connections keyed by OriginKey (scheme, host, port, TLS profile).
#pragma once
#include <openssl/x509.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/chunk.hpp"
#include "core/net_address.hpp"
#include "core/lazy_timer.hpp"
#include "core/stream.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/url.hpp"

namespace outpost::tls {
class ClientContext;
class TlsStream;
}

namespace outpost {

class OriginPool;

// What makes two origin connections interchangeable: scheme, host, port and, for TLS, the
// profile they were made with (verification settings, client certificate, ALPN). Empty
// profile: plain TCP.
struct OriginKey {
  std::string scheme = "http";
  std::string host;
  std::uint16_t port = 80;
  std::string tls_profile;
  std::string to_string() const;  // the pool's map key
  void append_to(std::string& out) const;
};

// What a connection reports to the client session using it.
class OriginEvents {
 public:
  virtual ~OriginEvents() = default;
  virtual void on_origin_connected() = 0;
  // Parsed response events. Return values as in http::ParserListener.
  // An interim (1xx) response is reported here and never ends the exchange: head, body and
  // end below always belong to the final response.
  virtual void on_origin_interim(http::MessageHead& head) { (void)head; }
  virtual int on_origin_head(http::MessageHead& head) = 0;
  virtual int on_origin_body(Slice body) = 0;
  virtual int on_origin_end() = 0;
  // The exchange asked for an upgrade and the origin switched protocols (a 101 with Upgrade
  // and "Connection: upgrade"): the 101's head and the bytes after it in the same read. The
  // connection is the owner's to detach_stream() now, or to drop.
  virtual void on_origin_upgraded(const http::MessageHead& head, Slice early) {
    (void)head;
    (void)early;
  }
  // Connection failed or broke. `timeout`: no answer within the configured time.
  virtual void on_origin_error(int uv_status, bool timeout, const std::string& what) = 0;
  // A write to the origin finished (back-pressure bookkeeping).
  virtual void on_origin_write_done() = 0;
  // Called after each read from the origin has been processed, so that the session can
  // send everything that read produced in one write.
  virtual void on_origin_read_processed() = 0;
};

class OriginConnection : private http::ParserListener, private StreamHandler {
 public:
  // A plain TCP connection (`key` as OriginKey::to_string() gives it).
  OriginConnection(OriginPool& pool, std::string key);
  // A connection for `origin`: TLS over TCP when origin.tls_profile is set (the handshake
  // and verification are part of connecting: on_origin_connected() comes after them).
  OriginConnection(OriginPool& pool, const OriginKey& origin, std::string key);
  OriginConnection(const OriginConnection&) = delete;
  OriginConnection& operator=(const OriginConnection&) = delete;

  const std::string& key() const { return key_; }
  void set_owner(OriginEvents* owner) { owner_ = owner; }
  // Starts connecting; on_origin_connected or on_origin_error follows.
  void connect(const IpAddress& addr, std::uint16_t port, double timeout_s);
  bool reused() const { return requests_ > 0; }
  bool connected() const { return connected_; }
  // CONNECT tunnels: takes the connected stream out (its handler unset) and closes this
  // connection object, which is never pooled. Null if not connected.
  StreamPtr detach_stream();
  const IpAddress& address() const { return addr_; }
  // A TLS connection's verified origin certificate (borrowed), else nullptr.
  X509* peer_certificate() const;
  // Begins one request/response exchange: resets the parser, starts reading and the
  // read timeout. `head_request`: the response has no body. `upgrade`: the request asks for
  // a protocol switch, so a 101 ends the exchange (on_origin_upgraded); otherwise a 101 is
  // an error.
  void begin_exchange(bool head_request, double read_timeout_s, bool upgrade = false);
  int write(std::vector<Slice>&& slices);  // Stream::write()'s rule on the list
  std::size_t write_queue_size() const;
  // Back-pressure from the client: no reads, and the read timeout stops while paused.
  void pause_reading();
  void resume_reading();
  // Response complete and the connection is clean: hand it back to the pool.
  void release_to_pool();
  // Closes the connection (never reused); frees itself when libuv is done.
  void close();
  // Restarts the read timeout.
  void touch();

 private:
  friend class OriginPool;
  int on_message_head(http::MessageHead& head) override;
  int on_message_body(Slice body) override;
  int on_message_end() override;
  void on_connected() override;
  void on_read(Slice data) override;
  void on_eof() override;
  void on_error(int status, std::string_view what) override;
  void on_write_done() override;
  void start_reading();
  void fail(int status, bool timeout, const std::string& what);
  void on_idle_event();  // data, EOF or an error while parked in the pool

  OriginPool& pool_;
  std::string key_;
  OriginEvents* owner_ = nullptr;
  StreamPtr stream_;  // null once closing
  LazyTimer timer_;  // connect timeout, read timeout, tunnel idle timeout, pool idle timeout
  http::HttpParser parser_;
  IpAddress addr_;
  std::uint64_t timeout_ms_ = 60000;
  int requests_ = 0;
  bool connected_ = false;
  bool paused_ = false;
  bool closing_ = false;
  bool idle_ = false;
  bool skip_body_ = false;
  bool upgrade_asked_ = false;  // this exchange's request asks for an upgrade
  bool switched_ = false;       // ... and the origin's 101 accepted it
  bool keep_alive_ = false;
  bool unsafe_to_reuse_ = false;  // the response declared a body it cannot have
  bool in_read_ = false;
  std::string protocol_error_;  // why a response was refused (for the error reported)
  std::string setup_error_;     // why no stream could be made (TLS context); connect() fails
  tls::TlsStream* tls_ = nullptr;  // stream_ when it is TLS (for the TLS counters)
  bool release_requested_ = false;
};

class OriginPool {
 public:
  OriginPool(uv_loop_t* loop, unsigned max_idle_per_host, double idle_timeout_s);
  ~OriginPool();
  uv_loop_t* loop() const { return loop_; }
  // New limits (a reload): idle connections over the new count are closed as they park,
  // the new timeout applies to connections parked from now on.
  void set_limits(unsigned max_idle_per_host, double idle_timeout_s);
  // An idle connection for `key` (OriginKey::to_string()), or a new unconnected one
  // (connect() it).
  OriginConnection* acquire(const std::string& key);
  // The same for `origin` (its text `key`): TLS when origin.tls_profile is set.
  OriginConnection* acquire(const OriginKey& origin, const std::string& key);
  // The key of a request to `url`: https over TLS with the current trust (tls_profile()),
  // a CONNECT tunnel (`tunnel`) over plain TCP whatever its scheme.
  OriginKey key_for(const http::Url& url, bool tunnel) const;
  // TLS to origins: the trust for new connections ("" = the system store). A reload may
  // change it: new connections get a new profile (so no idle connection verified with the
  // old trust is reused); open ones keep theirs.
  void set_tls_trust(const std::string& ca_file);
  const std::string& tls_profile() const { return tls_profile_; }
  // Closes every idle connection (shutdown).
  void close_idle();
  std::size_t idle_count() const;
  std::size_t connections_opened() const { return opened_; }
  std::uint64_t connections_reused() const { return reused_; }  // handed out from the idle pool
  std::uint64_t bytes_received() const { return bytes_received_; }  // from origins, tunnels too
  // TLS to origins: handshakes completed, of which resumed, and verification failures.
  std::uint64_t tls_handshakes() const { return tls_handshakes_; }
  std::uint64_t tls_resumed() const { return tls_resumed_; }
  std::uint64_t tls_verify_failures() const { return tls_verify_failures_; }
  void count_tunnel_bytes(std::uint64_t n) { bytes_received_ += n; }
  // Where new connections get their stream (default: a TcpStream on loop()). Tests put a
  // FakeStreamFactory here.
  using StreamFactory = std::function<StreamPtr()>;
  void set_stream_factory(StreamFactory f) { stream_factory_ = std::move(f); }

 private:
  friend class OriginConnection;
  void park(OriginConnection* c);
  void unpark(OriginConnection* c);
  // A new stream for `origin` (nullptr and *error when the TLS context cannot be made);
  // *tls is set to it when it is a TLS stream.
  StreamPtr make_stream(const OriginKey& origin, const std::string& key, tls::TlsStream** tls, std::string* error);
  uv_loop_t* loop_;
  std::string ca_file_;
  std::string tls_profile_ = "verify:system";
  // Made on first use; a changed trust makes a new one. Older ones stay (their streams use
  // them until they close; reloads are rare).
  std::vector<std::unique_ptr<tls::ClientContext>> tls_contexts_;
  std::string tls_contexts_ca_;  // the trust tls_contexts_.back() was made with
  StreamFactory stream_factory_;
  unsigned max_idle_;
  std::uint64_t idle_timeout_ms_;
  std::unordered_map<std::string, std::vector<OriginConnection*>> idle_;
  static constexpr std::size_t kSweepAbove = 256;  // origins with an empty idle list
  std::size_t opened_ = 0;
  std::uint64_t reused_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t tls_handshakes_ = 0, tls_resumed_ = 0, tls_verify_failures_ = 0;
};

}  // namespace outpost
