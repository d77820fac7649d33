#include "tls/tls_stream.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <utility>

namespace outpost::tls {
namespace {

// Plaintext handed to one SSL_write (four full records).
constexpr std::size_t kEncryptPiece = 64 * 1024;
constexpr std::size_t kRecord = 16 * 1024;  // a TLS record's largest plaintext

// Where an SSL keeps its TlsStream (an ex_data slot of our own, so an SSL made elsewhere
// from the same SSL_CTX is never taken for a stream by the callbacks).
int stream_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

std::string subject_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<std::size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- construction

StreamPtr make_client_stream(ClientContext& ctx, StreamPtr transport, std::string server_name,
                             std::string session_key) {
  if (!transport || !transport->loop()) return nullptr;
  SSL* ssl = SSL_new(ctx.ssl_ctx());
  if (!ssl) return nullptr;
  SSL_CTX_sess_set_new_cb(ctx.ssl_ctx(), &TlsStream::new_session_callback);
  auto* s = new TlsStream(ssl, std::move(transport), &ctx);
  StreamPtr out(s);
  std::string name = server_name;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  s->server_name_ = std::move(server_name);
  s->session_key_ = std::move(session_key);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (name.empty()) {
    s->setup_error_ = "no server name to verify";
  } else if (is_ip_literal(name)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) s->setup_error_ = "cannot check the address " + name;
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1)
      s->setup_error_ = "cannot check the name " + name;
    SSL_set_tlsext_host_name(ssl, name.c_str());
  }
  ERR_clear_error();
  SSL_set_verify(ssl, SSL_VERIFY_PEER, &TlsStream::verify_callback);
  if (!s->session_key_.empty()) {
    if (SSL_SESSION* cached = ctx.find_session(s->session_key_)) SSL_set_session(ssl, cached);
  }
  SSL_set_connect_state(ssl);
  return out;
}

StreamPtr make_server_stream(ServerContext& ctx, StreamPtr transport, std::string_view already_read,
                             const ServerIdentity& identity) {
  if (!transport || !transport->loop()) return nullptr;
  SSL* ssl = SSL_new(ctx.ssl_ctx());
  if (!ssl) return nullptr;
  if (identity.cert) {
    // SSL_use_* take their own references; the chain certificate too (add1).
    if (SSL_use_certificate(ssl, identity.cert) != 1 || SSL_use_PrivateKey(ssl, identity.key) != 1 ||
        (identity.chain && SSL_add1_chain_cert(ssl, identity.chain) != 1)) {
      ERR_clear_error();
      SSL_free(ssl);
      return nullptr;
    }
  }
  // Mutual TLS (ServerOptions::client_ca_file): the same callback as the client side, which
  // records why a client's certificate was refused.
  if (int mode = SSL_CTX_get_verify_mode(ctx.ssl_ctx()); mode & SSL_VERIFY_PEER)
    SSL_set_verify(ssl, mode, &TlsStream::verify_callback);
  SSL_set_accept_state(ssl);
  auto* s = new TlsStream(ssl, std::move(transport), nullptr);
  if (!already_read.empty()) BIO_write(s->net_in_, already_read.data(), static_cast<int>(already_read.size()));
  return StreamPtr(s);
}

TlsStream::TlsStream(SSL* ssl, StreamPtr transport, ClientContext* client)
    : ssl_(ssl), transport_(std::move(transport)), client_ctx_(client) {
  net_in_ = BIO_new(BIO_s_mem());
  net_out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(net_in_, -1);  // empty means "more may come": the transport says EOF
  BIO_set_mem_eof_return(net_out_, -1);
  SSL_set_bio(ssl_, net_in_, net_out_);
  SSL_set_ex_data(ssl_, stream_index(), this);
  uv_idle_init(transport_->loop(), &idle_);
  idle_.data = this;
  transport_->set_handler(this);
}

TlsStream::~TlsStream() {
  // SSL_free() of a connection that did not send close_notify marks its session not
  // resumable (OpenSSL's "bad session" rule), and the client's session is the cached one.
  // An abrupt close() (an idle connection ended, a response framed by length) is not a bad
  // session; only a protocol failure is.
  if (handshake_done_ && !(failed_ && error_status_ == UV_EPROTO))
    SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);
}

// ---------------------------------------------------------------- accessors

std::string_view TlsStream::alpn() const {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}

std::string_view TlsStream::server_name() const { return server_name_; }

std::string TlsStream::peer_subject() const {
  X509* cert = peer_certificate();
  return cert ? subject_of(cert) : std::string();
}

bool TlsStream::session_reused() const { return SSL_session_reused(ssl_) == 1; }

std::size_t TlsStream::queued_bytes() const {
  return plain_bytes_ + BIO_ctrl_pending(net_out_) + (transport_ ? transport_->queued_bytes() : 0);
}

std::optional<SocketAddress> TlsStream::peer_address() const {
  return transport_ ? transport_->peer_address() : std::nullopt;
}

std::optional<SocketAddress> TlsStream::local_address() const {
  return transport_ ? transport_->local_address() : std::nullopt;
}

// ---------------------------------------------------------------- OpenSSL callbacks

int TlsStream::verify_callback(int ok, X509_STORE_CTX* store) {
  if (ok) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* self = ssl ? static_cast<TlsStream*>(SSL_get_ex_data(ssl, stream_index())) : nullptr;
  if (self && self->verify_error_.empty()) {
    std::string text = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
    text += " (depth " + std::to_string(X509_STORE_CTX_get_error_depth(store));
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) text += ", subject " + subject_of(cert);
    text += ")";
    self->verify_error_ = std::move(text);
  }
  return ok;
}

int TlsStream::new_session_callback(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsStream*>(SSL_get_ex_data(ssl, stream_index()));
  if (!self || !self->client_ctx_ || self->session_key_.empty() || self->closing_ ||
      !SSL_SESSION_is_resumable(session))
    return 0;
  self->client_ctx_->store_session(self->session_key_, session);
  return 1;  // the cache keeps the reference
}

// ---------------------------------------------------------------- Stream calls

int TlsStream::connect(const SocketAddress& to) {
  if (closing_) return UV_ECANCELED;
  if (!client_ctx_) return UV_EINVAL;
  if (phase_ != Phase::kIdle) return UV_EALREADY;
  int rc = transport_->connect(to);
  if (rc == 0) phase_ = Phase::kConnecting;
  return rc;
}

int TlsStream::start_client() {
  if (closing_) return UV_ECANCELED;
  if (!client_ctx_) return UV_EINVAL;
  if (phase_ != Phase::kIdle) return UV_EALREADY;
  begin_handshake();
  schedule_if_due();
  return 0;
}

void TlsStream::read_start() {
  if (reading_ || closing_ || failed_ || read_ended_) return;
  reading_ = true;
  if (!client_ctx_ && phase_ == Phase::kIdle) begin_handshake();
  update_transport_reading();
  schedule_if_due();  // plaintext, a close_notify or the transport's EOF may be waiting
}

void TlsStream::release_idle_memory() {
  if (phase_ == Phase::kOpen && !closing_ && !failed_) SSL_free_buffers(ssl_);  // 0 (kept) when in use
}

void TlsStream::read_stop() {
  if (!reading_) return;
  reading_ = false;
  update_transport_reading();
}

int TlsStream::write(std::vector<Slice>&& slices) {
  if (closing_) return UV_ECANCELED;
  if (failed_ || shutdown_requested_) return UV_EPIPE;
  if (slices.empty()) return UV_EINVAL;
  std::size_t bytes = 0;
  for (const auto& s : slices) bytes += s.size;
  bool alone = phase_ == Phase::kOpen && plain_.empty() && in_flight_.empty() && encrypted_writes_ == 0;
  plain_.push_back(PlainWrite{std::move(slices)});
  plain_bytes_ += bytes;
  if (phase_ != Phase::kOpen) return 0;  // goes out after the handshake
  std::uint32_t due_before = writes_done_due_;
  encrypt();
  if (alone && !failed_ && plain_.empty() && in_flight_.empty() && writes_done_due_ == due_before + 1) {
    --writes_done_due_;  // the transport took it all at once: no completion, as with TcpStream
    return 1;
  }
  schedule_if_due();
  return 0;
}

int TlsStream::shutdown_write() {
  if (closing_) return UV_ECANCELED;
  if (failed_) return UV_EPIPE;
  if (shutdown_requested_) return UV_EALREADY;
  shutdown_requested_ = true;
  if (phase_ == Phase::kOpen) {
    encrypt();
    maybe_send_close_notify();
    schedule_if_due();
  }
  return 0;
}

void TlsStream::close() {
  if (closing_) return;
  closing_ = true;
  handler_ = nullptr;
  reading_ = false;
  transport_.reset();  // the transport calls us no more
  plain_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), [](uv_handle_t* h) { delete static_cast<TlsStream*>(h->data); });
}

// ---------------------------------------------------------------- the transport's events

void TlsStream::on_connected() {
  if (closing_ || phase_ != Phase::kConnecting) return;
  begin_handshake();
  pump();
}

void TlsStream::on_read(Slice data) {
  if (closing_ || failed_) return;
  BIO_write(net_in_, data.data, static_cast<int>(data.size));
  data.chunk = ChunkRef();  // copied into the BIO: the read chunk goes back to the pool now
  pump();
}

void TlsStream::on_eof() {
  if (closing_) return;
  transport_eof_ = true;
  pump();
}

void TlsStream::on_error(int status, std::string_view what) {
  if (closing_) return;
  transport_eof_ = true;
  if (phase_ == Phase::kHandshake)
    fail(status, handshake_failure(std::string(what)));
  else
    fail(status, std::string(what));  // a connect failure, or one after the handshake: as is
  pump();
}

void TlsStream::on_write_done() {
  if (closing_) return;
  for (auto& w : in_flight_) {
    if (!w.done) {
      w.done = true;
      break;
    }
  }
  while (!in_flight_.empty() && in_flight_.front().done) {
    writes_done_due_ += in_flight_.front().writes;
    in_flight_.pop_front();
  }
  pump();  // the transport has room: encrypt more, deliver completions
}

// ---------------------------------------------------------------- work (no handler calls)

void TlsStream::begin_handshake() {
  phase_ = Phase::kHandshake;
  if (!setup_error_.empty()) {  // a client that could not check the peer's name
    fail(UV_EINVAL, handshake_failure(setup_error_));
    return;
  }
  advance_handshake();
  update_transport_reading();
}

std::string TlsStream::handshake_failure(const std::string& reason) const {
  if (client_ctx_ && !server_name_.empty()) return "TLS handshake with " + server_name_ + " failed: " + reason;
  return "TLS handshake failed: " + reason;
}

bool TlsStream::advance_handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  std::string reason;
  if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) reason = take_openssl_error("handshake error");
  flush();  // the next flight, or the alert telling the peer why
  if (failed_) return false;
  if (r == 1) {
    phase_ = Phase::kOpen;
    handshake_done_ = true;
    connected_due_ = client_ctx_ != nullptr;
    if (!client_ctx_) {
      if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) server_name_ = sni;
    }
    update_transport_reading();
    return true;
  }
  if (e == SSL_ERROR_WANT_READ) {
    if (transport_eof_) fail(UV_ECONNRESET, handshake_failure("connection closed during the handshake"));
    return false;
  }
  if (client_ctx_) {
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) {
      if (verify_error_.empty()) verify_error_ = X509_verify_cert_error_string(v);
      reason = "certificate verify failed: " + verify_error_;
    }
    if (!session_key_.empty()) client_ctx_->drop_session(session_key_);
  } else if (!verify_error_.empty()) {
    reason = "client certificate verify failed: " + verify_error_;
  }
  fail(UV_EPROTO, handshake_failure(reason));
  return false;
}

void TlsStream::encrypt() {
  // Small slices of one write (a response head and a small body) go out as one record: one
  // AEAD operation and one record header instead of one per slice. They are copied into a
  // record-sized scratch buffer; a slice of a record's size or more is encrypted in place.
  // (Sizes are plaintext: what SSL_write takes at once, it encrypts whole, since the memory
  // BIO never refuses ciphertext.)
  thread_local std::string gather;
  while (!plain_.empty() && !failed_ && transport_) {
    if (transport_->queued_bytes() + BIO_ctrl_pending(net_out_) >= kEncryptAhead) break;
    PlainWrite& w = plain_.front();
    if (w.index < w.slices.size()) {
      const Slice& s = w.slices[w.index];
      const char* data = s.data + w.offset;
      std::size_t n = std::min(s.size - w.offset, kEncryptPiece);
      if (n < kRecord && w.index + 1 < w.slices.size()) {
        gather.clear();
        for (std::size_t i = w.index, off = w.offset; i < w.slices.size() && gather.size() < kRecord; ++i, off = 0) {
          const Slice& t = w.slices[i];
          std::size_t take = std::min(t.size - off, kRecord - gather.size());
          gather.append(t.data + off, take);
        }
        data = gather.data();
        n = gather.size();
      }
      if (n > 0) {
        ERR_clear_error();
        std::size_t written = 0;
        if (SSL_write_ex(ssl_, data, n, &written) != 1) {
          fail(UV_EPROTO, "TLS write failed: " + take_openssl_error("SSL_write"));
          return;
        }
        plain_bytes_ -= written;
        // Past what was encrypted, letting go of each plaintext chunk as soon as it is.
        while (written > 0) {
          Slice& t = w.slices[w.index];
          std::size_t step = std::min(written, t.size - w.offset);
          w.offset += step;
          written -= step;
          if (w.offset == t.size) {
            t = Slice{};
            ++w.index;
            w.offset = 0;
          }
        }
      } else {
        w.slices[w.index] = Slice{};  // an empty slice
        ++w.index;
        w.offset = 0;
      }
    }
    if (w.index == w.slices.size()) {
      plain_.pop_front();
      ++encrypted_writes_;
    }
    if (BIO_ctrl_pending(net_out_) >= Chunk::kIoSize) flush();
  }
  flush();
}

void TlsStream::flush() {
  if (!transport_ || failed_) return;
  std::size_t pending = BIO_ctrl_pending(net_out_);
  std::uint32_t writes = std::exchange(encrypted_writes_, 0);
  if (pending == 0) {
    // Writes with no bytes of their own complete with the transport write before them.
    if (writes == 0) return;
    if (in_flight_.empty())
      writes_done_due_ += writes;
    else
      in_flight_.back().writes += writes;
    return;
  }
  std::vector<Slice> out;
  while (pending > 0) {
    ChunkRef c = ChunkRef::make(std::min(pending, Chunk::kIoSize));
    int got = BIO_read(net_out_, c->data(), static_cast<int>(c->capacity()));
    if (got <= 0) break;
    c->set_size(static_cast<std::size_t>(got));
    const char* data = c->data();
    out.push_back(Slice{std::move(c), data, static_cast<std::size_t>(got)});
    pending -= static_cast<std::size_t>(got);
  }
  int rc = transport_->write(std::move(out));
  if (rc < 0) {
    fail(rc, std::string("TLS write: ") + uv_strerror(rc));
  } else if (rc == 0) {
    in_flight_.push_back(TransportWrite{writes, false});
  } else if (in_flight_.empty()) {
    writes_done_due_ += writes;
  } else {
    in_flight_.push_back(TransportWrite{writes, true});  // in the kernel, behind earlier ones
  }
}

void TlsStream::maybe_send_close_notify() {
  if (!shutdown_requested_ || shutdown_sent_ || phase_ != Phase::kOpen || failed_ || !plain_.empty()) return;
  shutdown_sent_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // writes close_notify into net_out_; the peer's may come later
  ERR_clear_error();
  flush();
  if (failed_) return;
  int rc = transport_->shutdown_write();
  if (rc < 0) fail(rc, std::string("TLS shutdown: ") + uv_strerror(rc));
}

void TlsStream::update_transport_reading() {
  if (closing_ || !transport_) return;
  bool want = !failed_ && !transport_eof_ && !read_ended_ &&
              (phase_ == Phase::kHandshake || (phase_ == Phase::kOpen && reading_));
  if (want)
    transport_->read_start();
  else
    transport_->read_stop();
}

bool TlsStream::input_buffered() const { return BIO_ctrl_pending(net_in_) > 0 || SSL_has_pending(ssl_) == 1; }

bool TlsStream::events_due() const {
  if (error_due_) return true;
  if (failed_) return false;
  return connected_due_ || writes_done_due_ > 0 ||
         (phase_ == Phase::kOpen && reading_ && !read_ended_ && (eof_due_ || transport_eof_ || input_buffered()));
}

void TlsStream::schedule_if_due() {
  if (closing_ || !events_due() || uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) return;
  uv_idle_start(&idle_, [](uv_idle_t* h) {
    uv_idle_stop(h);
    static_cast<TlsStream*>(h->data)->pump();
  });
}

void TlsStream::fail(int status, std::string what) {
  if (failed_) return;
  failed_ = true;
  error_due_ = true;
  error_status_ = status;
  error_what_ = std::move(what);
  reading_ = false;
  if (transport_ && !closing_) transport_->read_stop();
  schedule_if_due();  // delivered by pump(): at once from a loop callback, else from the idle
}

// ---------------------------------------------------------------- delivery (loop callbacks only)

void TlsStream::pump() {
  if (closing_) return;
  if (phase_ == Phase::kHandshake && !failed_) advance_handshake();
  if (!failed_ && phase_ == Phase::kOpen) {
    encrypt();
    maybe_send_close_notify();
    if (connected_due_ && !failed_) {
      connected_due_ = false;
      if (handler_) handler_->on_connected();
      if (closing_) return;
    }
    while (writes_done_due_ > 0 && !failed_) {
      --writes_done_due_;
      if (handler_) handler_->on_write_done();
      if (closing_) return;
    }
    if (!failed_) read_plaintext();
    if (closing_) return;
  }
  if (error_due_) {
    error_due_ = false;
    if (handler_) handler_->on_error(error_status_, error_what_);
    return;
  }
  update_transport_reading();
}

void TlsStream::read_plaintext() {
  while (reading_ && !read_ended_ && !failed_) {
    if (eof_due_) {
      eof_due_ = false;
      read_ended_ = true;
      reading_ = false;
      update_transport_reading();
      if (handler_) handler_->on_eof();
      return;
    }
    ChunkRef c = ChunkRef::make(Chunk::kIoSize);
    int e = SSL_ERROR_NONE;
    std::string reason;
    while (c->room() > 0) {
      ERR_clear_error();
      std::size_t got = 0;
      int r = SSL_read_ex(ssl_, c->data() + c->size(), c->room(), &got);
      if (r == 1) {
        c->set_size(c->size() + got);
        // Nothing decrypted left and no ciphertext waiting: the next call could only say
        // "want read" (a partial record stays inside OpenSSL either way). Skip it.
        if (SSL_pending(ssl_) == 0 && BIO_ctrl_pending(net_in_) == 0) {
          e = SSL_ERROR_WANT_READ;
          break;
        }
        continue;
      }
      e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN) reason = take_openssl_error("bad record");
      break;
    }
    flush();  // anything reading made OpenSSL write (a KeyUpdate answer)
    if (e == SSL_ERROR_ZERO_RETURN) eof_due_ = true;  // the peer's close_notify, after its data
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_ZERO_RETURN)
      fail(UV_EPROTO, "TLS read failed: " + reason);  // delivered after the data before it
    if (c->size() > 0) {
      std::size_t n = c->size();
      const char* data = c->data();
      if (handler_) handler_->on_read(Slice{std::move(c), data, n});
      if (closing_) return;
    }
    if (e == SSL_ERROR_WANT_READ) {
      if (transport_eof_ && reading_ && !failed_) fail(UV_ECONNRESET, "TLS connection closed without close_notify");
      return;
    }
  }
}

}  // namespace outpost::tls
