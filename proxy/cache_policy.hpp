// RFC 9111 rules as pure functions: Cache-Control parsing, storability (§3), freshness
// lifetime and heuristics (§4.2), age (§4.2.3), Vary matching (§4.1), validators and
// conditional requests (RFC 9110 §13), byte ranges (RFC 9110 §14). No I/O, no clock: every
// time is passed in, so the arithmetic is unit-tested with a controllable clock.
#pragma once
#include <cstdint>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http_headers.hpp"
#include "proxy/url.hpp"

namespace outpost::http {

constexpr std::int64_t kDeltaInfinity = INT64_MAX / 4;  // "max-stale" without a value

struct CacheControl {
  bool no_store = false, no_cache = false, is_private = false, is_public = false;
  bool must_revalidate = false, proxy_revalidate = false, only_if_cached = false, no_transform = false;
  std::optional<std::int64_t> max_age, s_maxage, max_stale, min_fresh;
  std::optional<std::int64_t> stale_while_revalidate, stale_if_error;
  static CacheControl parse(const HeaderList& h);
  // RFC 9213: the directives of a targeted field (e.g. CDN-Cache-Control), a Structured
  // Fields Dictionary (RFC 8941): booleans, integers, tokens or strings, parameters ignored.
  // nullopt when the field is absent, empty or not a valid dictionary (then Cache-Control
  // and Expires govern as usual).
  static std::optional<CacheControl> parse_targeted(const HeaderList& h, std::string_view field);
};

// The directives that govern a response: the targeted field's when `targeted` names one
// that the response carries validly (Cache-Control and Expires are then ignored, RFC 9213
// §2.2; `*used` is set), else Cache-Control's.
CacheControl response_cache_control(const HeaderList& h, std::string_view targeted, bool* used = nullptr);

// RFC 9110 §5.6.7 HTTP-date (IMF-fixdate, RFC 850, asctime), each exactly as the grammar
// writes it (spacing, day and month names, digit counts, a date that exists) → unix
// seconds, or nullopt.
std::optional<std::int64_t> parse_http_date(std::string_view s);

// The Age field (RFC 9111 §5.1): its value when there is exactly one Age field holding
// delta-seconds (saturated); nullopt when absent, or (with *invalid) when there are several
// fields or the value is anything else (a list, quotes, a sign, a fraction).
std::optional<std::int64_t> parse_age(const HeaderList& h, bool* invalid);

// A Squid-style refresh_pattern: URLs matching `regex` without explicit freshness get
// lifetime = clamp(percent% of (Date - Last-Modified), min, max); min when there is no
// Last-Modified.
struct RefreshRule {
  std::string pattern;  // ECMAScript regular expression, matched against the URL (search)
  std::int64_t min = 0;
  double percent = 10;
  std::int64_t max = 86400;
  bool case_insensitive = false;
  // Compiles the pattern; false with a message if it is not a valid regular expression.
  bool compile(std::string* error);
  bool matches(const std::string& url) const;

 private:
  std::shared_ptr<const void> compiled_;  // std::regex, kept out of this header
};

struct CachePolicyConfig {
  std::vector<RefreshRule> rules;  // first match wins; the default rule is last
  double heuristic_percent = 10;
  std::int64_t heuristic_max = 86400;
  bool store_set_cookie = false;  // responses with Set-Cookie are not stored by default
  std::size_t max_variants = 32;  // per URL (HttpCache::begin_store); 0 = no limit
  std::string targeted_field;     // RFC 9213 targeted field obeyed (e.g. "CDN-Cache-Control"); "" = none
  std::uint64_t range_offset_limit = 0;  // a Range miss starting below this fetches the whole object
  std::size_t range_max_parts = 32;      // stored ranges per parts object
  std::uint64_t range_parts_memory = 64ull << 20;  // HttpCache's cap on all parts objects, bytes; 0 = none
};

// What the cache keeps about a response next to its body (the store's metadata bytes).
struct StoredResponse {
  int status = 200;
  std::string reason;
  int major = 1, minor = 1;
  HeaderList headers;             // end-to-end headers as received (Set-Cookie removed)
  std::int64_t request_time = 0;  // when the request that produced it was sent
  std::int64_t response_time = 0; // when the response was received
  std::int64_t lifetime = 0;      // freshness lifetime computed at store time (§4.2.1)
  std::vector<std::pair<std::string, std::string>> vary;  // lower-case name, normalised request value
  bool vary_star = false;
  // The targeted field (RFC 9213) whose directives governed this response when it was
  // stored; empty: Cache-Control (and Expires).
  std::string cc_field;
  // The directives that govern it (cc_field's, or Cache-Control's).
  CacheControl cache_control() const;
  std::string serialize() const;
  static std::optional<StoredResponse> parse(std::string_view bytes);
};

// Method-independent cache key: normalised absolute URI (scheme and host lower-case,
// default port dropped).
std::string cache_key(const Url& url);

// §3: may a shared cache store this response to this request? `why` says why not.
bool is_storable(std::string_view method, const HeaderList& req_headers, const CacheControl& req_cc, int status,
                 const HeaderList& resp_headers, const CacheControl& resp_cc, const CachePolicyConfig& cfg,
                 const std::string& url, std::string* why);

// §4.2.1 (+ §4.2.2 heuristics for heuristically cacheable statuses).
std::int64_t freshness_lifetime(int status, const HeaderList& resp_headers, const CacheControl& resp_cc,
                                const CachePolicyConfig& cfg, const std::string& url);

// §4.2.3 current_age for a stored response at `now`.
std::int64_t current_age(const StoredResponse& r, std::int64_t now);

// §4.1: the secondary key the response's Vary selects from the request.
void record_vary(const HeaderList& resp_headers, const HeaderList& req_headers, StoredResponse* r);
bool vary_matches(const StoredResponse& r, const HeaderList& req_headers);

// RFC 9110 §8.8.3.2 weak comparison; `list` is an If-None-Match value ("*" matches anything).
bool if_none_match(std::string_view list, std::string_view etag);

// RFC 9110 §13.2.2 for a GET whose selected representation has `resp_headers` (a 200):
// true when the request's If-None-Match matches the ETag, or, without If-None-Match, its
// If-Modified-Since is not before the Last-Modified — the answer is then 304.
bool not_modified_for(const HeaderList& req_headers, const HeaderList& resp_headers);

// What a cache does with a stored response for this request (§4.2.4, RFC 5861).
enum class Usability {
  kFresh,                 // serve
  kStaleServable,         // stale but the client accepts it (max-stale)
  kStaleWhileRevalidate,  // serve stale, revalidate in the background
  kMustValidate,          // stale (or no-cache): validate before use
};
Usability evaluate(const StoredResponse& r, const CacheControl& req_cc, std::int64_t now, std::int64_t* age_out);
// May this stored response be served stale when the origin is unreachable (stale-if-error)?
bool stale_if_error_allows(const StoredResponse& r, const CacheControl& req_cc, std::int64_t now);

// Byte ranges (RFC 9110 §14). A Range header is judged as a whole, as Apache's byterange
// filter does, so that a short request can never make Outpost send more than the object:
// ranges that overlap or touch are coalesced; a header with more than kMaxRangeSpecs ranges
// is ignored; several ranges that together cover the whole representation get a plain 200.
struct ByteRange {
  std::uint64_t first = 0, last = 0;  // inclusive, clamped to the representation
  bool operator==(const ByteRange&) const = default;
};
constexpr std::size_t kMaxRangeSpecs = 32;
struct RangePlan {
  enum class Kind {
    kIgnore,         // not a valid bytes range set (or too many ranges): send the whole 200
    kWhole,          // valid, but the ranges cover the whole object: send the whole 200
    kPartial,        // 206 with `ranges` (one part, or multipart/byteranges)
    kUnsatisfiable,  // 416
  };
  Kind kind = Kind::kIgnore;
  // kPartial: disjoint, non-adjacent, each part placed where its first range-spec was in
  // the request (RFC 9110 §14.6 asks for request order, less what was coalesced).
  std::vector<ByteRange> ranges;
};
RangePlan plan_ranges(std::string_view value, std::uint64_t size);

bool heuristically_cacheable(int status);

}  // namespace outpost::http
