#include "services/snmp/agentx.hpp"

#include <algorithm>

#include "services/snmp/snmp_agent.hpp"

namespace outpost::snmp::agentx {

namespace {

using Bytes = std::span<const std::uint8_t>;

bool fail(std::string* why, std::string reason) {
  if (why) *why = std::move(reason);
  return false;
}

// Reads a payload in the byte order its header names, never past its end.
class Reader {
 public:
  Reader(Bytes data, bool network_order) : data_(data), big_(network_order) {}
  bool empty() const { return pos_ == data_.size(); }

  bool u8(std::uint8_t* v) {
    if (data_.size() - pos_ < 1) return false;
    *v = data_[pos_++];
    return true;
  }
  bool u16(std::uint16_t* v) {
    if (data_.size() - pos_ < 2) return false;
    const auto* p = &data_[pos_];
    *v = big_ ? static_cast<std::uint16_t>(p[0] << 8 | p[1]) : static_cast<std::uint16_t>(p[1] << 8 | p[0]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t* v) {
    if (data_.size() - pos_ < 4) return false;
    const auto* p = &data_[pos_];
    *v = big_ ? (std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3])
              : (std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 | p[0]);
    pos_ += 4;
    return true;
  }
  bool skip(std::size_t n) {
    if (data_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  // An OID (§5.1): n_subid, prefix, include, reserved, then n_subid 32-bit sub-identifiers.
  bool oid(Oid* out, bool* include, std::string* why) {
    std::uint8_t n = 0, prefix = 0, inc = 0, reserved = 0;
    if (!u8(&n) || !u8(&prefix) || !u8(&inc) || !u8(&reserved)) return fail(why, "truncated object identifier");
    if (n > kMaxOidLength) return fail(why, "object identifier of more than 128 sub-identifiers");
    out->clear();
    if (prefix) *out = {1, 3, 6, 1, prefix};
    for (std::uint8_t i = 0; i < n; ++i) {
      std::uint32_t v = 0;
      if (!u32(&v)) return fail(why, "truncated object identifier");
      out->push_back(v);
    }
    if (out->size() > kMaxOidLength) return fail(why, "object identifier of more than 128 sub-identifiers");
    if (include) *include = inc != 0;
    return true;
  }
  // An octet string (§5.3): length, bytes, padding to a multiple of 4.
  bool octets(std::string* out, std::string* why) {
    std::uint32_t len = 0;
    if (!u32(&len)) return fail(why, "truncated octet string");
    if (len > data_.size() - pos_) return fail(why, "octet string past the end of its PDU");
    out->assign(reinterpret_cast<const char*>(&data_[pos_]), len);
    std::size_t padded = (static_cast<std::size_t>(len) + 3) & ~std::size_t{3};
    if (!skip(std::min(padded, data_.size() - pos_))) return fail(why, "truncated octet string");
    return true;
  }

 private:
  Bytes data_;
  bool big_;
  std::size_t pos_ = 0;
};

class Writer {
 public:
  void u8(std::uint8_t v) { out.push_back(v); }
  void u16(std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void oid(const Oid& o, bool include = false) {
    // The prefix form when it applies (1.3.6.1.X.… with 0 < X < 256), as net-snmp sends.
    bool pre = o.size() >= 5 && o[0] == 1 && o[1] == 3 && o[2] == 6 && o[3] == 1 && o[4] > 0 && o[4] < 256;
    std::size_t from = pre ? 5 : 0;
    u8(static_cast<std::uint8_t>(std::min<std::size_t>(o.size() - from, kMaxOidLength)));
    u8(pre ? static_cast<std::uint8_t>(o[4]) : 0);
    u8(include ? 1 : 0);
    u8(0);
    for (std::size_t i = from; i < o.size() && i - from < kMaxOidLength; ++i) u32(o[i]);
  }
  void octets(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
    while (out.size() % 4) out.push_back(0);
  }
  std::vector<std::uint8_t> out;
};

std::vector<std::uint8_t> finish(PduType type, std::uint8_t flags, std::uint32_t session, std::uint32_t transaction,
                                 std::uint32_t packet, const std::vector<std::uint8_t>& payload) {
  Writer w;
  w.u8(1);
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(flags | kFlagNetworkByteOrder);
  w.u8(0);
  w.u32(session);
  w.u32(transaction);
  w.u32(packet);
  w.u32(static_cast<std::uint32_t>(payload.size()));
  w.out.insert(w.out.end(), payload.begin(), payload.end());
  return std::move(w.out);
}

void put_varbind(Writer& w, const VarBind& vb) {
  w.u16(static_cast<std::uint16_t>(vb.value.type));
  w.u16(0);
  w.oid(vb.oid);
  const Value& v = vb.value;
  switch (v.type) {
    case Tag::kInteger:
      w.u32(static_cast<std::uint32_t>(static_cast<std::int32_t>(v.integer)));
      break;
    case Tag::kCounter32:
    case Tag::kGauge32:
    case Tag::kTimeTicks:
      w.u32(static_cast<std::uint32_t>(v.number));
      break;
    case Tag::kCounter64:
      w.u32(static_cast<std::uint32_t>(v.number >> 32));
      w.u32(static_cast<std::uint32_t>(v.number));
      break;
    case Tag::kOctetString:
    case Tag::kIpAddress:
    case Tag::kOpaque:
      w.octets(v.bytes);
      break;
    case Tag::kOid:
      w.oid(v.oid);
      break;
    default:  // Null and the exceptions carry nothing
      break;
  }
}

bool known_type(std::uint8_t t) { return t >= 1 && t <= 18; }

}  // namespace

bool parse_header(std::span<const std::uint8_t> data, Header* h, std::string* why) {
  if (data.size() < kHeaderSize) return fail(why, "truncated header");
  h->version = data[0];
  if (h->version != 1) return fail(why, "AgentX version " + std::to_string(h->version));
  if (!known_type(data[1])) return fail(why, "unknown PDU type " + std::to_string(data[1]));
  h->type = static_cast<PduType>(data[1]);
  h->flags = data[2];
  Reader r(data.subspan(4, 16), (h->flags & kFlagNetworkByteOrder) != 0);
  r.u32(&h->session_id);
  r.u32(&h->transaction_id);
  r.u32(&h->packet_id);
  r.u32(&h->payload_length);
  if (h->payload_length % 4) return fail(why, "payload length " + std::to_string(h->payload_length) + " not a multiple of 4");
  if (h->payload_length > kMaxPayload) return fail(why, "payload length " + std::to_string(h->payload_length) + " over 64 KiB");
  return true;
}

bool parse_request(const Header& h, std::span<const std::uint8_t> payload, Request* out, std::string* why) {
  *out = Request{};
  out->header = h;
  Reader r(payload, (h.flags & kFlagNetworkByteOrder) != 0);
  if ((h.flags & kFlagNonDefaultContext) && !r.octets(&out->context, why)) return false;
  if (h.type == PduType::kGetBulk) {
    if (!r.u16(&out->non_repeaters) || !r.u16(&out->max_repetitions)) return fail(why, "truncated GetBulk");
  } else if (h.type != PduType::kGet && h.type != PduType::kGetNext) {
    return fail(why, "not a Get, GetNext or GetBulk PDU");
  }
  while (!r.empty()) {
    SearchRange sr;
    if (!r.oid(&sr.start, &sr.include, why) || !r.oid(&sr.end, nullptr, why)) return false;
    out->ranges.push_back(std::move(sr));
    if (out->ranges.size() > kMaxBulkVarBinds) return fail(why, "more than 1024 search ranges");
  }
  return true;
}

bool parse_response(const Header& h, std::span<const std::uint8_t> payload, Response* out, std::string* why) {
  if (h.type != PduType::kResponse) return fail(why, "not a Response PDU");
  Reader r(payload, (h.flags & kFlagNetworkByteOrder) != 0);
  if (!r.u32(&out->sys_uptime) || !r.u16(&out->error) || !r.u16(&out->index)) return fail(why, "truncated Response");
  return true;
}

std::vector<std::uint8_t> encode_open(std::uint32_t packet_id, std::uint8_t timeout, const Oid& id, std::string_view descr) {
  Writer w;
  w.u8(timeout);
  w.u8(0);
  w.u8(0);
  w.u8(0);
  w.oid(id);
  w.octets(descr);
  return finish(PduType::kOpen, 0, 0, 0, packet_id, w.out);
}

std::vector<std::uint8_t> encode_register(std::uint32_t session_id, std::uint32_t packet_id, std::uint8_t timeout,
                                          std::uint8_t priority, const Oid& subtree) {
  Writer w;
  w.u8(timeout);
  w.u8(priority);
  w.u8(0);  // range_subid: no range
  w.u8(0);
  w.oid(subtree);
  return finish(PduType::kRegister, 0, session_id, 0, packet_id, w.out);
}

std::vector<std::uint8_t> encode_close(std::uint32_t session_id, std::uint32_t packet_id, std::uint8_t reason) {
  Writer w;
  w.u8(reason);
  w.u8(0);
  w.u8(0);
  w.u8(0);
  return finish(PduType::kClose, 0, session_id, 0, packet_id, w.out);
}

std::vector<std::uint8_t> encode_response(const Header& request, std::uint16_t error, std::uint16_t index,
                                          const std::vector<VarBind>& varbinds) {
  Writer w;
  w.u32(0);  // sysUpTime: only the master's matters
  w.u16(error);
  w.u16(index);
  for (const auto& vb : varbinds) put_varbind(w, vb);
  return finish(PduType::kResponse, 0, request.session_id, request.transaction_id, request.packet_id, w.out);
}

namespace {

// GetNext within one range: the first entry after start (or at it, if included) and below
// end (if any); else endOfMibView named by start (§7.2.3.2).
VarBind next_in(const SearchRange& sr, const MibView& view) {
  const MibEntry* e = view.next(sr.start, sr.include);
  if (e && (sr.end.empty() || e->oid < sr.end)) return {e->oid, e->value};
  return {sr.start, Value::exception(Tag::kEndOfMibView)};
}

}  // namespace

std::vector<VarBind> answer(const Request& req, const MibView& view) {
  std::vector<VarBind> out;
  switch (req.header.type) {
    case PduType::kGet:
      for (const auto& sr : req.ranges) {
        const MibEntry* e = view.get(sr.start);
        out.push_back({sr.start, e ? e->value : view.missing(sr.start)});
      }
      return out;
    case PduType::kGetNext:
      for (const auto& sr : req.ranges) out.push_back(next_in(sr, view));
      return out;
    case PduType::kGetBulk: {
      std::size_t nr = std::min<std::size_t>(req.non_repeaters, req.ranges.size());
      for (std::size_t i = 0; i < nr; ++i) out.push_back(next_in(req.ranges[i], view));
      std::vector<SearchRange> reps(req.ranges.begin() + static_cast<std::ptrdiff_t>(nr), req.ranges.end());
      int max = std::min<int>(req.max_repetitions, kMaxRepetitions);
      for (int rep = 0; rep < max && !reps.empty(); ++rep) {
        bool all_end = true;
        for (auto& sr : reps) {
          if (out.size() >= kMaxBulkVarBinds) return out;
          VarBind vb = next_in(sr, view);
          if (vb.value.type != Tag::kEndOfMibView) all_end = false;
          sr.start = vb.oid;
          sr.include = false;
          out.push_back(std::move(vb));
        }
        if (all_end) break;
      }
      return out;
    }
    default:
      return out;
  }
}

}  // namespace outpost::snmp::agentx
