#include "tls/tls_context.hpp"

#include <openssl/err.h>

#include <cstring>

namespace outpost::tls {
void set_error(std::string* error, std::string text) {
  if (error) *error = std::move(text);
}

namespace {

// ALPN protocol names in wire form (length-prefixed); false if a name is empty or too long.
bool alpn_wire(const std::vector<std::string>& names, std::string* out) {
  out->clear();
  for (const auto& n : names) {
    if (n.empty() || n.size() > 255) return false;
    out->push_back(static_cast<char>(n.size()));
    out->append(n);
  }
  return true;
}

// A context with what both sides share: TLS 1.2 minimum, no renegotiation. Record buffers
// are kept while a connection is busy and released when it idles (TlsStream::
// release_idle_memory), not after every record. nullptr (and the reason) on failure.
SSL_CTX* new_context(const SSL_METHOD* method, std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (!ctx) {
    set_error(error, "SSL_CTX_new: " + take_openssl_error("failed"));
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  return ctx;
}

}  // namespace

std::string take_openssl_error(const char* fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  if (const char* reason = ERR_reason_error_string(e)) return reason;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// ---------------------------------------------------------------- client

std::unique_ptr<ClientContext> ClientContext::create(const ClientOptions& o, std::string* error) {
  SSL_CTX* ctx = new_context(TLS_client_method(), error);
  if (!ctx) return nullptr;
  std::unique_ptr<ClientContext> self(new ClientContext(ctx));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int ok = o.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                             : SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr);
  if (ok != 1) {
    set_error(error, (o.ca_file.empty() ? std::string("system trust store") : o.ca_file) + ": " +
                         take_openssl_error("cannot load the trust store"));
    return nullptr;
  }
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
      set_error(error, o.cert_file + ": " + take_openssl_error("cannot load the certificate chain"));
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      set_error(error, o.key_file + ": " + take_openssl_error("cannot load the private key"));
      return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      set_error(error, o.key_file + ": " + take_openssl_error("the key does not match the certificate"));
      return nullptr;
    }
  }
  std::string wire;
  if (!alpn_wire(o.alpn, &wire)) {
    set_error(error, "alpn: a protocol name is empty or longer than 255 bytes");
    return nullptr;
  }
  if (!wire.empty() &&
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0) {
    set_error(error, "alpn: " + take_openssl_error("cannot set the protocol list"));
    return nullptr;
  }
  // Sessions are kept here, not in OpenSSL's internal cache: TlsStream's new-session
  // callback (also called for TLS 1.3 tickets, which arrive after the handshake) stores them
  // under the stream's key.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  return self;
}

ClientContext::~ClientContext() {
  for (auto& e : lru_) SSL_SESSION_free(e.second);
  SSL_CTX_free(ctx_);
}

SSL_SESSION* ClientContext::find_session(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void ClientContext::store_session(const std::string& key, SSL_SESSION* s) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    SSL_SESSION_free(it->second->second);
    it->second->second = s;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(key, s);
  index_.emplace(key, lru_.begin());
  set_session_capacity(capacity_);  // trims
}

void ClientContext::drop_session(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  SSL_SESSION_free(it->second->second);
  lru_.erase(it->second);
  index_.erase(it);
}

void ClientContext::set_session_capacity(std::size_t n) {
  capacity_ = n;
  while (index_.size() > capacity_) drop_session(lru_.back().first);
}

// ---------------------------------------------------------------- server

std::unique_ptr<ServerContext> ServerContext::create(const ServerOptions& o, std::string* error) {
  SSL_CTX* ctx = new_context(TLS_server_method(), error);
  if (!ctx) return nullptr;
  std::unique_ptr<ServerContext> self(new ServerContext(ctx));
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (o.cert_file.empty() && o.key_file.empty()) {
    // Each stream brings its own certificate (make_server_stream's `identity`).
  } else if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    set_error(error, o.cert_file + ": " + take_openssl_error("cannot load the certificate chain"));
    return nullptr;
  } else if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    set_error(error, o.key_file + ": " + take_openssl_error("cannot load the private key"));
    return nullptr;
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    set_error(error, o.key_file + ": " + take_openssl_error("the key does not match the certificate"));
    return nullptr;
  }
  std::string wire;
  if (!alpn_wire(o.alpn, &wire)) {
    set_error(error, "alpn: a protocol name is empty or longer than 255 bytes");
    return nullptr;
  }
  if (!o.client_ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
    if (SSL_CTX_load_verify_locations(ctx, o.client_ca_file.c_str(), nullptr) != 1 || !names) {
      if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
      set_error(error, o.client_ca_file + ": " + take_openssl_error("cannot load the client CA"));
      return nullptr;
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // takes the list
    // The verify callback is set per stream (make_server_stream), where it records why.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  self->alpn_ = o.alpn;
  if (!self->alpn_.empty()) SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::select_alpn, self.get());
  static const unsigned char kSessionContext[] = "outpost";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  return self;
}

ServerContext::~ServerContext() { SSL_CTX_free(ctx_); }

int ServerContext::select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                               unsigned inlen, void* arg) {
  auto* self = static_cast<ServerContext*>(arg);
  for (const auto& want : self->alpn_) {
    for (unsigned i = 0; i < inlen;) {
      unsigned len = in[i];
      if (i + 1 + len > inlen) break;  // malformed list: OpenSSL checks it first, be safe anyway
      if (len == want.size() && std::memcmp(in + i + 1, want.data(), len) == 0) {
        *out = in + i + 1;  // points into the client's list, alive for the callback's caller
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace outpost::tls
