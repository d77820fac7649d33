// IP addresses, CIDR networks and host:port endpoints (IPv4 and IPv6).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outpost {

// An IPv4 or IPv6 address; IPv4 is kept as an IPv4-mapped IPv6 address so that
// one comparison path serves both families.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;

  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress from_sockaddr(const sockaddr* sa);
  // An IPv4 address (network order octets), in the IPv4-mapped form every IpAddress uses.
  static IpAddress from_v4(const std::uint8_t octets[4]);
  std::string to_string() const;
  bool is_unspecified() const;
  bool operator==(const IpAddress&) const = default;
};

// An address with a prefix length ("10.0.0.0/8", "::1/128", or a bare address).
struct Cidr {
  IpAddress base;
  unsigned prefix = 0;  // in bits of the 128-bit (mapped) form

  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& a) const;
  std::string to_string() const;
};

class NetworkList {
 public:
  NetworkList() = default;
  explicit NetworkList(std::vector<Cidr> nets) : nets_(std::move(nets)) {}
  // Parses each entry; returns the first bad entry's index through *bad (or -1).
  static std::optional<NetworkList> parse(const std::vector<std::string>& texts, std::size_t* bad);
  bool contains(const IpAddress& a) const;
  bool empty() const { return nets_.empty(); }

 private:
  std::vector<Cidr> nets_;
};

// A DNS host name as URLs, SNI and certificates carry it: letters (either case), digits, '-'
// and '_', labels of 1 to 63 separated by single dots, at most 253 in all, no trailing dot.
// (Digits alone pass: whether a name may look like an address is the caller's rule.)
bool is_host_name(std::string_view name);

// "host:port", "[v6]:port", "v4:port".
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
  // Fills a sockaddr for a literal address host; false if host is not a literal.
  bool to_sockaddr(sockaddr_storage* out, socklen_t* len) const;
};

}  // namespace outpost
