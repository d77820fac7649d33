#include "services/sntp/ntp_packet.hpp"

#include <arpa/inet.h>

#include <cmath>

namespace outpost::sntp {

namespace {

constexpr std::int64_t kUnixToNtp = 2208988800;  // seconds from 1900-01-01 to 1970-01-01

void put32(Packet& p, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
void put64(Packet& p, std::size_t at, std::uint64_t v) {
  put32(p, at, static_cast<std::uint32_t>(v >> 32));
  put32(p, at + 4, static_cast<std::uint32_t>(v));
}

}  // namespace

Timestamp to_ntp(std::int64_t unix_seconds, std::uint32_t nanoseconds) {
  auto secs = static_cast<std::uint64_t>(unix_seconds + kUnixToNtp) & 0xffffffffu;
  auto frac = (static_cast<std::uint64_t>(nanoseconds) << 32) / 1000000000u;
  return secs << 32 | frac;
}

std::uint32_t to_short(double seconds) {
  if (!(seconds > 0)) return 0;
  double v = std::ldexp(seconds, 16);
  return v >= 4294967295.0 ? 0xffffffffu : static_cast<std::uint32_t>(v);
}

Verdict parse_request(std::span<const std::uint8_t> data, Request* out, std::string* why) {
  if (data.size() < kHeaderSize) {
    *why = "packet of " + std::to_string(data.size()) + " bytes, shorter than the 48-byte header";
    return Verdict::kMalformed;
  }
  out->leap = data[0] >> 6;
  out->version = (data[0] >> 3) & 7;
  out->mode = data[0] & 7;
  out->poll = static_cast<std::int8_t>(data[2]);
  out->transmit = 0;
  for (std::size_t i = 40; i < 48; ++i) out->transmit = out->transmit << 8 | data[i];
  // Extension fields or a MAC may follow (RFC 7822): an SNTP server ignores them.
  if (out->version != 3 && out->version != 4) {
    *why = "NTP version " + std::to_string(out->version);
    return Verdict::kVersion;
  }
  if (out->mode != kModeClient) {
    *why = "mode " + std::to_string(out->mode) + ", not a client request";
    return Verdict::kWrongMode;
  }
  return Verdict::kAnswer;
}

Packet make_response(const Request& req, const ServerInfo& info, Timestamp receive, Timestamp transmit) {
  Packet p{};
  p[0] = static_cast<std::uint8_t>((info.leap & 3) << 6 | (req.version & 7) << 3 | kModeServer);
  p[1] = info.stratum;
  p[2] = static_cast<std::uint8_t>(req.poll);
  p[3] = static_cast<std::uint8_t>(info.precision);
  put32(p, 4, info.root_delay);
  put32(p, 8, info.root_dispersion);
  put32(p, 12, info.reference_id);
  put64(p, 16, info.reference);
  put64(p, 24, req.transmit);
  put64(p, 32, receive);
  put64(p, 40, transmit);
  return p;
}

Packet make_kod(const Request& req, const ServerInfo& info, const char code[4], Timestamp receive, Timestamp transmit) {
  ServerInfo kiss = info;
  kiss.leap = 3;  // "alarm condition": the clock is not to be used
  kiss.stratum = 0;
  kiss.root_delay = 0;
  kiss.root_dispersion = 0;
  kiss.reference = 0;
  kiss.reference_id = static_cast<std::uint32_t>(static_cast<std::uint8_t>(code[0])) << 24 |
                      static_cast<std::uint32_t>(static_cast<std::uint8_t>(code[1])) << 16 |
                      static_cast<std::uint32_t>(static_cast<std::uint8_t>(code[2])) << 8 |
                      static_cast<std::uint8_t>(code[3]);
  return make_response(req, kiss, receive, transmit);
}

bool parse_reference_id(const std::string& text, std::uint32_t* out) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) == 1) {
    *out = ntohl(a.s_addr);
    return true;
  }
  if (text.empty() || text.size() > 4) return false;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    unsigned char c = i < text.size() ? static_cast<unsigned char>(text[i]) : 0;
    if (i < text.size() && (c < 0x21 || c > 0x7e)) return false;
    v = v << 8 | c;
  }
  *out = v;
  return true;
}

}  // namespace outpost::sntp
