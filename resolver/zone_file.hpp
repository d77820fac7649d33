// RFC 1035 master files ($ORIGIN, $TTL, @, relative names, omitted owner/TTL/class,
// parentheses, comments, quoted strings; A AAAA NS CNAME SOA MX TXT PTR SRV DNAME and RFC 3597
// "\# len hex" for the rest). Used by local zones and root hints.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "resolver/dns_message.hpp"

namespace outpost::dns {

struct ZoneFileError {
  unsigned line = 0;
  std::string reason;
};

// Parses master-file text; `origin` is the initial $ORIGIN. nullopt with *error on failure.
std::optional<std::vector<ResourceRecord>> parse_zone_text(const std::string& text, const Name& origin,
                                                           std::uint32_t default_ttl, ZoneFileError* error);
std::optional<std::vector<ResourceRecord>> load_zone_file(const std::string& path, const Name& origin,
                                                          ZoneFileError* error);

}  // namespace outpost::dns
