// Encoding of DNS messages with name compression and truncation to a size limit.
#include "resolver/dns_message.hpp"

namespace outpost::dns {

namespace {

class Writer {
 public:
  std::vector<std::uint8_t> buf;

  void u8(std::uint8_t v) { buf.push_back(v); }
  void u16(std::uint16_t v) {
    buf.push_back(static_cast<std::uint8_t>(v >> 8));
    buf.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void put16(std::size_t at, std::uint16_t v) {
    buf[at] = static_cast<std::uint8_t>(v >> 8);
    buf[at + 1] = static_cast<std::uint8_t>(v);
  }
  void bytes(const void* p, std::size_t n) {
    auto* b = static_cast<const std::uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }

  // Writes a name, pointing at an earlier copy of its longest known suffix. Known suffixes are
  // the offsets of label sequences already written; matching walks the buffer itself, so no
  // allocation happens (messages hold a few dozen names at most).
  void name(const Name& n, bool compress) {
    const std::string& w = n.wire();
    // This name's own labels become targets only once it is complete.
    const std::size_t known = targets_.size();
    std::size_t i = 0;
    while (w[i] != 0) {
      if (compress)
        for (std::size_t k = 0; k < known; ++k)
          if (same_suffix(targets_[k], std::string_view(w).substr(i))) {
            u16(static_cast<std::uint16_t>(0xC000 | targets_[k]));
            return;
          }
      if (buf.size() < 0x4000) targets_.push_back(static_cast<std::uint16_t>(buf.size()));
      auto len = static_cast<unsigned char>(w[i]);
      bytes(w.data() + i, 1 + len);
      i += 1 + len;
    }
    u8(0);
  }

  // Forgets compression targets at or beyond `mark` (after a rollback).
  void rollback(std::size_t mark) {
    buf.resize(mark);
    std::erase_if(targets_, [mark](std::uint16_t t) { return t >= mark; });
  }

 private:
  static char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

  // True if the labels at buffer offset `at` (following pointers) spell `suffix` (wire form,
  // ending in the root label), ignoring ASCII case.
  bool same_suffix(std::size_t at, std::string_view suffix) const {
    std::size_t j = 0;
    for (int hops = 0; hops < 128 && at < buf.size(); ++hops) {
      std::uint8_t len = buf[at];
      if ((len & 0xC0) == 0xC0) {
        at = static_cast<std::size_t>(len & 0x3F) << 8 | buf[at + 1];
        continue;
      }
      if (len != static_cast<unsigned char>(suffix[j])) return false;
      if (len == 0) return true;
      for (std::size_t k = 1; k <= len; ++k)
        if (lower(static_cast<char>(buf[at + k])) != lower(suffix[j + k])) return false;
      at += 1 + len;
      j += 1 + len;
    }
    return false;
  }

  std::vector<std::uint16_t> targets_;
};

void write_rdata(Writer& w, const ResourceRecord& rr) {
  std::visit(
      [&](const auto& d) {
        using T = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<T, RdataA> || std::is_same_v<T, RdataAaaa>) {
          w.bytes(d.addr.data(), d.addr.size());
        } else if constexpr (std::is_same_v<T, RdataName>) {
          // RFC 3597: only the original RFC 1035 types may be compressed; DNAME may not.
          w.name(d.name, rr.type != type::DNAME);
        } else if constexpr (std::is_same_v<T, RdataSoa>) {
          w.name(d.mname, true);
          w.name(d.rname, true);
          w.u32(d.serial), w.u32(d.refresh), w.u32(d.retry), w.u32(d.expire), w.u32(d.minimum);
        } else if constexpr (std::is_same_v<T, RdataMx>) {
          w.u16(d.preference);
          w.name(d.exchange, true);
        } else if constexpr (std::is_same_v<T, RdataSrv>) {
          w.u16(d.priority), w.u16(d.weight), w.u16(d.port);
          w.name(d.target, false);  // RFC 2782: no compression
        } else if constexpr (std::is_same_v<T, RdataTxt>) {
          for (auto& s : d.strings) {
            auto n = std::min<std::size_t>(s.size(), 255);
            w.u8(static_cast<std::uint8_t>(n));
            w.bytes(s.data(), n);
          }
        } else {
          w.bytes(d.bytes.data(), d.bytes.size());
        }
      },
      rr.rdata);
}

void write_rr(Writer& w, const ResourceRecord& rr) {
  w.name(rr.name, true);
  w.u16(rr.type), w.u16(rr.cls), w.u32(rr.ttl);
  std::size_t len_at = w.buf.size();
  w.u16(0);
  write_rdata(w, rr);
  w.put16(len_at, static_cast<std::uint16_t>(w.buf.size() - len_at - 2));
}

void write_opt(Writer& w, const Edns& e, std::uint16_t rcode) {
  w.u8(0);
  w.u16(type::OPT), w.u16(e.udp_size);
  w.u32(static_cast<std::uint32_t>((rcode >> 4) & 0xFF) << 24 | static_cast<std::uint32_t>(e.version) << 16 |
        (e.do_bit ? 0x8000u : 0u));
  w.u16(static_cast<std::uint16_t>(e.options.size()));
  w.bytes(e.options.data(), e.options.size());
}

}  // namespace

std::vector<std::uint8_t> write_message(const Message& m, std::size_t max_size) {
  Writer w;
  w.buf.reserve(512);
  const Header& h = m.header;
  w.u16(h.id);
  w.u8(static_cast<std::uint8_t>((h.qr ? 0x80 : 0) | (h.opcode & 0x0F) << 3 | (h.aa ? 0x04 : 0) | (h.tc ? 0x02 : 0) |
                                 (h.rd ? 0x01 : 0)));
  w.u8(static_cast<std::uint8_t>((h.ra ? 0x80 : 0) | (h.ad ? 0x20 : 0) | (h.cd ? 0x10 : 0) | (h.rcode & 0x0F)));
  w.u16(static_cast<std::uint16_t>(m.question.size()));
  w.u16(0), w.u16(0), w.u16(0);  // filled in below
  for (auto& q : m.question) {
    w.name(q.name, true);
    w.u16(q.type), w.u16(q.cls);
  }
  std::size_t opt_size = m.edns ? 11 + m.edns->options.size() : 0;
  const std::vector<ResourceRecord>* sections[3] = {&m.answer, &m.authority, &m.additional};
  std::uint16_t counts[3] = {0, 0, 0};
  bool truncated = false;
  for (int s = 0; s < 3 && !truncated; ++s) {
    for (auto& rr : *sections[s]) {
      std::size_t mark = w.buf.size();
      write_rr(w, rr);
      if (w.buf.size() + opt_size > max_size) {
        w.rollback(mark);
        // RFC 2181 9: dropping additional records does not need TC.
        if (s < 2) w.buf[2] |= 0x02;
        truncated = true;
        break;
      }
      ++counts[s];
    }
  }
  if (m.edns) write_opt(w, *m.edns, h.rcode);
  w.put16(6, counts[0]);
  w.put16(8, counts[1]);
  w.put16(10, static_cast<std::uint16_t>(counts[2] + (m.edns ? 1 : 0)));
  return std::move(w.buf);
}

void add_extended_error(Edns* e, std::uint16_t info_code, std::string_view extra_text) {
  const std::size_t len = 2 + extra_text.size();
  for (std::uint16_t v : {ede::kOptionCode, static_cast<std::uint16_t>(len), info_code}) {
    e->options.push_back(static_cast<std::uint8_t>(v >> 8));
    e->options.push_back(static_cast<std::uint8_t>(v));
  }
  e->options.insert(e->options.end(), extra_text.begin(), extra_text.end());
}

Message make_query(std::uint16_t id, const Name& qname, std::uint16_t qtype, bool rd, bool edns) {
  Message m;
  m.header.id = id;
  m.header.rd = rd;
  m.question.push_back({qname, qtype, kClassIN});
  if (edns) m.edns = Edns{};
  return m;
}

}  // namespace outpost::dns
