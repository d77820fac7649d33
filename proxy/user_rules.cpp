#include "proxy/user_rules.hpp"

#include <algorithm>

namespace outpost {

UserRules::UserRules(const Config::Auth& config) : default_allow_(config.default_allow) {
  for (const auto& r : config.rules) {
    Rule rule;
    rule.allow = r.allow;
    for (const auto& u : r.users) {
      if (u == "*") rule.any_user = true;
      else rule.users.push_back(u);
    }
    rule.groups = r.groups;
    for (const auto& h : r.hosts) rule.hosts.emplace_back(h);
    rules_.push_back(std::move(rule));
  }
}

bool UserRules::allowed(std::string_view user, const std::vector<std::string>& groups, std::string_view host) const {
  for (const auto& r : rules_) {
    bool who = r.any_user || std::find(r.users.begin(), r.users.end(), user) != r.users.end() ||
               std::any_of(r.groups.begin(), r.groups.end(), [&](const std::string& g) {
                 return std::find(groups.begin(), groups.end(), g) != groups.end();
               });
    if (!who) continue;
    if (!r.hosts.empty() &&
        std::none_of(r.hosts.begin(), r.hosts.end(), [&](const HostPattern& p) { return p.matches(host); }))
      continue;
    return r.allow;
  }
  return default_allow_;
}

}  // namespace outpost
