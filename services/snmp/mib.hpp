// What the SNMP agent serves: Squid's enterprise MIB (SQUID-MIB, 1.3.6.1.4.1.3495.1) where
// Outpost has the figure, and Outpost's own subtree for the DNS resolver and the store, all
// read from one gathered MetricSet — the figures /metrics shows (docs/SNMP.md lists them).
//
// Outpost's own subtree sits under 1.3.6.1.4.1.32473, the private enterprise number IANA
// reserves for documentation (RFC 5612): a placeholder until Outpost has a number of its
// own, so never a clash with a real vendor's MIB.
#pragma once
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "services/snmp/ber.hpp"

namespace outpost::snmp {

inline const Oid kSquidMib = {1, 3, 6, 1, 4, 1, 3495, 1};
inline const Oid kOutpostMib = {1, 3, 6, 1, 4, 1, 32473, 1};

// Figures that are settings, not metrics.
struct MibInfo {
  std::string version;                // cacheVersionId
  std::string name;                   // cacheUniqName: server.name
  std::uint64_t memory_size = 0;      // cacheMemMaxSize (bytes; served in MB)
  std::uint64_t disk_size = 0;        // cacheSwapMaxSize (bytes; 0 without a disk tier)
};

struct MibEntry {
  Oid oid;
  Value value;
};

// A snapshot of the served tree, sorted by OID.
class MibView {
 public:
  MibView() = default;
  explicit MibView(std::vector<MibEntry> entries);

  // The entry at exactly `oid`, or null.
  const MibEntry* get(const Oid& oid) const;
  // The first entry after `oid` (or at it, with `inclusive`), or null past the end.
  const MibEntry* next(const Oid& oid, bool inclusive = false) const;
  // A GET's answer for an OID that is not served: noSuchInstance under a served object (its
  // instance is wrong), noSuchObject elsewhere.
  Value missing(const Oid& oid) const;
  const std::vector<MibEntry>& entries() const { return entries_; }

 private:
  std::vector<MibEntry> entries_;
};

// The tree from a gathered set; `now` is Unix time (for the uptime).
MibView build_mib(const MetricSet& m, const MibInfo& info, double now);

}  // namespace outpost::snmp
