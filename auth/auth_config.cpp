#include "auth/auth_config.hpp"

#include "core/config_section.hpp"

namespace outpost::auth {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Auth& a = config.auth;
  a.backend = s.string("backend", "none", {"none", "htpasswd"});
  a.realm = s.string("realm", "Outpost");
  if (a.realm.empty() || a.realm.size() > 200 ||
      a.realm.find_first_of("\"\\\r\n") != std::string::npos)
    s.fail("realm", "expected 1 to 200 characters without quotes, backslashes or line breaks");
  a.htpasswd_file = s.string("htpasswd_file", "");
  a.group_file = s.string("group_file", "");
  if (a.backend == "htpasswd" && a.htpasswd_file.empty())
    s.fail("htpasswd_file", "the htpasswd back end needs a file (make it with htpasswd -B or -5)");
  a.cache_ttl = s.number("cache_ttl", 300, 0, 86400);
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
