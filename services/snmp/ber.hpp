// SNMP's BER subset (X.690 as RFC 3416 and RFC 1157 use it): the SNMPv2c message, its PDUs and
// variable bindings, decoded strictly and encoded minimally. No libuv, no I/O: the agent
// (snmp_agent.hpp) and the fuzz target (tests/fuzz/snmp_ber_fuzz.cpp) use it alike.
//
// Decoding takes only definite lengths (at most 4 length octets) that fit inside their
// parent, integers of at most 8 octets (fields are range-checked after), OIDs of at most 128
// sub-identifiers of at most 32 bits each, and nesting exactly as a message has it; anything
// else is an error with a reason, never an exception or a read past the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::snmp {

// Object identifiers compare as vectors do: lexicographically, a prefix before its children,
// which is SNMP's order for GETNEXT.
using Oid = std::vector<std::uint32_t>;
std::string oid_to_string(const Oid& oid);  // "1.3.6.1.4.1.3495"
// "1.3.6.1" or ".1.3.6.1"; false on anything else (empty arcs, non-digits, > 32 bits).
bool parse_oid(std::string_view text, Oid* out);
bool oid_starts_with(const Oid& oid, const Oid& prefix);

inline constexpr std::size_t kMaxOidLength = 128;

enum class Tag : std::uint8_t {
  kInteger = 0x02,
  kOctetString = 0x04,
  kNull = 0x05,
  kOid = 0x06,
  kSequence = 0x30,
  kIpAddress = 0x40,
  kCounter32 = 0x41,
  kGauge32 = 0x42,
  kTimeTicks = 0x43,
  kOpaque = 0x44,
  kCounter64 = 0x46,
  kNoSuchObject = 0x80,
  kNoSuchInstance = 0x81,
  kEndOfMibView = 0x82,
  kGetRequest = 0xA0,
  kGetNextRequest = 0xA1,
  kResponse = 0xA2,
  kSetRequest = 0xA3,
  kTrapV1 = 0xA4,
  kGetBulkRequest = 0xA5,
  kInformRequest = 0xA6,
  kTrapV2 = 0xA7,
  kReport = 0xA8,
};

// A variable's value. `integer` holds Integer32; `number` Counter32, Gauge32, TimeTicks and
// Counter64; `bytes` OCTET STRING, IpAddress and Opaque; `oid` OBJECT IDENTIFIER. Null and
// the three exceptions carry nothing.
struct Value {
  Tag type = Tag::kNull;
  std::int64_t integer = 0;
  std::uint64_t number = 0;
  std::string bytes;
  Oid oid;

  static Value null() { return {}; }
  static Value integer32(std::int32_t v) { Value x; x.type = Tag::kInteger; x.integer = v; return x; }
  static Value counter32(std::uint64_t v) { Value x; x.type = Tag::kCounter32; x.number = v & 0xffffffffu; return x; }
  static Value gauge32(std::uint64_t v) { Value x; x.type = Tag::kGauge32; x.number = v > 0xffffffffu ? 0xffffffffu : v; return x; }
  static Value timeticks(std::uint64_t v) { Value x; x.type = Tag::kTimeTicks; x.number = v & 0xffffffffu; return x; }
  static Value counter64(std::uint64_t v) { Value x; x.type = Tag::kCounter64; x.number = v; return x; }
  static Value octets(std::string s) { Value x; x.type = Tag::kOctetString; x.bytes = std::move(s); return x; }
  static Value exception(Tag t) { Value x; x.type = t; return x; }
  bool operator==(const Value&) const = default;
};

struct VarBind {
  Oid oid;
  Value value;
  bool operator==(const VarBind&) const = default;
};

// Error-status values (RFC 3416 §3).
enum class ErrorStatus : std::int32_t {
  kNoError = 0,
  kTooBig = 1,
  kGenErr = 5,
  kNoAccess = 6,
  kNotWritable = 17,
};

// A community-based message (SNMPv1 version 0, SNMPv2c version 1) with one PDU. For
// GetBulkRequest error_status and error_index are non-repeaters and max-repetitions.
struct Message {
  std::int64_t version = 1;
  std::string community;
  Tag pdu = Tag::kGetRequest;
  std::int32_t request_id = 0;
  std::int32_t error_status = 0;
  std::int32_t error_index = 0;
  std::vector<VarBind> varbinds;
  bool operator==(const Message&) const = default;
};

// Only the version and community, read before anything else: a message whose community is
// wrong is dropped without decoding its PDU. False (with a reason) if even these are bad.
bool peek_version_and_community(std::span<const std::uint8_t> data, std::int64_t* version, std::string* community,
                                std::string* why);
// The whole message; false with a reason ("truncated ...", "length ...", ...) on any fault.
// The PDU must be one of the Tag values from kGetRequest to kReport (a v1 trap is refused).
bool decode_message(std::span<const std::uint8_t> data, Message* out, std::string* why);
std::vector<std::uint8_t> encode_message(const Message& m);
// The encoded size of one variable binding inside a message (for GETBULK's size budget).
std::size_t encoded_size(const VarBind& vb);

}  // namespace outpost::snmp
