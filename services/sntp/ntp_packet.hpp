// NTP packets as an SNTP server sees them (RFC 5905 §7.3, RFC 4330 §4-5): the 48-byte header
// of a client's request read strictly, the server's answer and the Kiss-o'-Death written.
// No clock and no I/O here (sntp_server.hpp reads the clock), so the fuzz target
// (tests/fuzz/ntp_packet_fuzz.cpp) and the unit tests drive it alone.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace outpost::sntp {

inline constexpr std::size_t kHeaderSize = 48;
inline constexpr std::uint8_t kModeClient = 3;
inline constexpr std::uint8_t kModeServer = 4;

// NTP timestamps: seconds since 1900 in the high 32 bits, the fraction in the low 32 (era 0,
// which runs to 2036; RFC 5905 §6: later eras wrap the same way, and clients resolve them).
using Timestamp = std::uint64_t;
Timestamp to_ntp(std::int64_t unix_seconds, std::uint32_t nanoseconds);
// NTP short format (16.16 seconds), saturated.
std::uint32_t to_short(double seconds);

struct Request {
  std::uint8_t leap = 0;
  std::uint8_t version = 0;
  std::uint8_t mode = 0;
  std::int8_t poll = 0;
  Timestamp transmit = 0;  // becomes the answer's origin timestamp
};

enum class Verdict {
  kAnswer,     // a v3/v4 client request
  kWrongMode,  // another mode (symmetric, broadcast, control, a server's reply...): ignored
  kVersion,    // a version other than 3 or 4
  kMalformed,  // shorter than the header
};
Verdict parse_request(std::span<const std::uint8_t> data, Request* out, std::string* why);

// What the server claims about itself.
struct ServerInfo {
  std::uint8_t leap = 0;          // 0, or 1/2 while the kernel announces a leap second
  std::uint8_t stratum = 10;
  std::int8_t precision = -20;    // log2 seconds
  std::uint32_t root_delay = 0;   // NTP short format
  std::uint32_t root_dispersion = 0;
  std::uint32_t reference_id = 0;  // as the 4 bytes on the wire, big-endian
  Timestamp reference = 0;
};

using Packet = std::array<std::uint8_t, kHeaderSize>;
// The answer to `req`: same version, server mode, the client's poll, origin = its transmit.
Packet make_response(const Request& req, const ServerInfo& info, Timestamp receive, Timestamp transmit);
// A Kiss-o'-Death (RFC 5905 §7.4): leap 3, stratum 0, `code` ("RATE") as the reference ID.
Packet make_kod(const Request& req, const ServerInfo& info, const char code[4], Timestamp receive, Timestamp transmit);

// "GPS", "LOCL" (1-4 printable ASCII) or an IPv4 address ("192.0.2.1") to the wire's 4 bytes;
// false if neither.
bool parse_reference_id(const std::string& text, std::uint32_t* out);

}  // namespace outpost::sntp
