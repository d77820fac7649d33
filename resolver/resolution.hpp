// The outcome of resolving one question, as the server answers it and the in-process API
// reads it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "resolver/rrset.hpp"

namespace outpost::dns {

struct Resolution {
  std::uint16_t rcode = rcode::SERVFAIL;
  std::vector<ResourceRecord> answer;     // CNAME chain, then the asked RRset
  std::vector<ResourceRecord> authority;  // SOA of a negative answer
  bool authoritative = false;             // from a local zone (AA)
  bool from_cache = false;                // no upstream query was needed
  std::string why;                        // for SERVFAIL: a short reason (logs, traces)
  bool stale = false;                     // served from expired records (RFC 8767)
  // Answers from the cache (ResolverCore::answer_locally): for how many ms from now the same
  // answer stays right — every entry used fresh and, with prefetch on, out of its last tenth —
  // so the DNS server may keep the reply it wrote (ReplyCache). 0: not to be kept.
  std::uint64_t reuse_ms = 0;
  // DNSSEC: what validation made of the whole answer (every link of a CNAME chain); secure
  // answers get the AD bit. For bogus ones (SERVFAIL) the Extended DNS Error (RFC 8914).
  Security security = Security::unchecked;
  std::optional<std::uint16_t> ede;
  // The validator's own fetches (DS, DNSKEY) only: the final response's RRSIGs and the
  // NSEC/NSEC3 records of its authority section, unvalidated.
  std::vector<ResourceRecord> dnssec;
};

using ResolutionCallback = std::function<void(const Resolution&)>;

// One step of an iterative resolution, for `outpost query --trace`.
struct TraceStep {
  Name zone;          // the zone whose server was asked
  Name server_name;   // empty (root) when unknown
  std::string server; // address
  Question question;  // as sent (QNAME minimisation shows here)
  bool tcp = false;
  bool timeout = false;
  std::uint32_t rtt_ms = 0;
  std::size_t bytes = 0;
  Message response;
  std::string outcome;  // referral / answer / nxdomain / ...
};

using TraceSink = std::function<void(const TraceStep&)>;

}  // namespace outpost::dns
