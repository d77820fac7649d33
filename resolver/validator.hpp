// DNSSEC validation (RFC 4033-4035, 5155, 6840; Unbound's validator module): the chain of
// trust from a trust anchor down to the zone that signed an answer, and the verdict on each
// response the iterator accepts. One per worker (ResolverCore), not thread-safe.
//
// Keys: find_keys(Z) walks down from the closest trust anchor one label at a time. For each
// name C between a secure zone P and Z it asks DS C (a raw query: the response's RRSIGs and
// NSEC/NSEC3 records come back unvalidated) and checks the answer with P's keys: a DS set
// leads to DNSKEY C, believed when a key matching a DS signs the DNSKEY set; a denial
// proving C a delegation without DS makes C (and everything below) insecure; one proving C no
// zone cut leaves P's keys in force for the next label. Anything else is bogus. Results are
// kept per zone (secure and insecure for their TTLs, bogus for bogus_ttl).
//
// Responses: each answer RRset and each SOA/NSEC/NSEC3 of a denial must carry a valid RRSIG
// by its zone's keys (an unsigned one in a secure zone is bogus: RRSIGs missing); negative
// answers and wildcard expansions need their NSEC/NSEC3 proof (dnssec_denial.hpp); an
// NSEC3 opt-out span makes a denial insecure.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "resolver/dnssec_records.hpp"
#include "resolver/iterator.hpp"
#include "resolver/resolver_metrics.hpp"
#include "resolver/response_type.hpp"

namespace outpost::dns {

class ResolverCore;

// Extended DNS Error codes (RFC 8914) given for bogus answers.
namespace ede {
inline constexpr std::uint16_t DNSSEC_BOGUS = 6, SIGNATURE_EXPIRED = 7, SIGNATURE_NOT_YET_VALID = 8,
                               DNSKEY_MISSING = 9, RRSIGS_MISSING = 10, NSEC_MISSING = 12;
}

struct Verdict {
  Security security = Security::secure;
  std::optional<std::uint16_t> ede;
  std::string why;
  // Bogus only because a DS or DNSKEY lookup failed (servers unreachable, the question's work
  // limit): remembered servfail_ttl, not bogus_ttl.
  bool transient = false;
};

// The keys of a zone, as far as the chain of trust goes.
struct KeyEntry {
  Name zone;  // the zone whose keys these are (for a name that is no zone cut: its zone's)
  Security security = Security::bogus;
  std::vector<DnskeyRdata> keys;  // secure only
  std::optional<std::uint16_t> ede;
  std::string why;
  std::uint64_t expires_ms = 0;
  bool transient = false;  // see Verdict::transient
  Verdict verdict() const { return {Security::bogus, ede.value_or(ede::DNSSEC_BOGUS), why, transient}; }
};

// The built-in trust anchors: the root zone's KSK-2017 (key tag 20326) and KSK-2024 (38696) as
// DS records.
std::vector<ResourceRecord> builtin_trust_anchors();

// Checks `set` against its RRSIGs with the keys of a secure zone at unix time `now`.
// *wildcard_encloser is set when a signature proves a wildcard expansion.
Verdict verify_rrset(const RRset& set, const std::vector<RrsigRdata>& sigs, const KeyEntry& keys, std::uint32_t now,
                     std::optional<Name>* wildcard_encloser = nullptr);

// A zone's DNSKEY RRset checked against what the parent (or an anchor) vouches for: DS records,
// or trusted DNSKEYs. Secure when a key they match signs the set; insecure when none of
// them has an algorithm and digest we support (RFC 4035 section 5.2); else bogus.
KeyEntry keys_from_parent(const Name& zone, const RRset& dnskeys, const std::vector<RrsigRdata>& sigs,
                          const std::vector<DsRdata>& ds, const std::vector<DnskeyRdata>& trusted, std::uint32_t now);

// RFC 4035 section 5.3.3: a validated RRset's TTL (and its RRSIGs') is at most the RRSIG's
// original TTL and the time left until the signature expires. Applied to the answer and
// authority sections of a response at unix time `now`.
void cap_ttls_to_signatures(Message* m, std::uint32_t now);

class Validator {
 public:
  struct Context {  // the work of the query that asks
    std::shared_ptr<WorkBudget> budget;
    unsigned depth = 0;
    TraceSink trace;
  };
  using KeyCallback = std::function<void(const KeyEntry&)>;
  using VerdictCallback = std::function<void(const Verdict&)>;

  explicit Validator(ResolverCore& core) : core_(core) {}

  // The response `m` (scrubbed, classified as answer, cname, nxdomain or nodata) to `sent`
  // from a server of `zone`. The callback may run before validate() returns.
  void validate(std::shared_ptr<const Message> m, const Question& sent, ResponseType kind, const Name& zone,
                const Context& ctx, VerdictCallback cb);
  // The keys for `zone`; the callback may run before find_keys() returns.
  void find_keys(const Name& zone, const Context& ctx, KeyCallback cb);

  // Bogus verdicts, kept bogus_ttl so that a bogus name is not validated again for every query.
  void remember_bogus(const Question& q, const Verdict& v);
  std::optional<Verdict> cached_bogus(const Question& q);
  // Forgets every key, verdict and denial (new trust anchors).
  void clear();

  // Aggressive use of DNSSEC-validated cache (RFC 8198): the NSEC/NSEC3 records of secure
  // denials and of wildcard expansions are kept per zone with the zone's SOA, for their TTL; a
  // question they prove NXDOMAIN or NODATA is answered from them without asking upstream.
  // Validated wildcard RRsets are kept too (section 5.3): a question whose name they prove
  // absent, below a wildcard of the asked type, is answered with the wildcard's expansion.
  struct Synthesized {
    bool nxdomain = false;
    RRset soa;  // TTL: the least of the SOA's and the records' remaining TTLs (denials)
    std::vector<RRset> proof;  // the NSEC/NSEC3 RRsets (with RRSIGs) that prove it
    std::optional<RRset> answer;  // a wildcard answer: the expansion, with the wildcard's RRSIGs
  };
  std::optional<Synthesized> synthesize(const Name& qname, std::uint16_t qtype);
  const ValidationStats& stats() const { return stats_; }
  void count(Security verdict);

 private:
  struct Walk;
  struct Job;
  void next_zone(std::shared_ptr<Job> job);
  Verdict judge(const Job& job);
  const KeyEntry* cached(const Name& zone);
  void store(const Name& name, KeyEntry e);
  void complete(const std::string& key, const KeyEntry& e);
  void step(std::shared_ptr<Walk> w);
  void on_ds(std::shared_ptr<Walk> w, const Name& c, const Resolution& r);
  void on_dnskey(std::shared_ptr<Walk> w, const Name& c, std::vector<DsRdata> ds, std::vector<DnskeyRdata> trusted,
                 const Resolution& r);
  void fetch(const Name& name, std::uint16_t type, const Context& ctx, ResolutionCallback cb);
  KeyEntry failed(const Name& zone, std::uint16_t code, std::string why, bool transient = false) const;
  std::uint64_t now_ms() const;
  std::uint32_t now_unix() const;

  ResolverCore& core_;
  std::uint64_t anchor_generation_ = 0;  // the tracker's (RFC 5011), when keys_ was last valid
  std::unordered_map<std::string, KeyEntry> keys_;                    // by lower-case wire name
  std::unordered_map<std::string, std::vector<KeyCallback>> pending_;  // walks in flight, by target
  struct Bogus {
    Verdict verdict;
    std::uint64_t expires_ms = 0;
  };
  std::unordered_map<std::string, Bogus> bogus_;
  struct Kept {
    RRset set;
    std::uint64_t expires_ms = 0;
  };
  struct DenialZone {
    Name zone;
    std::optional<Kept> soa;
    std::unordered_map<std::string, Kept> records;  // by owner and type
    std::unordered_map<std::string, Kept> wildcards;  // validated wildcard RRsets, by owner and type
  };
  void remember_denial(const Name& zone, const std::vector<RRset>& proofs, const std::optional<RRset>& soa);
  void remember_wildcard(const Name& zone, const RRset& expansion, const Name& encloser, const std::vector<RRset>& proofs);
  std::optional<Synthesized> wildcard_answer(DenialZone& z, const Name& qname, std::uint16_t qtype, std::uint64_t now);
  std::unordered_map<std::string, DenialZone> denials_;  // by zone
  ValidationStats stats_;
};

}  // namespace outpost::dns
