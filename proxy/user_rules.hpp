// Access by user and group ([auth] rules): once a request's user is known, may it go to
// this host? First matching rule wins; none: [auth] default_action. Pure, unit-tested.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "proxy/destination_acl.hpp"

namespace outpost {

class UserRules {
 public:
  UserRules() = default;
  explicit UserRules(const Config::Auth& config);

  // `host`: the request's destination host (lower case, as routed).
  bool allowed(std::string_view user, const std::vector<std::string>& groups, std::string_view host) const;

 private:
  struct Rule {
    bool allow = true;
    bool any_user = false;
    std::vector<std::string> users, groups;
    std::vector<HostPattern> hosts;  // empty: any
  };
  std::vector<Rule> rules_;
  bool default_allow_ = true;
};

}  // namespace outpost
