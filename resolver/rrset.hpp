// RRsets: records sharing owner, type and class, the unit that is cached and answered.
#pragma once
#include <vector>

#include "resolver/dns_message.hpp"

namespace outpost::dns {

struct RRset {
  Name name;
  std::uint16_t type = 0;
  std::uint16_t cls = kClassIN;
  std::uint32_t ttl = 0;  // the smallest TTL of the records (RFC 2181 5.2)
  std::vector<Rdata> rdata;

  // The records with the given TTL.
  std::vector<ResourceRecord> to_records(std::uint32_t ttl_now) const;
  void append_to(std::vector<ResourceRecord>* out, std::uint32_t ttl_now) const;
};

// Groups records by (owner, type, class), keeping first-seen order; duplicates are dropped.
std::vector<RRset> group_rrsets(const std::vector<ResourceRecord>& records);

// The RRset of the given owner and type in records, if any.
const RRset* find_rrset(const std::vector<RRset>& sets, const Name& name, std::uint16_t type);

}  // namespace outpost::dns
