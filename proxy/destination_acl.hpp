// Access rules for a proxy worker: which clients may use it, which destinations it
// may contact. Host-name rules are decided before any name lookup, so a refused name is
// never resolved; address rules apply to IP literals and to resolved addresses.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/net_address.hpp"

namespace outpost {

// A host-name pattern: "example.com" (exact) or "*.example.com" / ".example.com" (subdomains).
class HostPattern {
 public:
  explicit HostPattern(std::string_view text);
  bool matches(std::string_view host) const;

 private:
  std::string suffix_;  // lower-case
  bool subdomains_ = false;
};

class AccessRules {
 public:
  AccessRules() = default;
  AccessRules(const Config::Acl& acl, std::vector<Endpoint> own_listeners);

  bool client_allowed(const IpAddress& a) const { return clients_.contains(a); }
  bool connect_port_allowed(std::uint16_t port) const;
  // Decided on the name alone (before resolution). IP literals pass here and are judged
  // by address_allowed().
  bool host_allowed(std::string_view host) const;
  // Address rules plus loop prevention (Outpost's own listeners).
  bool address_allowed(const IpAddress& a, std::uint16_t port) const;

 private:
  NetworkList clients_;
  std::vector<std::uint16_t> connect_ports_;
  std::vector<HostPattern> allow_hosts_, deny_hosts_;
  NetworkList allow_networks_, deny_networks_;
  std::vector<Endpoint> own_;
};

}  // namespace outpost
