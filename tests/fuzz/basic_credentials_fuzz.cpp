// Proxy authentication's parsers on arbitrary bytes: the Proxy-Authorization value
// (auth/basic_credentials) and an htpasswd/group file pair (auth/htpasswd, split at the first
// NUL). Never out of bounds; accepted credentials have a user without ':' or control bytes and
// a password without control bytes; a refusal says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "auth/basic_credentials.hpp"
#include "auth/htpasswd.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::auth;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  BasicCredentials c;
  std::string why;
  switch (parse_basic_credentials(in, &c, &why)) {
    case CredentialsStatus::kOk:
      if (c.user.empty() || c.user.find(':') != std::string::npos) std::abort();
      for (unsigned char ch : c.user + c.password)
        if (ch < 0x20 || ch == 0x7f) std::abort();
      break;
    case CredentialsStatus::kMalformed:
      if (why.empty()) std::abort();
      break;
    case CredentialsStatus::kOtherScheme:
      break;
  }
  auto nul = in.find('\0');
  std::string users(in.substr(0, nul)), groups(nul == std::string_view::npos ? "" : in.substr(nul + 1));
  std::string error;
  std::vector<std::string> warnings;
  auto b = HtpasswdBackend::parse(users, "u", groups, "g", &error, &warnings);
  if (!b && error.empty()) std::abort();
  return 0;
}
