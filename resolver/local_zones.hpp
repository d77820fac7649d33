// Authoritative local zones from RFC 1035 master files: answers with AA set, NXDOMAIN/NODATA
// with the zone's SOA, CNAMEs followed inside the zone. Immutable once loaded; shared by workers.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "resolver/resolution.hpp"
#include "resolver/rrset.hpp"

namespace outpost::dns {

class LocalZones {
 public:
  // The records must contain exactly one SOA, at the apex, and lie inside the zone.
  bool add_zone(const Name& apex, const std::vector<ResourceRecord>& records, std::string* error);
  bool load_file(const std::string& path, const Name& apex, std::string* error);
  // The authoritative answer if q falls inside a local zone.
  std::optional<Resolution> answer(const Question& q) const;
  bool empty() const { return zones_.empty(); }

 private:
  struct Zone {
    Name apex;
    RRset soa;
    std::map<std::pair<std::string, std::uint16_t>, RRset> sets;  // (lower-case wire, type)
    std::map<std::string, bool> names;  // every owner and every empty non-terminal
  };
  const Zone* find_zone(const Name& n) const;
  std::vector<Zone> zones_;
};

}  // namespace outpost::dns
