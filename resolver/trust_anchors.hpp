// Automated updates of DNSSEC trust anchors (RFC 5011), shared by every worker.
//
// A trust point is the owner of configured anchors (the root, for the built-in ones). Its
// DNSKEY RRset is fetched now and then (one worker probes: ResolverCore::track_trust_anchors)
// and handed to update(), which applies RFC 5011's key states:
//   - a new SEP key in a DNSKEY set signed by a trusted key is AddPend; seen again after the
//     add hold-down (30 days, or the set's TTL if longer; `hold_down_s` in tests) it is Valid
//     — a trust anchor from then on;
//   - a key published with the REVOKE bit and signing the set itself is Revoked at once (no
//     longer trusted) and forgotten after the remove hold-down;
//   - a Valid key missing from the set is Missing (still trusted), Valid again when back; an
//     AddPend key that disappears is forgotten.
// The first DNSKEY set validated by the configured anchors (DS or DNSKEY records) makes the
// keys they name Valid. The state — every tracked key with its state and times — is written to
// `state_file` after each change (a temporary file renamed over it, so a crash leaves the old or
// the new one) and read back at start; with no file name it lives in memory only.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "resolver/dnssec_records.hpp"
#include "resolver/rrset.hpp"

namespace outpost::dns {

struct AutoTrustSettings {
  std::string state_file;                 // empty: kept in memory only
  std::uint32_t hold_down_s = 30 * 86400;  // RFC 5011 section 2.4.1 (add) and section 4 (remove)
  std::uint32_t probe_interval_s = 0;      // 0: RFC 5011 section 2.3 (from TTLs and signatures)
};

enum class KeyState { add_pend, valid, missing, revoked };
const char* to_string(KeyState s);

class TrustAnchorTracker {
 public:
  // `configured`: the anchors (DS or DNSKEY records) to start from; their owners are the
  // trust points.
  TrustAnchorTracker(std::vector<ResourceRecord> configured, AutoTrustSettings settings);

  // Reads the state file if it exists; false with *error if it cannot be read or parsed.
  bool load(std::string* error);
  // The anchors to validate with now: per trust point the Valid and Missing keys as DNSKEY
  // records, or the configured records while none is known; nothing for a trust point whose
  // keys are all revoked. A new vector after every change (generation()).
  std::shared_ptr<const std::vector<ResourceRecord>> anchors() const;
  std::uint64_t generation() const;
  std::vector<Name> trust_points() const;

  struct Outcome {
    bool validated = false;        // the set was signed by a trusted key
    std::vector<std::string> changes;  // one line per key whose state changed
    std::uint32_t next_probe_s = 3600;
  };
  // A probe's DNSKEY RRset for `zone` with its RRSIGs, at unix time `now`.
  Outcome update(const Name& zone, const RRset& dnskeys, const std::vector<RrsigRdata>& sigs, std::uint32_t now);
  // A probe that got no usable answer: when to try again (RFC 5011 section 2.3's retry time).
  std::uint32_t retry_after_failure() const;

  struct Tracked {
    Name zone;
    Bytes rdata;          // as last seen (with the REVOKE bit once revoked)
    KeyState state = KeyState::add_pend;
    std::uint32_t added = 0, changed = 0;  // unix times: first seen, last state change
  };
  std::vector<Tracked> tracked() const;

 private:
  void rebuild_locked();
  bool save_locked(std::string* error) const;
  std::uint32_t interval_locked(const RRset& dnskeys, const std::vector<RrsigRdata>& sigs, std::uint32_t now,
                                bool failure) const;

  const std::vector<ResourceRecord> configured_;
  const AutoTrustSettings settings_;
  mutable std::mutex mu_;
  std::vector<Tracked> keys_;
  std::shared_ptr<const std::vector<ResourceRecord>> anchors_;
  std::uint64_t generation_ = 1;
  std::uint32_t last_ttl_ = 0, last_sig_left_ = 0;
};

}  // namespace outpost::dns
