// The ClientHello peek (tls/client_hello): real hellos from OpenSSL's client, every prefix of
// them, hellos split across records, and hand-built ones with each kind of fault.
#include "tls/client_hello.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>
#include <vector>

using namespace outpost::tls;
using Status = ClientHello::Status;
using namespace std::string_literals;

namespace {

// The first flight of an OpenSSL client: its ClientHello record(s).
std::string openssl_client_hello(const char* sni, std::vector<std::string> alpn) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (sni) SSL_set_tlsext_host_name(ssl, sni);
  std::string wire;
  for (const auto& p : alpn) wire += static_cast<char>(p.size()) + p;
  if (!wire.empty()) SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  SSL_connect(ssl);  // wants to read: the hello is in wbio
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

std::string u16(std::size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string u24(std::size_t v) { return static_cast<char>(v >> 16) + u16(v & 0xffff); }

std::string ext(std::uint16_t type, const std::string& body) { return u16(type) + u16(body.size()) + body; }
std::string sni_ext(const std::string& name) {
  std::string entry = std::string(1, '\0') + u16(name.size()) + name;
  return ext(0, u16(entry.size()) + entry);
}

// A ClientHello handshake message with `extensions` (already encoded).
std::string hello_message(const std::string& extensions, bool with_extensions = true) {
  std::string body = "\x03\x03"s + std::string(32, 'r') + "\x00"s + u16(2) + "\x13\x01"s + "\x01\x00"s;
  if (with_extensions) body += u16(extensions.size()) + extensions;
  return std::string(1, '\x01') + u24(body.size()) + body;
}

std::string record(const std::string& payload, char type = 22) { return std::string(1, type) + "\x03\x01"s + u16(payload.size()) + payload; }

TEST(ClientHelloPeek, RealHelloGivesSniAndAlpnAndEveryPrefixWaits) {
  std::string hello = openssl_client_hello("Origin.TEST", {"h2", "http/1.1"});
  ASSERT_GT(hello.size(), 50u);
  auto h = peek_client_hello(hello);
  ASSERT_EQ(h.status, Status::kDone) << (h.error ? h.error : "");
  EXPECT_EQ(h.server_name, "origin.test");
  EXPECT_EQ(h.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_FALSE(h.ech);
  EXPECT_TRUE(h.supported_versions);
  EXPECT_EQ(h.bytes, hello.size());
  for (std::size_t n = 0; n < hello.size(); ++n) {
    auto p = peek_client_hello(std::string_view(hello).substr(0, n));
    ASSERT_EQ(p.status, Status::kNeedMore) << n;
    // Nothing can change before the record being read is complete.
    ASSERT_GT(p.need, n);
    ASSERT_LE(p.need, hello.size());
    ASSERT_EQ(p.need, n < 5 ? 5 : hello.size()) << n;  // one record
  }
  // Bytes after the hello (the client's next flight) are not the hello's.
  auto more = peek_client_hello(hello + "\x14\x03\x03\x00\x01\x01");
  EXPECT_EQ(more.status, Status::kDone);
  EXPECT_EQ(more.bytes, hello.size());
}

TEST(ClientHelloPeek, NoSniNoAlpn) {
  auto h = peek_client_hello(openssl_client_hello(nullptr, {}));
  ASSERT_EQ(h.status, Status::kDone);
  EXPECT_EQ(h.server_name, "");
  EXPECT_TRUE(h.alpn.empty());
  auto bare = peek_client_hello(record(hello_message("", false)));  // no extensions at all
  ASSERT_EQ(bare.status, Status::kDone) << (bare.error ? bare.error : "");
  EXPECT_FALSE(bare.supported_versions);
}

TEST(ClientHelloPeek, HelloSplitAcrossRecords) {
  std::string msg = hello_message(sni_ext("split.test"));
  for (std::size_t cut = 1; cut < msg.size(); ++cut) {
    std::string two = record(msg.substr(0, cut)) + record(msg.substr(cut));
    auto h = peek_client_hello(two);
    ASSERT_EQ(h.status, Status::kDone) << cut << (h.error ? h.error : "");
    EXPECT_EQ(h.server_name, "split.test");
    EXPECT_EQ(h.bytes, two.size());
    EXPECT_EQ(peek_client_hello(std::string_view(two).substr(0, two.size() - 1)).status, Status::kNeedMore);
  }
}

TEST(ClientHelloPeek, ParsedOncePerRecordAndNotInTooManyRecords) {
  std::string msg = hello_message(sni_ext("many.test"));
  // One record per byte of the message, read a byte at a time: `need` tells the reader when
  // to parse again, so it parses once per record.
  std::string split;
  for (char c : msg) split += record(std::string(1, c));
  std::size_t parses = 0;
  ClientHello h;
  for (std::size_t n = 1; n <= split.size(); ++n) {
    if (h.status == Status::kNeedMore && n < h.need) continue;
    h = peek_client_hello(std::string_view(split).substr(0, n));
    ++parses;
    if (h.status != Status::kNeedMore) break;
  }
  ASSERT_GT(msg.size(), kMaxClientHelloRecords);
  EXPECT_EQ(h.status, Status::kMalformed);  // more than kMaxClientHelloRecords records
  EXPECT_LE(parses, 2 * static_cast<std::size_t>(kMaxClientHelloRecords) + 2);
  // Within the limit it is a hello like any other.
  std::string few;
  std::size_t step = msg.size() / (kMaxClientHelloRecords - 1) + 1;
  for (std::size_t i = 0; i < msg.size(); i += step) few += record(msg.substr(i, step));
  auto ok = peek_client_hello(few);
  ASSERT_EQ(ok.status, Status::kDone) << (ok.error ? ok.error : "");
  EXPECT_EQ(ok.server_name, "many.test");
}

TEST(ClientHelloPeek, EncryptedClientHelloIsSeen) {
  auto h = peek_client_hello(record(hello_message(sni_ext("public.test") + ext(0xfe0d, "\x00\x01\x02"s))));
  ASSERT_EQ(h.status, Status::kDone);
  EXPECT_TRUE(h.ech);
  EXPECT_EQ(h.server_name, "public.test");  // the outer (public) name, not the real one
}

TEST(ClientHelloPeek, NotTls) {
  EXPECT_EQ(peek_client_hello("GET / HTTP/1.1\r\n").status, Status::kNotTls);
  EXPECT_EQ(peek_client_hello("G").status, Status::kNotTls);
  EXPECT_EQ(peek_client_hello(std::string("\x16\x02\x00\x00\x05", 5) + "xxxxx").status, Status::kNotTls);  // SSL 2-ish
  EXPECT_EQ(peek_client_hello(record("abc", 23)).status, Status::kNotTls);  // application data first
  EXPECT_EQ(peek_client_hello("").status, Status::kNeedMore);
}

TEST(ClientHelloPeek, MalformedHellos) {
  auto bad = [](const std::string& wire, const char* what) {
    auto h = peek_client_hello(wire);
    EXPECT_EQ(h.status, Status::kMalformed) << what;
    EXPECT_NE(h.error, nullptr) << what;
  };
  std::string ok_ext = sni_ext("a.test");
  bad(record(hello_message(ok_ext + ok_ext)), "duplicate extension");
  bad(record(hello_message(sni_ext("127.0.0.1"))), "IP literal as SNI");
  bad(record(hello_message(sni_ext("a..test"))), "empty label");
  bad(record(hello_message(sni_ext("a.test."))), "trailing dot");
  bad(record(hello_message(sni_ext(std::string("a\0b", 3)))), "NUL in SNI");
  bad(record(hello_message(ext(16, u16(1) + std::string(1, '\0')))), "empty ALPN protocol");
  bad(record(hello_message(ext(16, u16(5) + "\x08http"))), "ALPN protocol past its list");
  bad(record(hello_message(u16(0) + u16(10) + "abc")), "extension longer than the hello");
  std::string msg = hello_message(ok_ext);
  msg[0] = 2;  // a ServerHello
  bad(record(msg), "not a ClientHello");
  bad(record(""), "empty record");
  std::string huge = std::string(1, '\x01') + u24(kMaxClientHello + 1);
  bad(record(huge), "too large");
  bad(record(hello_message(ok_ext) + "\x01\x00\x00\x00"s), "a second handshake message in the records");
  std::string two = hello_message(ok_ext);
  bad(record(two.substr(0, 10)) + record("x", 23), "another record type mid-hello");
}

}  // namespace
