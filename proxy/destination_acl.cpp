#include "proxy/destination_acl.hpp"

#include <ifaddrs.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "proxy/http_headers.hpp"

namespace outpost {
namespace {

NetworkList fixed_networks(std::initializer_list<const char*> texts) {
  std::size_t bad = 0;
  return *NetworkList::parse(std::vector<std::string>(texts.begin(), texts.end()), &bad);
}

// "This host": as a destination the kernel takes it for loopback, so it is never one.
const NetworkList& this_host() {
  static const NetworkList l = fixed_networks({"0.0.0.0/8", "::/128"});
  return l;
}

const NetworkList& loopback() {
  static const NetworkList l = fixed_networks({"127.0.0.0/8", "::1/128"});
  return l;
}

// Link-local, and the cloud metadata / platform endpoints that are not link-local.
const NetworkList& link_local_and_metadata() {
  static const NetworkList l = fixed_networks({
      "169.254.0.0/16", "fe80::/10",  // 169.254.169.254: AWS, GCP, Azure, Oracle, OpenStack, ...
      "fd00:ec2::254",                // AWS instance metadata over IPv6
      "fd00:ec2::23",                 // AWS EKS pod identity agent over IPv6
      "100.100.100.200",              // Alibaba Cloud metadata
      "192.0.0.192",                  // Oracle Cloud Classic metadata
      "168.63.129.16",                // Azure WireServer (platform agent, certificates)
  });
  return l;
}

std::vector<IpAddress> interface_addresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    spdlog::warn("acl: cannot list this host's addresses ({}); the loop guard for wildcard listeners covers "
                 "loopback only", std::strerror(errno));
    return out;
  }
  for (auto* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
      out.push_back(IpAddress::from_sockaddr(i->ifa_addr));
  freeifaddrs(list);
  return out;
}

}  // namespace

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
      deny_link_local_(acl.deny_link_local),
      protect_local_services_(acl.protect_local_services) {
  for (const auto& h : acl.allow_hosts) allow_hosts_.emplace_back(h);
  for (const auto& h : acl.deny_hosts) deny_hosts_.emplace_back(h);
  bool wildcard = false;
  for (const auto& ep : own_listeners) {
    auto a = IpAddress::parse(ep.host);
    if (!a) continue;  // listeners are literals (config); nothing to compare otherwise
    own_.push_back({*a, ep.port});
    wildcard = wildcard || a->is_unspecified();
  }
  if (wildcard) local_addresses_ = interface_addresses();
}

bool AccessRules::connect_port_allowed(std::uint16_t port) const {
  return std::find(connect_ports_.begin(), connect_ports_.end(), port) != connect_ports_.end();
}

bool AccessRules::host_allowed(std::string_view host) const {
  if (IpAddress::parse(host)) return true;  // literals are judged by address
  return name_allowed(host);
}

bool AccessRules::name_allowed(std::string_view host) const {
  for (const auto& p : deny_hosts_)
    if (p.matches(host)) return false;
  if (allow_hosts_.empty()) return true;
  for (const auto& p : allow_hosts_)
    if (p.matches(host)) return true;
  return false;
}

// A listener on 0.0.0.0 or :: is reached through every loopback address and every address
// of the host (a dual-stack :: listener takes IPv4 too, so both wildcards count for both).
bool AccessRules::is_own_listener(const IpAddress& a, std::uint16_t port) const {
  for (const auto& l : own_) {
    if (l.port != port) continue;
    if (l.address == a) return true;
    if (l.address.is_unspecified() &&
        (loopback().contains(a) || std::find(local_addresses_.begin(), local_addresses_.end(), a) != local_addresses_.end()))
      return true;
  }
  return false;
}

bool AccessRules::target_allowed(std::string_view host, std::uint16_t port, const IpAddress& client) const {
  return target_allowed(host, IpAddress::parse(host), port, client);
}

bool AccessRules::target_allowed(std::string_view host, const std::optional<IpAddress>& literal, std::uint16_t port,
                                 const IpAddress& client) const {
  if (literal) return address_allowed(*literal, port, client);
  if (!name_allowed(host)) return false;
  static const HostPattern localhost("*.localhost");
  return !(protect_local_services_ && !loopback().contains(client) && localhost.matches(host));
}

bool AccessRules::address_allowed(const IpAddress& a, std::uint16_t port, const std::optional<IpAddress>& client) const {
  if (this_host().contains(a) || is_own_listener(a, port)) return false;
  if (deny_link_local_ && link_local_and_metadata().contains(a)) return false;
  if (protect_local_services_ && client && !loopback().contains(*client) && loopback().contains(a)) return false;
  if (deny_networks_.contains(a)) return false;
  if (!allow_networks_.empty() && !allow_networks_.contains(a)) return false;
  return true;
}

}  // namespace outpost
