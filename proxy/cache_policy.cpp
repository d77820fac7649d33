#include "proxy/cache_policy.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <regex>

#include "proxy/http_chars.hpp"

namespace outpost::http {

namespace {


std::optional<std::int64_t> parse_delta(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty()) return std::nullopt;
  std::int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    if (n >= kDeltaInfinity / 10) {
      n = kDeltaInfinity;  // RFC 9111 §1.2.2: saturate (and never overflow)
      continue;
    }
    n = n * 10 + (c - '0');
  }
  return n;
}

// Splits a header value on commas that are not inside quoted strings.
// The comma-separated elements of a directive list (Cache-Control, If-None-Match), trimmed,
// non-empty, commas inside quoted strings kept, handed to `f` one by one (nothing allocated).
template <class F>
void for_each_directive(std::string_view v, F&& f) {
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= v.size(); ++i) {
    if (i < v.size() && v[i] == '"') quoted = !quoted;
    if (i == v.size() || (v[i] == ',' && !quoted)) {
      auto item = trim_ows(v.substr(start, i - start));
      if (!item.empty()) f(item);
      start = i + 1;
    }
  }
}

int month_index(std::string_view m) {
  static const char* names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i)
    if (m == names[i]) return i;
  return -1;
}

bool short_day_name(std::string_view d) {
  for (std::string_view n : {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
    if (d == n) return true;
  return false;
}

bool long_day_name(std::string_view d) {
  for (std::string_view n : {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"})
    if (d == n) return true;
  return false;
}

// Exactly `s.size()` decimal digits (no sign, no space).
bool digits(std::string_view s, int* out) {
  if (s.empty()) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// time-of-day = hour ":" minute ":" second, two digits each (RFC 9110 §5.6.7; 60: a leap
// second), on a date that exists.
std::optional<std::int64_t> make_time(int year, int mon, int day, std::string_view hms) {
  int h, m, sec;
  if (hms.size() != 8 || hms[2] != ':' || hms[5] != ':' || !digits(hms.substr(0, 2), &h) ||
      !digits(hms.substr(3, 2), &m) || !digits(hms.substr(6, 2), &sec))
    return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mon < 0 || day < 1 || h > 23 || m > 59 || sec > 60) return std::nullopt;
  if (day > kDays[mon] + (mon == 1 && leap(year) ? 1 : 0)) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> w;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j;
  }
  return w;
}

}  // namespace

CacheControl CacheControl::parse(const HeaderList& h) {
  CacheControl cc;
  for (const auto& f : h) {
    if (iequals(f.name, "Pragma")) {
      // HTTP/1.0 "Pragma: no-cache" counts as no-cache when Cache-Control is absent.
      if (!h.has("Cache-Control"))
        for (auto item : split_list(f.value))
          if (iequals(item, "no-cache")) cc.no_cache = true;
      continue;
    }
    if (!iequals(f.name, "Cache-Control")) continue;
    for_each_directive(f.value, [&cc](std::string_view d) {
      auto eq = d.find('=');
      std::string_view name = trim_ows(d.substr(0, eq));  // compared without regard to case
      std::string_view arg = eq == std::string_view::npos ? std::string_view() : trim_ows(d.substr(eq + 1));
      if (iequals(name, "no-store")) cc.no_store = true;
      else if (iequals(name, "no-cache")) cc.no_cache = true;  // with or without field names: validate
      else if (iequals(name, "private")) cc.is_private = true;
      else if (iequals(name, "public")) cc.is_public = true;
      else if (iequals(name, "must-revalidate")) cc.must_revalidate = true;
      else if (iequals(name, "proxy-revalidate")) cc.proxy_revalidate = true;
      else if (iequals(name, "only-if-cached")) cc.only_if_cached = true;
      else if (iequals(name, "no-transform")) cc.no_transform = true;
      else if (iequals(name, "max-age")) {
        if (auto v = parse_delta(arg)) cc.max_age = cc.max_age ? std::min(*cc.max_age, *v) : *v;
        else cc.max_age = 0;  // invalid: treat as stale (§4.2.1)
      } else if (iequals(name, "s-maxage")) {
        if (auto v = parse_delta(arg)) cc.s_maxage = *v;
        else cc.s_maxage = 0;
      } else if (iequals(name, "max-stale")) {
        cc.max_stale = arg.empty() ? kDeltaInfinity : parse_delta(arg).value_or(0);
      } else if (iequals(name, "min-fresh")) {
        if (auto v = parse_delta(arg)) cc.min_fresh = *v;
      } else if (iequals(name, "stale-while-revalidate")) {
        if (auto v = parse_delta(arg)) cc.stale_while_revalidate = *v;
      } else if (iequals(name, "stale-if-error")) {
        if (auto v = parse_delta(arg)) cc.stale_if_error = *v;
      }
    });
  }
  return cc;
}

namespace {
bool sf_key_start(char c) { return (c >= 'a' && c <= 'z') || c == '*'; }
bool sf_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '*';
}

// One bare item (RFC 8941 §3.3): an integer (its value in *integer), a decimal, a string, a
// token or a boolean (its value in *boolean); false if malformed. Advances i.
bool sf_bare_item(std::string_view v, std::size_t& i, std::optional<std::int64_t>* integer, bool* boolean) {
  if (i >= v.size()) return false;
  char c = v[i];
  if (c == '?') {
    if (i + 1 >= v.size() || (v[i + 1] != '0' && v[i + 1] != '1')) return false;
    *boolean = v[i + 1] == '1';
    i += 2;
    return true;
  }
  if (c == '"') {
    for (++i; i < v.size(); ++i) {
      if (v[i] == '\\') {
        if (++i >= v.size() || (v[i] != '"' && v[i] != '\\')) return false;
      } else if (v[i] == '"') {
        ++i;
        return true;
      } else if (v[i] < 0x20 || v[i] > 0x7e) {
        return false;
      }
    }
    return false;
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    bool neg = c == '-';
    if (neg) ++i;
    std::size_t start = i, digits = 0;
    std::int64_t n = 0;
    bool decimal = false;
    for (; i < v.size() && ((v[i] >= '0' && v[i] <= '9') || (v[i] == '.' && !decimal)); ++i) {
      if (v[i] == '.') {
        decimal = true;
        continue;
      }
      if (++digits > 15) return false;
      if (!decimal) n = n * 10 + (v[i] - '0');
    }
    if (i == start || v[i - 1] == '.') return false;
    if (!decimal) *integer = neg ? -n : n;
    return true;
  }
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*') {
    for (++i; i < v.size() && (is_tchar(static_cast<unsigned char>(v[i])) || v[i] == ':' || v[i] == '/'); ++i) {
    }
    return true;
  }
  return false;
}
}  // namespace

std::optional<CacheControl> CacheControl::parse_targeted(const HeaderList& h, std::string_view field) {
  if (field.empty() || !h.has(field)) return std::nullopt;
  std::string v = h.joined(field);
  CacheControl cc;
  std::size_t i = 0, members = 0;
  auto ows = [&] {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
  };
  ows();
  while (i < v.size()) {
    // key [ "=" bare-item ] *( ";" key [ "=" bare-item ] )
    if (!sf_key_start(v[i])) return std::nullopt;
    std::size_t k = i;
    while (i < v.size() && sf_key_char(v[i])) ++i;
    std::string_view key(v.data() + k, i - k);
    std::optional<std::int64_t> integer;
    bool boolean = true;
    if (i < v.size() && v[i] == '=') {
      ++i;
      if (!sf_bare_item(v, i, &integer, &boolean)) return std::nullopt;
    }
    while (i < v.size() && v[i] == ';') {  // parameters: checked, ignored
      ++i;
      while (i < v.size() && v[i] == ' ') ++i;
      if (i >= v.size() || !sf_key_start(v[i])) return std::nullopt;
      while (i < v.size() && sf_key_char(v[i])) ++i;
      std::optional<std::int64_t> pi;
      bool pb = true;
      if (i < v.size() && v[i] == '=' && !sf_bare_item(v, ++i, &pi, &pb)) return std::nullopt;
    }
    ++members;
    auto delta = [&](std::optional<std::int64_t>* out) {
      // A delta must be a non-negative integer; anything else makes the directive invalid,
      // and for freshness an invalid max-age means stale (as in Cache-Control).
      *out = integer && *integer >= 0 ? *integer : 0;
    };
    if (key == "no-store") cc.no_store = boolean;
    else if (key == "no-cache") cc.no_cache = boolean;
    else if (key == "private") cc.is_private = boolean;
    else if (key == "public") cc.is_public = boolean;
    else if (key == "must-revalidate") cc.must_revalidate = boolean;
    else if (key == "proxy-revalidate") cc.proxy_revalidate = boolean;
    else if (key == "max-age") delta(&cc.max_age);
    else if (key == "s-maxage") delta(&cc.s_maxage);
    else if (key == "stale-while-revalidate") delta(&cc.stale_while_revalidate);
    else if (key == "stale-if-error") delta(&cc.stale_if_error);
    ows();
    if (i == v.size()) break;
    if (v[i] != ',') return std::nullopt;
    ++i;
    ows();
    if (i == v.size()) return std::nullopt;  // a trailing comma
  }
  if (members == 0) return std::nullopt;
  return cc;
}

CacheControl response_cache_control(const HeaderList& h, std::string_view targeted, bool* used) {
  if (used) *used = false;
  if (!targeted.empty()) {
    if (auto cc = CacheControl::parse_targeted(h, targeted)) {
      if (used) *used = true;
      return *cc;
    }
  }
  return CacheControl::parse(h);
}

CacheControl StoredResponse::cache_control() const { return response_cache_control(headers, cc_field); }

std::optional<std::int64_t> parse_http_date(std::string_view s) {
  // RFC 9110 §5.6.7, exactly: one SP between the parts, the tokens as written, two-digit
  // day, hour, minute and second (asctime's day is SP DIGIT below 10). Anything else is an
  // invalid date (an Expires that is one means "already expired", RFC 9111 §5.3).
  int day, year;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() == 29 && s.substr(3, 2) == ", " && s[7] == ' ' && s[11] == ' ' && s[16] == ' ' &&
      s.substr(25) == " GMT") {
    if (!short_day_name(s.substr(0, 3)) || !digits(s.substr(5, 2), &day) || !digits(s.substr(12, 4), &year))
      return std::nullopt;
    return make_time(year, month_index(s.substr(8, 3)), day, s.substr(17, 8));
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
    std::string_view d = s.substr(8, 2);
    if (d[0] == ' ') d = d.substr(1);
    else if (d[0] == '0') return std::nullopt;  // 2DIGIT / ( SP DIGIT ): "06" is not a form
    if (!short_day_name(s.substr(0, 3)) || !digits(d, &day) || !digits(s.substr(20, 4), &year)) return std::nullopt;
    return make_time(year, month_index(s.substr(4, 3)), day, s.substr(11, 8));
  }
  // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
  auto comma = s.find(',');
  if (comma != std::string_view::npos && s.size() == comma + 24 && long_day_name(s.substr(0, comma))) {
    std::string_view t = s.substr(comma);  // ", 06-Nov-94 08:49:37 GMT"
    if (t.substr(0, 2) != ", " || t[4] != '-' || t[8] != '-' || t[11] != ' ' || t.substr(20) != " GMT")
      return std::nullopt;
    if (!digits(t.substr(2, 2), &day) || !digits(t.substr(9, 2), &year)) return std::nullopt;
    year += year < 70 ? 2000 : 1900;  // RFC 9110 §5.6.7: two-digit years
    return make_time(year, month_index(t.substr(5, 3)), day, t.substr(12, 8));
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_age(const HeaderList& h, bool* invalid) {
  *invalid = false;
  const std::string* value = nullptr;
  for (const auto& f : h) {
    if (!iequals(f.name, "Age")) continue;
    if (value) {  // a second Age field: no single value
      *invalid = true;
      return std::nullopt;
    }
    value = &f.value;
  }
  if (!value) return std::nullopt;
  // delta-seconds = 1*DIGIT (RFC 9111 §1.2.2), not quoted, no sign, no list.
  std::string_view v = *value;
  if (v.empty() || v.front() == '"') {
    *invalid = true;
    return std::nullopt;
  }
  auto n = parse_delta(v);
  if (!n) *invalid = true;
  return n;
}

bool RefreshRule::compile(std::string* error) {
  try {
    auto flags = std::regex::ECMAScript | std::regex::optimize;
    if (case_insensitive) flags |= std::regex::icase;
    compiled_ = std::make_shared<const std::regex>(pattern, flags);
    return true;
  } catch (const std::regex_error& e) {
    if (error) *error = e.what();
    return false;
  }
}

bool RefreshRule::matches(const std::string& url) const {
  if (!compiled_) return false;
  return std::regex_search(url, *static_cast<const std::regex*>(compiled_.get()));
}

std::string cache_key(const Url& url) { return url.to_string(); }

bool heuristically_cacheable(int status) {
  switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
      return true;
    default:
      return false;
  }
}

bool is_storable(std::string_view method, const HeaderList& req_headers, const CacheControl& req_cc, int status,
                 const HeaderList& resp_headers, const CacheControl& resp_cc, const CachePolicyConfig& cfg,
                 const std::string& url, std::string* why) {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (method != "GET") return no("method is not GET");
  if (status < 200 || status == 206 || status == 304) return no("status is not a final, complete response");
  if (req_cc.no_store) return no("request says no-store");
  if (resp_cc.no_store) return no("response says no-store");
  if (resp_cc.is_private) return no("response is private");
  if (req_headers.has("Authorization") && !resp_cc.is_public && !resp_cc.s_maxage && !resp_cc.must_revalidate)
    return no("request carries Authorization");
  if (!cfg.store_set_cookie && resp_headers.has("Set-Cookie")) return no("response sets a cookie");
  if (resp_headers.has("Content-Range")) return no("partial content");
  if (resp_headers.has_token("Vary", "*")) return no("Vary: *");
  bool targeted = false;
  if (!cfg.targeted_field.empty()) response_cache_control(resp_headers, cfg.targeted_field, &targeted);
  bool expires = !targeted && resp_headers.has("Expires");  // RFC 9213 §2.2: ignored beside a targeted field
  bool explicit_freshness = resp_cc.max_age || resp_cc.s_maxage || expires || resp_cc.is_public;
  if (explicit_freshness || resp_cc.no_cache) return true;
  if (heuristically_cacheable(status)) {
    // Heuristic freshness needs something to go on, or a refresh rule that gives a minimum;
    // validators alone still make it worth storing (it will be revalidated).
    if (resp_headers.has("Last-Modified") || resp_headers.has("ETag")) return true;
    for (const auto& r : cfg.rules)
      if (r.matches(url)) return r.min > 0 ? true : no("no freshness information and no validator");
    return no("no freshness information and no validator");
  }
  return no("status is not cacheable without explicit freshness");
}

std::int64_t freshness_lifetime(int status, const HeaderList& h, const CacheControl& cc, const CachePolicyConfig& cfg,
                                const std::string& url) {
  // An Age that is not one non-negative integer: the response's age is unknown, so it is
  // treated as stale whatever its lifetime (issue 14; RFC 9111 §4.2.3 needs age_value).
  bool bad_age = false;
  parse_age(h, &bad_age);
  if (bad_age) return 0;
  if (cc.s_maxage) return *cc.s_maxage;
  if (cc.max_age) return *cc.max_age;
  // Dates as plain integers (-1: absent or invalid; a second field of the name is invalid).
  auto date_of = [&h](const char* name) -> std::int64_t {
    const std::string* v = nullptr;
    for (const auto& f : h) {
      if (!iequals(f.name, name)) continue;
      if (v) return -1;
      v = &f.value;
    }
    if (!v) return -1;
    auto t = parse_http_date(*v);
    return t ? *t : -1;
  };
  const std::int64_t date = date_of("Date");
  bool targeted = false;
  if (!cfg.targeted_field.empty()) response_cache_control(h, cfg.targeted_field, &targeted);
  if (!targeted && h.find("Expires")) {
    const std::int64_t exp = date_of("Expires");
    if (exp < 0 || date < 0) return 0;  // invalid Expires (e.g. "0"): already expired
    return std::max<std::int64_t>(0, exp - date);
  }
  // RFC 9111 §4.2.2: heuristics for a heuristically cacheable status, or any status that
  // is marked explicitly cacheable (public).
  if (!heuristically_cacheable(status) && !cc.is_public) return 0;
  const RefreshRule* rule = nullptr;
  for (const auto& r : cfg.rules)
    if (r.matches(url)) {
      rule = &r;
      break;
    }
  double percent = rule ? rule->percent : cfg.heuristic_percent;
  std::int64_t min = rule ? rule->min : 0;
  std::int64_t max = rule ? rule->max : cfg.heuristic_max;
  std::int64_t life = min;
  const std::int64_t lm = date_of("Last-Modified");
  if (lm >= 0 && date > lm) life = static_cast<std::int64_t>(static_cast<double>(date - lm) * percent / 100.0);
  return std::clamp(life, min, std::max(min, max));
}

std::int64_t current_age(const StoredResponse& r, std::int64_t now) {
  std::int64_t age_value = 0;
  bool bad_age = false;
  age_value = parse_age(r.headers, &bad_age).value_or(0);  // invalid: the lifetime is 0 already
  std::int64_t date_value = r.response_time;
  if (auto* d = r.headers.find("Date"))
    if (auto v = parse_http_date(*d)) date_value = *v;
  std::int64_t apparent_age = std::max<std::int64_t>(0, r.response_time - date_value);
  std::int64_t response_delay = r.response_time - r.request_time;
  std::int64_t corrected_age_value = age_value + response_delay;
  std::int64_t corrected_initial_age = std::max(apparent_age, corrected_age_value);
  std::int64_t resident_time = now - r.response_time;
  return corrected_initial_age + resident_time;
}

namespace {
// q-value of one list element's parameters ("gzip;q=0.5" → 0.5; none → 1; a malformed
// one → 1, as if absent). Thousandths, as RFC 9110 §12.4.2 writes them.
int qvalue_of(std::string_view params) {
  constexpr auto npos = std::string_view::npos;
  std::size_t i = 0;
  while (i <= params.size()) {
    std::size_t semi = params.find(';', i);
    std::string_view p = trim_ows(params.substr(i, semi == npos ? npos : semi - i));
    i = semi == npos ? params.size() + 1 : semi + 1;
    auto eq = p.find('=');
    if (eq == npos || !iequals(trim_ows(p.substr(0, eq)), "q")) continue;
    std::string_view v = trim_ows(p.substr(eq + 1));
    if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1') || (v.size() > 1 && v[1] != '.')) return 1000;
    int q = (v[0] - '0') * 1000;
    int scale = 100;
    for (char c : v.substr(std::min<std::size_t>(2, v.size()))) {
      if (c < '0' || c > '9') return 1000;
      q += (c - '0') * scale;
      scale /= 10;
    }
    return std::min(q, 1000);
  }
  return 1000;
}

// Accept-Encoding as the set of codings it accepts (RFC 9110 §12.5.3): lower case, aliases
// folded, q=0 dropped, sorted, once each; q-values otherwise do not matter, since any answer
// the origin chose for one set is acceptable to every request with that set. "identity" is
// acceptable unless refused, so it is left out, and a request that accepts nothing else
// ("" or "identity") is "identity" (an absent field, "", accepts anything).
std::string normalised_codings(std::string_view v) {
  std::vector<std::string> codings;
  bool identity_refused = false;
  for (auto item : split_list(v)) {
    auto semi = item.find(';');
    std::string c = to_lower(trim_ows(item.substr(0, semi)));
    int q = semi == std::string_view::npos ? 1000 : qvalue_of(item.substr(semi + 1));
    if (c == "x-gzip") c = "gzip";
    if (c == "x-compress") c = "compress";
    if (c == "identity") {
      identity_refused = q == 0;
      continue;
    }
    if (q > 0 && !c.empty()) codings.push_back(std::move(c));
  }
  std::sort(codings.begin(), codings.end());
  codings.erase(std::unique(codings.begin(), codings.end()), codings.end());
  std::string out;
  for (const auto& c : codings) out.append(out.empty() ? "" : ",").append(c);
  if (identity_refused) out.append(out.empty() ? "" : ",").append("!identity");
  return out.empty() ? "identity" : out;
}

// Accept-Language as the ordered list of the ranges it accepts: lower case, q=0 dropped,
// most wanted first (stable for equal weights), once each, without the weights.
std::string normalised_languages(std::string_view v) {
  std::vector<std::pair<int, std::string>> ranges;
  for (auto item : split_list(v)) {
    auto semi = item.find(';');
    std::string tag = to_lower(trim_ows(item.substr(0, semi)));
    int q = semi == std::string_view::npos ? 1000 : qvalue_of(item.substr(semi + 1));
    if (q > 0 && !tag.empty()) ranges.emplace_back(q, std::move(tag));
  }
  std::stable_sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  std::vector<std::string_view> seen;
  for (const auto& [q, tag] : ranges) {
    if (std::find(seen.begin(), seen.end(), tag) != seen.end()) continue;
    seen.push_back(tag);
    out.append(out.empty() ? "" : ",").append(tag);
  }
  return out;
}

// Normalises a request header value for Vary matching (RFC 9111 §4.1 allows normalisation
// that keeps semantics): Accept-Encoding and Accept-Language by their meaning (above);
// other fields combined, whitespace around list commas removed, case kept.
std::string normalised(const HeaderList& req, std::string_view name) {
  std::string joined = req.joined(name);
  if (iequals(name, "Accept-Encoding")) return req.has(name) ? normalised_codings(joined) : std::string();
  if (iequals(name, "Accept-Language")) return normalised_languages(joined);
  std::string out;
  for (auto item : split_list(joined)) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}
}  // namespace

void record_vary(const HeaderList& resp_headers, const HeaderList& req_headers, StoredResponse* r) {
  r->vary.clear();
  r->vary_star = false;
  for (const auto& f : resp_headers) {
    if (!iequals(f.name, "Vary")) continue;
    for (auto name : split_list(f.value)) {
      if (name == "*") {
        r->vary_star = true;
        continue;
      }
      r->vary.emplace_back(to_lower(name), normalised(req_headers, name));
    }
  }
}

bool vary_matches(const StoredResponse& r, const HeaderList& req_headers) {
  if (r.vary_star) return false;
  for (const auto& [name, value] : r.vary) {
    if (!req_headers.has(name)) {
      if (!value.empty()) return false;
      continue;
    }
    if (normalised(req_headers, name) != value) return false;
  }
  return true;
}

bool if_none_match(std::string_view list, std::string_view etag) {
  list = trim_ows(list);
  if (list == "*") return true;
  auto opaque = [](std::string_view t) {
    t = trim_ows(t);
    if (t.starts_with("W/")) t.remove_prefix(2);
    return t;
  };
  auto mine = opaque(etag);
  if (mine.empty()) return false;
  bool found = false;
  for_each_directive(list, [&](std::string_view item) { found = found || opaque(item) == mine; });
  return found;
}

bool not_modified_for(const HeaderList& req, const HeaderList& resp) {
  if (auto* inm = req.find("If-None-Match")) {
    auto* etag = resp.find("ETag");
    return etag && if_none_match(*inm, *etag);
  }
  auto* ims = req.find("If-Modified-Since");
  auto* lm = resp.find("Last-Modified");
  if (!ims || !lm) return false;
  auto since = parse_http_date(*ims);
  auto modified = parse_http_date(*lm);
  return since && modified && *modified <= *since;
}

Usability evaluate(const StoredResponse& r, const CacheControl& req_cc, std::int64_t now, std::int64_t* age_out) {
  auto cc = r.cache_control();
  std::int64_t age = current_age(r, now);
  if (age_out) *age_out = age;
  std::int64_t lifetime = r.lifetime;
  if (cc.no_cache || req_cc.no_cache) return Usability::kMustValidate;
  // max-age=0 (a browser reload) means "validate": ages are whole seconds, so an age of 0
  // only says the response is less than a second old.
  if (req_cc.max_age && (age > *req_cc.max_age || *req_cc.max_age == 0)) return Usability::kMustValidate;
  std::int64_t min_fresh = req_cc.min_fresh.value_or(0);
  if (lifetime > age + min_fresh) return Usability::kFresh;
  // Stale from here on.
  bool no_stale = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.has_value();
  if (no_stale) return Usability::kMustValidate;
  std::int64_t staleness = age - lifetime;
  if (req_cc.max_stale && staleness <= *req_cc.max_stale && !req_cc.min_fresh) return Usability::kStaleServable;
  if (cc.stale_while_revalidate && staleness <= *cc.stale_while_revalidate) return Usability::kStaleWhileRevalidate;
  return Usability::kMustValidate;
}

bool stale_if_error_allows(const StoredResponse& r, const CacheControl& req_cc, std::int64_t now) {
  auto cc = r.cache_control();
  if (cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage) return false;
  std::int64_t staleness = current_age(r, now) - r.lifetime;
  std::optional<std::int64_t> allowed = req_cc.stale_if_error ? req_cc.stale_if_error : cc.stale_if_error;
  return allowed && staleness <= *allowed;
}

namespace {
// A byte position: digits only. Values past 2^64-1 saturate rather than fail: a last-pos
// beyond the object just means "to the end", and a first-pos that large is unsatisfiable.
bool parse_byte_pos(std::string_view s, std::uint64_t* v) {
  if (s.empty()) return false;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    auto d = static_cast<std::uint64_t>(c - '0');
    n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
  }
  *v = n;
  return true;
}
}  // namespace

RangePlan plan_ranges(std::string_view value, std::uint64_t size) {
  RangePlan plan;
  value = trim_ows(value);
  if (value.size() < 6 || !iequals(value.substr(0, 6), "bytes=")) return plan;  // unit is case-insensitive
  auto items = split_list(value.substr(6));
  if (items.empty() || items.size() > kMaxRangeSpecs) return plan;  // many ranges: ignore (RFC 9110 §14.2)
  struct Spec {
    ByteRange r;
    std::size_t order;  // position in the request
  };
  std::vector<Spec> specs;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto item = items[i];
    auto dash = item.find('-');
    if (dash == std::string_view::npos) return plan;
    auto a = trim_ows(item.substr(0, dash)), b = trim_ows(item.substr(dash + 1));
    std::uint64_t first = 0, last = 0;
    if (a.empty()) {  // suffix range: last N bytes
      std::uint64_t n;
      if (!parse_byte_pos(b, &n)) return plan;
      if (n == 0 || size == 0) continue;  // unsatisfiable item
      first = n >= size ? 0 : size - n;
      last = size - 1;
    } else {
      if (!parse_byte_pos(a, &first)) return plan;
      if (b.empty()) last = UINT64_MAX;
      else if (!parse_byte_pos(b, &last) || last < first) return plan;
      if (first >= size) continue;  // unsatisfiable item
      last = std::min(last, size - 1);
    }
    specs.push_back({{first, last}, i});
  }
  if (specs.empty()) {
    plan.kind = RangePlan::Kind::kUnsatisfiable;
    return plan;
  }
  // Coalesce what overlaps or touches (RFC 9110 §14.3 allows it in any order), so repeated
  // or overlapping ranges cost their bytes once. last < size, so last + 1 cannot wrap.
  std::sort(specs.begin(), specs.end(), [](const Spec& x, const Spec& y) { return x.r.first < y.r.first; });
  std::vector<Spec> merged;
  std::uint64_t covered = 0;
  for (const auto& s : specs) {
    if (!merged.empty() && s.r.first <= merged.back().r.last + 1) {
      auto& m = merged.back();
      covered += s.r.last > m.r.last ? s.r.last - m.r.last : 0;
      m.r.last = std::max(m.r.last, s.r.last);
      m.order = std::min(m.order, s.order);
    } else {
      covered += s.r.last - s.r.first + 1;
      merged.push_back(s);
    }
  }
  // Several ranges adding up to the whole object: one plain 200 is the cheapest answer (as
  // Apache does when the sum of the ranges reaches the file length). A single range keeps
  // its 206, which resuming clients ("bytes=0-") rely on.
  if (items.size() > 1 && covered == size) {
    plan.kind = RangePlan::Kind::kWhole;
    return plan;
  }
  std::sort(merged.begin(), merged.end(), [](const Spec& x, const Spec& y) { return x.order < y.order; });
  plan.kind = RangePlan::Kind::kPartial;
  for (const auto& m : merged) plan.ranges.push_back(m.r);
  return plan;
}

// ---- metadata serialisation: a small line-based text format (it is not on a hot path and
// stays readable in the disk segments).
std::string StoredResponse::serialize() const {
  std::string s = "OPM1\n";
  s += std::to_string(status) + "\n" + reason + "\n" + std::to_string(major) + "." + std::to_string(minor) + "\n";
  s += std::to_string(request_time) + " " + std::to_string(response_time) + " " + std::to_string(lifetime) + " " +
       (vary_star ? "1" : "0") + "\n";
  s += std::to_string(vary.size()) + "\n";
  for (const auto& [n, v] : vary) s += n + "\n" + v + "\n";
  s += std::to_string(headers.size()) + "\n";
  for (const auto& h : headers) s += h.name + "\n" + h.value + "\n";
  if (!cc_field.empty()) s += "T " + cc_field + "\n";  // absent in older records
  return s;
}

std::optional<StoredResponse> StoredResponse::parse(std::string_view b) {
  std::size_t pos = 0;
  auto line = [&](std::string_view* out) {
    auto nl = b.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    *out = b.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  auto num = [](std::string_view s, auto* v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && p == s.data() + s.size();
  };
  std::string_view l;
  StoredResponse r;
  if (!line(&l) || l != "OPM1") return std::nullopt;
  if (!line(&l) || !num(l, &r.status)) return std::nullopt;
  if (!line(&l)) return std::nullopt;
  r.reason = std::string(l);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!line(&l) || l.size() != 3 || l[1] != '.' || !digit(l[0]) || !digit(l[2])) return std::nullopt;
  r.major = l[0] - '0';
  r.minor = l[2] - '0';
  if (!line(&l)) return std::nullopt;
  {
    auto w = words(l);
    if (w.size() != 4 || !num(w[0], &r.request_time) || !num(w[1], &r.response_time) || !num(w[2], &r.lifetime))
      return std::nullopt;
    r.vary_star = w[3] == "1";
  }
  std::size_t n = 0;
  if (!line(&l) || !num(l, &n) || n > 1000) return std::nullopt;
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view a, v;
    if (!line(&a) || !line(&v)) return std::nullopt;
    r.vary.emplace_back(std::string(a), std::string(v));
  }
  if (!line(&l) || !num(l, &n) || n > 10000) return std::nullopt;
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view a, v;
    if (!line(&a) || !line(&v)) return std::nullopt;
    r.headers.add(std::string(a), std::string(v));
  }
  if (line(&l) && l.starts_with("T ") && l.size() > 2) r.cc_field = std::string(l.substr(2));
  return r;
}

}  // namespace outpost::http
