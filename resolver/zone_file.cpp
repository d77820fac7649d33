#include "resolver/zone_file.hpp"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

#include "resolver/dnssec_records.hpp"

namespace outpost::dns {

namespace {

struct Token {
  std::string text;
  bool quoted = false;
};

// Splits the text into logical entries (parentheses join lines); each entry keeps the line it
// started on and whether it began with blank space (owner omitted).
struct Entry {
  unsigned line = 0;
  bool leading_blank = false;
  std::vector<Token> tokens;
};

bool tokenize(const std::string& text, std::vector<Entry>* out, ZoneFileError* err) {
  unsigned line = 1;
  int depth = 0;
  Entry cur;
  bool at_line_start = true;
  std::size_t i = 0;
  auto finish = [&] {
    if (!cur.tokens.empty()) out->push_back(std::move(cur));
    cur = Entry();
  };
  while (i < text.size()) {
    char c = text[i];
    if (at_line_start && depth == 0) {
      cur.line = line;
      cur.leading_blank = (c == ' ' || c == '\t');
      at_line_start = false;
    }
    if (c == '\n') {
      ++line;
      ++i;
      if (depth == 0) {
        finish();
        at_line_start = true;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == ';') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (c == '(') {
      ++depth;
      ++i;
      continue;
    }
    if (c == ')') {
      if (--depth < 0) {
        *err = {line, "unbalanced ')'"};
        return false;
      }
      ++i;
      continue;
    }
    Token t;
    if (c == '"') {
      t.quoted = true;
      ++i;
      while (i < text.size() && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < text.size()) t.text.push_back(text[i++]);
        if (text[i] == '\n') ++line;
        t.text.push_back(text[i++]);
      }
      if (i >= text.size()) {
        *err = {line, "unterminated string"};
        return false;
      }
      ++i;
    } else {
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && text[i] != ';' && text[i] != '(' &&
             text[i] != ')') {
        if (text[i] == '\\' && i + 1 < text.size()) t.text.push_back(text[i++]);
        t.text.push_back(text[i++]);
      }
    }
    cur.tokens.push_back(std::move(t));
  }
  if (depth != 0) {
    *err = {line, "unbalanced '('"};
    return false;
  }
  finish();
  return true;
}

std::optional<std::uint32_t> parse_u32(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 0xFFFFFFFFull) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

std::optional<Name> parse_name(const std::string& s, const Name& origin) {
  if (s == "@") return origin;
  if (!s.empty() && s.back() == '.' && (s.size() < 2 || s[s.size() - 2] != '\\')) return Name::from_text(s);
  auto rel = Name::from_text(s);
  if (!rel) return std::nullopt;
  if (origin.is_root()) return rel;
  std::string wire = rel->wire().substr(0, rel->wire().size() - 1) + origin.wire();
  return Name::from_wire(wire);
}

// Unescapes "\X" and "\DDD" in a character-string.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() + 0 && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) && std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0')));
      i += 3;
    } else if (s[i] == '\\' && i + 1 < s.size()) {
      out.push_back(s[++i]);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool parse_rdata(std::uint16_t t, const std::vector<Token>& f, const Name& origin, Rdata* out, std::string* why) {
  auto need = [&](std::size_t n) {
    if (f.size() == n) return true;
    *why = "expected " + std::to_string(n) + " rdata fields for " + type_to_text(t);
    return false;
  };
  auto name_at = [&](std::size_t i, Name* n) {
    auto v = parse_name(f[i].text, origin);
    if (!v) *why = "bad name \"" + f[i].text + "\"";
    else *n = *v;
    return v.has_value();
  };
  auto u16_at = [&](std::size_t i, std::uint16_t* v) {
    auto x = parse_u32(f[i].text);
    if (!x || *x > 65535) {
      *why = "bad number \"" + f[i].text + "\"";
      return false;
    }
    *v = static_cast<std::uint16_t>(*x);
    return true;
  };
  if (!f.empty() && f[0].text == "\\#" && !f[0].quoted) {
    if (f.size() < 2) return *why = "bad \\# rdata", false;
    auto len = parse_u32(f[1].text);
    std::string hex;
    for (std::size_t i = 2; i < f.size(); ++i) hex += f[i].text;
    if (!len || hex.size() != *len * 2) return *why = "\\# length does not match the data", false;
    RdataOpaque o;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      auto v = std::strtoul(hex.substr(i, 2).c_str(), nullptr, 16);
      o.bytes.push_back(static_cast<std::uint8_t>(v));
    }
    *out = std::move(o);
    return true;
  }
  switch (t) {
    case type::A: {
      RdataA a;
      if (!need(1) || inet_pton(AF_INET, f[0].text.c_str(), a.addr.data()) != 1) return *why = "bad IPv4 address", false;
      *out = a;
      return true;
    }
    case type::AAAA: {
      RdataAaaa a;
      if (!need(1) || inet_pton(AF_INET6, f[0].text.c_str(), a.addr.data()) != 1) return *why = "bad IPv6 address", false;
      *out = a;
      return true;
    }
    case type::NS:
    case type::CNAME:
    case type::PTR:
    case type::DNAME: {
      RdataName n;
      if (!need(1) || !name_at(0, &n.name)) return false;
      *out = n;
      return true;
    }
    case type::MX: {
      RdataMx m;
      if (!need(2) || !u16_at(0, &m.preference) || !name_at(1, &m.exchange)) return false;
      *out = m;
      return true;
    }
    case type::SRV: {
      RdataSrv s;
      if (!need(4) || !u16_at(0, &s.priority) || !u16_at(1, &s.weight) || !u16_at(2, &s.port) || !name_at(3, &s.target))
        return false;
      *out = s;
      return true;
    }
    case type::SOA: {
      RdataSoa s;
      if (!need(7) || !name_at(0, &s.mname) || !name_at(1, &s.rname)) return false;
      std::uint32_t* nums[] = {&s.serial, &s.refresh, &s.retry, &s.expire, &s.minimum};
      for (int i = 0; i < 5; ++i) {
        auto v = parse_u32(f[2 + i].text);
        if (!v) return *why = "bad SOA number \"" + f[2 + i].text + "\"", false;
        *nums[i] = *v;
      }
      *out = s;
      return true;
    }
    case type::TXT: {
      RdataTxt txt;
      for (auto& tok : f) {
        std::string s = unescape(tok.text);
        if (s.size() > 255) return *why = "TXT string longer than 255 bytes", false;
        txt.strings.push_back(std::move(s));
      }
      if (txt.strings.empty()) return *why = "TXT needs a string", false;
      *out = txt;
      return true;
    }
    case type::DS:
    case type::DNSKEY:
    case type::RRSIG:
    case type::NSEC:
    case type::NSEC3:
    case type::NSEC3PARAM: {
      std::vector<std::string> fields;
      for (auto& tok : f) fields.push_back(tok.text);
      RdataOpaque o;
      if (!dnssec_rdata_from_text(t, fields, origin, &o.bytes, why)) return false;
      *out = std::move(o);
      return true;
    }
    default:
      *why = "type " + type_to_text(t) + " needs the \\# generic form";
      return false;
  }
}

}  // namespace

std::optional<std::vector<ResourceRecord>> parse_zone_text(const std::string& text, const Name& initial_origin,
                                                           std::uint32_t default_ttl, ZoneFileError* error) {
  std::vector<Entry> entries;
  if (!tokenize(text, &entries, error)) return std::nullopt;
  Name origin = initial_origin;
  std::optional<Name> last_owner;
  std::uint32_t ttl_default = default_ttl;
  std::vector<ResourceRecord> out;
  for (auto& e : entries) {
    auto fail = [&](const std::string& why) {
      *error = {e.line, why};
      return std::nullopt;
    };
    auto& t = e.tokens;
    if (t[0].text == "$ORIGIN") {
      if (t.size() != 2) return fail("$ORIGIN needs one name");
      auto n = parse_name(t[1].text, origin);
      if (!n) return fail("bad $ORIGIN");
      origin = *n;
      continue;
    }
    if (t[0].text == "$TTL") {
      auto v = t.size() == 2 ? parse_u32(t[1].text) : std::nullopt;
      if (!v) return fail("$TTL needs a number");
      ttl_default = *v;
      continue;
    }
    if (!t[0].text.empty() && t[0].text[0] == '$') return fail("unsupported directive " + t[0].text);
    std::size_t i = 0;
    ResourceRecord rr;
    if (e.leading_blank) {
      if (!last_owner) return fail("no owner name");
      rr.name = *last_owner;
    } else {
      auto n = parse_name(t[i++].text, origin);
      if (!n) return fail("bad owner name \"" + t[0].text + "\"");
      rr.name = *n;
    }
    std::optional<std::uint32_t> ttl;
    std::optional<std::uint16_t> rtype;
    // [TTL] [CLASS] TYPE or [CLASS] [TTL] TYPE
    for (int k = 0; k < 3 && i < t.size() && !rtype; ++k) {
      const std::string& s = t[i].text;
      if (auto v = parse_u32(s); v && !ttl) {
        ttl = v;
        ++i;
      } else if (s == "IN" || s == "in") {
        ++i;
      } else if (auto ty = type_from_text(s)) {
        rtype = ty;
        ++i;
      } else {
        return fail("unknown type or class \"" + s + "\"");
      }
    }
    if (!rtype) return fail("missing type");
    rr.type = *rtype;
    rr.ttl = ttl ? *ttl : ttl_default;
    std::vector<Token> fields(t.begin() + static_cast<std::ptrdiff_t>(i), t.end());
    std::string why;
    if (!parse_rdata(rr.type, fields, origin, &rr.rdata, &why)) return fail(why);
    last_owner = rr.name;
    out.push_back(std::move(rr));
  }
  return out;
}

std::optional<std::vector<ResourceRecord>> load_zone_file(const std::string& path, const Name& origin,
                                                          ZoneFileError* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = {0, "cannot open " + path};
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_zone_text(ss.str(), origin, 3600, error);
}

}  // namespace outpost::dns
