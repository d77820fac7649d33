// A TLS stream over any Stream (OpenSSL 3 with memory BIOs): ciphertext moves through the
// transport Stream, plaintext through this one. HTTP code sees only the Stream seam, so a
// client connection, an origin connection or a tunnel end runs over TLS unchanged.
//
// The rules of core/stream.hpp hold: no call calls its handler back synchronously (events
// that a call makes due are delivered from a uv_idle_t the stream owns, on the transport's
// loop), close() is safe from inside any callback and frees the stream on a later loop turn,
// and nothing is delivered after read_stop() or close(). Everything runs on the loop thread;
// nothing blocks.
//
// Handshake
// - Client: connect(to) connects the transport, then runs the handshake; on_connected()
//   fires only once the handshake is complete and the peer verified. Over a transport that
//   is already connected, call start_client() instead of connect().
//   Verification: the chain must lead to the context's trust, and the certificate must match
//   server_name (X509_VERIFY_PARAM_set1_host; set1_ip_asc for an IP literal, IPv6 with or
//   without brackets). SNI is server_name unless it is an IP literal. A failed verification
//   or handshake → on_error(UV_EPROTO, "TLS handshake with NAME failed: REASON"), e.g.
//   "... failed: certificate verify failed: hostname mismatch (depth 0, subject CN=a.test)";
//   verify_error() keeps the verification part. A transport error during the handshake →
//   on_error(its status, "TLS handshake with NAME failed: " + its text); a connect failure is
//   passed on unchanged ("connect: connection refused").
//   Resumption: a session cached in the context under session_key is offered; new sessions
//   (TLS 1.2, and TLS 1.3 tickets, which arrive with the first reads after the handshake)
//   are stored under it. A failed handshake drops the key's session.
// - Server: over an accepted, connected transport; the handshake starts with read_start()
//   and reads the transport until it is done even if read_stop() comes first (no plaintext
//   is delivered meanwhile). The server side has no on_connected(); by its first on_read()
//   handshake_done(), alpn() and server_name() are set. A failed handshake → on_error(
//   UV_EPROTO, "TLS handshake failed: REASON").
//   Mutual TLS (a context with ServerOptions::client_ca_file): the client's certificate is
//   verified during the handshake; no certificate → "... failed: peer did not return a
//   certificate"; a refused one → "... failed: client certificate verify failed: REASON
//   (depth N, subject ...)" (e.g. "certificate has expired"). peer_certificate() is the
//   verified client certificate afterwards.
//
// Writing
// - write() before the handshake is done queues the plaintext; it is encrypted afterwards.
//   Plaintext is encrypted only while the transport holds less than kEncryptAhead bytes,
//   so a large write keeps its chunks (no copies) until the transport has room.
// - queued_bytes() = plaintext not yet encrypted + ciphertext not yet handed to the
//   transport + transport->queued_bytes().
// - on_write_done(): one per write() that returned 0, in order, once all of that write's
//   ciphertext has reached the kernel (the transport completed the transport writes that
//   carried it). write() returns 1 when the handshake is done, nothing else is pending and
//   the transport took the ciphertext at once.
// - shutdown_write(): close_notify goes out after everything queued, then the transport
//   half-closes. Reading goes on (the peer may answer).
// - close() is abrupt: no close_notify (use shutdown_write() for a clean end); queued data
//   is dropped, as with TcpStream.
//
// Reading
// - on_read() carries plaintext in Chunk::kIoSize chunks from the per-thread pool that the
//   stream does not keep (the TcpStream rule). read_stop() stops both the delivery of
//   plaintext already decrypted or buffered (it waits for read_start()) and the transport.
// - A received close_notify → on_eof(); the transport's EOF without one → on_error(
//   UV_ECONNRESET, "TLS connection closed without close_notify"): a truncation is never a
//   clean end. Garbage or truncated records → on_error(UV_EPROTO, "TLS read failed: ...").
#pragma once
#include <uv.h>

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/stream.hpp"
#include "tls/tls_context.hpp"

namespace outpost::tls {

// Client side. `transport` must be unconnected (then connect()) or connected (then
// start_client()), and must have a loop (TcpStream, TlsStream); nullptr otherwise.
// `server_name` is what the certificate must match: a host name or an IP literal (IPv6 with
// or without brackets); empty, the handshake fails with UV_EINVAL (nothing to verify).
StreamPtr make_client_stream(ClientContext& ctx, StreamPtr transport, std::string server_name,
                             std::string session_key);
// Server side over an accepted, connected transport: the handshake starts with read_start().
// nullptr if the transport has no loop.
// `already_read`: bytes of the client's that were read off the transport before (a peeked
// ClientHello); the handshake consumes them first.
// `cert`/`key`: this stream's own certificate and key (interception's minted leaf) instead
// of the context's; the stream takes its own references. `chain`: certificates sent after it.
struct ServerIdentity {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  X509* chain = nullptr;
};
StreamPtr make_server_stream(ServerContext& ctx, StreamPtr transport, std::string_view already_read = {},
                             const ServerIdentity& identity = {});

class TlsStream final : public Stream, private StreamHandler {
 public:
  // Plaintext is encrypted while the transport holds less than this.
  static constexpr std::size_t kEncryptAhead = 256 * 1024;

  std::string_view alpn() const;         // negotiated protocol, empty if none
  std::string_view server_name() const;  // server side: the SNI the client sent (empty if none); client side: the name verified
  bool session_reused() const;
  // The peer's certificate once the handshake is done (client side: verified), or nullptr.
  // Borrowed: valid while the stream lives.
  X509* peer_certificate() const { return handshake_done_ ? SSL_get0_peer_certificate(ssl_) : nullptr; }
  // Its subject (RFC 2253 form, "CN=outpost-ctl,O=..."), empty if none.
  std::string peer_subject() const;
  std::string_view version() const { return SSL_get_version(ssl_); }  // "TLSv1.3", "TLSv1.2"
  bool handshake_done() const { return handshake_done_; }
  // Client side: why verification failed (X509_verify_cert_error_string with the depth and
  // subject of the certificate), empty if it did not.
  const std::string& verify_error() const { return verify_error_; }
  // Client side over a transport that is already connected: starts the handshake (then
  // on_connected() or on_error() follows, as after connect()). 0 or a negative status.
  int start_client();

  int connect(const SocketAddress& to) override;
  void read_start() override;
  void read_stop() override;
  bool reading() const override { return reading_; }
  int write(std::vector<Slice>&& slices) override;
  std::size_t queued_bytes() const override;
  int shutdown_write() override;
  void close() override;
  std::optional<SocketAddress> peer_address() const override;
  std::optional<SocketAddress> local_address() const override;
  uv_loop_t* loop() const override { return idle_.loop; }
  // OpenSSL's read and write record buffers (about 34 KB) go back to the heap until the next
  // record (contexts do not set SSL_MODE_RELEASE_BUFFERS, which frees them after every
  // record: 8 µs per keep-alive request measured, a fifth of a bumped 1 KiB hit).
  void release_idle_memory() override;

 private:
  friend StreamPtr make_client_stream(ClientContext&, StreamPtr, std::string, std::string);
  friend StreamPtr make_server_stream(ServerContext&, StreamPtr, std::string_view, const ServerIdentity&);
  enum class Phase : std::uint8_t { kIdle, kConnecting, kHandshake, kOpen };
  struct PlainWrite {
    std::vector<Slice> slices;
    std::size_t index = 0;   // slice being encrypted
    std::size_t offset = 0;  // bytes of it encrypted
  };
  struct TransportWrite {
    std::uint32_t writes;  // our writes whose last ciphertext it carries
    bool done;             // the transport has completed it
  };

  TlsStream(SSL* ssl, StreamPtr transport, ClientContext* client);
  ~TlsStream();  // from the idle handle's close callback only

  // From the transport (StreamHandler).
  void on_connected() override;
  void on_read(Slice data) override;
  void on_eof() override;
  void on_error(int status, std::string_view what) override;
  void on_write_done() override;

  static int verify_callback(int ok, X509_STORE_CTX* store);
  static int new_session_callback(SSL* ssl, SSL_SESSION* session);

  void begin_handshake();
  bool advance_handshake();  // true once done; never calls the handler
  void encrypt();            // never calls the handler
  void flush();              // ciphertext → transport; never calls the handler
  void maybe_send_close_notify();
  void update_transport_reading();
  bool input_buffered() const;
  bool events_due() const;
  void schedule_if_due();
  void fail(int status, std::string what);  // records; delivered by pump()
  std::string handshake_failure(const std::string& reason) const;
  // Delivers what is due, in order: connected, write completions, reads, EOF; an error
  // ends everything. Runs only from loop callbacks.
  void pump();
  void read_plaintext();

  SSL* ssl_;
  BIO* net_in_;   // ciphertext from the transport, owned by ssl_
  BIO* net_out_;  // ciphertext for the transport, owned by ssl_
  StreamPtr transport_;
  ClientContext* client_ctx_;  // nullptr on the server side
  std::string server_name_, session_key_, verify_error_;
  std::string setup_error_;  // client: why the name cannot be checked; the handshake fails
  uv_idle_t idle_;  // deferred events; closing it frees the stream
  Phase phase_ = Phase::kIdle;
  bool handshake_done_ = false;
  bool connected_due_ = false;  // client: on_connected() not yet delivered
  bool reading_ = false;
  bool transport_eof_ = false;
  bool eof_due_ = false;     // close_notify read, on_eof() not yet delivered
  bool read_ended_ = false;  // close_notify delivered as on_eof
  bool shutdown_requested_ = false, shutdown_sent_ = false;
  bool failed_ = false, error_due_ = false;
  bool closing_ = false;
  int error_status_ = 0;
  std::string error_what_;
  std::deque<PlainWrite> plain_;
  std::size_t plain_bytes_ = 0;
  std::uint32_t encrypted_writes_ = 0;  // our writes encrypted whole, ciphertext not yet flushed
  std::deque<TransportWrite> in_flight_;
  std::uint32_t writes_done_due_ = 0;   // on_write_done() calls due
};

}  // namespace outpost::tls
