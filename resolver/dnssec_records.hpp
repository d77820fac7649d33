// DNSSEC record data (RFC 4034, 5155): DNSKEY, DS, RRSIG, NSEC, NSEC3 decoded from the opaque
// rdata the message parser keeps, their presentation forms for zone files and trust anchors,
// type bitmaps, and the canonical wire form of records (RFC 4034 section 6). No crypto here
// (dnssec_crypto.hpp). Every decoder takes untrusted bytes: bad input is nullopt, never a crash.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "resolver/dns_message.hpp"

namespace outpost::dns {

using Bytes = std::vector<std::uint8_t>;

// An NSEC/NSEC3 type bitmap (RFC 4034 section 4.1.2), kept in wire form.
struct TypeBitmap {
  Bytes wire;
  bool has(std::uint16_t type) const;
  // Wire form from a list of types (any order, duplicates allowed).
  static TypeBitmap from_types(std::vector<std::uint16_t> types);
  // Checks window order, lengths and that no window is empty; nullopt if malformed.
  static std::optional<TypeBitmap> parse(std::span<const std::uint8_t> wire);
};

struct DnskeyRdata {
  std::uint16_t flags = 0;
  std::uint8_t protocol = 0;
  std::uint8_t algorithm = 0;
  Bytes public_key;
  Bytes wire;  // the whole rdata (for the key tag and DS digests)
  static constexpr std::uint16_t kZoneKey = 0x0100, kSep = 0x0001, kRevoked = 0x0080;
  bool zone_key() const { return flags & kZoneKey; }
  bool revoked() const { return flags & kRevoked; }
};

struct DsRdata {
  std::uint16_t key_tag = 0;
  std::uint8_t algorithm = 0;
  std::uint8_t digest_type = 0;
  Bytes digest;
};

struct RrsigRdata {
  std::uint16_t type_covered = 0;
  std::uint8_t algorithm = 0;
  std::uint8_t labels = 0;
  std::uint32_t original_ttl = 0;
  std::uint32_t expiration = 0;
  std::uint32_t inception = 0;
  std::uint16_t key_tag = 0;
  Name signer;
  Bytes signature;
};

struct NsecRdata {
  Name next;
  TypeBitmap types;
};

struct Nsec3Rdata {
  std::uint8_t hash_algorithm = 0;
  std::uint8_t flags = 0;
  std::uint16_t iterations = 0;
  Bytes salt;
  Bytes next_hash;  // raw hash bytes (20 for SHA-1)
  TypeBitmap types;
  bool opt_out() const { return flags & 1; }
};

// Decoders of received rdata (an RdataOpaque; anything else is nullopt).
std::optional<DnskeyRdata> parse_dnskey(const Rdata& rd);
std::optional<DsRdata> parse_ds(const Rdata& rd);
std::optional<RrsigRdata> parse_rrsig(const Rdata& rd);
std::optional<NsecRdata> parse_nsec(const Rdata& rd);
std::optional<Nsec3Rdata> parse_nsec3(const Rdata& rd);
std::optional<DnskeyRdata> parse_dnskey_wire(std::span<const std::uint8_t> wire);

// The type an RRSIG covers (0 if the rdata is not an RRSIG's).
std::uint16_t rrsig_covered(const ResourceRecord& rr);

// Presentation forms (zone files, trust anchors) of DS, DNSKEY, RRSIG, NSEC, NSEC3 and
// NSEC3PARAM rdata fields into wire rdata; false with *why if malformed.
bool dnssec_rdata_from_text(std::uint16_t type, const std::vector<std::string>& fields, const Name& origin, Bytes* out,
                            std::string* why);

// Byte-string order and equality (canonical RDATA order, NSEC3 hashes, digests). Spelled
// out with memcmp: GCC 12 warns falsely (-Wstringop-overread) on vector's operator< in Release.
bool bytes_less(const Bytes& a, const Bytes& b);
bool bytes_equal(const Bytes& a, const Bytes& b);

// Big-endian appenders for building wire data.
void append_u16(Bytes* out, std::uint32_t v);
void append_u32(Bytes* out, std::uint32_t v);

// Base32 with the extended hex alphabet (RFC 4648 section 7), lower case, no padding: NSEC3
// owner labels.
std::string base32hex(std::span<const std::uint8_t> data);
std::optional<Bytes> base32hex_decode(std::string_view s);
std::optional<Bytes> base64_decode(std::string_view s);

// Canonical forms (RFC 4034 section 6, with RFC 6840 section 5.1): the rdata with the names of
// the types listed there in lower case and uncompressed; and the canonical order of names.
Bytes canonical_rdata(const ResourceRecord& rr);
// RFC 4034 section 6.1: compares label by label from the right, each as lower-case bytes.
int canonical_compare(const Name& a, const Name& b);

}  // namespace outpost::dns
