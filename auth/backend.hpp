// A user database for proxy authentication: htpasswd (auth/htpasswd.hpp) or LDAP (auth/ldap.hpp).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::auth {

enum class Verdict : std::uint8_t {
  kGood,         // the password is right
  kBad,          // unknown user, wrong password, locked account
  kUnavailable,  // the back end cannot say now (a directory down): never cached
};

struct Identity {
  Verdict verdict = Verdict::kBad;
  std::vector<std::string> groups;  // with kGood
  std::string why;                  // for the log; never holds the password
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Checks a password. Blocking (hashing is slow on purpose; a directory is remote): called
  // on the thread pool, from several threads at once.
  virtual Identity verify(const std::string& user, const std::string& password) const = 0;
  // How many checks may be queued or running at once (a remote back end holds a pool thread
  // per check while it waits); more are answered "unavailable" at once. 0: no bound.
  virtual std::size_t max_pending() const { return 0; }
};

}  // namespace outpost::auth
