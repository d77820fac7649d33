#include "resolver/rrset.hpp"

#include <algorithm>

namespace outpost::dns {

const char* to_string(Security s) {
  switch (s) {
    case Security::unchecked: return "unchecked";
    case Security::bogus: return "bogus";
    case Security::insecure: return "insecure";
    case Security::secure: return "secure";
  }
  return "?";
}

std::vector<ResourceRecord> RRset::to_records(std::uint32_t ttl_now) const {
  std::vector<ResourceRecord> out;
  append_to(&out, ttl_now);
  return out;
}

void RRset::append_to(std::vector<ResourceRecord>* out, std::uint32_t ttl_now) const {
  for (auto& d : rdata) out->push_back({name, type, cls, ttl_now, d});
}

void RRset::append_signed_to(std::vector<ResourceRecord>* out, std::uint32_t ttl_now) const {
  append_to(out, ttl_now);
  for (auto& s : sigs) out->push_back({name, type::RRSIG, cls, ttl_now, s});
}

std::vector<RRset> group_signed_rrsets(const std::vector<ResourceRecord>& records) {
  std::vector<RRset> sets;
  for (auto& set : group_rrsets(records)) {
    if (set.type != type::RRSIG) sets.push_back(std::move(set));
  }
  for (auto& rr : records) {
    if (rr.type != type::RRSIG) continue;
    auto* o = std::get_if<RdataOpaque>(&rr.rdata);
    if (!o || o->bytes.size() < 2) continue;
    const std::uint16_t covered = static_cast<std::uint16_t>(o->bytes[0] << 8 | o->bytes[1]);
    for (auto& set : sets)
      if (set.type == covered && set.name == rr.name &&
          std::find(set.sigs.begin(), set.sigs.end(), rr.rdata) == set.sigs.end())
        set.sigs.push_back(rr.rdata);
  }
  return sets;
}

std::vector<RRset> group_rrsets(const std::vector<ResourceRecord>& records) {
  std::vector<RRset> sets;
  for (auto& rr : records) {
    auto it = std::find_if(sets.begin(), sets.end(),
                           [&](const RRset& s) { return s.type == rr.type && s.cls == rr.cls && s.name == rr.name; });
    if (it == sets.end()) {
      sets.push_back({rr.name, rr.type, rr.cls, rr.ttl, {rr.rdata}});
      continue;
    }
    it->ttl = std::min(it->ttl, rr.ttl);
    if (std::find(it->rdata.begin(), it->rdata.end(), rr.rdata) == it->rdata.end()) it->rdata.push_back(rr.rdata);
  }
  return sets;
}

const RRset* find_rrset(const std::vector<RRset>& sets, const Name& name, std::uint16_t type) {
  for (auto& s : sets)
    if (s.type == type && s.name == name) return &s;
  return nullptr;
}

}  // namespace outpost::dns
