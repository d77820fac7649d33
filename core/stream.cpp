#include "core/stream.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace outpost {

std::optional<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return SocketAddress{IpAddress::from_sockaddr(sa), ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port)};
  if (sa->sa_family == AF_INET6)
    return SocketAddress{IpAddress::from_sockaddr(sa), ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port)};
  return std::nullopt;
}

void SocketAddress::to_sockaddr(sockaddr_storage* out, socklen_t* len) const {
  std::memset(out, 0, sizeof *out);
  if (ip.v4) {
    auto* s = reinterpret_cast<sockaddr_in*>(out);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, &ip.bytes[12], 4);
    *len = sizeof *s;
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(out);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, ip.bytes.data(), 16);
    *len = sizeof *s;
  }
}

std::string SocketAddress::to_string() const {
  return ip.v4 ? ip.to_string() + ":" + std::to_string(port) : "[" + ip.to_string() + "]:" + std::to_string(port);
}

}  // namespace outpost
