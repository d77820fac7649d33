#include "services/snmp/ber.hpp"

#include <charconv>

namespace outpost::snmp {

std::string oid_to_string(const Oid& oid) {
  std::string s;
  for (std::size_t i = 0; i < oid.size(); ++i) {
    if (i) s += '.';
    s += std::to_string(oid[i]);
  }
  return s;
}

bool parse_oid(std::string_view text, Oid* out) {
  out->clear();
  if (!text.empty() && text.front() == '.') text.remove_prefix(1);
  if (text.empty()) return false;
  while (true) {
    auto dot = text.find('.');
    std::string_view arc = text.substr(0, dot);
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(arc.data(), arc.data() + arc.size(), v);
    if (arc.empty() || ec != std::errc() || p != arc.data() + arc.size()) return false;
    out->push_back(v);
    if (out->size() > kMaxOidLength) return false;
    if (dot == std::string_view::npos) return true;
    text.remove_prefix(dot + 1);
  }
}

bool oid_starts_with(const Oid& oid, const Oid& prefix) {
  return oid.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), oid.begin());
}

namespace {

using Bytes = std::span<const std::uint8_t>;

// Reads TLVs from a span, never past it.
class Reader {
 public:
  explicit Reader(Bytes data) : data_(data) {}
  bool empty() const { return pos_ == data_.size(); }

  // One TLV; `content` points into the input.
  bool tlv(std::uint8_t* tag, Bytes* content, std::string* why) {
    if (data_.size() - pos_ < 2) return fail(why, "truncated: a tag and length expected");
    *tag = data_[pos_++];
    if ((*tag & 0x1f) == 0x1f) return fail(why, "multi-octet tags are not used by SNMP");
    std::size_t len = data_[pos_++];
    if (len & 0x80) {
      std::size_t n = len & 0x7f;
      if (n == 0) return fail(why, "indefinite length");
      if (n > 4) return fail(why, "length of more than 4 octets");
      if (data_.size() - pos_ < n) return fail(why, "truncated length");
      len = 0;
      for (std::size_t i = 0; i < n; ++i) len = (len << 8) | data_[pos_++];
    }
    if (len > data_.size() - pos_) return fail(why, "length " + std::to_string(len) + " past the end of its container");
    *content = data_.subspan(pos_, len);
    pos_ += len;
    return true;
  }

  bool expect(Tag want, Bytes* content, std::string* why, const char* what) {
    std::uint8_t tag = 0;
    if (!tlv(&tag, content, why)) return false;
    if (tag != static_cast<std::uint8_t>(want)) return fail(why, std::string(what) + ": unexpected tag " + std::to_string(tag));
    return true;
  }

  static bool fail(std::string* why, std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  }

 private:
  Bytes data_;
  std::size_t pos_ = 0;
};

bool decode_signed(Bytes c, std::int64_t* out, std::string* why) {
  if (c.empty() || c.size() > 8) return Reader::fail(why, "integer of " + std::to_string(c.size()) + " octets");
  std::uint64_t v = (c[0] & 0x80) ? ~std::uint64_t{0} : 0;
  for (auto b : c) v = (v << 8) | b;
  *out = static_cast<std::int64_t>(v);
  return true;
}

bool decode_unsigned(Bytes c, std::uint64_t* out, unsigned max_octets, std::string* why) {
  // Two's complement like any INTEGER: a set top bit is negative; one leading zero octet may
  // carry the sign of a value that fills all its octets.
  if (c.empty() || (c[0] & 0x80)) return Reader::fail(why, "unsigned value out of range");
  if (c.size() > 1 && c[0] == 0) c = c.subspan(1);
  if (c.size() > max_octets) return Reader::fail(why, "unsigned value out of range");
  std::uint64_t v = 0;
  for (auto b : c) v = (v << 8) | b;
  *out = v;
  return true;
}

bool decode_oid(Bytes c, Oid* out, std::string* why) {
  out->clear();
  if (c.empty()) return Reader::fail(why, "empty OBJECT IDENTIFIER");
  std::uint64_t v = 0;
  bool first = true;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (v == 0 && c[i] == 0x80) return Reader::fail(why, "OBJECT IDENTIFIER arc with a leading 0x80");
    v = (v << 7) | (c[i] & 0x7f);
    if (v > 0xffffffffull + 80) return Reader::fail(why, "OBJECT IDENTIFIER arc over 32 bits");
    if (c[i] & 0x80) continue;
    if (first) {
      std::uint64_t a = v < 40 ? 0 : v < 80 ? 1 : 2;
      out->push_back(static_cast<std::uint32_t>(a));
      v -= a * 40;
      first = false;
    }
    if (v > 0xffffffffull) return Reader::fail(why, "OBJECT IDENTIFIER arc over 32 bits");
    out->push_back(static_cast<std::uint32_t>(v));
    if (out->size() > kMaxOidLength) return Reader::fail(why, "OBJECT IDENTIFIER of more than 128 arcs");
    v = 0;
  }
  if (c.back() & 0x80) return Reader::fail(why, "truncated OBJECT IDENTIFIER arc");
  return true;
}

bool decode_value(std::uint8_t tag, Bytes c, Value* v, std::string* why) {
  v->type = static_cast<Tag>(tag);
  switch (static_cast<Tag>(tag)) {
    case Tag::kInteger: {
      if (!decode_signed(c, &v->integer, why)) return false;
      if (v->integer < INT32_MIN || v->integer > INT32_MAX) return Reader::fail(why, "Integer32 out of range");
      return true;
    }
    case Tag::kOctetString:
    case Tag::kOpaque:
      v->bytes.assign(c.begin(), c.end());
      return true;
    case Tag::kIpAddress:
      if (c.size() != 4) return Reader::fail(why, "IpAddress of " + std::to_string(c.size()) + " octets");
      v->bytes.assign(c.begin(), c.end());
      return true;
    case Tag::kNull:
    case Tag::kNoSuchObject:
    case Tag::kNoSuchInstance:
    case Tag::kEndOfMibView:
      if (!c.empty()) return Reader::fail(why, "NULL with content");
      return true;
    case Tag::kOid:
      return decode_oid(c, &v->oid, why);
    case Tag::kCounter32:
    case Tag::kGauge32:
    case Tag::kTimeTicks:
      return decode_unsigned(c, &v->number, 4, why);
    case Tag::kCounter64:
      return decode_unsigned(c, &v->number, 8, why);
    default:
      return Reader::fail(why, "unknown value type " + std::to_string(tag));
  }
}

bool decode_int32(Reader& r, std::int32_t* out, std::string* why, const char* what) {
  Bytes c;
  std::int64_t v = 0;
  if (!r.expect(Tag::kInteger, &c, why, what) || !decode_signed(c, &v, why)) return false;
  if (v < INT32_MIN || v > INT32_MAX) return Reader::fail(why, std::string(what) + " out of range");
  *out = static_cast<std::int32_t>(v);
  return true;
}

// ---- encoding

void put_length(std::vector<std::uint8_t>& out, std::size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<std::uint8_t>(len));
    return;
  }
  int n = len > 0xffffff ? 4 : len > 0xffff ? 3 : len > 0xff ? 2 : 1;
  out.push_back(static_cast<std::uint8_t>(0x80 | n));
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
}

void put_tlv(std::vector<std::uint8_t>& out, std::uint8_t tag, Bytes content) {
  out.push_back(tag);
  put_length(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
}

std::vector<std::uint8_t> signed_content(std::int64_t v) {
  std::vector<std::uint8_t> b;
  for (int i = 7; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i)));
  std::size_t skip = 0;  // minimal two's complement: drop a leading octet that only repeats the sign
  while (skip + 1 < b.size() && ((b[skip] == 0 && !(b[skip + 1] & 0x80)) || (b[skip] == 0xff && (b[skip + 1] & 0x80))))
    ++skip;
  return {b.begin() + static_cast<std::ptrdiff_t>(skip), b.end()};
}

std::vector<std::uint8_t> unsigned_content(std::uint64_t v) {
  std::vector<std::uint8_t> b{0};
  for (int i = 7; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  std::size_t skip = 0;
  while (skip + 1 < b.size() && b[skip] == 0 && !(b[skip + 1] & 0x80)) ++skip;
  return {b.begin() + static_cast<std::ptrdiff_t>(skip), b.end()};
}

std::vector<std::uint8_t> oid_content(const Oid& oid) {
  std::vector<std::uint8_t> b;
  auto put_arc = [&](std::uint64_t v) {
    std::uint8_t tmp[10];
    int n = 0;
    do {
      tmp[n++] = static_cast<std::uint8_t>(v & 0x7f);
      v >>= 7;
    } while (v);
    while (n > 1) b.push_back(static_cast<std::uint8_t>(tmp[--n] | 0x80));
    b.push_back(tmp[0]);
  };
  if (oid.empty()) {  // not a valid OID; encode as 0.0 so the output still decodes
    b.push_back(0);
    return b;
  }
  std::uint64_t first = std::uint64_t{std::min<std::uint32_t>(oid[0], 2)} * 40 + (oid.size() > 1 ? oid[1] : 0);
  put_arc(first);
  for (std::size_t i = 2; i < oid.size(); ++i) put_arc(oid[i]);
  return b;
}

void put_value(std::vector<std::uint8_t>& out, const Value& v) {
  auto tag = static_cast<std::uint8_t>(v.type);
  switch (v.type) {
    case Tag::kInteger: {
      auto c = signed_content(v.integer);
      put_tlv(out, tag, c);
      return;
    }
    case Tag::kOctetString:
    case Tag::kOpaque:
    case Tag::kIpAddress:
      put_tlv(out, tag, {reinterpret_cast<const std::uint8_t*>(v.bytes.data()), v.bytes.size()});
      return;
    case Tag::kOid: {
      auto c = oid_content(v.oid);
      put_tlv(out, tag, c);
      return;
    }
    case Tag::kCounter32:
    case Tag::kGauge32:
    case Tag::kTimeTicks:
    case Tag::kCounter64: {
      auto c = unsigned_content(v.number);
      put_tlv(out, tag, c);
      return;
    }
    default:
      put_tlv(out, tag, {});
      return;
  }
}

void put_varbind(std::vector<std::uint8_t>& out, const VarBind& vb) {
  std::vector<std::uint8_t> inner;
  auto name = oid_content(vb.oid);
  put_tlv(inner, static_cast<std::uint8_t>(Tag::kOid), name);
  put_value(inner, vb.value);
  put_tlv(out, static_cast<std::uint8_t>(Tag::kSequence), inner);
}

}  // namespace

bool peek_version_and_community(std::span<const std::uint8_t> data, std::int64_t* version, std::string* community,
                                std::string* why) {
  Reader outer(data);
  Bytes msg, c;
  if (!outer.expect(Tag::kSequence, &msg, why, "message")) return false;
  Reader r(msg);
  if (!r.expect(Tag::kInteger, &c, why, "version") || !decode_signed(c, version, why)) return false;
  if (!r.expect(Tag::kOctetString, &c, why, "community")) return false;
  community->assign(c.begin(), c.end());
  return true;
}

bool decode_message(std::span<const std::uint8_t> data, Message* out, std::string* why) {
  *out = Message{};
  Reader outer(data);
  Bytes msg, c;
  if (!outer.expect(Tag::kSequence, &msg, why, "message")) return false;
  if (!outer.empty()) return Reader::fail(why, "bytes after the message");
  Reader r(msg);
  if (!r.expect(Tag::kInteger, &c, why, "version") || !decode_signed(c, &out->version, why)) return false;
  if (!r.expect(Tag::kOctetString, &c, why, "community")) return false;
  out->community.assign(c.begin(), c.end());
  std::uint8_t tag = 0;
  Bytes pdu;
  if (!r.tlv(&tag, &pdu, why)) return false;
  if (tag < 0xA0 || tag > 0xA8 || tag == 0xA4) return Reader::fail(why, "unknown PDU type " + std::to_string(tag));
  if (!r.empty()) return Reader::fail(why, "bytes after the PDU");
  out->pdu = static_cast<Tag>(tag);
  Reader p(pdu);
  if (!decode_int32(p, &out->request_id, why, "request-id") || !decode_int32(p, &out->error_status, why, "error-status") ||
      !decode_int32(p, &out->error_index, why, "error-index"))
    return false;
  Bytes list;
  if (!p.expect(Tag::kSequence, &list, why, "variable-bindings")) return false;
  if (!p.empty()) return Reader::fail(why, "bytes after the variable bindings");
  Reader l(list);
  while (!l.empty()) {
    Bytes vbc, name, val;
    if (!l.expect(Tag::kSequence, &vbc, why, "variable binding")) return false;
    Reader vr(vbc);
    VarBind vb;
    if (!vr.expect(Tag::kOid, &name, why, "name") || !decode_oid(name, &vb.oid, why)) return false;
    std::uint8_t vt = 0;
    if (!vr.tlv(&vt, &val, why) || !decode_value(vt, val, &vb.value, why)) return false;
    if (!vr.empty()) return Reader::fail(why, "bytes after a variable binding's value");
    out->varbinds.push_back(std::move(vb));
  }
  return true;
}

std::vector<std::uint8_t> encode_message(const Message& m) {
  std::vector<std::uint8_t> list;
  for (const auto& vb : m.varbinds) put_varbind(list, vb);
  std::vector<std::uint8_t> pdu;
  put_value(pdu, Value::integer32(m.request_id));
  put_value(pdu, Value::integer32(m.error_status));
  put_value(pdu, Value::integer32(m.error_index));
  put_tlv(pdu, static_cast<std::uint8_t>(Tag::kSequence), list);
  std::vector<std::uint8_t> body;
  auto ver = signed_content(m.version);
  put_tlv(body, static_cast<std::uint8_t>(Tag::kInteger), ver);
  put_tlv(body, static_cast<std::uint8_t>(Tag::kOctetString),
          {reinterpret_cast<const std::uint8_t*>(m.community.data()), m.community.size()});
  put_tlv(body, static_cast<std::uint8_t>(m.pdu), pdu);
  std::vector<std::uint8_t> out;
  put_tlv(out, static_cast<std::uint8_t>(Tag::kSequence), body);
  return out;
}

std::size_t encoded_size(const VarBind& vb) {
  std::vector<std::uint8_t> b;
  put_varbind(b, vb);
  return b.size();
}

}  // namespace outpost::snmp
