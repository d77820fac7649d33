#include "resolver/response_type.hpp"

namespace outpost::dns {

const char* to_string(ResponseType t) {
  switch (t) {
    case ResponseType::answer: return "answer";
    case ResponseType::cname: return "cname";
    case ResponseType::referral: return "referral";
    case ResponseType::nxdomain: return "nxdomain";
    case ResponseType::nodata: return "nodata";
    case ResponseType::lame: return "lame";
    case ResponseType::error: return "error";
  }
  return "?";
}

namespace {
bool has(const std::vector<ResourceRecord>& rrs, std::uint16_t t) {
  for (auto& rr : rrs)
    if (rr.type == t) return true;
  return false;
}
}  // namespace

std::optional<ResourceRecord> synthesize_cname(const ResourceRecord& dname, const Name& at) {
  const Name& owner = dname.name;
  auto* to = std::get_if<RdataName>(&dname.rdata);
  if (!to || at == owner || !at.is_subdomain_of(owner)) return std::nullopt;
  auto target = at.replace_suffix(owner, to->name);
  if (!target) return std::nullopt;
  return ResourceRecord{at, type::CNAME, kClassIN, dname.ttl, RdataName{*target}};
}

std::optional<ChainLink> chain_link(const std::vector<ResourceRecord>& answer, const Name& at) {
  for (auto& rr : answer)
    if (rr.type == type::DNAME)
      if (auto cname = synthesize_cname(rr, at)) return ChainLink{rr, std::move(*cname)};
  for (auto& rr : answer)
    if (rr.type == type::CNAME && rr.name == at) return ChainLink{std::nullopt, rr};
  return std::nullopt;
}

Name referral_zone(const Message& m) {
  for (auto& rr : m.authority)
    if (rr.type == type::NS) return rr.name;
  return Name::root();
}

ResponseType classify_response(const Message& m, const Question& asked, const Name& zone, bool forwarder) {
  if (m.header.rcode != rcode::NOERROR && m.header.rcode != rcode::NXDOMAIN) return ResponseType::error;
  // A delegated server speaks for its zone with AA set. An answer or a denial without it is
  // what a recursive resolver says (AA=0, RA=1), or a server that does not serve the zone:
  // never believed. Only a referral comes without AA; a forwarder is recursive, never AA.
  const bool authoritative = m.header.aa || forwarder;
  if (m.header.rcode == rcode::NXDOMAIN) return authoritative ? ResponseType::nxdomain : ResponseType::lame;
  // Follow the (already scrubbed) chain to its end.
  Name at = asked.name;
  bool followed = false;
  for (std::size_t guard = 0; guard < 16; ++guard) {
    for (auto& rr : m.answer)
      if (rr.name == at && (rr.type == asked.type || asked.type == type::ANY))
        return authoritative ? ResponseType::answer : ResponseType::lame;
    auto link = chain_link(m.answer, at);
    if (!link) break;
    at = link->target();
    followed = true;
  }
  if (followed) return authoritative ? ResponseType::cname : ResponseType::lame;
  if (!m.answer.empty()) return ResponseType::lame;  // records, but none on the chain
  if (has(m.authority, type::SOA)) return authoritative ? ResponseType::nodata : ResponseType::lame;
  if (has(m.authority, type::NS) && !m.header.aa) {
    Name cut = referral_zone(m);
    if (cut.is_subdomain_of(zone) && !(cut == zone) && asked.name.is_subdomain_of(cut)) return ResponseType::referral;
    return ResponseType::lame;  // upward or sideways referral
  }
  return authoritative ? ResponseType::nodata : ResponseType::lame;
}

}  // namespace outpost::dns
