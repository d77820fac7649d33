#include "proxy/destination_acl.hpp"

#include <algorithm>

#include "proxy/http_headers.hpp"

namespace outpost {

HostPattern::HostPattern(std::string_view text) {
  if (text.starts_with("*.")) {
    subdomains_ = true;
    text.remove_prefix(1);  // keep the dot
  } else if (text.starts_with(".")) {
    subdomains_ = true;
  }
  suffix_.assign(text);
  for (auto& c : suffix_)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  while (!suffix_.empty() && suffix_.back() == '.') suffix_.pop_back();
}

bool HostPattern::matches(std::string_view host) const {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (!subdomains_) return http::iequals(host, suffix_);
  // ".example.com" matches "a.example.com" (and, like Squid's dstdomain, "example.com").
  if (http::iequals(host, std::string_view(suffix_).substr(1))) return true;
  return host.size() > suffix_.size() && http::iequals(host.substr(host.size() - suffix_.size()), suffix_);
}

AccessRules::AccessRules(const Config::Acl& acl, std::vector<Endpoint> own_listeners)
    : clients_(acl.allow_clients),
      connect_ports_(acl.connect_ports),
      allow_networks_(acl.allow_networks),
      deny_networks_(acl.deny_networks),
      own_(std::move(own_listeners)) {
  for (const auto& h : acl.allow_hosts) allow_hosts_.emplace_back(h);
  for (const auto& h : acl.deny_hosts) deny_hosts_.emplace_back(h);
}

bool AccessRules::connect_port_allowed(std::uint16_t port) const {
  return std::find(connect_ports_.begin(), connect_ports_.end(), port) != connect_ports_.end();
}

bool AccessRules::host_allowed(std::string_view host) const {
  if (IpAddress::parse(host)) return true;  // literals are judged by address
  for (const auto& p : deny_hosts_)
    if (p.matches(host)) return false;
  if (allow_hosts_.empty()) return true;
  for (const auto& p : allow_hosts_)
    if (p.matches(host)) return true;
  return false;
}

bool AccessRules::address_allowed(const IpAddress& a, std::uint16_t port) const {
  for (const auto& ep : own_) {
    if (ep.port != port) continue;
    auto la = IpAddress::parse(ep.host);
    if (!la) continue;
    if (*la == a || la->is_unspecified()) return false;
  }
  if (deny_networks_.contains(a)) return false;
  if (!allow_networks_.empty() && !allow_networks_.contains(a)) return false;
  return true;
}

}  // namespace outpost
