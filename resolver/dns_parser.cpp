// Decoding of DNS messages from untrusted bytes.
#include "resolver/dns_message.hpp"

namespace outpost::dns {

namespace {

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> msg) : msg_(msg) {}
  std::size_t pos() const { return pos_; }
  void seek(std::size_t p) { pos_ = p; }
  bool u8(std::uint8_t* v) {
    if (pos_ + 1 > msg_.size()) return false;
    *v = msg_[pos_++];
    return true;
  }
  bool u16(std::uint16_t* v) {
    if (pos_ + 2 > msg_.size()) return false;
    *v = static_cast<std::uint16_t>(msg_[pos_] << 8 | msg_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t* v) {
    if (pos_ + 4 > msg_.size()) return false;
    *v = static_cast<std::uint32_t>(msg_[pos_]) << 24 | static_cast<std::uint32_t>(msg_[pos_ + 1]) << 16 |
         static_cast<std::uint32_t>(msg_[pos_ + 2]) << 8 | msg_[pos_ + 3];
    pos_ += 4;
    return true;
  }
  bool bytes(std::size_t n, std::uint8_t* out) {
    if (pos_ + n > msg_.size()) return false;
    std::copy(msg_.begin() + static_cast<std::ptrdiff_t>(pos_), msg_.begin() + static_cast<std::ptrdiff_t>(pos_ + n), out);
    pos_ += n;
    return true;
  }
  Status name(Name* out) { return read_name(msg_, &pos_, out); }
  std::span<const std::uint8_t> msg() const { return msg_; }

 private:
  std::span<const std::uint8_t> msg_;
  std::size_t pos_ = 0;
};

#define TRY_STATUS(expr)              \
  do {                                \
    Status s_ = (expr);               \
    if (s_ != Status::ok) return s_;  \
  } while (0)
#define TRY_READ(expr) \
  do {                 \
    if (!(expr)) return Status::truncated; \
  } while (0)

// Decodes rdata of `len` bytes at the reader's position; names inside may be compressed.
Status parse_rdata(Reader& r, std::uint16_t type, std::uint16_t len, Rdata* out) {
  std::size_t end = r.pos() + len;
  if (end > r.msg().size()) return Status::truncated;
  auto name_rdata = [&](Name* n) -> Status { return r.name(n); };
  switch (type) {
    case type::A: {
      if (len != 4) return Status::bad_rdata;
      RdataA a;
      r.bytes(4, a.addr.data());
      *out = a;
      break;
    }
    case type::AAAA: {
      if (len != 16) return Status::bad_rdata;
      RdataAaaa a;
      r.bytes(16, a.addr.data());
      *out = a;
      break;
    }
    case type::NS:
    case type::CNAME:
    case type::PTR:
    case type::DNAME: {
      RdataName n;
      TRY_STATUS(name_rdata(&n.name));
      *out = std::move(n);
      break;
    }
    case type::SOA: {
      RdataSoa s;
      TRY_STATUS(name_rdata(&s.mname));
      TRY_STATUS(name_rdata(&s.rname));
      if (r.pos() + 20 > end) return Status::bad_rdata;
      r.u32(&s.serial), r.u32(&s.refresh), r.u32(&s.retry), r.u32(&s.expire), r.u32(&s.minimum);
      *out = std::move(s);
      break;
    }
    case type::MX: {
      RdataMx m;
      if (len < 3) return Status::bad_rdata;
      r.u16(&m.preference);
      TRY_STATUS(name_rdata(&m.exchange));
      *out = std::move(m);
      break;
    }
    case type::SRV: {
      RdataSrv s;
      if (len < 7) return Status::bad_rdata;
      r.u16(&s.priority), r.u16(&s.weight), r.u16(&s.port);
      TRY_STATUS(name_rdata(&s.target));
      *out = std::move(s);
      break;
    }
    case type::TXT: {
      RdataTxt t;
      if (len == 0) return Status::bad_rdata;
      while (r.pos() < end) {
        std::uint8_t n = 0;
        r.u8(&n);
        if (r.pos() + n > end) return Status::bad_rdata;
        std::string s(n, '\0');
        r.bytes(n, reinterpret_cast<std::uint8_t*>(s.data()));
        t.strings.push_back(std::move(s));
      }
      *out = std::move(t);
      break;
    }
    default: {
      RdataOpaque o;
      o.bytes.resize(len);
      r.bytes(len, o.bytes.data());
      *out = std::move(o);
      break;
    }
  }
  // A name inside rdata must end exactly at the declared length.
  if (r.pos() != end) return Status::bad_rdata;
  return Status::ok;
}

}  // namespace

Status parse_header(std::span<const std::uint8_t> wire, Header* h, std::uint16_t* qdcount) {
  if (wire.size() < 12) return Status::truncated;
  h->id = static_cast<std::uint16_t>(wire[0] << 8 | wire[1]);
  std::uint8_t f1 = wire[2], f2 = wire[3];
  h->qr = f1 & 0x80;
  h->opcode = (f1 >> 3) & 0x0F;
  h->aa = f1 & 0x04;
  h->tc = f1 & 0x02;
  h->rd = f1 & 0x01;
  h->ra = f2 & 0x80;
  h->ad = f2 & 0x20;
  h->cd = f2 & 0x10;
  h->rcode = f2 & 0x0F;
  if (qdcount) *qdcount = static_cast<std::uint16_t>(wire[4] << 8 | wire[5]);
  return Status::ok;
}

Status parse_message(std::span<const std::uint8_t> wire, Message* m) {
  *m = Message();
  TRY_STATUS(parse_header(wire, &m->header));
  Reader r(wire);
  r.seek(4);
  std::uint16_t qd, an, ns, ar;
  r.u16(&qd), r.u16(&an), r.u16(&ns), r.u16(&ar);
  // Each question takes at least 5 bytes and each record at least 11: reject absurd counts
  // before reserving anything.
  if (qd * 5ull + (an + ns + ar) * 11ull > wire.size() - 12) return Status::truncated;
  for (unsigned i = 0; i < qd; ++i) {
    Question q;
    TRY_STATUS(r.name(&q.name));
    TRY_READ(r.u16(&q.type) && r.u16(&q.cls));
    m->question.push_back(std::move(q));
  }
  std::vector<ResourceRecord>* sections[3] = {&m->answer, &m->authority, &m->additional};
  unsigned counts[3] = {an, ns, ar};
  for (int s = 0; s < 3; ++s) {
    sections[s]->reserve(counts[s]);
    for (unsigned i = 0; i < counts[s]; ++i) {
      ResourceRecord rr;
      std::uint16_t rdlen;
      TRY_STATUS(r.name(&rr.name));
      TRY_READ(r.u16(&rr.type) && r.u16(&rr.cls) && r.u32(&rr.ttl) && r.u16(&rdlen));
      if (rr.type == type::OPT) {
        if (s != 2 || m->edns || !rr.name.is_root()) return Status::bad_opt;
        Edns e;
        e.udp_size = rr.cls;
        m->header.rcode = static_cast<std::uint16_t>(m->header.rcode | ((rr.ttl >> 24) & 0xFF) << 4);
        e.version = static_cast<std::uint8_t>(rr.ttl >> 16);
        e.do_bit = rr.ttl & 0x8000;
        e.options.resize(rdlen);
        TRY_READ(r.bytes(rdlen, e.options.data()));
        m->edns = std::move(e);
        continue;
      }
      TRY_STATUS(parse_rdata(r, rr.type, rdlen, &rr.rdata));
      sections[s]->push_back(std::move(rr));
    }
  }
  if (r.pos() != wire.size()) return Status::trailing_data;
  return Status::ok;
}

}  // namespace outpost::dns
