#include "proxy/url.hpp"

#include <charconv>

#include "core/net_address.hpp"
#include "proxy/http_headers.hpp"

namespace outpost::http {

namespace {

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
  } else {
    auto colon = hp.find(':');
    host = hp.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = hp.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  if (!url.host_is_ipv6 && !valid_host(host)) return false;
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
  if (host.empty() || host.size() > 253) return false;
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return true;
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
  auto path_start = rest.find_first_of("/?#");
  auto authority = rest.substr(0, path_start);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // userinfo is not allowed (RFC 9110 §4.2.4)
  std::uint16_t def = default_port_of(url.scheme);
  if (!parse_host_port(authority, def ? def : 1, url)) return std::nullopt;
  std::string_view path = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  auto hash = path.find('#');
  if (hash != std::string_view::npos) path = path.substr(0, hash);
  url.path.clear();
  if (path.empty() || path.front() != '/') url.path.push_back('/');
  url.path.append(path);
  if (url.scheme != "http") {
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

std::string Url::authority() const {
  std::string h;
  h.reserve(host.size() + 8);
  if (host_is_ipv6) h.push_back('[');
  h.append(host);
  if (host_is_ipv6) h.push_back(']');
  if (port != default_port_of(scheme)) {
    h.push_back(':');
    h.append(std::to_string(port));
  }
  return h;
}

std::string Url::to_string() const { return scheme + "://" + authority() + path; }

}  // namespace outpost::http
