#include "resolver/dnssec_records.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>

namespace outpost::dns {

namespace {

const Bytes* opaque(const Rdata& rd) {
  auto* o = std::get_if<RdataOpaque>(&rd);
  return o ? &o->bytes : nullptr;
}

struct Cursor {
  std::span<const std::uint8_t> b;
  std::size_t pos = 0;
  bool u8(std::uint8_t* v) {
    if (pos + 1 > b.size()) return false;
    *v = b[pos++];
    return true;
  }
  bool u16(std::uint16_t* v) {
    if (pos + 2 > b.size()) return false;
    *v = static_cast<std::uint16_t>(b[pos] << 8 | b[pos + 1]);
    pos += 2;
    return true;
  }
  bool u32(std::uint32_t* v) {
    if (pos + 4 > b.size()) return false;
    *v = static_cast<std::uint32_t>(b[pos]) << 24 | static_cast<std::uint32_t>(b[pos + 1]) << 16 |
         static_cast<std::uint32_t>(b[pos + 2]) << 8 | b[pos + 3];
    pos += 4;
    return true;
  }
  bool take(std::size_t n, Bytes* out) {
    if (pos + n > b.size()) return false;
    out->assign(b.begin() + static_cast<std::ptrdiff_t>(pos), b.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    return true;
  }
  Bytes rest() {
    Bytes out(b.begin() + static_cast<std::ptrdiff_t>(pos), b.end());
    pos = b.size();
    return out;
  }
  // An uncompressed name (RRSIG signer, NSEC next name).
  bool name(Name* out) {
    std::size_t p = pos;
    while (p < b.size() && b[p] != 0) {
      if (b[p] > kMaxLabelLength) return false;
      p += 1u + b[p];
    }
    if (p >= b.size()) return false;
    auto n = Name::from_wire(std::string_view(reinterpret_cast<const char*>(b.data()) + pos, p + 1 - pos));
    if (!n) return false;
    *out = *n;
    pos = p + 1;
    return true;
  }
};

void put_name(Bytes* out, const Name& n, bool lower) {
  const std::string w = lower ? n.lowercase_wire() : n.wire();
  out->insert(out->end(), w.begin(), w.end());
}

std::optional<std::uint32_t> number(const std::string& s, std::uint32_t max) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

std::optional<Bytes> hex_decode(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  Bytes out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = nib(s[i]), lo = nib(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

// RRSIG times: YYYYMMDDHHmmSS (UTC) or a plain number of seconds.
std::optional<std::uint32_t> sig_time(const std::string& s) {
  if (s.size() != 14) return number(s, 0xFFFFFFFFu);
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(6, 2));
  tm.tm_hour = std::stoi(s.substr(8, 2));
  tm.tm_min = std::stoi(s.substr(10, 2));
  tm.tm_sec = std::stoi(s.substr(12, 2));
  // Serial arithmetic (RFC 4034 section 3.1.5): the value is the time modulo 2^32.
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(timegm(&tm)));
}

std::vector<std::string_view> labels_of(const Name& n) {
  std::vector<std::string_view> out;
  const std::string& w = n.wire();
  for (std::size_t i = 0; i < w.size() && w[i] != 0; i += 1u + static_cast<unsigned char>(w[i]))
    out.emplace_back(w.data() + i + 1, static_cast<unsigned char>(w[i]));
  return out;
}

}  // namespace

bool bytes_less(const Bytes& a, const Bytes& b) {
  const std::size_t n = std::min(a.size(), b.size());
  const int c = n ? std::memcmp(a.data(), b.data(), n) : 0;
  return c < 0 || (c == 0 && a.size() < b.size());
}

bool bytes_equal(const Bytes& a, const Bytes& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

void append_u16(Bytes* out, std::uint32_t v) {
  out->push_back(static_cast<std::uint8_t>(v >> 8));
  out->push_back(static_cast<std::uint8_t>(v));
}
void append_u32(Bytes* out, std::uint32_t v) {
  append_u16(out, v >> 16);
  append_u16(out, v & 0xFFFF);
}

bool TypeBitmap::has(std::uint16_t type) const {
  const unsigned window = type >> 8, bit = type & 0xFF;
  for (std::size_t i = 0; i + 2 <= wire.size();) {
    unsigned w = wire[i], len = wire[i + 1];
    if (i + 2 + len > wire.size()) return false;
    if (w == window) return bit / 8 < len && (wire[i + 2 + bit / 8] & (0x80 >> (bit % 8)));
    i += 2 + len;
  }
  return false;
}

TypeBitmap TypeBitmap::from_types(std::vector<std::uint16_t> types) {
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  TypeBitmap out;
  for (std::size_t i = 0; i < types.size();) {
    unsigned window = types[i] >> 8;
    std::uint8_t bits[32] = {};
    unsigned len = 0;
    for (; i < types.size() && (types[i] >> 8) == window; ++i) {
      unsigned bit = types[i] & 0xFF;
      bits[bit / 8] = static_cast<std::uint8_t>(bits[bit / 8] | (0x80 >> (bit % 8)));
      len = bit / 8 + 1;
    }
    out.wire.push_back(static_cast<std::uint8_t>(window));
    out.wire.push_back(static_cast<std::uint8_t>(len));
    out.wire.insert(out.wire.end(), bits, bits + len);
  }
  return out;
}

std::optional<TypeBitmap> TypeBitmap::parse(std::span<const std::uint8_t> wire) {
  int last = -1;
  for (std::size_t i = 0; i < wire.size();) {
    if (i + 2 > wire.size()) return std::nullopt;
    int w = wire[i];
    unsigned len = wire[i + 1];
    if (w <= last || len == 0 || len > 32 || i + 2 + len > wire.size()) return std::nullopt;
    last = w;
    i += 2 + len;
  }
  return TypeBitmap{Bytes(wire.begin(), wire.end())};
}

std::optional<DnskeyRdata> parse_dnskey_wire(std::span<const std::uint8_t> wire) {
  if (wire.size() < 5) return std::nullopt;
  // Sized copies: GCC 12's -Wfree-nonheap-object misfires on iterator-range vectors here.
  DnskeyRdata k;
  k.flags = static_cast<std::uint16_t>(wire[0] << 8 | wire[1]);
  k.protocol = wire[2];
  k.algorithm = wire[3];
  k.public_key.resize(wire.size() - 4);
  std::memcpy(k.public_key.data(), wire.data() + 4, k.public_key.size());
  k.wire.resize(wire.size());
  std::memcpy(k.wire.data(), wire.data(), wire.size());
  return k;
}

std::optional<DnskeyRdata> parse_dnskey(const Rdata& rd) {
  auto* b = opaque(rd);
  if (!b) return std::nullopt;
  return parse_dnskey_wire(*b);
}

std::optional<DsRdata> parse_ds(const Rdata& rd) {
  auto* b = opaque(rd);
  if (!b) return std::nullopt;
  Cursor c{*b};
  DsRdata d;
  if (!c.u16(&d.key_tag) || !c.u8(&d.algorithm) || !c.u8(&d.digest_type)) return std::nullopt;
  d.digest = c.rest();
  if (d.digest.empty()) return std::nullopt;
  return d;
}

std::optional<RrsigRdata> parse_rrsig(const Rdata& rd) {
  auto* b = opaque(rd);
  if (!b) return std::nullopt;
  Cursor c{*b};
  RrsigRdata s;
  if (!c.u16(&s.type_covered) || !c.u8(&s.algorithm) || !c.u8(&s.labels) || !c.u32(&s.original_ttl) ||
      !c.u32(&s.expiration) || !c.u32(&s.inception) || !c.u16(&s.key_tag) || !c.name(&s.signer))
    return std::nullopt;
  s.signature = c.rest();
  if (s.signature.empty()) return std::nullopt;
  return s;
}

std::optional<NsecRdata> parse_nsec(const Rdata& rd) {
  auto* b = opaque(rd);
  if (!b) return std::nullopt;
  Cursor c{*b};
  NsecRdata n;
  if (!c.name(&n.next)) return std::nullopt;
  auto bm = TypeBitmap::parse(std::span<const std::uint8_t>(*b).subspan(c.pos));
  if (!bm) return std::nullopt;
  n.types = std::move(*bm);
  return n;
}

std::optional<Nsec3Rdata> parse_nsec3(const Rdata& rd) {
  auto* b = opaque(rd);
  if (!b) return std::nullopt;
  Cursor c{*b};
  Nsec3Rdata n;
  std::uint8_t salt_len = 0, hash_len = 0;
  if (!c.u8(&n.hash_algorithm) || !c.u8(&n.flags) || !c.u16(&n.iterations) || !c.u8(&salt_len) ||
      !c.take(salt_len, &n.salt) || !c.u8(&hash_len) || hash_len == 0 || !c.take(hash_len, &n.next_hash))
    return std::nullopt;
  auto bm = TypeBitmap::parse(std::span<const std::uint8_t>(*b).subspan(c.pos));
  if (!bm) return std::nullopt;
  n.types = std::move(*bm);
  return n;
}

std::uint16_t rrsig_covered(const ResourceRecord& rr) {
  if (rr.type != type::RRSIG) return 0;
  auto* b = opaque(rr.rdata);
  if (!b || b->size() < 2) return 0;
  return static_cast<std::uint16_t>((*b)[0] << 8 | (*b)[1]);
}

std::string base32hex(std::span<const std::uint8_t> data) {
  static const char* kAlphabet = "0123456789abcdefghijklmnopqrstuv";
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (auto byte : data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::optional<Bytes> base32hex_decode(std::string_view s) {
  Bytes out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char ch : s) {
    if (ch == '=') break;
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'v' ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  return out;
}

std::optional<Bytes> base64_decode(std::string_view s) {
  Bytes out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+'             ? 62
            : c == '/'             ? 63
                                   : -1;
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      out.push_back(static_cast<std::uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  return out;
}

bool dnssec_rdata_from_text(std::uint16_t t, const std::vector<std::string>& f, const Name& origin, Bytes* out,
                            std::string* why) {
  out->clear();
  auto fail = [&](const std::string& w) {
    *why = w + " in " + type_to_text(t) + " rdata";
    return false;
  };
  auto joined = [&](std::size_t from) {
    std::string s;
    for (std::size_t i = from; i < f.size(); ++i) s += f[i];
    return s;
  };
  auto name_of = [&](const std::string& s) -> std::optional<Name> {
    if (s == "@") return origin;
    if (!s.empty() && s.back() == '.') return Name::from_text(s);
    auto rel = Name::from_text(s + "." + origin.to_text());
    return rel;
  };
  auto bitmap = [&](std::size_t from) -> std::optional<TypeBitmap> {
    std::vector<std::uint16_t> types;
    for (std::size_t i = from; i < f.size(); ++i) {
      auto ty = type_from_text(f[i]);
      if (!ty) return std::nullopt;
      types.push_back(*ty);
    }
    return TypeBitmap::from_types(std::move(types));
  };
  switch (t) {
    case type::DS: {
      if (f.size() < 4) return fail("too few fields");
      auto tag = number(f[0], 65535), alg = number(f[1], 255), dt = number(f[2], 255);
      auto digest = hex_decode(joined(3));
      if (!tag || !alg || !dt || !digest || digest->empty()) return fail("bad field");
      append_u16(out, *tag);
      out->push_back(static_cast<std::uint8_t>(*alg));
      out->push_back(static_cast<std::uint8_t>(*dt));
      out->insert(out->end(), digest->begin(), digest->end());
      return true;
    }
    case type::DNSKEY: {
      if (f.size() < 4) return fail("too few fields");
      auto flags = number(f[0], 65535), proto = number(f[1], 255), alg = number(f[2], 255);
      auto key = base64_decode(joined(3));
      if (!flags || !proto || !alg || !key || key->empty()) return fail("bad field");
      append_u16(out, *flags);
      out->push_back(static_cast<std::uint8_t>(*proto));
      out->push_back(static_cast<std::uint8_t>(*alg));
      out->insert(out->end(), key->begin(), key->end());
      return true;
    }
    case type::RRSIG: {
      if (f.size() < 9) return fail("too few fields");
      auto covered = type_from_text(f[0]);
      auto alg = number(f[1], 255), labels = number(f[2], 255), ttl = number(f[3], 0xFFFFFFFFu);
      auto exp = sig_time(f[4]), inc = sig_time(f[5]);
      auto tag = number(f[6], 65535);
      auto signer = name_of(f[7]);
      auto sig = base64_decode(joined(8));
      if (!covered || !alg || !labels || !ttl || !exp || !inc || !tag || !signer || !sig || sig->empty())
        return fail("bad field");
      append_u16(out, *covered);
      out->push_back(static_cast<std::uint8_t>(*alg));
      out->push_back(static_cast<std::uint8_t>(*labels));
      append_u32(out, *ttl);
      append_u32(out, *exp);
      append_u32(out, *inc);
      append_u16(out, *tag);
      put_name(out, *signer, false);
      out->insert(out->end(), sig->begin(), sig->end());
      return true;
    }
    case type::NSEC: {
      if (f.empty()) return fail("too few fields");
      auto next = name_of(f[0]);
      auto bm = bitmap(1);
      if (!next || !bm) return fail("bad field");
      put_name(out, *next, false);
      out->insert(out->end(), bm->wire.begin(), bm->wire.end());
      return true;
    }
    case type::NSEC3:
    case type::NSEC3PARAM: {
      if (f.size() < (t == type::NSEC3 ? 5u : 4u)) return fail("too few fields");
      auto alg = number(f[0], 255), flags = number(f[1], 255), iter = number(f[2], 65535);
      auto salt = f[3] == "-" ? std::optional<Bytes>(Bytes{}) : hex_decode(f[3]);
      if (!alg || !flags || !iter || !salt || salt->size() > 255) return fail("bad field");
      out->push_back(static_cast<std::uint8_t>(*alg));
      out->push_back(static_cast<std::uint8_t>(*flags));
      append_u16(out, *iter);
      out->push_back(static_cast<std::uint8_t>(salt->size()));
      out->insert(out->end(), salt->begin(), salt->end());
      if (t == type::NSEC3PARAM) return f.size() == 4 ? true : fail("too many fields");
      auto next = base32hex_decode(f[4]);
      auto bm = bitmap(5);
      if (!next || next->empty() || next->size() > 255 || !bm) return fail("bad field");
      out->push_back(static_cast<std::uint8_t>(next->size()));
      out->insert(out->end(), next->begin(), next->end());
      out->insert(out->end(), bm->wire.begin(), bm->wire.end());
      return true;
    }
    default:
      return fail("unsupported type");
  }
}

Bytes canonical_rdata(const ResourceRecord& rr) {
  Bytes out;
  std::visit(
      [&](const auto& d) {
        using T = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<T, RdataOpaque>) {
          out = d.bytes;
        } else if constexpr (std::is_same_v<T, RdataA> || std::is_same_v<T, RdataAaaa>) {
          out.assign(d.addr.begin(), d.addr.end());
        } else if constexpr (std::is_same_v<T, RdataName>) {
          put_name(&out, d.name, true);
        } else if constexpr (std::is_same_v<T, RdataSoa>) {
          put_name(&out, d.mname, true);
          put_name(&out, d.rname, true);
          for (auto v : {d.serial, d.refresh, d.retry, d.expire, d.minimum}) append_u32(&out, v);
        } else if constexpr (std::is_same_v<T, RdataMx>) {
          append_u16(&out, d.preference);
          put_name(&out, d.exchange, true);
        } else if constexpr (std::is_same_v<T, RdataSrv>) {
          append_u16(&out, d.priority);
          append_u16(&out, d.weight);
          append_u16(&out, d.port);
          put_name(&out, d.target, true);
        } else if constexpr (std::is_same_v<T, RdataTxt>) {
          for (auto& s : d.strings) {
            out.push_back(static_cast<std::uint8_t>(s.size()));
            out.insert(out.end(), s.begin(), s.end());
          }
        }
      },
      rr.rdata);
  return out;
}

int canonical_compare(const Name& a, const Name& b) {
  auto la = labels_of(a), lb = labels_of(b);
  auto ia = la.rbegin(), ib = lb.rbegin();
  for (; ia != la.rend() && ib != lb.rend(); ++ia, ++ib) {
    const std::size_t n = std::min(ia->size(), ib->size());
    for (std::size_t i = 0; i < n; ++i) {
      int ca = std::tolower(static_cast<unsigned char>((*ia)[i])), cb = std::tolower(static_cast<unsigned char>((*ib)[i]));
      if (ca != cb) return ca < cb ? -1 : 1;
    }
    if (ia->size() != ib->size()) return ia->size() < ib->size() ? -1 : 1;
  }
  if (ia == la.rend() && ib == lb.rend()) return 0;
  return ia == la.rend() ? -1 : 1;
}

}  // namespace outpost::dns
