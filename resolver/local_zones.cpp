#include "resolver/local_zones.hpp"

#include <algorithm>

#include "resolver/zone_file.hpp"

namespace outpost::dns {

bool LocalZones::add_zone(const Name& apex, const std::vector<ResourceRecord>& records, std::string* error) {
  Zone z;
  z.apex = apex;
  bool have_soa = false;
  for (auto& set : group_rrsets(records)) {
    if (!set.name.is_subdomain_of(apex)) {
      *error = set.name.to_text() + " is outside the zone " + apex.to_text();
      return false;
    }
    if (set.type == type::SOA) {
      if (!(set.name == apex) || set.rdata.size() != 1 || have_soa) {
        *error = "a zone needs exactly one SOA record, at its apex";
        return false;
      }
      have_soa = true;
      z.soa = set;
    }
    for (Name n = set.name;; n = n.parent()) {
      z.names[n.lowercase_wire()] = true;
      if (n == apex) break;
    }
    z.sets[{set.name.lowercase_wire(), set.type}] = set;
  }
  if (!have_soa) {
    *error = "zone " + apex.to_text() + " has no SOA record";
    return false;
  }
  zones_.push_back(std::move(z));
  // Deepest zones first, so the most specific one answers.
  std::sort(zones_.begin(), zones_.end(), [](const Zone& a, const Zone& b) { return a.apex.label_count() > b.apex.label_count(); });
  return true;
}

bool LocalZones::load_file(const std::string& path, const Name& apex, std::string* error) {
  ZoneFileError zerr;
  auto records = load_zone_file(path, apex, &zerr);
  if (!records) {
    *error = path + ":" + std::to_string(zerr.line) + ": " + zerr.reason;
    return false;
  }
  if (!add_zone(apex, *records, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

const LocalZones::Zone* LocalZones::find_zone(const Name& n) const {
  for (auto& z : zones_)
    if (n.is_subdomain_of(z.apex)) return &z;
  return nullptr;
}

std::optional<Resolution> LocalZones::answer(const Question& q) const {
  const Zone* z = find_zone(q.name);
  if (!z) return std::nullopt;
  Resolution r;
  r.authoritative = true;
  r.rcode = rcode::NOERROR;
  Name at = q.name;
  for (unsigned chain = 0; chain < 8; ++chain) {
    auto key = at.lowercase_wire();
    auto it = z->sets.find({key, q.type});
    if (it != z->sets.end()) {
      it->second.append_to(&r.answer, it->second.ttl);
      return r;
    }
    if (q.type == type::ANY) {
      bool any = false;
      for (auto& [k, set] : z->sets)
        if (k.first == key) set.append_to(&r.answer, set.ttl), any = true;
      if (any) return r;
    }
    auto cn = z->sets.find({key, type::CNAME});
    if (cn == z->sets.end() || q.type == type::CNAME) break;
    cn->second.append_to(&r.answer, cn->second.ttl);
    at = std::get<RdataName>(cn->second.rdata.front()).name;
    if (!at.is_subdomain_of(z->apex)) return r;  // the rest is someone else's; the answer stops here
  }
  // Negative: NXDOMAIN if the name does not exist at all (RFC 2308: SOA TTL = min(TTL, MINIMUM)).
  if (!z->names.count(at.lowercase_wire()) && at.is_subdomain_of(z->apex)) r.rcode = rcode::NXDOMAIN;
  RRset soa = z->soa;
  soa.ttl = std::min(soa.ttl, std::get<RdataSoa>(soa.rdata.front()).minimum);
  soa.append_to(&r.authority, soa.ttl);
  return r;
}

}  // namespace outpost::dns
