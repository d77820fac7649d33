#include "resolver/delegation.hpp"

#include <algorithm>

namespace outpost::dns {

IpAddress address_of(const Rdata& rd) {
  IpAddress ip;
  if (auto* a = std::get_if<RdataA>(&rd)) {
    ip.v4 = true;
    ip.bytes[10] = ip.bytes[11] = 0xFF;
    std::copy(a->addr.begin(), a->addr.end(), ip.bytes.begin() + 12);
  } else if (auto* a6 = std::get_if<RdataAaaa>(&rd)) {
    ip.bytes = a6->addr;
  }
  return ip;
}

bool Delegation::has_addresses() const {
  return std::any_of(servers.begin(), servers.end(), [](const NameServer& s) { return !s.addresses.empty(); });
}

bool Delegation::unusable() const {
  return std::none_of(servers.begin(), servers.end(), [this](const NameServer& s) {
    return !s.addresses.empty() || !s.name.is_subdomain_of(zone);
  });
}

std::vector<IpAddress> Delegation::all_addresses() const {
  std::vector<IpAddress> out;
  for (auto& s : servers)
    for (auto& a : s.addresses)
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  return out;
}

NameServer* Delegation::find(const Name& ns) {
  for (auto& s : servers)
    if (s.name == ns) return &s;
  return nullptr;
}

void Delegation::add_address(const Name& ns, const IpAddress& a) {
  if (auto* s = find(ns); s && std::find(s->addresses.begin(), s->addresses.end(), a) == s->addresses.end())
    s->addresses.push_back(a);
}

namespace {
bool is_glue_for(const RRset& set, const Name& zone) {
  return (set.type == type::A || set.type == type::AAAA) && set.name.is_subdomain_of(zone);
}
}  // namespace

Delegation delegation_from_referral(const RRset& ns, const std::vector<RRset>& additional, const Name& bailiwick) {
  Delegation d;
  d.zone = ns.name;
  for (auto& rd : ns.rdata)
    if (auto* n = std::get_if<RdataName>(&rd); n && !d.find(n->name)) d.servers.push_back({n->name, {}, false, false});
  for (auto& set : additional) {
    if (!is_glue_for(set, bailiwick)) continue;
    for (auto& rd : set.rdata) d.add_address(set.name, address_of(rd));
  }
  return d;
}

Name cut_search_name(const Name& qname, std::uint16_t qtype) {
  return qtype == type::DS && !qname.is_root() ? qname.parent() : qname;
}

std::optional<Delegation> delegation_from_cache(DnsCache& cache, const Name& qname, std::uint64_t now_ms) {
  Name at = qname;
  for (;;) {
    if (auto ns = cache.get_rrset(at, type::NS, now_ms, Trust::glue)) {
      Delegation d;
      d.zone = at;
      for (auto& rd : ns->rdata) {
        auto* n = std::get_if<RdataName>(&rd);
        if (!n || d.find(n->name)) continue;
        NameServer s{n->name, {}, false, false};
        for (std::uint16_t t : {type::A, type::AAAA})
          if (auto addrs = cache.get_rrset(n->name, t, now_ms, Trust::glue))
            for (auto& a : addrs->rdata) s.addresses.push_back(address_of(a));
        d.servers.push_back(std::move(s));
      }
      if (!d.servers.empty() && !d.unusable()) return d;
    }
    if (at.is_root()) return std::nullopt;
    at = at.parent();
  }
}

void cache_referral(DnsCache& cache, const RRset& ns, const std::vector<RRset>& additional, const Name& bailiwick,
                    std::uint64_t now_ms) {
  cache.put_rrset(ns, Trust::referral, now_ms);
  cache_server_addresses(cache, ns, additional, bailiwick, now_ms);
}

void cache_server_addresses(DnsCache& cache, const RRset& ns, const std::vector<RRset>& additional, const Name& within,
                            std::uint64_t now_ms) {
  auto named = [&ns](const Name& n) {
    return std::any_of(ns.rdata.begin(), ns.rdata.end(), [&n](const Rdata& rd) {
      auto* target = std::get_if<RdataName>(&rd);
      return target && target->name == n;
    });
  };
  for (auto& set : additional)
    if (is_glue_for(set, within) && named(set.name)) cache.put_rrset(set, Trust::glue, now_ms);
}

}  // namespace outpost::dns
