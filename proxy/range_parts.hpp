// Partial content (RFC 9110 §14, §15.3.7.3; RFC 9111 §3.3-3.4) as pure functions: the
// Content-Range of a 206, a single range-spec of a request, the set of byte ranges of one
// representation a cache holds (merge, cover, gaps, where a byte sits in the stored body),
// the metadata of a stored "parts" object, and the strong validator that decides whether
// two partial responses are of the same representation. No I/O: unit-tested and fuzzed
// (tests/fuzz/cache_policy_fuzz).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cache_policy.hpp"

namespace outpost::http {

// "bytes first-last/complete" (RFC 9110 §14.4), the unit case-insensitive, no OWS inside,
// first <= last < complete. An unknown complete length ("/*") or an unsatisfied-range form
// ("*/N") is nullopt: such a part cannot be placed in a representation.
struct ContentRange {
  std::uint64_t first = 0, last = 0, complete = 0;
  bool operator==(const ContentRange&) const = default;
};
std::optional<ContentRange> parse_content_range(std::string_view value);

// One range-spec of a Range field, before the representation's length is known:
// "bytes=F-" / "bytes=F-L" (first set) or "bytes=-N" (suffix). nullopt for anything else —
// a syntax error or several range-specs.
struct RangeSpec {
  std::optional<std::uint64_t> first;  // nullopt: a suffix range
  std::optional<std::uint64_t> last;   // first-pos form: nullopt = to the end
  std::uint64_t suffix = 0;            // suffix form: the last `suffix` bytes
};
std::optional<RangeSpec> parse_single_range(std::string_view value);

// Disjoint, sorted, non-adjacent inclusive byte ranges: what is stored of a representation.
class PartSet {
 public:
  PartSet() = default;
  const std::vector<ByteRange>& ranges() const { return ranges_; }
  std::size_t count() const { return ranges_.size(); }
  std::uint64_t bytes() const;  // stored bytes (the parts object's body size)
  // Adds `r` (first <= last), merging what it overlaps or touches.
  void add(ByteRange r);
  bool covers(ByteRange r) const;
  // The sub-ranges of `r` not stored, in order.
  std::vector<ByteRange> gaps(ByteRange r) const;
  // The stored sub-ranges of `r`, in order.
  std::vector<ByteRange> stored_within(ByteRange r) const;
  // Where byte `pos` sits in the stored body (the parts' bytes concatenated in order);
  // `pos` must be covered.
  std::uint64_t body_offset(std::uint64_t pos) const;
  // The whole representation of `size` bytes is stored.
  bool complete(std::uint64_t size) const;
  bool operator==(const PartSet&) const = default;

 private:
  std::vector<ByteRange> ranges_;
};

// What a stored parts object keeps beside its body: the complete length, the stored ranges
// (the body is their bytes, in order) and the representation's head as a 200 would carry it
// (its Content-Length the complete length; no Content-Range), with its freshness.
struct PartsMeta {
  std::uint64_t complete = 0;
  PartSet parts;
  StoredResponse resp;
  std::string serialize() const;
  // nullopt unless it is well formed: ranges sorted, disjoint, non-adjacent and inside the
  // complete length.
  static std::optional<PartsMeta> parse(std::string_view bytes);
};
inline constexpr std::string_view kPartsMagic = "OPPARTS1\n";

// The strong validator of a response's fields (RFC 9110 §8.8.1): its ETag when that is one
// strong entity-tag; without an ETag, its Last-Modified when Date is at least 60 seconds
// later (§8.8.2.2). "" when it has none (a weak ETag has none: it is not combined).
std::string strong_validator(const HeaderList& h);

// Two responses are parts of one representation (RFC 9111 §3.4): the same strong validator.
bool same_representation(const HeaderList& a, const HeaderList& b);

// If-Range (RFC 9110 §13.1.5) against a stored representation's fields: a strong ETag equal
// to it, or a Last-Modified equal to it (a date that the representation's Date shows as
// strong). False: the representation changed, the range does not apply.
bool if_range_matches(std::string_view if_range, const HeaderList& h);

}  // namespace outpost::http
