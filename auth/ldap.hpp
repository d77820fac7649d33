// The LDAP back end: a password is right when the directory accepts a simple bind (RFC 4513
// 5.1.3) as the user with it. The user's DN comes from a template ("uid=%s,ou=people,..."),
// or from a search (a filter such as "(uid=%s)" under base_dn) made anonymously or as a
// service account: search-then-bind. The user's groups (for the [auth] rules) from a second
// search, by default groupOfNames/member=DN or posixGroup/memberUid=name.
//
// libldap's synchronous calls on the blocking-work pool (Authenticator::verify): OpenLDAP's
// asynchronous API still connects, does its TLS handshake and StartTLS synchronously, so a
// loop could block on a slow directory anyway; the pool keeps every loop free. The cost, a
// pool thread per check in progress, is bounded: at most `connections` binds or searches at
// once (a small pool of connections, reused), at most `max_pending` checks queued or
// running (more: "unavailable" at once), and every check ends within `timeout` (waiting for
// a connection, connecting, TLS, each operation: all against one deadline). A connection
// that failed or timed out is dropped, never reused.
//
// TLS (ldaps:// or StartTLS) always verifies the server's certificate and name (ca_file or
// the system's CAs), TLS 1.2 at least. A password is never logged; an empty one is refused
// before any bind (an empty simple bind is an anonymous one, which directories accept).
#pragma once
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "auth/backend.hpp"
#include "core/config.hpp"

namespace outpost::auth {

// RFC 4515 section 3: a value inside a filter ('*', '(', ')', '\' and NUL as \XX).
std::string ldap_filter_escape(std::string_view value);
// RFC 4514 section 2.4: an attribute value inside a DN (",+\"\\<>;=", NUL, a leading '#' or
// space, a trailing space).
std::string ldap_dn_value_escape(std::string_view value);
// The template with %s replaced by `s`, %D by `d` and %% by %; both already escaped.
std::string ldap_expand(std::string_view templ, std::string_view s, std::string_view d = {});

class LdapBackend final : public Backend {
 public:
  // Reads the service account's password file (blocking); nullptr with *error if it cannot.
  // Does not connect: the first check does.
  static std::unique_ptr<LdapBackend> load(const Config::Auth::Ldap& config, std::string* error);
  ~LdapBackend() override;

  std::string_view name() const override { return "ldap"; }
  Identity verify(const std::string& user, const std::string& password) const override;
  std::size_t max_pending() const override { return config_.max_pending; }

  struct Conn;
  // The connection's socket, from libldap's connect callback (a pool thread).
  void watch_fd(Conn& c, int fd) const;

 private:
  using Clock = std::chrono::steady_clock;
  explicit LdapBackend(const Config::Auth::Ldap& config);
  // A connection (idle, or a new slot; connected by the caller), or nullptr when none came
  // free before the deadline.
  std::unique_ptr<Conn> acquire(Clock::time_point deadline) const;
  void release(std::unique_ptr<Conn> c, bool reusable) const;
  // One attempt on `c`; *retry when a reused connection turned out dead at its first use.
  Identity attempt(Conn& c, const std::string& user, const std::string& password, Clock::time_point deadline,
                   bool* retry) const;

  // The watchdog shuts down the socket of a check that passed its deadline (see ldap.cpp).
  void watch(Conn& c, Clock::time_point deadline) const;
  void unwatch(Conn& c) const;
  void watchdog() const;

  Config::Auth::Ldap config_;
  std::string service_password_;
  mutable std::mutex mu_;
  mutable std::condition_variable freed_;
  mutable std::vector<std::unique_ptr<Conn>> idle_;
  mutable std::size_t open_ = 0;  // idle and in use
  mutable std::mutex watch_mu_;
  mutable std::condition_variable watch_cv_;
  mutable std::vector<Conn*> watched_;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace outpost::auth
