#include "resolver/scrub.hpp"

#include <algorithm>

#include "resolver/dnssec_records.hpp"
#include "resolver/response_type.hpp"

namespace outpost::dns {

namespace {

template <typename Keep>
unsigned filter(std::vector<ResourceRecord>* rrs, Keep keep) {
  auto before = rrs->size();
  std::erase_if(*rrs, [&](const ResourceRecord& rr) { return !keep(rr); });
  return static_cast<unsigned>(before - rrs->size());
}

}  // namespace

ScrubStats scrub_response(Message* m, const Question& asked, const Name& zone) {
  ScrubStats st;
  // Answer: walk the alias chain (CNAMEs, DNAMEs) from the question name, within the bailiwick.
  std::vector<Name> chain{asked.name};
  std::vector<Name> dnames;  // owners of the DNAMEs on the chain
  for (std::size_t guard = 0; guard < 16 && asked.type != type::CNAME; ++guard) {
    auto link = chain_link(m->answer, chain.back());
    if (!link) break;
    const Name& owner = link->dname ? link->dname->name : link->cname.name;
    if (!owner.is_subdomain_of(zone)) break;
    if (link->dname) dnames.push_back(owner);
    if (std::find(chain.begin(), chain.end(), link->target()) != chain.end()) break;
    chain.push_back(link->target());
  }
  auto on_chain = [&](const Name& n) { return std::find(chain.begin(), chain.end(), n) != chain.end(); };
  st.dropped += filter(&m->answer, [&](const ResourceRecord& rr) {
    if (!rr.name.is_subdomain_of(zone)) return false;
    if (rr.type == type::DNAME)
      return asked.type == type::DNAME ? rr.name == asked.name
                                       : std::find(dnames.begin(), dnames.end(), rr.name) != dnames.end();
    // An RRSIG stays with the RRset it covers (DNSSEC; the validator checks it).
    const std::uint16_t t = rr.type == type::RRSIG && asked.type != type::RRSIG ? rrsig_covered(rr) : rr.type;
    if (t == type::DNAME && rr.type == type::RRSIG)
      return std::find(dnames.begin(), dnames.end(), rr.name) != dnames.end() || rr.name == asked.name;
    return on_chain(rr.name) && (t == asked.type || t == type::CNAME || asked.type == type::ANY);
  });
  // Authority: NS and SOA at an ancestor of a name on the chain, inside the bailiwick.
  st.dropped += filter(&m->authority, [&](const ResourceRecord& rr) {
    // DNSSEC denial records and signatures inside the bailiwick (the validator checks them;
    // NSEC3 owners are hashes, so nothing ties them to the chain).
    if (rr.type == type::NSEC || rr.type == type::NSEC3 || rr.type == type::RRSIG) return rr.name.is_subdomain_of(zone);
    if (rr.type != type::NS && rr.type != type::SOA) return false;
    if (!rr.name.is_subdomain_of(zone)) return false;
    return std::any_of(chain.begin(), chain.end(), [&](const Name& n) { return n.is_subdomain_of(rr.name); });
  });
  // Additional: only addresses inside the bailiwick of hosts named above (glue).
  std::vector<Name> hosts;
  for (auto* section : {&m->answer, &m->authority})
    for (auto& rr : *section) {
      if (auto* ns = std::get_if<RdataName>(&rr.rdata); ns && rr.type == type::NS) hosts.push_back(ns->name);
      else if (auto* mx = std::get_if<RdataMx>(&rr.rdata)) hosts.push_back(mx->exchange);
      else if (auto* srv = std::get_if<RdataSrv>(&rr.rdata)) hosts.push_back(srv->target);
    }
  st.dropped += filter(&m->additional, [&](const ResourceRecord& rr) {
    return (rr.type == type::A || rr.type == type::AAAA) && rr.name.is_subdomain_of(zone) &&
           std::find(hosts.begin(), hosts.end(), rr.name) != hosts.end();
  });
  return st;
}

}  // namespace outpost::dns
