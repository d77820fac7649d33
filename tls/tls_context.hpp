// TLS contexts (OpenSSL 3): the per-worker settings a TlsStream is made from.
//
// A context is used on one thread only (one per worker loop) and must outlive every stream
// made from it: the streams' SSL objects call back into it (session cache, ALPN choice).
#pragma once
#include <openssl/ssl.h>

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace outpost::tls {

struct ClientOptions {
  std::string ca_file;  // empty: the system trust store (SSL_CTX_set_default_verify_paths)
  std::vector<std::string> alpn = {"http/1.1"};
  // A client certificate (PEM, may hold the chain) and its key, for servers that ask for one
  // (the control channel's mutual TLS). Both empty: none.
  std::string cert_file, key_file;
};

// Client side: TLS 1.2 minimum, peer verification on (the host-name or IP check is set per
// stream by make_client_stream), renegotiation off, ALPN offered from `alpn`, and a session
// cache for resumption keyed by a string the caller chooses (host:port + TLS profile).
class ClientContext {
 public:
  static constexpr std::size_t kDefaultSessionCapacity = 1024;

  // nullptr and a reason in `*error` (when given) if the trust store or ALPN list is bad.
  static std::unique_ptr<ClientContext> create(const ClientOptions& o, std::string* error);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  SSL_CTX* ssl_ctx() { return ctx_; }

  // The session cache: at most `capacity` entries, least recently used dropped first.
  // find_session() returns a borrowed pointer (SSL_set_session takes its own reference) and
  // marks the entry used; store_session() takes over one reference of `s` and replaces what
  // the key held. TlsStream uses these itself; they are public for tests and tools.
  SSL_SESSION* find_session(const std::string& key);
  void store_session(const std::string& key, SSL_SESSION* s);
  void drop_session(const std::string& key);
  std::size_t session_count() const { return index_.size(); }
  void set_session_capacity(std::size_t n);

 private:
  explicit ClientContext(SSL_CTX* ctx) : ctx_(ctx) {}
  using Entry = std::pair<std::string, SSL_SESSION*>;
  SSL_CTX* ctx_;
  std::size_t capacity_ = kDefaultSessionCapacity;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

struct ServerOptions {
  // PEM; the cert file may hold the chain. Both empty: a context without a certificate of
  // its own, for streams that each bring one (interception's minted leaves).
  std::string cert_file, key_file;
  std::vector<std::string> alpn = {"http/1.1"};  // server picks the first of its list the client offers; none offered = no ALPN
  // Mutual TLS: clients must present a certificate that chains to a CA of this PEM file
  // (and is within its dates, for client use); a client without one, or with another,
  // fails the handshake. Empty: clients are not asked for a certificate.
  std::string client_ca_file;
};

// Server side: one certificate chain and key, TLS 1.2 minimum, renegotiation off, session
// tickets (TLS 1.2 and 1.3) and a session-ID cache for resumption, ALPN chosen from `alpn`
// (a client offering none of them gets no ALPN rather than an alert).
class ServerContext {
 public:
  static std::unique_ptr<ServerContext> create(const ServerOptions& o, std::string* error);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  SSL_CTX* ssl_ctx() { return ctx_; }

 private:
  explicit ServerContext(SSL_CTX* ctx) : ctx_(ctx) {}
  static int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned inlen, void* arg);
  SSL_CTX* ctx_;
  std::vector<std::string> alpn_;
};

// Text of the oldest error on this thread's OpenSSL error queue (its reason string), which
// is then cleared; `fallback` when the queue is empty.
std::string take_openssl_error(const char* fallback);
// `*error = text` when `error` is given (the error out-parameters of this module).
void set_error(std::string* error, std::string text);

}  // namespace outpost::tls
