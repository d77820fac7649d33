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

// The fixed address classes, as plain comparisons (a destination check runs several of them
// for every forwarded request). IPv4 addresses are in their IPv4-mapped form (bytes 12-15).
namespace {
bool equals_v4(const IpAddress& a, std::uint8_t b0, std::uint8_t b1, std::uint8_t b2, std::uint8_t b3) {
  return a.v4 && a.bytes[12] == b0 && a.bytes[13] == b1 && a.bytes[14] == b2 && a.bytes[15] == b3;
}
bool zero_through(const IpAddress& a, std::size_t n) {  // bytes [0, n) are all zero
  for (std::size_t i = 0; i < n; ++i)
    if (a.bytes[i] != 0) return false;
  return true;
}
bool equals_v6(const IpAddress& a, std::initializer_list<std::uint8_t> bytes) {
  if (a.v4) return false;
  std::size_t i = 0;
  for (auto b : bytes)
    if (a.bytes[i++] != b) return false;
  return true;
}
}  // namespace

bool is_this_host(const IpAddress& a) {
  return a.v4 ? a.bytes[12] == 0 : zero_through(a, 16);  // 0.0.0.0/8, ::
}

bool is_loopback(const IpAddress& a) {
  return a.v4 ? a.bytes[12] == 127 : zero_through(a, 15) && a.bytes[15] == 1;  // 127.0.0.0/8, ::1
}

bool is_link_local_or_metadata(const IpAddress& a) {
  if (a.v4)
    return (a.bytes[12] == 169 && a.bytes[13] == 254) ||  // 169.254.169.254: AWS, GCP, Azure, Oracle, OpenStack, ...
           equals_v4(a, 100, 100, 100, 200) ||              // Alibaba Cloud metadata
           equals_v4(a, 192, 0, 0, 192) ||                  // Oracle Cloud Classic metadata
           equals_v4(a, 168, 63, 129, 16);                  // Azure WireServer (platform agent, certificates)
  return (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80) ||  // fe80::/10
         equals_v6(a, {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}) ||  // fd00:ec2::254, AWS metadata
         equals_v6(a, {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x23});       // fd00:ec2::23, AWS EKS pod identity
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
        (is_loopback(a) || std::find(local_addresses_.begin(), local_addresses_.end(), a) != local_addresses_.end()))
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
  return !(protect_local_services_ && !is_loopback(client) && localhost.matches(host));
}

bool AccessRules::address_allowed(const IpAddress& a, std::uint16_t port, const std::optional<IpAddress>& client) const {
  if (is_this_host(a) || is_own_listener(a, port)) return false;
  if (deny_link_local_ && is_link_local_or_metadata(a)) return false;
  if (protect_local_services_ && client && !is_loopback(*client) && is_loopback(a)) return false;
  if (deny_networks_.contains(a)) return false;
  if (!allow_networks_.empty() && !allow_networks_.contains(a)) return false;
  return true;
}

}  // namespace outpost
