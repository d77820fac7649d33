#include "auth/basic_credentials.hpp"

#include <array>
#include <cstdint>

namespace outpost::auth {

namespace {

constexpr std::array<std::int8_t, 256> kBase64 = [] {
  std::array<std::int8_t, 256> t{};
  t.fill(-1);
  const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<std::int8_t>(i);
  return t;
}();

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Strict base64 (RFC 4648 section 4): length a multiple of 4, padding only at the end.
bool decode_base64(std::string_view in, std::string* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  out->clear();
  for (std::size_t i = 0; i < in.size(); i += 4) {
    std::uint32_t v = 0;
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=') {
        // '=' only in the last group, at its last one or two places.
        if (i + 4 != in.size() || j < 2) return false;
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad) return false;
      std::int8_t d = kBase64[static_cast<unsigned char>(c)];
      if (d < 0) return false;
      v = v << 6 | static_cast<std::uint32_t>(d);
    }
    out->push_back(static_cast<char>(v >> 16));
    if (pad < 2) out->push_back(static_cast<char>(v >> 8 & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

CredentialsStatus parse_basic_credentials(std::string_view field, BasicCredentials* out, std::string* why) {
  while (!field.empty() && (field.front() == ' ' || field.front() == '\t')) field.remove_prefix(1);
  while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) field.remove_suffix(1);
  auto sp = field.find_first_of(" \t");
  std::string_view scheme = field.substr(0, sp);
  if (!iequals(scheme, "Basic")) return CredentialsStatus::kOtherScheme;
  if (field.size() > kMaxCredentialsField) {
    *why = "Basic credentials longer than " + std::to_string(kMaxCredentialsField) + " bytes";
    return CredentialsStatus::kMalformed;
  }
  if (sp == std::string_view::npos) {
    *why = "Basic without credentials";
    return CredentialsStatus::kMalformed;
  }
  std::string_view token = field.substr(sp);
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
  std::string decoded;
  if (!decode_base64(token, &decoded)) {
    *why = "Basic credentials that are not base64";
    return CredentialsStatus::kMalformed;
  }
  auto colon = decoded.find(':');
  if (colon == std::string::npos) {
    *why = "Basic credentials without a ':' between user and password";
    return CredentialsStatus::kMalformed;
  }
  if (colon == 0) {
    *why = "Basic credentials with an empty user name";
    return CredentialsStatus::kMalformed;
  }
  std::string_view user = std::string_view(decoded).substr(0, colon);
  std::string_view password = std::string_view(decoded).substr(colon + 1);
  if (has_control(user) || has_control(password)) {
    *why = "Basic credentials with control characters";
    return CredentialsStatus::kMalformed;
  }
  out->user = std::string(user);
  out->password = std::string(password);
  return CredentialsStatus::kOk;
}

}  // namespace outpost::auth
