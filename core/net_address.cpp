#include "core/net_address.hpp"

#include <arpa/inet.h>

#include <bit>
#include <charconv>
#include <cstring>

namespace outpost {

namespace {
// What inet_pton(AF_INET) accepts, without its copy and call (names are told apart on their
// first letter): four decimal parts of 0-255, no leading zeros, nothing else.
bool parse_dotted_quad(std::string_view t, std::uint8_t* out) {
  std::size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= t.size() || t[i] != '.') return false;
      ++i;
    }
    std::size_t start = i;
    unsigned v = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9' && i - start < 3) v = v * 10 + static_cast<unsigned>(t[i++] - '0');
    std::size_t len = i - start;
    if (len == 0 || v > 255 || (len > 1 && t[start] == '0')) return false;
    out[part] = static_cast<std::uint8_t>(v);
  }
  return i == t.size();
}
}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 63) return std::nullopt;
  if (text.find(':') == std::string_view::npos) {  // IPv4 or not an address (a name)
    std::uint8_t octets[4];
    if (!parse_dotted_quad(text, octets)) return std::nullopt;
    return from_v4(octets);
  }
  IpAddress a;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  in6_addr v6;
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    // Treat ::ffff:a.b.c.d as IPv4.
    static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    a.v4 = std::memcmp(a.bytes.data(), mapped, 12) == 0;
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::from_v4(const std::uint8_t octets[4]) {
  IpAddress a;
  a.v4 = true;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  std::memcpy(&a.bytes[12], octets, 4);
  return a;
}

IpAddress IpAddress::from_sockaddr(const sockaddr* sa) {
  IpAddress a;
  if (sa->sa_family == AF_INET) {
    auto* s = reinterpret_cast<const sockaddr_in*>(sa);
    return from_v4(reinterpret_cast<const std::uint8_t*>(&s->sin_addr));
  } else if (sa->sa_family == AF_INET6) {
    auto* s = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(a.bytes.data(), &s->sin6_addr, 16);
    static const std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    a.v4 = std::memcmp(a.bytes.data(), mapped, 12) == 0;
  }
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (v4) {
    // Dotted quad by hand: inet_ntop formats through sprintf, ten times the work, and
    // this runs for every logged request.
    char* p = buf;
    for (int i = 12; i < 16; ++i) {
      unsigned b = bytes[static_cast<std::size_t>(i)];
      if (i != 12) *p++ = '.';
      if (b >= 100) *p++ = static_cast<char>('0' + b / 100);
      if (b >= 10) *p++ = static_cast<char>('0' + b / 10 % 10);
      *p++ = static_cast<char>('0' + b % 10);
    }
    return std::string(buf, p);
  }
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpAddress::is_unspecified() const {
  if (v4) return bytes[12] == 0 && bytes[13] == 0 && bytes[14] == 0 && bytes[15] == 0;
  for (auto b : bytes)
    if (b) return false;
  return true;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  Cidr c;
  c.base = *addr;
  unsigned max_bits = addr->v4 ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
    if (ec != std::errc() || ptr != p.data() + p.size() || p.empty() || bits > max_bits) return std::nullopt;
  }
  c.prefix = addr->v4 ? bits + 96 : bits;
  // Zero the host bits so that to_string() and contains() agree.
  for (unsigned i = 0; i < 16; ++i) {
    unsigned lo = i * 8;
    if (lo >= c.prefix) c.base.bytes[i] = 0;
    else if (lo + 8 > c.prefix) c.base.bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - (c.prefix - lo)));
  }
  return c;
}

namespace {
// Bytes [at, at + 8) of a 16-byte address as a number, most significant byte first.
std::uint64_t half_of(const std::array<std::uint8_t, 16>& b, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  return v;
}
// The top `bits` (0-64) bits set.
std::uint64_t top_bits(unsigned bits) { return bits == 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits); }
}  // namespace

bool Cidr::contains(const IpAddress& a) const {
  // Two 64-bit compares under the prefix mask (ACL checks run several times per request).
  std::uint64_t hi = half_of(a.bytes, 0) ^ half_of(base.bytes, 0);
  std::uint64_t lo = half_of(a.bytes, 8) ^ half_of(base.bytes, 8);
  return ((hi & top_bits(prefix > 64 ? 64 : prefix)) | (lo & top_bits(prefix > 64 ? prefix - 64 : 0))) == 0;
}

std::string Cidr::to_string() const {
  return base.to_string() + "/" + std::to_string(base.v4 ? prefix - 96 : prefix);
}

std::optional<NetworkList> NetworkList::parse(const std::vector<std::string>& texts, std::size_t* bad) {
  std::vector<Cidr> nets;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto c = Cidr::parse(texts[i]);
    if (!c) {
      if (bad) *bad = i;
      return std::nullopt;
    }
    nets.push_back(*c);
  }
  return NetworkList(std::move(nets));
}

bool NetworkList::contains(const IpAddress& a) const {
  for (const auto& n : nets_)
    if (n.contains(a)) return true;
  return false;
}

bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint e;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    e.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    e.host = std::string(text.substr(0, colon));
    if (e.host.find(':') != std::string::npos) return std::nullopt;  // bare IPv6 needs brackets
    port = text.substr(colon + 1);
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || port.empty() || p > 65535) return std::nullopt;
  if (e.host.empty()) return std::nullopt;
  e.port = static_cast<std::uint16_t>(p);
  return e;
}

std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool Endpoint::to_sockaddr(sockaddr_storage* out, socklen_t* len) const {
  auto a = IpAddress::parse(host);
  if (!a) return false;
  std::memset(out, 0, sizeof *out);
  if (a->v4) {
    auto* s = reinterpret_cast<sockaddr_in*>(out);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, &a->bytes[12], 4);
    *len = sizeof(sockaddr_in);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(out);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, a->bytes.data(), 16);
    *len = sizeof(sockaddr_in6);
  }
  return true;
}

}  // namespace outpost
