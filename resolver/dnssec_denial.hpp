// Authenticated denial of existence (RFC 4035 section 5.4, RFC 5155 section 8, RFC 6840
// section 4; Unbound's val_nsec.c and val_nsec3.c): what a set of NSEC or NSEC3 records, whose
// signatures the caller has already verified, proves about a name. Pure functions.
#pragma once
#include <vector>

#include "resolver/dnssec_records.hpp"
#include "resolver/rrset.hpp"

namespace outpost::dns {

enum class Proof {
  proven,    // the denial holds
  insecure,  // NSEC3 opt-out covers it (or NSEC3 iterations beyond the limit): no verdict
  missing,   // the records do not prove it: bogus in a signed zone
};

// NSEC3 records with more iterations than this are not worked through: the answer is treated
// as insecure (RFC 9276 section 3.2; Unbound's limit too).
inline constexpr unsigned kMaxNsec3Iterations = 150;

// The denial records of a response's authority section, for one zone.
class DenialSet {
 public:
  // `records`: the authority section's NSEC and NSEC3 RRsets (others are ignored); `zone`: the
  // zone that signed them.
  DenialSet(const std::vector<RRset>& records, const Name& zone);
  bool empty() const { return nsec_.empty() && nsec3_.empty(); }

  // NXDOMAIN: the name does not exist, nor a wildcard that could have made it.
  Proof nxdomain(const Name& qname) const;
  // NODATA: the name (or the wildcard that matches it, or an empty non-terminal) has no
  // RRset of qtype and no CNAME. For DS, an NSEC3 opt-out span covering the name is insecure.
  Proof nodata(const Name& qname, std::uint16_t qtype) const;
  // A wildcard expansion: no closer name than the wildcard's parent `encloser` exists for qname.
  Proof wildcard_expansion(const Name& qname, const Name& encloser) const;
  // For synthesizing a wildcard answer (RFC 8198 section 5.3): qname does not exist and
  // `encloser` (whose wildcard the caller knows exists) is its closest encloser — with NSEC,
  // the record covering qname shares no more labels with it than `encloser`; with NSEC3, the
  // next closer name below `encloser` is covered, and not by an opt-out span.
  Proof wildcard_synthesis(const Name& qname, const Name& encloser) const;

  // For a DS question at `name` with no DS answered (the chain of trust walking down):
  enum class Cut { insecure_delegation, not_a_cut, unproven };
  Cut ds_absence(const Name& name) const;

  // The indexes (into the constructor's `records`) of the RRsets the proofs asked so far
  // looked at: after a proof holds, a small superset of the records that make it.
  std::vector<std::size_t> used() const;

 private:
  struct Nsec {
    Name owner;
    NsecRdata rd;
    std::size_t set = 0;  // index of its RRset
  };
  struct Nsec3 {
    Bytes hash;  // the owner's hash (its first label, decoded)
    Nsec3Rdata rd;
    std::size_t set = 0;
  };
  template <typename T>
  const T* use(const T* x) const {
    if (x) used_.push_back(x->set);
    return x;
  }
  // NSEC
  const Nsec* nsec_matching(const Name& n) const;
  const Nsec* nsec_covering(const Name& n) const;
  bool nsec_empty_non_terminal(const Name& n) const;
  Name nsec_closest_encloser(const Name& qname, const Nsec& covering) const;
  // NSEC3
  Bytes hash(const Name& n) const;
  const Nsec3* nsec3_matching(const Name& n) const;
  const Nsec3* nsec3_covering(const Name& n) const;
  // RFC 5155 section 8.3: the closest encloser of qname with an NSEC3 covering the next closer
  // name; nullopt if not proven.
  struct Encloser {
    Name closest;
    const Nsec3* next_closer_cover = nullptr;
  };
  std::optional<Encloser> closest_encloser(const Name& qname) const;

  Name zone_;
  std::vector<Nsec> nsec_;
  std::vector<Nsec3> nsec3_;
  bool nsec3_too_costly_ = false;
  mutable std::vector<std::size_t> used_;
};

}  // namespace outpost::dns
