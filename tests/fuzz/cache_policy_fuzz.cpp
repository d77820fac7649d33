// The cache's field-value parsers on arbitrary bytes (proxy/cache_policy): HTTP-dates, Age,
// Cache-Control and RFC 9213 targeted fields, Vary-normalised Accept-Encoding / Accept-Language, Range, and the stored
// metadata. Checks: no crash or overflow; a date that
// parses names a moment that prints back as the same IMF-fixdate when given in that form;
// an Age that parses is all digits; a range plan stays inside the representation, its parts
// in order of first byte disjoint and non-adjacent; stored metadata that parses serializes
// to bytes that parse to the same fields. Partial content (proxy/range_parts): a
// Content-Range or single range-spec that parses is in order; a PartSet built from any
// sequence of ranges equals a bitmap of the bytes added (sorted, disjoint, non-adjacent; its
// covers, gaps, stored sub-ranges and body offsets agree with the bitmap); parts metadata
// that parses serializes to bytes that parse to the same ranges.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>

#include "proxy/cache_policy.hpp"
#include "proxy/range_parts.hpp"

using namespace outpost::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode % 4) {
    case 0: {
      auto t = parse_http_date(in);
      if (t && in.size() == 29 && in[3] == ',') {
        std::time_t tt = static_cast<std::time_t>(*t);
        std::tm tm{};
        if (!gmtime_r(&tt, &tm)) std::abort();
        char buf[64];
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        // Printed back from the day on (the day name is not checked against the date); a
        // leap second (":60") is the next minute's ":00", and years below 1000 print shorter.
        if (in.substr(23, 2) != "60" && in[12] != '0' && std::string_view(buf).substr(5) != in.substr(5)) std::abort();
      }
      break;
    }
    case 1: {
      HeaderList h;
      h.add("Age", std::string(in));
      bool invalid = false;
      auto age = parse_age(h, &invalid);
      if (age) {
        if (invalid || *age < 0) std::abort();
        for (char c : in)
          if (c < '0' || c > '9') std::abort();
      } else if (!invalid) {
        std::abort();  // an Age field is there: valid or invalid, never absent
      }
      {
        // Vary normalisation (Accept-Encoding, Accept-Language): the same request always
        // selects the variant it stored.
        HeaderList req, vary;
        req.add("Accept-Encoding", std::string(in));
        req.add("Accept-Language", std::string(in));
        vary.add("Vary", "Accept-Encoding, Accept-Language");
        StoredResponse r;
        record_vary(vary, req, &r);
        if (!vary_matches(r, req)) std::abort();
      }
      {
        // RFC 9213 targeted field: a dictionary parse that never fails loudly; what it
        // accepts gives no negative delta.
        HeaderList t;
        t.add("CDN-Cache-Control", std::string(in));
        if (auto cc = CacheControl::parse_targeted(t, "CDN-Cache-Control"))
          if ((cc->max_age && *cc->max_age < 0) || (cc->s_maxage && *cc->s_maxage < 0)) std::abort();
      }
      h.add("Cache-Control", std::string(in));
      h.add("Expires", std::string(in));
      h.add("Date", std::string(in));
      auto cc = CacheControl::parse(h);
      CachePolicyConfig cfg;
      if (freshness_lifetime(200, h, cc, cfg, "http://a/") < 0) std::abort();
      break;
    }
    case 2: {
      const std::uint64_t sizes[] = {0, 1, 100, 1ull << 40};
      auto n = sizes[(mode >> 2) % 4];
      auto plan = plan_ranges(in, n);
      if (plan.kind == RangePlan::Kind::kPartial) {
        if (plan.ranges.empty() || plan.ranges.size() > kMaxRangeSpecs) std::abort();
        for (const auto& r : plan.ranges)
          if (r.first > r.last || r.last >= n) std::abort();
        for (std::size_t i = 0; i < plan.ranges.size(); ++i)
          for (std::size_t j = 0; j < plan.ranges.size(); ++j)
            if (i != j && plan.ranges[i].first <= plan.ranges[j].last + 1 && plan.ranges[j].first <= plan.ranges[i].last + 1)
              std::abort();  // overlapping or touching parts were to be coalesced
      }
      if (auto cr = parse_content_range(in); cr && (cr->first > cr->last || cr->last >= cr->complete)) std::abort();
      if (auto s = parse_single_range(in)) {
        if (s->first && s->last && *s->last < *s->first) std::abort();
        if (!s->first && s->suffix == 0) std::abort();
      }
      if ((mode >> 4) & 1) {
        // The input as (first, last) byte pairs added to a PartSet over 256 bytes.
        bool bits[256] = {};
        PartSet set;
        for (std::size_t i = 0; i + 1 < in.size(); i += 2) {
          auto a = static_cast<std::uint8_t>(in[i]), b = static_cast<std::uint8_t>(in[i + 1]);
          if (a > b) std::swap(a, b);
          set.add({a, b});
          for (unsigned x = a; x <= b; ++x) bits[x] = true;
        }
        bool seen[256] = {};
        std::uint64_t off = 0;
        const ByteRange* prev = nullptr;
        for (const auto& r : set.ranges()) {
          if (r.first > r.last || r.last > 255 || (prev && r.first <= prev->last + 1)) std::abort();
          for (auto x = r.first; x <= r.last; ++x) {
            seen[x] = true;
            if (set.body_offset(x) != off++) std::abort();
          }
          prev = &r;
        }
        for (unsigned x = 0; x < 256; ++x)
          if (seen[x] != bits[x]) std::abort();
        if (set.bytes() != off) std::abort();
        std::uint64_t a = in.empty() ? 0 : static_cast<std::uint8_t>(in[0]), b = mode;
        if (a > b) std::swap(a, b);
        ByteRange q{a, b};
        bool all = true;
        for (auto x = a; x <= b; ++x) all = all && bits[x];
        if (set.covers(q) != all) std::abort();
        bool mark[256] = {};
        for (auto g : set.gaps(q))
          for (auto x = g.first; x <= g.last; ++x) {
            if (bits[x] || x < a || x > b || mark[x]) std::abort();
            mark[x] = true;
          }
        for (auto s : set.stored_within(q))
          for (auto x = s.first; x <= s.last; ++x) {
            if (!bits[x] || x < a || x > b || mark[x]) std::abort();
            mark[x] = true;
          }
        for (auto x = a; x <= b; ++x)
          if (!mark[x]) std::abort();  // every byte of q is a gap or stored, once
      }
      break;
    }
    case 3: {
      if (auto pm = PartsMeta::parse(in)) {
        auto again = PartsMeta::parse(pm->serialize());
        if (!again || again->complete != pm->complete || !(again->parts == pm->parts)) std::abort();
        for (const auto& r : pm->parts.ranges())
          if (r.last >= pm->complete) std::abort();
      }
      auto r = StoredResponse::parse(in);
      if (r) {
        auto again = StoredResponse::parse(r->serialize());
        if (!again || again->status != r->status || again->headers.size() != r->headers.size() ||
            again->lifetime != r->lifetime || again->vary != r->vary)
          std::abort();
      }
      break;
    }
  }
  return 0;
}
