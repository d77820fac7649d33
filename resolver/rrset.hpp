// RRsets: records sharing owner, type and class, the unit that is cached and answered.
#pragma once
#include <vector>

#include "resolver/dns_message.hpp"

namespace outpost::dns {

// What DNSSEC validation (RFC 4033 section 5) made of data, ordered so that the security of
// several pieces together is the least of theirs. Unchecked: not validated (validation off,
// a CD query, or data only used to reach servers).
enum class Security : std::uint8_t { unchecked = 0, bogus = 1, insecure = 2, secure = 3 };
inline Security least(Security a, Security b) { return a < b ? a : b; }
const char* to_string(Security s);

struct RRset {
  Name name;
  std::uint16_t type = 0;
  std::uint16_t cls = kClassIN;
  std::uint32_t ttl = 0;  // the smallest TTL of the records (RFC 2181 5.2)
  std::vector<Rdata> rdata;
  Security security = Security::unchecked;  // as validated (cached with the set)
  std::vector<Rdata> sigs;  // the RRSIGs over the set (DNSSEC), cached with it for DO clients
  // A wildcard expansion's NSEC/NSEC3 records and their RRSIGs (RFC 4035 section 3.1.3.3),
  // cached with it for DO clients.
  std::vector<ResourceRecord> proof;

  // The records with the given TTL.
  std::vector<ResourceRecord> to_records(std::uint32_t ttl_now) const;
  void append_to(std::vector<ResourceRecord>* out, std::uint32_t ttl_now) const;
  // The records, then the RRSIGs over them.
  void append_signed_to(std::vector<ResourceRecord>* out, std::uint32_t ttl_now) const;
};

// As group_rrsets, with each set's RRSIGs (from the same records) in RRset::sigs instead of
// sets of their own.
std::vector<RRset> group_signed_rrsets(const std::vector<ResourceRecord>& records);

// Groups records by (owner, type, class), keeping first-seen order; duplicates are dropped.
std::vector<RRset> group_rrsets(const std::vector<ResourceRecord>& records);

// The RRset of the given owner and type in records, if any.
const RRset* find_rrset(const std::vector<RRset>& sets, const Name& name, std::uint16_t type);

}  // namespace outpost::dns
