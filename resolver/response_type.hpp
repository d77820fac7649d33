// Classification of a scrubbed upstream response (Unbound's iter_resptype).
#pragma once
#include <optional>

#include "resolver/dns_message.hpp"

namespace outpost::dns {

enum class ResponseType {
  answer,    // the asked RRset is in the answer (possibly after a CNAME chain)
  cname,     // the answer holds a CNAME chain that does not end in the asked type
  referral,  // a delegation to a zone below the one asked
  nxdomain,
  nodata,
  lame,      // the server does not serve the zone, answered without authority (AA=0: a
             // recursive resolver's answer) or answered nonsense
  error,     // SERVFAIL, REFUSED, FORMERR, NOTIMP, ...
};

const char* to_string(ResponseType t);

// `zone` is the zone of the server that was asked. Answers, CNAMEs, NXDOMAIN and NODATA need
// the AA bit; `forwarder` relaxes that for recursive upstreams (their answers carry none).
ResponseType classify_response(const Message& m, const Question& asked, const Name& zone, bool forwarder);

// One link of an alias chain at `at`: a DNAME owned by an ancestor of `at` (RFC 6672), with
// the CNAME it implies (owner `at`, the DNAME's TTL), or else the CNAME `at` owns. A DNAME
// wins over a CNAME the server sent with it: the synthesized one is made here, never taken on
// trust. nullopt at the end of the chain (or when the synthesized name would be too long).
struct ChainLink {
  std::optional<ResourceRecord> dname;
  ResourceRecord cname;
  const Name& target() const { return std::get<RdataName>(cname.rdata).name; }
};
std::optional<ChainLink> chain_link(const std::vector<ResourceRecord>& answer, const Name& at);
// The CNAME a DNAME implies for `at` (strictly below its owner); nullopt if too long.
std::optional<ResourceRecord> synthesize_cname(const ResourceRecord& dname, const Name& at);

// The NS RRset owner of a referral response (call only for ResponseType::referral).
Name referral_zone(const Message& m);

}  // namespace outpost::dns
