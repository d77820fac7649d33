// tls/TlsStream over real loopback TcpStreams, with certificates made here by OpenSSL (a test
// CA, leaves for origin.test and 127.0.0.1, a wrong name, a self-signed one, an expired one,
// one from an untrusted CA). No mocks: real handshakes, real records, real sockets.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/tcp_stream.hpp"
#include "core/uv_write.hpp"
#include "core/worker_pool.hpp"
#include "tls/ca.hpp"
#include "tls/tls_context.hpp"
#include "tls/tls_stream.hpp"

using namespace outpost;  // the seam's types: Chunk, Slice, StreamPtr, TcpStream, ...
using namespace outpost::tls;

namespace {

// ---------------------------------------------------------------- test certificates

using Key = PkeyPtr;  // tls/ca.hpp's owning pointers
using Cert = X509Ptr;

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  std::string cn;
  std::string san;  // "DNS:origin.test,IP:127.0.0.1"; empty for a CA
  bool ca = false;
  long from_days = -1, to_days = 30;  // validity relative to now
  std::string eku = "serverAuth";     // extended key usage of a leaf
};

// A certificate for `key`, signed by `issuer` / `issuer_key` (self-signed when null).
Cert make_cert(EVP_PKEY* key, const CertSpec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  Cert cert(X509_new());
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(x), spec.from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), spec.to_days * 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
  add_extension(x, &ctx, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(x, &ctx, NID_key_usage, spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(x, &ctx, NID_subject_key_identifier, "hash");
  if (issuer) add_extension(x, &ctx, NID_authority_key_identifier, "keyid:always");
  if (!spec.ca) add_extension(x, &ctx, NID_ext_key_usage, spec.eku);
  if (!spec.san.empty()) add_extension(x, &ctx, NID_subject_alt_name, spec.san);
  EXPECT_GT(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
  return cert;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  if (cert) PEM_write_X509(f, cert);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// The test PKI, made once per run in a temporary directory (removed at exit).
struct Pki {
  std::string dir;
  std::string ca;                                    // the trusted CA certificate
  std::string key;                                   // the leaves' key
  std::string good, wrong_name, self_signed, expired;  // leaf certificates
  std::string untrusted;       // a leaf and its CA, which the client does not trust
  std::string untrusted_leaf;  // the same leaf alone
  // Client certificates (clientAuth) for mutual TLS: from the CA, expired, from the other CA.
  std::string client, client_expired, client_untrusted;

  Pki() {
    char tmpl[] = "/tmp/outpost_tls_test_XXXXXX";
    dir = ::mkdtemp(tmpl);
    Key ca_key(EVP_EC_gen("P-256")), other_ca_key(EVP_EC_gen("P-256")), leaf_key(EVP_EC_gen("P-256"));
    Cert ca_cert = make_cert(ca_key.get(), {"Outpost Test CA", "", true, -1, 365}, nullptr, nullptr);
    Cert other_ca = make_cert(other_ca_key.get(), {"Someone Else's CA", "", true, -1, 365}, nullptr, nullptr);
    const std::string san = "DNS:origin.test,IP:127.0.0.1";
    Cert good_cert = make_cert(leaf_key.get(), {"origin.test", san}, ca_cert.get(), ca_key.get());
    Cert wrong_cert = make_cert(leaf_key.get(), {"wrong.test", "DNS:wrong.test"}, ca_cert.get(), ca_key.get());
    Cert self_cert = make_cert(leaf_key.get(), {"origin.test", san}, nullptr, nullptr);
    Cert expired_cert = make_cert(leaf_key.get(), {"origin.test", san, false, -30, -1}, ca_cert.get(), ca_key.get());
    Cert untrusted_cert = make_cert(leaf_key.get(), {"origin.test", san}, other_ca.get(), other_ca_key.get());
    ca = dir + "/ca.pem";
    key = dir + "/leaf.key";
    good = dir + "/good.pem";
    wrong_name = dir + "/wrong.pem";
    self_signed = dir + "/self.pem";
    expired = dir + "/expired.pem";
    untrusted = dir + "/untrusted.pem";
    write_pem(ca, ca_cert.get(), nullptr);
    write_pem(key, nullptr, leaf_key.get());
    write_pem(good, good_cert.get(), nullptr);
    write_pem(wrong_name, wrong_cert.get(), nullptr);
    write_pem(self_signed, self_cert.get(), nullptr);
    write_pem(expired, expired_cert.get(), nullptr);
    client = dir + "/client.pem";
    client_expired = dir + "/client_expired.pem";
    client_untrusted = dir + "/client_untrusted.pem";
    write_pem(client, make_cert(leaf_key.get(), {"client.test", "", false, -1, 30, "clientAuth"}, ca_cert.get(),
                                ca_key.get()).get(), nullptr);
    write_pem(client_expired, make_cert(leaf_key.get(), {"client.test", "", false, -30, -1, "clientAuth"},
                                        ca_cert.get(), ca_key.get()).get(), nullptr);
    write_pem(client_untrusted, make_cert(leaf_key.get(), {"client.test", "", false, -1, 30, "clientAuth"},
                                          other_ca.get(), other_ca_key.get()).get(), nullptr);
    // The untrusted leaf's file holds its chain (leaf, then its CA), as a server sends it.
    untrusted_leaf = dir + "/untrusted_leaf.pem";
    write_pem(untrusted_leaf, untrusted_cert.get(), nullptr);
    FILE* f = std::fopen(untrusted.c_str(), "w");
    PEM_write_X509(f, untrusted_cert.get());
    PEM_write_X509(f, other_ca.get());
    std::fclose(f);
  }
  ~Pki() { std::filesystem::remove_all(dir); }
};

const Pki& pki() {
  static Pki p;
  return p;
}

// ---------------------------------------------------------------- events

// Every event in order ("connected", "read", "eof", "error", "done"), plus what came with it.
struct Events final : StreamHandler {
  std::vector<std::string> log;
  std::string data, error_what;
  int error_status = 0;
  bool chunks_pooled_and_ours = true;  // every read: a kIoSize chunk nobody else holds
  std::function<void()> on_connected_hook, on_read_hook, on_write_done_hook;

  void on_connected() override {
    log.push_back("connected");
    if (on_connected_hook) on_connected_hook();
  }
  void on_read(Slice s) override {
    log.push_back("read");
    chunks_pooled_and_ours = chunks_pooled_and_ours && s.chunk->capacity() == Chunk::kIoSize && s.chunk->unique();
    data.append(s.data, s.size);
    if (on_read_hook) on_read_hook();
  }
  void on_eof() override { log.push_back("eof"); }
  void on_error(int status, std::string_view what) override {
    log.push_back("error");
    error_status = status;
    error_what = what;
  }
  void on_write_done() override {
    log.push_back("done");
    if (on_write_done_hook) on_write_done_hook();
  }
  int count(std::string_view kind) const { return static_cast<int>(std::count(log.begin(), log.end(), kind)); }
};

SocketAddress loopback(std::uint16_t port) { return SocketAddress{*outpost::IpAddress::parse("127.0.0.1"), port}; }

TlsStream& as_tls(const StreamPtr& s) { return *static_cast<TlsStream*>(s.get()); }

// A loop, a TCP listener on 127.0.0.1 whose connections become TLS server streams (or stay
// raw TCP), and a TLS client over a TcpStream.
class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    client_ctx_ = client_context({});
    ASSERT_TRUE(client_ctx_);
    use_server_cert(pki().good);
    // core's listening socket (127.0.0.1, a port the kernel picks), accepted through libuv.
    int fd = outpost::open_listen_socket(outpost::Endpoint{"127.0.0.1", 0}, 16);
    ASSERT_GE(fd, 0);
    uv_tcp_init(&loop_, &listener_);
    listener_.data = this;
    ASSERT_EQ(uv_tcp_open(&listener_, fd), 0);
    auto on_connection = [](uv_stream_t* l, int) { static_cast<TlsStreamTest*>(l->data)->accept(l); };
    ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, on_connection), 0);
    sockaddr_in bound{};
    int bound_len = sizeof bound;
    ASSERT_EQ(uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &bound_len), 0);
    port_ = ntohs(bound.sin_port);
  }
  void TearDown() override {
    reset_connection();
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // every stream (and its idle handle) closes and frees itself
    ASSERT_EQ(uv_loop_close(&loop_), 0) << "a handle was left open";
  }

  std::unique_ptr<ClientContext> client_context(ClientOptions o) {
    if (o.ca_file.empty()) o.ca_file = pki().ca;
    std::string error;
    auto ctx = ClientContext::create(o, &error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
  }
  void use_server_cert(const std::string& cert, std::vector<std::string> alpn = {"http/1.1"}) {
    std::string error;
    server_ctx_ = ServerContext::create({cert, pki().key, std::move(alpn)}, &error);
    ASSERT_TRUE(server_ctx_) << error;
  }

  void accept(uv_stream_t* l) {
    auto* tcp = new TcpStream(&loop_);
    ASSERT_EQ(tcp->accept_from(l), 0);
    server_tcp_ = tcp;
    if (raw_server_) {
      server_.reset(tcp);
    } else {
      server_ = make_server_stream(*server_ctx_, StreamPtr(tcp));
      ASSERT_TRUE(server_);
    }
    server_->set_handler(&server_events_);
    server_->read_start();  // a TLS server's handshake starts here
    if (!server_greeting_.empty()) {
      ASSERT_EQ(server_->write({slice_of(server_greeting_)}), 0);
    }
  }

  // Runs the loop until `done` holds; false after 20 s (a hang, not a timing assertion).
  bool run_until(const std::function<bool()>& done) {
    uint64_t deadline = uv_now(&loop_) + 20000;
    uv_timer_t tick;  // wakes the loop so the deadline is checked even when nothing happens
    uv_timer_init(&loop_, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 50, 50);
    bool ok = true;
    while (!done()) {
      if (uv_now(&loop_) > deadline) {
        ok = false;
        break;
      }
      uv_run(&loop_, UV_RUN_ONCE);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return ok;
  }
  // Lets the loop run for `ms` milliseconds whatever happens.
  void run_for(uint64_t ms) {
    uint64_t end = uv_now(&loop_) + ms;
    run_until([&] { return uv_now(&loop_) >= end; });
  }

  // A plain TCP client, connected and accepted when this returns; its events go to `events`.
  StreamPtr raw_client(Events* events) {
    StreamPtr raw(new TcpStream(&loop_));
    raw->set_handler(events);
    EXPECT_EQ(raw->connect(loopback(port_)), 0);
    EXPECT_TRUE(run_until([&] { return events->count("connected") == 1 && server_; }));
    return raw;
  }
  // A TLS client to the listener; `connect` false leaves it unconnected.
  void start_client(std::string name = "origin.test", std::string key = "", bool connect = true) {
    auto* tcp = new TcpStream(&loop_);
    client_tcp_ = tcp;
    client_ = make_client_stream(*client_ctx_, StreamPtr(tcp), std::move(name), std::move(key));
    ASSERT_TRUE(client_);
    client_->set_handler(&client_events_);
    if (connect) {
      ASSERT_EQ(client_->connect(loopback(port_)), 0);
    }
  }
  void handshake(std::string name = "origin.test", std::string key = "") {
    start_client(std::move(name), std::move(key));
    ASSERT_TRUE(run_until([&] { return client_events_.count("connected") + client_events_.count("error") > 0; }));
    ASSERT_EQ(client_events_.count("connected"), 1) << client_events_.error_what;
    ASSERT_TRUE(server_);
  }
  // Ends both streams and starts afresh (another connection on the same contexts).
  void reset_connection() {
    client_.reset();
    server_.reset();
    server_tcp_ = client_tcp_ = nullptr;
    client_events_ = Events{};
    server_events_ = Events{};
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  uv_loop_t loop_;
  uv_tcp_t listener_;
  std::uint16_t port_ = 0;
  bool raw_server_ = false;
  std::string server_greeting_;  // written by the server as it accepts (before its handshake)
  std::unique_ptr<ClientContext> client_ctx_;
  std::unique_ptr<ServerContext> server_ctx_;
  Events client_events_, server_events_;
  StreamPtr client_, server_;
  TcpStream* client_tcp_ = nullptr;  // the transports under client_ and server_
  TcpStream* server_tcp_ = nullptr;
};

// ---------------------------------------------------------------- handshake and data

TEST_F(TlsStreamTest, HandshakeAlpnSniAndDataBothWays) {
  start_client();
  // Written before the handshake: held as plaintext and counted as queued.
  ASSERT_EQ(client_->write({slice_of("ping")}), 0);
  EXPECT_EQ(client_->queued_bytes(), 4u);
  EXPECT_TRUE(client_events_.log.empty());  // nothing from inside connect() or write()
  ASSERT_TRUE(run_until([&] { return server_events_.data == "ping" && client_events_.count("done") == 1; }));
  // on_connected came first, once, and only after the handshake was done.
  ASSERT_EQ(client_events_.log, (std::vector<std::string>{"connected", "done"}));
  TlsStream& c = as_tls(client_);
  TlsStream& s = as_tls(server_);
  EXPECT_TRUE(c.handshake_done());
  EXPECT_TRUE(s.handshake_done());
  EXPECT_EQ(c.alpn(), "http/1.1");
  EXPECT_EQ(s.alpn(), "http/1.1");
  EXPECT_EQ(s.server_name(), "origin.test");  // the SNI the client sent
  EXPECT_EQ(c.version(), "TLSv1.3");
  EXPECT_TRUE(c.verify_error().empty());
  EXPECT_FALSE(c.session_reused());
  EXPECT_EQ(client_->queued_bytes(), 0u);
  EXPECT_EQ(*client_->peer_address(), loopback(port_));
  EXPECT_EQ(*server_->peer_address(), *client_->local_address());
  EXPECT_TRUE(server_events_.chunks_pooled_and_ours);

  client_->read_start();
  ASSERT_GE(server_->write({slice_of("po"), slice_of("ng")}), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.data == "pong"; }));
  EXPECT_TRUE(client_events_.chunks_pooled_and_ours);
  EXPECT_EQ(client_events_.count("error") + server_events_.count("error"), 0);
}

TEST_F(TlsStreamTest, IdleMemoryReleasedBetweenExchangesAndSmallSlicesGathered) {
  handshake();
  client_->read_start();
  for (int round = 0; round < 3; ++round) {
    // Both sides give their record buffers back while nothing moves...
    client_->release_idle_memory();
    server_->release_idle_memory();
    // ...and the next exchange allocates them again: many small slices in one write (one
    // record), a slice after an empty one, then a slice larger than a record.
    std::string expect;
    std::vector<Slice> many;
    for (int i = 0; i < 300; ++i) {
      std::string piece = std::to_string(round) + ":" + std::to_string(i) + (i % 7 == 0 ? "" : ",");
      expect += piece;
      many.push_back(slice_of(piece));
    }
    many.push_back(Slice{});
    std::string big(40000, static_cast<char>('a' + round));
    expect += big;
    many.push_back(slice_of(big));
    server_events_.data.clear();
    client_events_.data.clear();
    ASSERT_GE(server_->write(std::move(many)), 0);
    ASSERT_GE(client_->write({slice_of("ack")}), 0);
    ASSERT_TRUE(run_until([&] { return client_events_.data.size() == expect.size() && server_events_.data == "ack"; }));
    EXPECT_EQ(client_events_.data, expect);
  }
  EXPECT_EQ(client_events_.count("error") + server_events_.count("error"), 0);
}

TEST_F(TlsStreamTest, AlpnIsTheServersFirstChoiceTheClientOffersElseNone) {
  use_server_cert(pki().good, {"h2", "http/1.1"});
  client_ctx_ = client_context({"", {"http/1.1", "h2"}});
  handshake();
  EXPECT_EQ(as_tls(client_).alpn(), "h2");
  reset_connection();

  client_ctx_ = client_context({"", {}});  // the client offers nothing
  handshake();
  EXPECT_EQ(as_tls(client_).alpn(), "");
  ASSERT_TRUE(run_until([&] { return as_tls(server_).handshake_done(); }));
  EXPECT_EQ(as_tls(server_).alpn(), "");
  reset_connection();

  client_ctx_ = client_context({"", {"spdy/3"}});  // nothing in common: no ALPN, no failure
  handshake();
  EXPECT_EQ(as_tls(client_).alpn(), "");
}

TEST_F(TlsStreamTest, StartClientOverAConnectedTransport) {
  // A plain TCP connection first (as a CONNECT tunnel would be), TLS afterwards.
  Events plain_events;
  StreamPtr plain = raw_client(&plain_events);
  client_ = make_client_stream(*client_ctx_, std::move(plain), "origin.test", "");
  client_->set_handler(&client_events_);
  ASSERT_EQ(as_tls(client_).start_client(), 0);
  EXPECT_NE(as_tls(client_).start_client(), 0);  // once only
  EXPECT_NE(client_->connect(loopback(port_)), 0);
  EXPECT_TRUE(client_events_.log.empty());
  ASSERT_TRUE(run_until([&] { return client_events_.count("connected") == 1; }));
  EXPECT_EQ(plain_events.log.size(), 1u);  // the TLS stream took the transport's events over
}

// ---------------------------------------------------------------- verification

struct VerifyCase {
  const char* name;
  std::string Pki::*cert;
  std::string client_name;
  const char* reason;
};

class TlsStreamVerifyTest : public TlsStreamTest, public ::testing::WithParamInterface<VerifyCase> {};

TEST_P(TlsStreamVerifyTest, FailsWithTheReason) {
  const VerifyCase& vc = GetParam();
  use_server_cert(pki().*vc.cert);
  start_client(vc.client_name, "origin.test:443");
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1 && server_events_.count("error") == 1; }));
  EXPECT_EQ(client_events_.log, std::vector<std::string>{"error"});  // never on_connected
  EXPECT_EQ(client_events_.error_status, UV_EPROTO);
  std::string prefix = "TLS handshake with " + vc.client_name + " failed: certificate verify failed: ";
  EXPECT_EQ(client_events_.error_what.rfind(prefix, 0), 0u) << client_events_.error_what;
  EXPECT_NE(client_events_.error_what.find(vc.reason), std::string::npos) << client_events_.error_what;
  EXPECT_NE(as_tls(client_).verify_error().find(vc.reason), std::string::npos) << as_tls(client_).verify_error();
  EXPECT_NE(as_tls(client_).verify_error().find("depth"), std::string::npos);
  EXPECT_FALSE(as_tls(client_).handshake_done());
  // The server heard the client's alert.
  EXPECT_EQ(server_events_.error_what.rfind("TLS handshake failed: ", 0), 0u) << server_events_.error_what;
  EXPECT_EQ(client_ctx_->session_count(), 0u);
  // The stream is dead: no writes, no reading.
  EXPECT_LT(client_->write({slice_of("x")}), 0);
  client_->read_start();
  EXPECT_FALSE(client_->reading());
}

INSTANTIATE_TEST_SUITE_P(
    Certificates, TlsStreamVerifyTest,
    ::testing::Values(VerifyCase{"WrongName", &Pki::wrong_name, "origin.test", "hostname mismatch"},
                      VerifyCase{"SelfSigned", &Pki::self_signed, "origin.test", "self-signed certificate"},
                      VerifyCase{"UntrustedChain", &Pki::untrusted, "origin.test", "self-signed certificate in certificate chain"},
                      VerifyCase{"UnknownIssuer", &Pki::untrusted_leaf, "origin.test", "unable to get local issuer certificate"},
                      VerifyCase{"Expired", &Pki::expired, "origin.test", "certificate has expired"},
                      VerifyCase{"NameNotInSan", &Pki::good, "other.test", "hostname mismatch"},
                      VerifyCase{"IpNotInSan", &Pki::good, "127.0.0.2", "IP address mismatch"},
                      VerifyCase{"Ipv6InBracketsNotInSan", &Pki::good, "[::1]", "IP address mismatch"}),
    [](const ::testing::TestParamInfo<VerifyCase>& i) { return std::string(i.param.name); });

// ---------------------------------------------------------------- mutual TLS

TEST_F(TlsStreamTest, MutualTlsTakesAClientCertificateFromTheCa) {
  std::string error;
  server_ctx_ = ServerContext::create({pki().good, pki().key, {}, pki().ca}, &error);
  ASSERT_TRUE(server_ctx_) << error;
  client_ctx_ = client_context({pki().ca, {}, pki().client, pki().key});
  handshake();
  ASSERT_GE(client_->write({slice_of("status\n")}), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.data == "status\n"; })) << server_events_.error_what;
  EXPECT_EQ(as_tls(server_).peer_subject(), "CN=client.test");
  EXPECT_EQ(as_tls(client_).peer_subject(), "CN=origin.test");
}

struct MutualCase {
  const char* name;
  std::string Pki::*cert;  // nullptr: no client certificate
  int version;
  const char* reason;  // in the server's error
};

class TlsStreamMutualTest : public TlsStreamTest, public ::testing::WithParamInterface<MutualCase> {};

TEST_P(TlsStreamMutualTest, ServerRefusesTheClientWithTheReason) {
  const MutualCase& mc = GetParam();
  std::string error;
  server_ctx_ = ServerContext::create({pki().good, pki().key, {}, pki().ca}, &error);
  ASSERT_TRUE(server_ctx_) << error;
  ClientOptions o{pki().ca, {}, "", ""};
  if (mc.cert) {
    o.cert_file = pki().*mc.cert;
    o.key_file = pki().key;
  }
  client_ctx_ = client_context(o);
  SSL_CTX_set_max_proto_version(client_ctx_->ssl_ctx(), mc.version);
  start_client();
  client_events_.on_connected_hook = [&] {
    client_->write({slice_of("status\n")});
    client_->read_start();  // TLS 1.3: the server's verdict comes after the client's handshake
  };
  ASSERT_TRUE(run_until([&] { return server_events_.count("error") == 1 && client_events_.count("error") == 1; }));
  EXPECT_EQ(server_events_.log, std::vector<std::string>{"error"});  // never any plaintext
  EXPECT_EQ(server_events_.error_status, UV_EPROTO);
  EXPECT_EQ(server_events_.error_what.rfind("TLS handshake failed: ", 0), 0u) << server_events_.error_what;
  EXPECT_NE(server_events_.error_what.find(mc.reason), std::string::npos) << server_events_.error_what;
  EXPECT_EQ(client_events_.data, "");
}

INSTANTIATE_TEST_SUITE_P(
    Clients, TlsStreamMutualTest,
    ::testing::Values(
        MutualCase{"NoCertificate13", nullptr, TLS1_3_VERSION, "peer did not return a certificate"},
        MutualCase{"NoCertificate12", nullptr, TLS1_2_VERSION, "peer did not return a certificate"},
        MutualCase{"OtherCa", &Pki::client_untrusted, TLS1_3_VERSION,
                   "client certificate verify failed: unable to get local issuer certificate (depth 0, subject "
                   "CN=client.test)"},
        MutualCase{"Expired", &Pki::client_expired, TLS1_3_VERSION,
                   "client certificate verify failed: certificate has expired"},
        MutualCase{"Expired12", &Pki::client_expired, TLS1_2_VERSION,
                   "client certificate verify failed: certificate has expired"},
        MutualCase{"ServerCertificateAsClient", &Pki::good, TLS1_3_VERSION,
                   "client certificate verify failed: unsuitable certificate purpose"}),
    [](const ::testing::TestParamInfo<MutualCase>& i) { return std::string(i.param.name); });

TEST_F(TlsStreamTest, IpLiteralVerifiedAgainstIpSanWithoutSni) {
  handshake("127.0.0.1");
  ASSERT_TRUE(run_until([&] { return as_tls(server_).handshake_done(); }));
  EXPECT_EQ(as_tls(server_).server_name(), "");  // no SNI for an IP literal
  EXPECT_EQ(as_tls(client_).server_name(), "127.0.0.1");
}

TEST_F(TlsStreamTest, NoServerNameIsNoHandshake) {
  start_client("");  // nothing to check the certificate against: never a silent chain-only check
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1; }));
  EXPECT_EQ(client_events_.log, std::vector<std::string>{"error"});
  EXPECT_EQ(client_events_.error_status, UV_EINVAL);
  EXPECT_EQ(client_events_.error_what, "TLS handshake failed: no server name to verify");
}

TEST_F(TlsStreamTest, SystemTrustStoreDoesNotTrustTheTestCa) {
  std::string error;
  client_ctx_ = ClientContext::create({}, &error);  // empty ca_file: the system store
  ASSERT_TRUE(client_ctx_) << error;
  start_client();
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1; }));
  EXPECT_NE(client_events_.error_what.find("certificate verify failed"), std::string::npos);
}

TEST_F(TlsStreamTest, ContextsReportBadFiles) {
  std::string error;
  EXPECT_FALSE(ClientContext::create({"/nonexistent/ca.pem"}, &error));
  EXPECT_NE(error.find("/nonexistent/ca.pem"), std::string::npos);
  EXPECT_FALSE(ServerContext::create({pki().good, "/nonexistent/key.pem"}, &error));
  EXPECT_NE(error.find("/nonexistent/key.pem"), std::string::npos);
  EXPECT_FALSE(ServerContext::create({pki().ca, pki().key}, &error));  // key of another cert
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(ServerContext::create({pki().good, pki().key, {}, "/nonexistent/clients.pem"}, &error));
  EXPECT_NE(error.find("/nonexistent/clients.pem"), std::string::npos);
  EXPECT_FALSE(ClientContext::create({pki().ca, {}, pki().client, "/nonexistent/client.key"}, &error));
  EXPECT_NE(error.find("/nonexistent/client.key"), std::string::npos);
  EXPECT_FALSE(ClientContext::create({pki().ca, {}, pki().ca, pki().key}, &error));  // key of another cert
  EXPECT_NE(error.find(pki().key), std::string::npos) << error;
}

// ---------------------------------------------------------------- resumption

class TlsStreamResumeTest : public TlsStreamTest, public ::testing::WithParamInterface<int> {};

TEST_P(TlsStreamResumeTest, SecondConnectionWithTheSameKeyResumes) {
  SSL_CTX_set_max_proto_version(server_ctx_->ssl_ctx(), GetParam());
  const char* version = GetParam() == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2";
  // One exchange per connection: TLS 1.3 tickets come after the handshake, with the data.
  auto exchange = [&](const std::string& key) {
    handshake("origin.test", key);
    client_->read_start();
    ASSERT_GE(server_->write({slice_of("hello")}), 0);
    ASSERT_TRUE(run_until([&] { return client_events_.data == "hello"; }));
    EXPECT_EQ(as_tls(client_).version(), version);
  };
  exchange("origin.test:443");
  EXPECT_FALSE(as_tls(client_).session_reused());
  EXPECT_EQ(client_ctx_->session_count(), 1u);
  reset_connection();

  exchange("origin.test:443");
  EXPECT_TRUE(as_tls(client_).session_reused());
  EXPECT_TRUE(as_tls(server_).session_reused());
  reset_connection();

  exchange("origin.test:8443");  // another key: a full handshake
  EXPECT_FALSE(as_tls(client_).session_reused());
  EXPECT_EQ(client_ctx_->session_count(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsStreamResumeTest, ::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(i.param == TLS1_3_VERSION ? "Tls13" : "Tls12");
                         });

TEST(TlsStreamSessionCache, BoundedLeastRecentlyUsedFirst) {
  std::string error;
  auto ctx = ClientContext::create({pki().ca}, &error);
  ASSERT_TRUE(ctx) << error;
  ctx->set_session_capacity(2);
  ctx->store_session("a", SSL_SESSION_new());
  ctx->store_session("b", SSL_SESSION_new());
  EXPECT_NE(ctx->find_session("a"), nullptr);  // a is now the most recent
  ctx->store_session("c", SSL_SESSION_new());  // b goes
  EXPECT_EQ(ctx->session_count(), 2u);
  EXPECT_EQ(ctx->find_session("b"), nullptr);
  EXPECT_NE(ctx->find_session("a"), nullptr);
  ctx->store_session("a", SSL_SESSION_new());  // replaced, the old one freed (ASan checks)
  ctx->drop_session("c");
  EXPECT_EQ(ctx->session_count(), 1u);
}

// ---------------------------------------------------------------- back-pressure

TEST_F(TlsStreamTest, LargeTransferWithReadStopAndBoundedQueues) {
  handshake();
  constexpr std::size_t kTotal = 32u << 20, kPiece = 256u << 10;
  ChunkRef pattern = ChunkRef::make(1u << 20);
  pattern->set_size(1u << 20);
  for (std::size_t i = 0; i < pattern->size(); ++i) pattern->data()[i] = static_cast<char>('a' + i % 23);

  // The client writes 256 KiB slices of one chunk while queued_bytes() is under the high
  // mark, and more on every completion (a producer obeying back-pressure).
  std::size_t sent = 0, max_queued = 0, max_transport = 0;
  int queued_writes = 0;
  auto produce = [&] {
    while (sent < kTotal && client_->queued_bytes() < outpost::kStreamHighWater) {
      std::size_t off = sent % pattern->size();
      int rc = client_->write({Slice{pattern, pattern->data() + off, kPiece}});
      ASSERT_GE(rc, 0);
      if (rc == 0) ++queued_writes;
      sent += kPiece;
      max_queued = std::max(max_queued, client_->queued_bytes());
      max_transport = std::max(max_transport, client_tcp_->queued_bytes());
    }
  };
  client_events_.on_write_done_hook = produce;

  // The server stops reading at 4 MiB, from inside on_read.
  bool stopped = false, read_after_stop = false;
  server_events_.on_read_hook = [&] {
    if (stopped && !server_->reading()) read_after_stop = true;
    if (!stopped && server_events_.data.size() >= (4u << 20)) {
      stopped = true;
      server_->read_stop();
    }
  };
  produce();
  ASSERT_TRUE(run_until([&] { return stopped; }));
  std::size_t at_stop = server_events_.data.size();
  run_for(300);
  EXPECT_EQ(server_events_.data.size(), at_stop);  // nothing delivered after read_stop()
  EXPECT_FALSE(read_after_stop);
  EXPECT_FALSE(server_->reading());
  EXPECT_FALSE(server_tcp_->reading());  // and the transport is not read either
  EXPECT_LT(sent, kTotal);               // the writer is held back...
  EXPECT_GE(client_->queued_bytes(), outpost::kStreamHighWater);  // ...by what TLS holds
  // One more write while the reader is stopped: queued_bytes() grows by at least its size,
  // whether TLS still holds it as plaintext or has encrypted it into the transport.
  std::size_t before = client_->queued_bytes();
  ASSERT_EQ(client_->write({Slice{pattern, pattern->data() + sent % pattern->size(), kPiece}}), 0);
  ++queued_writes;
  sent += kPiece;
  EXPECT_GE(client_->queued_bytes(), before + kPiece);

  server_->read_start();
  ASSERT_TRUE(run_until([&] {
    return server_events_.data.size() == kTotal && client_events_.count("done") == queued_writes && sent == kTotal;
  }));
  run_for(50);
  EXPECT_EQ(client_events_.count("done"), queued_writes);  // one completion per queued write
  EXPECT_EQ(client_->queued_bytes(), 0u);
  EXPECT_LE(max_queued, outpost::kStreamHighWater + kPiece + 4096);  // + record overhead
  // The TLS layer encrypts ahead of the socket by a bounded amount only.
  EXPECT_LE(max_transport, TlsStream::kEncryptAhead + 2 * Chunk::kIoSize);
  EXPECT_TRUE(server_events_.chunks_pooled_and_ours);
  bool same = true;
  for (std::size_t off = 0; off < kTotal && same; off += pattern->size())
    same = std::memcmp(server_events_.data.data() + off, pattern->data(), pattern->size()) == 0;
  EXPECT_TRUE(same);
  EXPECT_TRUE(pattern.get()->unique());  // all written: the stream let go of the plaintext
  EXPECT_EQ(client_events_.count("error") + server_events_.count("error"), 0);
}

TEST_F(TlsStreamTest, ReadStopHoldsBufferedDataAndEofUntilReadStart) {
  handshake();
  // 70000 bytes (five records) and a close_notify wait in the client's socket; the client
  // stops reading inside every on_read and starts again only from the test, so each
  // read_start() may bring exactly one event, delivered from the loop.
  ASSERT_GE(server_->write({slice_of(std::string(70000, 'x'))}), 0);
  ASSERT_EQ(server_->shutdown_write(), 0);
  run_for(50);
  client_events_.on_read_hook = [&] { client_->read_stop(); };
  std::size_t events = client_events_.log.size();  // "connected"
  while (client_events_.count("eof") + client_events_.count("error") == 0) {
    client_->read_start();
    EXPECT_EQ(client_events_.log.size(), events);  // not from inside read_start()
    ASSERT_TRUE(run_until([&] { return client_events_.log.size() > events; }));
    run_for(20);
    ASSERT_EQ(client_events_.log.size(), events + 1) << "an event after read_stop()";
    events = client_events_.log.size();
    ASSERT_LT(events, 10u);
  }
  EXPECT_EQ(client_events_.data, std::string(70000, 'x'));
  EXPECT_EQ(client_events_.log.back(), "eof");
  EXPECT_GE(events, 4u);  // connected, at least two reads, then EOF on its own read_start()
}

TEST_F(TlsStreamTest, DataThatCameWithTheHandshakeWaitsForReadStart) {
  // TLS 1.2: the server's Finished and its queued greeting leave together, so they reach the
  // client in one read, while the client is not reading yet. read_start() must deliver the
  // greeting from the loop: nothing more will come from the socket.
  SSL_CTX_set_max_proto_version(server_ctx_->ssl_ctx(), TLS1_2_VERSION);
  server_greeting_ = "220 greetings";
  handshake();
  run_for(50);
  EXPECT_EQ(client_events_.log, std::vector<std::string>{"connected"});
  client_->read_start();
  ASSERT_TRUE(run_until([&] { return client_events_.data == "220 greetings"; }));
}

// ---------------------------------------------------------------- close_notify, EOF, half-close

TEST_F(TlsStreamTest, CloseNotifyIsEofAndTheOtherHalfStaysOpen) {
  handshake();
  client_->read_start();
  ASSERT_GE(client_->write({slice_of("request")}), 0);
  ASSERT_EQ(client_->shutdown_write(), 0);  // close_notify after the queued data, then FIN
  EXPECT_LT(client_->write({slice_of("late")}), 0);
  EXPECT_NE(client_->shutdown_write(), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.count("eof") == 1; }));
  EXPECT_EQ(server_events_.data, "request");
  EXPECT_EQ(server_events_.log.back(), "eof");
  EXPECT_FALSE(server_->reading());
  server_->read_start();  // no effect after EOF
  EXPECT_FALSE(server_->reading());
  // The server still answers on its half, then ends it the same way.
  ASSERT_GE(server_->write({slice_of("response")}), 0);
  ASSERT_EQ(server_->shutdown_write(), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.count("eof") == 1; }));
  EXPECT_EQ(client_events_.data, "response");
  EXPECT_EQ(client_events_.count("error") + server_events_.count("error"), 0);
}

TEST_F(TlsStreamTest, ShutdownBeforeTheHandshakeWaitsForIt) {
  start_client();
  ASSERT_EQ(client_->write({slice_of("early")}), 0);
  ASSERT_EQ(client_->shutdown_write(), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.count("eof") == 1; }));
  EXPECT_EQ(server_events_.data, "early");
  EXPECT_EQ(client_events_.log, (std::vector<std::string>{"connected", "done"}));
}

TEST_F(TlsStreamTest, TransportEofWithoutCloseNotifyIsAnError) {
  handshake();
  client_->read_start();
  ASSERT_GE(server_->write({slice_of("partial answer")}), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.data == "partial answer"; }));
  ASSERT_EQ(server_tcp_->shutdown_write(), 0);  // a FIN under the TLS layer: truncation
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1; }));
  EXPECT_EQ(client_events_.error_status, UV_ECONNRESET);
  EXPECT_EQ(client_events_.error_what, "TLS connection closed without close_notify");
  EXPECT_EQ(client_events_.count("eof"), 0);
  EXPECT_FALSE(client_->reading());
}

TEST_F(TlsStreamTest, TruncatedRecordIsAnError) {
  handshake();
  client_->read_start();
  // An application-data record header announcing 64 bytes, 10 of them, then FIN.
  ASSERT_GE(server_tcp_->write({slice_of(std::string("\x17\x03\x03\x00\x40", 5) + std::string(10, 'z'))}), 0);
  ASSERT_EQ(server_tcp_->shutdown_write(), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1; }));
  EXPECT_EQ(client_events_.error_status, UV_ECONNRESET);
  EXPECT_EQ(client_events_.data, "");
}

TEST_F(TlsStreamTest, EofDuringTheHandshakeIsAnError) {
  raw_server_ = true;  // a TCP server that answers the ClientHello with half a record header
  start_client();
  ASSERT_TRUE(run_until([&] { return server_ && !server_events_.data.empty(); }));
  ASSERT_GE(server_->write({slice_of("\x16\x03")}), 0);
  ASSERT_EQ(server_->shutdown_write(), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1; }));
  EXPECT_EQ(client_events_.error_what, "TLS handshake with origin.test failed: connection closed during the handshake");
  EXPECT_EQ(client_events_.count("connected"), 0);
}

// ---------------------------------------------------------------- garbage

TEST_F(TlsStreamTest, GarbageInsteadOfAClientHello) {
  for (std::string garbage : {std::string("GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n"), std::string(4096, '\x16')}) {
    Events raw_events;
    StreamPtr raw = raw_client(&raw_events);
    raw->read_start();
    ASSERT_GE(raw->write({slice_of(garbage)}), 0);
    ASSERT_TRUE(run_until([&] { return server_events_.count("error") == 1; }));
    EXPECT_EQ(server_events_.error_status, UV_EPROTO);
    EXPECT_EQ(server_events_.error_what.rfind("TLS handshake failed: ", 0), 0u) << server_events_.error_what;
    EXPECT_EQ(server_events_.count("read"), 0);
    raw.reset();
    reset_connection();
  }
}

TEST_F(TlsStreamTest, MutatedClientHellosEndInOneError) {
  // A real ClientHello, caught by a raw TCP server.
  raw_server_ = true;
  start_client();
  auto whole_record = [&] {
    const std::string& d = server_events_.data;
    if (d.size() < 5) return false;
    std::size_t length = static_cast<std::size_t>(static_cast<unsigned char>(d[3])) << 8 | static_cast<unsigned char>(d[4]);
    return d.size() >= 5 + length;
  };
  ASSERT_TRUE(run_until([&] { return server_ && whole_record(); }));
  const std::string hello = server_events_.data;
  reset_connection();
  raw_server_ = false;

  // Cut short or with bytes changed, then the end of the stream: whatever the server makes
  // of it (a bad record, a bad message, or a good hello and then EOF mid-handshake), it
  // ends in exactly one on_error and never delivers anything else.
  std::mt19937 rng(20261203);
  for (int i = 0; i < 60; ++i) {
    std::string bytes = hello;
    if (i % 2 == 0) {
      bytes.resize(rng() % bytes.size());
    } else {
      for (unsigned flips = 1 + rng() % 4; flips > 0; --flips) bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    Events raw_events;
    StreamPtr raw = raw_client(&raw_events);
    if (!bytes.empty()) {
      ASSERT_GE(raw->write({slice_of(bytes)}), 0);
    }
    ASSERT_EQ(raw->shutdown_write(), 0);
    ASSERT_TRUE(run_until([&] { return !server_events_.log.empty(); })) << "case " << i;
    run_for(5);
    EXPECT_EQ(server_events_.log, std::vector<std::string>{"error"}) << "case " << i;
    EXPECT_EQ(server_events_.error_what.rfind("TLS handshake failed: ", 0), 0u) << server_events_.error_what;
    raw.reset();
    reset_connection();
  }
}

TEST_F(TlsStreamTest, GarbageInsteadOfAServerHello) {
  raw_server_ = true;
  start_client();
  ASSERT_TRUE(run_until([&] { return server_ && !server_events_.data.empty(); }));
  ASSERT_GE(server_->write({slice_of("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")}), 0);
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") == 1; }));
  EXPECT_EQ(client_events_.error_status, UV_EPROTO);
  EXPECT_EQ(client_events_.error_what.rfind("TLS handshake with origin.test failed: ", 0), 0u);
  EXPECT_TRUE(as_tls(client_).verify_error().empty());
}

TEST_F(TlsStreamTest, ForgedRecordAfterTheHandshake) {
  handshake();
  ASSERT_GE(client_->write({slice_of("real")}), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.data == "real"; }));
  // An application-data record the client's TLS layer never made: it fails authentication.
  ASSERT_GE(client_tcp_->write({slice_of(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'A'))}), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.count("error") == 1; }));
  EXPECT_EQ(server_events_.error_status, UV_EPROTO);
  EXPECT_EQ(server_events_.error_what.rfind("TLS read failed: ", 0), 0u) << server_events_.error_what;
  EXPECT_EQ(server_events_.data, "real");
  EXPECT_LT(server_->write({slice_of("x")}), 0);
}

// ---------------------------------------------------------------- close from callbacks

TEST_F(TlsStreamTest, CloseInsideOnConnected) {
  client_events_.on_connected_hook = [&] { client_.reset(); };
  start_client();
  ASSERT_TRUE(run_until([&] { return client_events_.count("connected") == 1; }));
  // The server finishes its side, then sees the TCP end without close_notify.
  ASSERT_TRUE(run_until([&] { return server_events_.count("error") + server_events_.count("eof") > 0; }));
  EXPECT_EQ(server_events_.count("error"), 1);
  run_for(50);
  EXPECT_EQ(client_events_.log.size(), 1u);
}

TEST_F(TlsStreamTest, CloseInsideOnReadWithMoreBuffered) {
  handshake();
  server_events_.on_read_hook = [&] { server_.reset(); };
  client_->read_start();
  // 300 KiB in one write: several reads' worth arrive, the first read closes the server.
  ASSERT_GE(client_->write({slice_of(std::string(300 * 1024, 'q'))}), 0);
  ASSERT_TRUE(run_until([&] { return server_events_.count("read") == 1; }));
  ASSERT_TRUE(run_until([&] { return client_events_.count("error") + client_events_.count("eof") > 0; }));
  run_for(50);
  EXPECT_EQ(server_events_.log, std::vector<std::string>{"read"});
}

TEST_F(TlsStreamTest, CloseWithWritesQueuedCompletesNothing) {
  start_client();
  ChunkRef big = ChunkRef::make(1 << 20);
  big->set_size(1 << 20);
  ASSERT_EQ(client_->write({Slice{big, big->data(), big->size()}}), 0);
  client_.reset();
  EXPECT_TRUE(big.get()->unique());
  run_for(50);
  EXPECT_TRUE(client_events_.log.empty());
}

}  // namespace
