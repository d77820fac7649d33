// Request targets (RFC 9112 §3.2): absolute-form URLs and CONNECT's authority-form.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/net_address.hpp"

namespace outpost::http {

struct Url {
  std::string scheme;  // lower-case
  std::string host;    // lower-case; IPv6 literals without brackets
  std::uint16_t port = 0;
  std::string path;  // origin-form: path and query, at least "/"
  bool host_is_ipv6 = false;
  std::optional<IpAddress> literal;  // the host as an address, when it is an IP literal
  // ftp:// only: the userinfo as sent ("user" or "user:password", percent-encoded); never
  // part of to_string(). Other schemes refuse a userinfo (RFC 9110 §4.2.4).
  std::string userinfo;

  // "host" or "host:port" (port omitted when it is the scheme's default), as sent in Host.
  std::string authority() const;
  void append_authority(std::string& out) const;
  // scheme://authority/path, normalised.
  std::string to_string() const;
};

enum class UrlError { kNone, kMalformed, kUnsupportedScheme };

// Parses "scheme://host[:port][/path][?query]" (fragment dropped). http and https are
// forwarded (https over TLS to the origin), ftp ("ftp://[user[:password]@]host...") goes to
// the FTP gateway; other schemes give kUnsupportedScheme.
std::optional<Url> parse_absolute_url(std::string_view text, UrlError* err);
// Parses CONNECT's "host:port" (port required).
std::optional<Url> parse_authority(std::string_view text);
// True for a syntactically valid DNS name or IP literal (what we are willing to resolve).
bool valid_host(std::string_view host);
// A request target as it may be logged: an absolute URL's userinfo ("user:password@", which
// ftp:// URLs carry) removed, whether or not the rest parses. Anything else is unchanged.
std::string target_for_log(std::string_view target);

}  // namespace outpost::http
