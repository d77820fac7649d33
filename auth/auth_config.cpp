#include "auth/auth_config.hpp"

#include "core/config_section.hpp"

namespace outpost::auth {

namespace {

// A template or filter with one placeholder kind at least, and only known ones.
bool placeholders_ok(const std::string& t, const std::string& allowed, bool required) {
  bool any = false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '%') continue;
    if (i + 1 >= t.size() || (allowed.find(t[i + 1]) == std::string::npos && t[i + 1] != '%')) return false;
    any = any || t[i + 1] != '%';
    ++i;
  }
  return any || !required;
}

void parse_ldap(ConfigTable& s, Config::Auth& a) {
  Config::Auth::Ldap& l = a.ldap;
  l = Config::Auth::Ldap{};
  l.uri = s.string("ldap_uri", "");
  l.starttls = s.boolean("ldap_starttls", false);
  l.ca_file = s.string("ldap_ca_file", "");
  l.bind_dn_template = s.string("ldap_bind_dn_template", "");
  l.bind_dn = s.string("ldap_bind_dn", "");
  l.bind_password_file = s.string("ldap_bind_password_file", "");
  l.base_dn = s.string("ldap_base_dn", "");
  l.user_filter = s.string("ldap_user_filter", l.user_filter);
  l.group_base_dn = s.string("ldap_group_base_dn", "");
  l.group_filter = s.string("ldap_group_filter", l.group_filter);
  l.group_attribute = s.string("ldap_group_attribute", l.group_attribute);
  l.timeout = s.number("ldap_timeout", l.timeout, 0.1, 120);
  l.connections = static_cast<unsigned>(s.integer("ldap_connections", l.connections, 1, 64));
  l.max_pending = static_cast<unsigned>(s.integer("ldap_max_pending", l.max_pending, 1, 1024));
  if (a.backend != "ldap") return;
  if (l.uri.empty()) s.fail("ldap_uri", "the ldap back end needs a directory (ldap://host or ldaps://host)");
  for (std::size_t pos = 0; pos < l.uri.size();) {
    auto end = l.uri.find(' ', pos);
    std::string one = l.uri.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? l.uri.size() : end + 1;
    if (one.empty()) continue;
    if (!one.starts_with("ldap://") && !one.starts_with("ldaps://"))
      s.fail("ldap_uri", "expected ldap://host[:port] or ldaps://host[:port] (space-separated)");
    if (l.starttls && one.starts_with("ldaps://"))
      s.fail("ldap_starttls", "StartTLS is for ldap:// URIs (ldaps:// is TLS from the start)");
  }
  if (!l.bind_dn_template.empty()) {
    if (!placeholders_ok(l.bind_dn_template, "s", true))
      s.fail("ldap_bind_dn_template", "expected a DN with %s where the user name goes");
    if (!l.bind_dn.empty())
      s.fail("ldap_bind_dn", "a service account is for search-then-bind (ldap_base_dn), not with ldap_bind_dn_template");
  } else {
    if (l.base_dn.empty())
      s.fail("ldap_base_dn", "the ldap back end needs ldap_bind_dn_template (bind as the user) or ldap_base_dn "
                             "(search-then-bind)");
    if (!placeholders_ok(l.user_filter, "s", true) || l.user_filter.front() != '(')
      s.fail("ldap_user_filter", "expected an LDAP filter with %s where the user name goes, such as (uid=%s)");
  }
  if (!l.bind_dn.empty() && l.bind_password_file.empty())
    s.fail("ldap_bind_password_file", "the service account needs its password in a file");
  if (!placeholders_ok(l.group_filter, "sD", false) || l.group_filter.empty() || l.group_filter.front() != '(')
    s.fail("ldap_group_filter", "expected an LDAP filter; %s is the user name, %D the user's DN");
  if (l.group_attribute.empty()) s.fail("ldap_group_attribute", "expected an attribute name such as cn");
}

void parse_section(ConfigTable& s, Config& config) {
  Config::Auth& a = config.auth;
  a.backend = s.string("backend", "none", {"none", "htpasswd", "ldap"});
  a.realm = s.string("realm", "Outpost");
  if (a.realm.empty() || a.realm.size() > 200 ||
      a.realm.find_first_of("\"\\\r\n") != std::string::npos)
    s.fail("realm", "expected 1 to 200 characters without quotes, backslashes or line breaks");
  a.htpasswd_file = s.string("htpasswd_file", "");
  a.group_file = s.string("group_file", "");
  if (a.backend == "htpasswd" && a.htpasswd_file.empty())
    s.fail("htpasswd_file", "the htpasswd back end needs a file (make it with htpasswd -B or -5)");
  a.cache_ttl = s.number("cache_ttl", 300, 0, 86400);
  parse_ldap(s, a);
  a.default_allow = s.string("default_action", "allow", {"allow", "deny"}) == "allow";
  a.rules.clear();
  for (auto& t : s.tables("rules", "expected an array of tables such as { action = \"deny\", groups = [\"guests\"] }")) {
    Config::Auth::Rule r;
    std::string action = t.string("action", "", {"allow", "deny"});
    if (action.empty()) t.fail("action", "expected \"allow\" or \"deny\"");
    r.allow = action == "allow";
    r.users = t.strings("users", {});
    r.groups = t.strings("groups", {});
    r.hosts = t.strings("hosts", {});
    if (r.users.empty() && r.groups.empty()) t.fail("users", "a rule names users or groups (\"*\": any user)");
    t.check_unknown();
    a.rules.push_back(std::move(r));
  }
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("auth", &parse_section); }

}  // namespace outpost::auth
