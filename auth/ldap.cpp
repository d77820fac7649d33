#include "auth/ldap.hpp"

#include <ldap.h>
#include <sys/socket.h>
#include <openssl/crypto.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <algorithm>

namespace outpost::auth {

std::string ldap_filter_escape(std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0) {
      out += '\\';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string ldap_dn_value_escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == 0) {
      out += "\\00";
      continue;
    }
    bool special = std::strchr(",+\"\\<>;=", c) != nullptr || (i == 0 && (c == '#' || c == ' ')) ||
                   (i + 1 == v.size() && c == ' ');
    if (special) out += '\\';
    out += c;
  }
  return out;
}

std::string ldap_expand(std::string_view t, std::string_view s, std::string_view d) {
  std::string out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '%' && i + 1 < t.size()) {
      char k = t[i + 1];
      if (k == 's' || k == 'D' || k == '%') {
        out += k == 's' ? s : k == 'D' ? d : std::string_view("%");
        ++i;
        continue;
      }
    }
    out += t[i];
  }
  return out;
}

using Clock = std::chrono::steady_clock;

struct LdapBackend::Conn {
  LDAP* ld = nullptr;
  bool as_service = false;  // bound as the service account (or anonymous) last
  bool used = false;        // has answered an operation before
  const LdapBackend* backend = nullptr;
  int fd = -1;                        // the socket, once connected (under watch_mu_)
  Clock::time_point deadline{};       // of the check using it (under watch_mu_)
  bool watched = false, cut = false;  // (under watch_mu_)
  ldap_conncb callbacks{};            // libldap keeps a pointer to it
  ~Conn() {
    if (ld) ldap_unbind_ext_s(ld, nullptr, nullptr);
  }
};

namespace {

// libldap's ldaps:// handshake, with LDAP_OPT_NETWORK_TIMEOUT set, runs on a non-blocking
// socket and (2.5 with GnuTLS) spins on EAGAIN without polling while a peer stays silent; on
// a blocking socket it waits for ever. So once the TCP connect is done (bounded by the
// network timeout), the socket stays blocking for the handshake (the network timeout unset
// here) and the watchdog shuts it down when the check's deadline passes: the handshake or
// read in progress ends with an error.
int on_connect(LDAP* ld, Sockbuf* sb, LDAPURLDesc*, sockaddr*, ldap_conncb* ctx) {
  auto* c = static_cast<LdapBackend::Conn*>(ctx->lc_arg);
  ber_socket_t fd = -1;
  if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) == 1 && fd >= 0) c->backend->watch_fd(*c, fd);
  timeval forever{-1, 0};
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &forever);
  return 0;
}

void on_disconnect(LDAP*, Sockbuf*, ldap_conncb*) {}

}  // namespace

namespace {

timeval left_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
  if (left < 1000) left = 1000;  // libldap treats {0, 0} as "poll"; a millisecond is "now"
  return timeval{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
}

// libldap's diagnostic message for the last error on `ld` (the server's text, or TLS's).
std::string diagnostic(LDAP* ld) {
  char* msg = nullptr;
  std::string out;
  if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS && msg) {
    out = msg;
    ldap_memfree(msg);
  }
  return out;
}

std::string describe(LDAP* ld, int rc, const std::string& server_text = {}) {
  std::string d = server_text.empty() ? diagnostic(ld) : server_text;
  std::string out = ldap_err2string(rc);
  if (!d.empty() && d != out) out += ": " + d;
  return out;
}

// The directory is there but says no for this user (never "unavailable").
bool refuses_user(int rc) {
  return rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INVALID_DN_SYNTAX || rc == LDAP_INAPPROPRIATE_AUTH ||
         rc == LDAP_UNWILLING_TO_PERFORM || rc == LDAP_CONSTRAINT_VIOLATION || rc == LDAP_NO_SUCH_OBJECT;
}

// A simple bind answered within the deadline; *locked from a password-policy response
// control (draft-behera-ldap-password-policy: OpenLDAP's ppolicy, 389-DS...).
int simple_bind(LDAP* ld, const std::string& dn, const std::string& password, Clock::time_point deadline,
                std::string* why, bool* locked) {
  berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  LDAPControl* pp = nullptr;
  if (ldap_create_passwordpolicy_control(ld, &pp) != LDAP_SUCCESS) pp = nullptr;
  LDAPControl* ctrls[2] = {pp, nullptr};
  int msgid = -1;
  int rc = ldap_sasl_bind(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, pp ? ctrls : nullptr, nullptr, &msgid);
  if (pp) ldap_control_free(pp);
  if (rc != LDAP_SUCCESS) {
    *why = describe(ld, rc);
    return rc;
  }
  LDAPMessage* res = nullptr;
  timeval tv = left_until(deadline);
  rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
  if (rc == 0) {
    *why = "no answer to the bind in time";
    return LDAP_TIMEOUT;
  }
  if (rc < 0 || !res) {
    int err = LDAP_SERVER_DOWN;
    ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &err);
    *why = describe(ld, err);
    return err;
  }
  int err = LDAP_OTHER;
  char* text = nullptr;
  LDAPControl** sctrls = nullptr;
  rc = ldap_parse_result(ld, res, &err, nullptr, &text, nullptr, &sctrls, 1);
  if (rc != LDAP_SUCCESS) err = rc;
  if (sctrls) {
    if (LDAPControl* c = ldap_control_find(LDAP_CONTROL_PASSWORDPOLICYRESPONSE, sctrls, nullptr)) {
      ber_int_t expire = -1, grace = -1;
      LDAPPasswordPolicyError pe = PP_noError;
      if (ldap_parse_passwordpolicy_control(ld, c, &expire, &grace, &pe) == LDAP_SUCCESS && pe == PP_accountLocked)
        *locked = true;
    }
    ldap_controls_free(sctrls);
  }
  *why = describe(ld, err, text ? text : "");
  if (text) ldap_memfree(text);
  return err;
}

struct Found {
  std::string dn;
  std::vector<std::string> values;
};

// A subtree search for at most `limit` entries, with one attribute's values (or none).
int search(LDAP* ld, const std::string& base, const std::string& filter, const std::string& attribute,
           int limit, Clock::time_point deadline, std::vector<Found>* out, std::string* why) {
  std::string attr = attribute.empty() ? "1.1" : attribute;  // 1.1: no attributes (RFC 4511 4.5.1.8)
  char* attrs[2] = {attr.data(), nullptr};
  timeval tv = left_until(deadline);
  LDAPMessage* res = nullptr;
  int rc = ldap_search_ext_s(ld, base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), attrs, 0, nullptr, nullptr,
                             &tv, limit, &res);
  if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
    for (LDAPMessage* e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
      Found f;
      if (char* dn = ldap_get_dn(ld, e)) {
        f.dn = dn;
        ldap_memfree(dn);
      }
      if (!attribute.empty()) {
        if (berval** vals = ldap_get_values_len(ld, e, attribute.c_str())) {
          for (berval** v = vals; *v; ++v) f.values.emplace_back((*v)->bv_val, (*v)->bv_len);
          ldap_value_free_len(vals);
        }
      }
      out->push_back(std::move(f));
    }
    if (rc == LDAP_SIZELIMIT_EXCEEDED) rc = LDAP_SUCCESS;  // the entries up to the limit
  } else {
    *why = rc == LDAP_TIMEOUT ? "no answer to the search in time" : describe(ld, rc);
  }
  if (res) ldap_msgfree(res);
  return rc;
}

bool read_secret(const std::string& path, std::string* out, std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  std::getline(f, *out);
  if (!out->empty() && out->back() == '\r') out->pop_back();
  if (out->empty()) {
    *error = path + ": empty (the service account's password on the first line)";
    return false;
  }
  return true;
}

std::string seconds_text(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

Identity unavailable(std::string why) {
  Identity id;
  id.verdict = Verdict::kUnavailable;
  id.why = std::move(why);
  return id;
}

Identity bad(std::string why) {
  Identity id;
  id.verdict = Verdict::kBad;
  id.why = std::move(why);
  return id;
}

}  // namespace

std::unique_ptr<LdapBackend> LdapBackend::load(const Config::Auth::Ldap& config, std::string* error) {
  auto b = std::unique_ptr<LdapBackend>(new LdapBackend(config));
  if (!config.bind_dn.empty() && !read_secret(config.bind_password_file, &b->service_password_, error))
    return nullptr;
  if (!config.ca_file.empty()) {
    std::ifstream f(config.ca_file);
    if (!f) {
      *error = config.ca_file + ": cannot read: " + std::strerror(errno);
      return nullptr;
    }
  }
  // libldap reads its global defaults (ldap.conf) once, not thread-safely on first use: here,
  // on one thread, before any check.
  int version = LDAP_VERSION3;
  ldap_set_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);
  return b;
}

LdapBackend::LdapBackend(const Config::Auth::Ldap& config) : config_(config) {
  watchdog_ = std::thread([this] { watchdog(); });
}

LdapBackend::~LdapBackend() {
  {
    std::lock_guard lk(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  watchdog_.join();
  OPENSSL_cleanse(service_password_.data(), service_password_.size());
}

void LdapBackend::watch_fd(Conn& c, int fd) const {
  std::lock_guard lk(watch_mu_);
  c.fd = fd;
  if (c.watched && !c.cut && Clock::now() >= c.deadline) {
    ::shutdown(fd, SHUT_RDWR);
    c.cut = true;
  }
}

void LdapBackend::watch(Conn& c, Clock::time_point deadline) const {
  {
    std::lock_guard lk(watch_mu_);
    c.deadline = deadline;
    c.watched = true;
    c.cut = false;
    watched_.push_back(&c);
  }
  watch_cv_.notify_all();
}

void LdapBackend::unwatch(Conn& c) const {
  std::lock_guard lk(watch_mu_);
  c.watched = false;
  std::erase(watched_, &c);
}

void LdapBackend::watchdog() const {
  std::unique_lock lk(watch_mu_);
  while (!stopping_) {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (Conn* c : watched_) {
      if (c->cut) continue;
      if (c->deadline <= now) {
        if (c->fd >= 0) {
          ::shutdown(c->fd, SHUT_RDWR);  // wakes the blocked read or handshake: an error
          c->cut = true;
        }
      } else {
        next = std::min(next, c->deadline);
      }
    }
    if (next == Clock::time_point::max())
      watch_cv_.wait(lk);
    else
      watch_cv_.wait_until(lk, next);
  }
}

std::unique_ptr<LdapBackend::Conn> LdapBackend::acquire(Clock::time_point deadline) const {
  std::unique_lock lk(mu_);
  for (;;) {
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    if (open_ < config_.connections) {
      ++open_;
      return std::make_unique<Conn>();
    }
    if (freed_.wait_until(lk, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= config_.connections)
      return nullptr;
  }
}

void LdapBackend::release(std::unique_ptr<Conn> c, bool reusable) const {
  if (!reusable) c.reset();  // unbinds (outside the lock)
  {
    std::lock_guard lk(mu_);
    if (c)
      idle_.push_back(std::move(c));
    else
      --open_;
  }
  freed_.notify_one();
}

Identity LdapBackend::verify(const std::string& user, const std::string& password) const {
  // An empty password makes a simple bind an unauthenticated one (RFC 4513 5.1.2), which
  // directories accept: never sent.
  if (password.empty()) return bad("empty password");
  if (user.empty() || user.size() > 256) return bad("user name empty or too long");
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(config_.timeout * 1000));
  for (int round = 0; round < 2; ++round) {
    auto c = acquire(deadline);
    if (!c)
      return unavailable("all " + std::to_string(config_.connections) + " LDAP connections busy for " +
                         seconds_text(config_.timeout) + " s");
    bool retry = false;
    // libldap's own timeouts (connect, answers) end at the deadline; the watchdog, a moment
    // later, ends what they do not cover (a TLS handshake).
    watch(*c, deadline + std::chrono::milliseconds(250));
    Identity id = attempt(*c, user, password, deadline, &retry);
    unwatch(*c);
    bool cut = c->cut;  // the watchdog ended it: not reusable, whatever libldap said
    release(std::move(c), id.verdict != Verdict::kUnavailable && !cut);
    if (cut && id.verdict == Verdict::kUnavailable) id.why = "no answer in time, connection cut (" + id.why + ")";
    if (!retry || Clock::now() >= deadline) return id;
  }
  return unavailable("the directory closed the connection");
}

Identity LdapBackend::attempt(Conn& c, const std::string& user, const std::string& password,
                              Clock::time_point deadline, bool* retry) const {
  const bool reused = c.used;
  bool answered = false;  // an operation of this attempt succeeded
  auto failed = [&](const std::string& what, int rc, const std::string& why) {
    // A pooled connection the server closed while idle: once more on a new one.
    *retry = reused && !answered && (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR);
    return unavailable(what + ": " + why);
  };
  if (!c.ld) {
    if (int rc = ldap_initialize(&c.ld, config_.uri.c_str()); rc != LDAP_SUCCESS) {
      c.ld = nullptr;
      return unavailable("ldap_initialize " + config_.uri + ": " + ldap_err2string(rc));
    }
    int version = LDAP_VERSION3;
    ldap_set_option(c.ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(c.ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(c.ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
    timeval tv = left_until(deadline);
    c.backend = this;
    c.callbacks = ldap_conncb{&on_connect, &on_disconnect, &c};
    ldap_set_option(c.ld, LDAP_OPT_CONNECT_CB, &c.callbacks);
    ldap_set_option(c.ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);  // connect (TLS: the watchdog)
    ldap_set_option(c.ld, LDAP_OPT_TIMEOUT, &tv);          // StartTLS's answer
    int time_limit = static_cast<int>(std::ceil(config_.timeout));
    ldap_set_option(c.ld, LDAP_OPT_TIMELIMIT, &time_limit);  // the server's own limit per search
    bool tls = config_.starttls || config_.uri.find("ldaps://") != std::string::npos;
    if (tls) {
      int demand = LDAP_OPT_X_TLS_DEMAND, min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, server = 0;
      if (!config_.ca_file.empty()) ldap_set_option(c.ld, LDAP_OPT_X_TLS_CACERTFILE, config_.ca_file.c_str());
      ldap_set_option(c.ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
      ldap_set_option(c.ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min);
      if (int rc = ldap_set_option(c.ld, LDAP_OPT_X_TLS_NEWCTX, &server); rc != LDAP_OPT_SUCCESS)
        return unavailable(std::string("TLS settings: ") + ldap_err2string(rc));
    }
    if (config_.starttls) {
      int rc = ldap_start_tls_s(c.ld, nullptr, nullptr);
      if (rc != LDAP_SUCCESS) return unavailable("StartTLS with " + config_.uri + ": " + describe(c.ld, rc));
      answered = c.used = true;
    }
  }
  std::string why;
  std::string dn;
  std::vector<std::string> groups;
  const std::string esc_filter = ldap_filter_escape(user);
  const std::string& group_base = config_.group_base_dn.empty() ? config_.base_dn : config_.group_base_dn;
  auto find_groups = [&](std::string* err) {
    if (group_base.empty()) return LDAP_SUCCESS;
    std::vector<Found> found;
    int rc = search(c.ld, group_base, ldap_expand(config_.group_filter, esc_filter, ldap_filter_escape(dn)),
                    config_.group_attribute, 1000, deadline, &found, err);
    for (auto& f : found)
      for (auto& v : f.values) groups.push_back(std::move(v));
    return rc;
  };
  bool locked = false;
  if (config_.bind_dn_template.empty()) {
    // Search-then-bind: as the service account (or anonymous), find the user's entry.
    if (!c.as_service) {
      int rc = simple_bind(c.ld, config_.bind_dn, config_.bind_dn.empty() ? std::string() : service_password_,
                           deadline, &why, &locked);
      if (rc != LDAP_SUCCESS)
        return failed(config_.bind_dn.empty() ? "anonymous bind" : "bind as " + config_.bind_dn, rc, why);
      c.as_service = true;
      answered = c.used = true;
    }
    std::vector<Found> found;
    int rc = search(c.ld, config_.base_dn, ldap_expand(config_.user_filter, esc_filter), "", 2, deadline, &found,
                    &why);
    if (rc != LDAP_SUCCESS) return failed("user search under " + config_.base_dn, rc, why);
    answered = c.used = true;
    if (found.empty()) return bad("unknown user");
    if (found.size() > 1) return bad("more than one entry matches the user");
    dn = found.front().dn;
    rc = find_groups(&why);
    if (rc != LDAP_SUCCESS) return unavailable("group search under " + group_base + ": " + why);
    c.as_service = false;  // the next bind is the user's
    rc = simple_bind(c.ld, dn, password, deadline, &why, &locked);
    if (rc != LDAP_SUCCESS) {
      if (refuses_user(rc)) return bad(locked ? "account locked" : rc == LDAP_INVALID_CREDENTIALS ? "wrong password" : why);
      return unavailable("bind as " + dn + ": " + why);
    }
  } else {
    // Bind as the user directly; the groups are searched as the user.
    dn = ldap_expand(config_.bind_dn_template, ldap_dn_value_escape(user));
    c.as_service = false;
    int rc = simple_bind(c.ld, dn, password, deadline, &why, &locked);
    if (rc != LDAP_SUCCESS) {
      if (refuses_user(rc))
        return bad(locked ? "account locked"
                          : rc == LDAP_INVALID_CREDENTIALS ? "wrong password or unknown user" : why);
      return failed("bind as " + dn, rc, why);
    }
    answered = c.used = true;
    rc = find_groups(&why);
    if (rc != LDAP_SUCCESS) return unavailable("group search under " + group_base + ": " + why);
  }
  Identity id;
  id.verdict = Verdict::kGood;
  id.groups = std::move(groups);
  return id;
}

}  // namespace outpost::auth
