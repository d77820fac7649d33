#include "resolver/hints.hpp"

#include <fstream>
#include <sstream>

#include "resolver/zone_file.hpp"

namespace outpost::dns {

namespace {

// IANA root hints (https://www.internic.net/domain/named.root, last update 2024-07-18).
constexpr const char* kIanaHints = R"(
.                        3600000      NS    A.ROOT-SERVERS.NET.
A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4
A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30
.                        3600000      NS    B.ROOT-SERVERS.NET.
B.ROOT-SERVERS.NET.      3600000      A     170.247.170.2
B.ROOT-SERVERS.NET.      3600000      AAAA  2801:1b8:10::b
.                        3600000      NS    C.ROOT-SERVERS.NET.
C.ROOT-SERVERS.NET.      3600000      A     192.33.4.12
C.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2::c
.                        3600000      NS    D.ROOT-SERVERS.NET.
D.ROOT-SERVERS.NET.      3600000      A     199.7.91.13
D.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2d::d
.                        3600000      NS    E.ROOT-SERVERS.NET.
E.ROOT-SERVERS.NET.      3600000      A     192.203.230.10
E.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:a8::e
.                        3600000      NS    F.ROOT-SERVERS.NET.
F.ROOT-SERVERS.NET.      3600000      A     192.5.5.241
F.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2f::f
.                        3600000      NS    G.ROOT-SERVERS.NET.
G.ROOT-SERVERS.NET.      3600000      A     192.112.36.4
G.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:12::d0d
.                        3600000      NS    H.ROOT-SERVERS.NET.
H.ROOT-SERVERS.NET.      3600000      A     198.97.190.53
H.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:1::53
.                        3600000      NS    I.ROOT-SERVERS.NET.
I.ROOT-SERVERS.NET.      3600000      A     192.36.148.17
I.ROOT-SERVERS.NET.      3600000      AAAA  2001:7fe::53
.                        3600000      NS    J.ROOT-SERVERS.NET.
J.ROOT-SERVERS.NET.      3600000      A     192.58.128.30
J.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:c27::2:30
.                        3600000      NS    K.ROOT-SERVERS.NET.
K.ROOT-SERVERS.NET.      3600000      A     193.0.14.129
K.ROOT-SERVERS.NET.      3600000      AAAA  2001:7fd::1
.                        3600000      NS    L.ROOT-SERVERS.NET.
L.ROOT-SERVERS.NET.      3600000      A     199.7.83.42
L.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:9f::42
.                        3600000      NS    M.ROOT-SERVERS.NET.
M.ROOT-SERVERS.NET.      3600000      A     202.12.27.33
M.ROOT-SERVERS.NET.      3600000      AAAA  2001:dc3::35
)";

}  // namespace

std::optional<Delegation> parse_root_hints(const std::string& text, std::string* error) {
  ZoneFileError zerr;
  auto records = parse_zone_text(text, Name::root(), 3600000, &zerr);
  if (!records) {
    *error = "line " + std::to_string(zerr.line) + ": " + zerr.reason;
    return std::nullopt;
  }
  Delegation d;
  d.zone = Name::root();
  for (auto& rr : *records)
    if (rr.type == type::NS && rr.name.is_root())
      if (auto* n = std::get_if<RdataName>(&rr.rdata); n && !d.find(n->name)) d.servers.push_back({n->name, {}, false, false});
  for (auto& rr : *records)
    if (rr.type == type::A || rr.type == type::AAAA) d.add_address(rr.name, address_of(rr.rdata));
  if (!d.has_addresses()) {
    *error = "no root NS record with an address";
    return std::nullopt;
  }
  return d;
}

Question priming_question() { return {Name::root(), type::NS, kClassIN}; }

bool root_needs_priming(DnsCache& cache, std::uint64_t now_ms) {
  Question q = priming_question();
  return !cache.get_rrset(q.name, q.type, now_ms, Trust::glue) && !cache.get_negative(q.name, q.type, now_ms) &&
         !cache.has_servfail(q.name, q.type, now_ms);
}

Delegation builtin_root_hints() {
  std::string err;
  static const Delegation hints = *parse_root_hints(kIanaHints, &err);
  return hints;
}

std::optional<Delegation> load_root_hints_file(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot open";
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto d = parse_root_hints(ss.str(), error);
  if (!d) *error = path + ": " + *error;
  return d;
}

}  // namespace outpost::dns
