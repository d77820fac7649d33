// Peeking at a TLS ClientHello before deciding whether to intercept ("bump") or pass it
// through untouched ("splice"): the server name (SNI, RFC 6066 §3), the ALPN list (RFC
// 7301) and whether the hello carries Encrypted Client Hello (its real server name is then
// hidden: such a connection is spliced, never bumped).
//
// Pure code over the bytes the client sent so far (no I/O): the caller feeds what it has
// read and asks again with more while the answer is kNeedMore. A ClientHello may span
// several TLS records (RFC 8446 §5.1); all of them must be handshake records.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::tls {

struct ClientHello {
  enum class Status : std::uint8_t {
    kNeedMore,   // a prefix of a possible ClientHello: read more
    kDone,       // a whole, well-formed ClientHello: the fields below are set
    kNotTls,     // the first record is not a TLS handshake record (plain HTTP, garbage)
    kMalformed,  // a TLS record, but not a well-formed ClientHello (`error` says why)
  };
  Status status = Status::kNeedMore;
  const char* error = nullptr;
  std::string server_name;         // lower-case host_name from SNI; empty when none was sent
  std::vector<std::string> alpn;   // as offered, in order
  bool ech = false;                // an encrypted_client_hello extension is present
  std::uint16_t legacy_version = 0;
  bool supported_versions = false;  // has the supported_versions extension (TLS 1.3 capable)
  std::size_t bytes = 0;           // kDone: bytes of `data` the hello's records take
  // kNeedMore: the answer cannot change before `data` holds this many bytes (the end of the
  // record being read), so a caller reading in small pieces parses once per record.
  std::size_t need = 0;
};

// The largest ClientHello accepted (beyond it: kMalformed). Real ones are under 2 KiB, with
// post-quantum key shares under 8 KiB.
inline constexpr std::size_t kMaxClientHello = 64 * 1024;
// A hello split into more records than this is refused (kMalformed): real ones use one or
// two, and each record is a parse for a caller reading piece by piece.
inline constexpr unsigned kMaxClientHelloRecords = 64;

ClientHello peek_client_hello(std::string_view data);

}  // namespace outpost::tls
