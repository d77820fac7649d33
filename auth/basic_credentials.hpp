// Basic credentials (RFC 7617) from a Proxy-Authorization field value. Pure, fuzzed
// (tests/fuzz/basic_credentials_fuzz.cpp).
#pragma once
#include <string>
#include <string_view>

namespace outpost::auth {

// Longest field value taken (a base64 of 1 KiB of user and password and a little more).
inline constexpr std::size_t kMaxCredentialsField = 1400;

struct BasicCredentials {
  std::string user;      // never empty, no ':' and no control characters
  std::string password;  // no control characters
};

enum class CredentialsStatus {
  kOk,
  kOtherScheme,  // not "Basic" (Digest, Negotiate, Bearer...): not ours
  kMalformed,    // Basic but not decodable into user:password
};

// Parses `Basic <base64(user ":" password)>` (scheme case-insensitive, strict base64 with
// padding, no bytes after it but spaces). *why names a malformed value's fault without
// repeating any of it (it may hold a password).
CredentialsStatus parse_basic_credentials(std::string_view field, BasicCredentials* out, std::string* why);

}  // namespace outpost::auth
