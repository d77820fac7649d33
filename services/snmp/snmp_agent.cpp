#include "services/snmp/snmp_agent.hpp"

#include <algorithm>

namespace outpost::snmp {

namespace {

VarBind next_of(const MibView& view, const Oid& oid) {
  if (const MibEntry* e = view.next(oid)) return {e->oid, e->value};
  return {oid, Value::exception(Tag::kEndOfMibView)};
}

}  // namespace

Message answer(const Message& req, const MibView& view, std::size_t max_size) {
  Message r;
  r.version = req.version;
  r.community = req.community;
  r.pdu = Tag::kResponse;
  r.request_id = req.request_id;
  // The message without bindings, plus a margin for the length octets of the message, the
  // PDU and the list, which grow from one to three octets each as the bindings come in.
  const std::size_t base = encode_message(r).size() + 6;

  switch (req.pdu) {
    case Tag::kGetRequest:
      for (const auto& vb : req.varbinds) {
        const MibEntry* e = view.get(vb.oid);
        r.varbinds.push_back({vb.oid, e ? e->value : view.missing(vb.oid)});
      }
      break;
    case Tag::kGetNextRequest:
      for (const auto& vb : req.varbinds) r.varbinds.push_back(next_of(view, vb.oid));
      break;
    case Tag::kGetBulkRequest: {
      std::size_t n = req.varbinds.size();
      std::size_t non_repeaters = static_cast<std::size_t>(std::clamp<std::int64_t>(req.error_status, 0, static_cast<std::int64_t>(n)));
      std::int32_t reps = std::clamp(req.error_index, 0, kMaxRepetitions);
      std::size_t size = base;
      auto fits = [&](const VarBind& vb) {
        std::size_t s = encoded_size(vb);
        if (size + s > max_size || r.varbinds.size() >= kMaxBulkVarBinds) return false;
        size += s;
        return true;
      };
      for (std::size_t i = 0; i < non_repeaters; ++i) {
        VarBind vb = next_of(view, req.varbinds[i].oid);
        if (!fits(vb)) break;
        r.varbinds.push_back(std::move(vb));
      }
      if (r.varbinds.size() < non_repeaters) {  // not even the non-repeaters fit
        r.varbinds.clear();
        r.error_status = static_cast<std::int32_t>(ErrorStatus::kTooBig);
        return r;
      }
      std::vector<Oid> last;
      for (std::size_t i = non_repeaters; i < n; ++i) last.push_back(req.varbinds[i].oid);
      bool full = false;
      for (std::int32_t rep = 0; rep < reps && !last.empty() && !full; ++rep) {
        bool all_end = true;
        for (auto& oid : last) {
          VarBind vb = next_of(view, oid);
          if (vb.value.type != Tag::kEndOfMibView) all_end = false;
          if (!fits(vb)) {
            full = true;  // RFC 3416 §4.2.3: the answer may stop short to fit
            break;
          }
          oid = vb.oid;
          r.varbinds.push_back(std::move(vb));
        }
        if (all_end) break;  // every column is past the end: more rows add nothing
      }
      return r;
    }
    case Tag::kSetRequest:
      r.varbinds = req.varbinds;
      r.error_status = static_cast<std::int32_t>(ErrorStatus::kNotWritable);
      r.error_index = req.varbinds.empty() ? 0 : 1;
      return r;
    default:
      r.error_status = static_cast<std::int32_t>(ErrorStatus::kGenErr);
      return r;
  }
  if (encode_message(r).size() > max_size) {  // RFC 3416 §4.2.1: tooBig, no bindings
    r.varbinds.clear();
    r.error_status = static_cast<std::int32_t>(ErrorStatus::kTooBig);
    r.error_index = 0;
  }
  return r;
}

}  // namespace outpost::snmp
