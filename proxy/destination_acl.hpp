// Access rules for a proxy worker: which clients may use it, which destinations it
// may contact. Host-name rules are decided before any name lookup, so a refused name is
// never resolved; address rules apply to IP literals and to resolved addresses (numeric
// host forms such as 2130706433 or 127.1 reach them as dotted quads: proxy/url.cpp).
#pragma once
#include <cstdint>
#include <optional>
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

// Fixed address classes (plain comparisons; equal to the NetworkLists in the comments, which
// access_rules_test checks): "this host" (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1), and
// link-local plus the cloud metadata and platform addresses outside it (169.254.0.0/16,
// fe80::/10, fd00:ec2::254, fd00:ec2::23, 100.100.100.200, 192.0.0.192, 168.63.129.16).
bool is_this_host(const IpAddress& a);
bool is_loopback(const IpAddress& a);
bool is_link_local_or_metadata(const IpAddress& a);

class AccessRules {
 public:
  AccessRules() = default;
  AccessRules(const Config::Acl& acl, std::vector<Endpoint> own_listeners);

  bool client_allowed(const IpAddress& a) const { return clients_.contains(a); }
  bool connect_port_allowed(std::uint16_t port) const;
  // Decided on the name alone (before resolution). IP literals pass here and are judged
  // by address_allowed().
  bool host_allowed(std::string_view host) const;
  // What can be decided for `client` before any lookup, cache lookups included: the name
  // rules, the address rules for an IP literal, and the local-services rule for localhost
  // names (RFC 6761). Without it a stored copy of a loopback service's response, fetched by
  // a loopback client, would be served to any client as a hit.
  bool target_allowed(std::string_view host, std::uint16_t port, const IpAddress& client) const;
  // The same with the host's literal address already known (nullopt: a name).
  bool target_allowed(std::string_view host, const std::optional<IpAddress>& literal, std::uint16_t port,
                      const IpAddress& client) const;
  // May a request for `client` go to a:port? Never to 0.0.0.0/8 or :: ("this host"), nor
  // to one of Outpost's own listeners in any spelling (loops); then the link-local and
  // metadata rule, the local-services rule, deny_networks and allow_networks. `client` is
  // std::nullopt for Outpost's own requests (background refresh): the local-services rule,
  // which depends on who asks, does not apply to them.
  bool address_allowed(const IpAddress& a, std::uint16_t port,
                       const std::optional<IpAddress>& client = std::nullopt) const;
  // One of Outpost's own listeners, in any spelling (a wildcard listener: any local address).
  bool is_own_listener(const IpAddress& a, std::uint16_t port) const;

 private:
  bool name_allowed(std::string_view host) const;  // the host rules alone

  NetworkList clients_;
  std::vector<std::uint16_t> connect_ports_;
  std::vector<HostPattern> allow_hosts_, deny_hosts_;
  NetworkList allow_networks_, deny_networks_;
  bool deny_link_local_ = true, protect_local_services_ = true;
  struct Listener {
    IpAddress address;
    std::uint16_t port;
  };
  std::vector<Listener> own_;
  // This host's interface addresses, read when the rules are built and only if a listener
  // is on a wildcard address (where any of them reaches it).
  std::vector<IpAddress> local_addresses_;
};

}  // namespace outpost
