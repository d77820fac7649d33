#include "proxy/range_parts.hpp"

#include <algorithm>
#include <charconv>

namespace outpost::http {
namespace {
// Digits only, no overflow (a number that does not fit is an error here: nothing stored
// can be that long).
bool parse_u64(std::string_view s, std::uint64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *v = n;
  return true;
}
std::size_t field_count(const HeaderList& h, std::string_view name) {
  std::size_t n = 0;
  for (const auto& f : h)
    if (iequals(f.name, name)) ++n;
  return n;
}
}  // namespace

std::optional<ContentRange> parse_content_range(std::string_view v) {
  v = trim_ows(v);
  if (v.size() < 6 || !iequals(v.substr(0, 6), "bytes ")) return std::nullopt;
  v.remove_prefix(6);
  auto dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) return std::nullopt;
  ContentRange r;
  if (!parse_u64(v.substr(0, dash), &r.first) || !parse_u64(v.substr(dash + 1, slash - dash - 1), &r.last) ||
      !parse_u64(v.substr(slash + 1), &r.complete))
    return std::nullopt;
  if (r.first > r.last || r.last >= r.complete) return std::nullopt;
  return r;
}

std::optional<RangeSpec> parse_single_range(std::string_view v) {
  v = trim_ows(v);
  if (v.size() < 6 || !iequals(v.substr(0, 6), "bytes=")) return std::nullopt;
  v = trim_ows(v.substr(6));
  if (v.find(',') != std::string_view::npos) return std::nullopt;
  auto dash = v.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto a = trim_ows(v.substr(0, dash)), b = trim_ows(v.substr(dash + 1));
  RangeSpec s;
  if (a.empty()) {
    if (!parse_u64(b, &s.suffix) || s.suffix == 0) return std::nullopt;
    return s;
  }
  std::uint64_t f = 0;
  if (!parse_u64(a, &f)) return std::nullopt;
  s.first = f;
  if (!b.empty()) {
    std::uint64_t l = 0;
    if (!parse_u64(b, &l) || l < f) return std::nullopt;
    s.last = l;
  }
  return s;
}

std::uint64_t PartSet::bytes() const {
  std::uint64_t n = 0;
  for (const auto& r : ranges_) n += r.last - r.first + 1;
  return n;
}

void PartSet::add(ByteRange r) {
  if (r.first > r.last) return;
  std::vector<ByteRange> out;
  out.reserve(ranges_.size() + 1);
  bool placed = false;
  for (const auto& x : ranges_) {
    // x entirely before r (not touching): keep. last + 1 cannot wrap: parts are inside a
    // complete length that fits in 64 bits.
    if (x.last + 1 < r.first) {
      out.push_back(x);
    } else if (r.last != UINT64_MAX && r.last + 1 < x.first) {  // entirely after r
      if (!placed) out.push_back(r), placed = true;
      out.push_back(x);
    } else {  // overlaps or touches: absorb
      r.first = std::min(r.first, x.first);
      r.last = std::max(r.last, x.last);
    }
  }
  if (!placed) out.push_back(r);
  ranges_ = std::move(out);
}

bool PartSet::covers(ByteRange r) const {
  for (const auto& x : ranges_)
    if (x.first <= r.first && r.last <= x.last) return true;
  return false;
}

std::vector<ByteRange> PartSet::gaps(ByteRange r) const {
  std::vector<ByteRange> out;
  std::uint64_t pos = r.first;
  bool done = false;
  for (const auto& x : ranges_) {
    if (x.last < pos) continue;
    if (x.first > r.last) break;
    if (x.first > pos) out.push_back({pos, x.first - 1});
    if (x.last >= r.last) {
      done = true;
      break;
    }
    pos = x.last + 1;
  }
  if (!done && pos <= r.last) out.push_back({pos, r.last});
  return out;
}

std::vector<ByteRange> PartSet::stored_within(ByteRange r) const {
  std::vector<ByteRange> out;
  for (const auto& x : ranges_) {
    if (x.last < r.first) continue;
    if (x.first > r.last) break;
    out.push_back({std::max(x.first, r.first), std::min(x.last, r.last)});
  }
  return out;
}

std::uint64_t PartSet::body_offset(std::uint64_t pos) const {
  std::uint64_t off = 0;
  for (const auto& x : ranges_) {
    if (pos < x.first) break;
    if (pos <= x.last) return off + (pos - x.first);
    off += x.last - x.first + 1;
  }
  return off;  // not covered: callers check covers() first
}

bool PartSet::complete(std::uint64_t size) const {
  return size > 0 && ranges_.size() == 1 && ranges_[0].first == 0 && ranges_[0].last == size - 1;
}

std::string PartsMeta::serialize() const {
  std::string s(kPartsMagic);
  s += std::to_string(complete) + " " + std::to_string(parts.count()) + "\n";
  for (const auto& r : parts.ranges()) s += std::to_string(r.first) + " " + std::to_string(r.last) + "\n";
  s += resp.serialize();
  return s;
}

std::optional<PartsMeta> PartsMeta::parse(std::string_view b) {
  if (!b.starts_with(kPartsMagic)) return std::nullopt;
  b.remove_prefix(kPartsMagic.size());
  auto line = [&](std::string_view* out) {
    auto nl = b.find('\n');
    if (nl == std::string_view::npos) return false;
    *out = b.substr(0, nl);
    b.remove_prefix(nl + 1);
    return true;
  };
  auto pair = [](std::string_view l, std::uint64_t* x, std::uint64_t* y) {
    auto sp = l.find(' ');
    return sp != std::string_view::npos && parse_u64(l.substr(0, sp), x) && parse_u64(l.substr(sp + 1), y);
  };
  PartsMeta m;
  std::string_view l;
  std::uint64_t n = 0;
  if (!line(&l) || !pair(l, &m.complete, &n) || n == 0 || n > 4096 || m.complete == 0) return std::nullopt;
  std::uint64_t prev_last = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    ByteRange r;
    if (!line(&l) || !pair(l, &r.first, &r.last) || r.first > r.last || r.last >= m.complete) return std::nullopt;
    if (i > 0 && r.first <= prev_last + 1) return std::nullopt;  // sorted, disjoint, non-adjacent
    prev_last = r.last;
    m.parts.add(r);
  }
  auto resp = StoredResponse::parse(b);
  if (!resp) return std::nullopt;
  m.resp = std::move(*resp);
  return m;
}

std::string strong_validator(const HeaderList& h) {
  if (field_count(h, "ETag") > 0) {
    if (field_count(h, "ETag") != 1) return {};
    std::string_view e = trim_ows(*h.find("ETag"));
    // entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; only the strong form combines.
    if (e.size() < 2 || e.front() != '"' || e.back() != '"') return {};
    if (e.substr(1, e.size() - 2).find('"') != std::string_view::npos) return {};
    return "E" + std::string(e);
  }
  auto* lm = h.find("Last-Modified");
  auto* date = h.find("Date");
  if (!lm || !date || field_count(h, "Last-Modified") != 1) return {};
  auto l = parse_http_date(*lm), d = parse_http_date(*date);
  if (!l || !d || *d - *l < 60) return {};
  return "L" + std::to_string(*l);
}

bool same_representation(const HeaderList& a, const HeaderList& b) {
  auto va = strong_validator(a);
  return !va.empty() && va == strong_validator(b);
}

bool if_range_matches(std::string_view if_range, const HeaderList& h) {
  if_range = trim_ows(if_range);
  auto v = strong_validator(h);
  if (v.empty()) return false;
  if (if_range.starts_with('"')) return v[0] == 'E' && v.substr(1) == if_range;
  auto d = parse_http_date(if_range);
  return d && v[0] == 'L' && v.substr(1) == std::to_string(*d);
}

}  // namespace outpost::http
