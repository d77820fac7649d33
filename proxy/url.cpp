#include "proxy/url.hpp"

#include <algorithm>
#include <charconv>
#include <span>
#include <vector>

#include "core/net_address.hpp"
#include "proxy/http_headers.hpp"

namespace outpost::http {

namespace {

// WHATWG URL "IPv4 number parser": decimal, "0x" hex or "0"-prefixed octal, no sign.
// Values saturate just above 2^32 - 1, so the range checks below fail without overflow.
std::optional<std::uint64_t> ipv4_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned radix = 10;
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    radix = 16;
    s.remove_prefix(2);
  } else if (s.size() >= 2 && s[0] == '0') {
    radix = 8;
    s.remove_prefix(1);
  }
  constexpr std::uint64_t kTooBig = 1ull << 32;
  std::uint64_t v = 0;
  for (char c : s) {
    unsigned d = 16;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    if (d >= radix) return std::nullopt;
    v = std::min(v * radix + d, kTooBig);
  }
  return v;
}

enum class NumericHost { kName, kInvalid, kIpv4 };

// The WHATWG URL host rule for IPv4: a host whose last label is a number is an IPv4
// address in one of the forms inet_aton() accepts (1 to 4 parts: 2130706433, 127.1,
// 0x7f.0.0.1, 0177.0.0.1), written back as a dotted quad; anything else ending in a
// number is invalid. Browsers do the same, and it means a later rule (the loop guard,
// address ACLs, the cache key) never meets an address in disguise.
NumericHost parse_ipv4_host(std::string_view host, std::string* dotted, IpAddress* ip) {
  // Only the last label and, for an address, at most four labels matter: no list needed.
  if (host.empty()) return NumericHost::kName;
  std::string_view body = host.back() == '.' ? host.substr(0, host.size() - 1) : host;  // a trailing dot
  if (body.empty()) return NumericHost::kName;
  if (body.size() == host.size() && body.front() >= '0' && body.front() <= '9') {
    // Already in the canonical form (the usual literal): nothing to rewrite.
    if (auto a = IpAddress::parse(body); a && a->v4) {
      dotted->assign(body);
      *ip = *a;
      return NumericHost::kIpv4;
    }
  }
  auto last_dot = body.rfind('.');
  auto last = last_dot == std::string_view::npos ? body : body.substr(last_dot + 1);
  bool digits = !last.empty() && last.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits && !ipv4_number(last)) return NumericHost::kName;
  std::string_view parts[4];
  std::size_t count = 0;
  for (std::size_t start = 0;;) {
    auto dot = body.find('.', start);
    if (count == 4) return NumericHost::kInvalid;
    parts[count++] = body.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  std::span<const std::string_view> labels(parts, count);
  std::uint64_t address = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    auto n = ipv4_number(labels[i]);
    if (!n) return NumericHost::kInvalid;
    bool is_last = i + 1 == labels.size();
    if (!is_last && *n > 255) return NumericHost::kInvalid;
    if (is_last && *n >= 1ull << (8 * (5 - labels.size()))) return NumericHost::kInvalid;
    address += is_last ? *n : *n << (8 * (3 - i));
  }
  std::uint8_t octets[4];
  for (int i = 0; i < 4; ++i) octets[i] = static_cast<std::uint8_t>(address >> (24 - 8 * i));
  *ip = IpAddress::from_v4(octets);
  *dotted = ip->to_string();
  return NumericHost::kIpv4;
}

// host[:port] → fills url.host / url.port; default_port used when absent (0 = required).
bool parse_host_port(std::string_view hp, std::uint16_t default_port, Url& url) {
  std::string_view host, port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos) return false;
    host = hp.substr(1, close - 1);
    auto rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    auto a = IpAddress::parse(host);
    if (!a || a->v4) return false;
    url.host_is_ipv6 = true;
    url.literal = a;
  } else {
    auto colon = hp.find(':');
    host = hp.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = hp.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  std::string dotted;
  if (!url.host_is_ipv6) {
    IpAddress ip;
    switch (parse_ipv4_host(host, &dotted, &ip)) {
      case NumericHost::kName:
        if (!valid_host(host)) return false;
        break;
      case NumericHost::kInvalid:
        return false;
      case NumericHost::kIpv4:
        host = dotted;
        url.literal = ip;
        break;
    }
  }
  url.host = to_lower(host);
  if (port.empty()) {
    if (!default_port) return false;
    url.port = default_port;
  } else {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) return false;
    url.port = static_cast<std::uint16_t>(p);
  }
  return true;
}

std::uint16_t default_port_of(std::string_view scheme) {
  if (scheme == "http") return 80;
  if (scheme == "https") return 443;
  if (scheme == "ftp") return 21;
  return 0;
}
}  // namespace

bool valid_host(std::string_view host) {
  // A URL's host may end in the root's dot ("example.com.").
  if (host.size() > 253) return false;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return is_host_name(host);
}

std::optional<Url> parse_absolute_url(std::string_view text, UrlError* err) {
  *err = UrlError::kMalformed;
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  Url url;
  url.scheme = to_lower(text.substr(0, sep));
  for (char c : url.scheme)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) return std::nullopt;
  auto rest = text.substr(sep + 3);
  std::size_t path_start = 0;
  while (path_start < rest.size() && rest[path_start] != '/' && rest[path_start] != '?' && rest[path_start] != '#')
    ++path_start;
  if (path_start == rest.size()) path_start = std::string_view::npos;
  auto authority = rest.substr(0, path_start);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    // userinfo is not allowed in http(s) URLs (RFC 9110 §4.2.4); FTP takes its login there.
    if (url.scheme != "ftp") return std::nullopt;
    url.userinfo.assign(authority.substr(0, at));
    for (char c : url.userinfo)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '@') return std::nullopt;
    authority = authority.substr(at + 1);
  }
  std::uint16_t def = default_port_of(url.scheme);
  if (!parse_host_port(authority, def ? def : 1, url)) return std::nullopt;
  std::string_view path = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  auto hash = path.find('#');
  if (hash != std::string_view::npos) path = path.substr(0, hash);
  url.path.clear();
  if (path.empty() || path.front() != '/') url.path.push_back('/');
  url.path.append(path);
  if (url.scheme != "http" && url.scheme != "https" && url.scheme != "ftp") {
    *err = UrlError::kUnsupportedScheme;
    return std::nullopt;
  }
  *err = UrlError::kNone;
  return url;
}

std::optional<Url> parse_authority(std::string_view text) {
  Url url;
  if (!parse_host_port(text, 0, url)) return std::nullopt;
  return url;
}

void Url::append_authority(std::string& out) const {
  if (host_is_ipv6) out.push_back('[');
  out.append(host);
  if (host_is_ipv6) out.push_back(']');
  if (port != default_port_of(scheme)) {
    char digits[8];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, port);
    out.push_back(':');
    out.append(digits, end);
  }
}

std::string Url::authority() const {
  std::string h;
  append_authority(h);
  return h;
}

std::string Url::to_string() const {
  std::string out;
  out.reserve(scheme.size() + 3 + host.size() + 8 + path.size());
  out.append(scheme).append("://", 3);
  append_authority(out);
  out.append(path);
  return out;
}

std::string target_for_log(std::string_view target) {
  auto sep = target.find("://");
  if (sep == std::string_view::npos) return std::string(target);
  std::size_t start = sep + 3, end = start;
  while (end < target.size() && target[end] != '/' && target[end] != '?' && target[end] != '#') ++end;
  auto at = target.substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, start));
  out.append(target.substr(start + at + 1));
  return out;
}

}  // namespace outpost::http
