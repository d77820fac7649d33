#include "resolver/reply_cache.hpp"

#include <algorithm>
#include <cstring>

namespace outpost::dns {

namespace {

constexpr std::uint16_t kTypeOpt = 41;

std::uint16_t u16(std::span<const std::uint8_t> w, std::size_t at) {
  return static_cast<std::uint16_t>(w[at] << 8 | w[at + 1]);
}

// Skips a (possibly compressed) name at *at; false if it runs off the end.
bool skip_name(std::span<const std::uint8_t> w, std::size_t* at) {
  std::size_t p = *at;
  while (p < w.size()) {
    std::uint8_t len = w[p];
    if (len == 0) {
      *at = p + 1;
      return true;
    }
    if ((len & 0xC0) == 0xC0) {
      if (p + 2 > w.size()) return false;
      *at = p + 2;
      return true;
    }
    if (len & 0xC0) return false;
    p += 1 + len;
  }
  return false;
}

// The offsets of every record's TTL field in a reply (OPT's is its flags: left out).
bool ttl_offsets(std::span<const std::uint8_t> w, std::vector<std::uint16_t>* out) {
  if (w.size() < 12 || w.size() > 65535) return false;
  unsigned qd = u16(w, 4), records = unsigned{u16(w, 6)} + u16(w, 8) + u16(w, 10);
  std::size_t at = 12;
  for (unsigned i = 0; i < qd; ++i) {
    if (!skip_name(w, &at) || at + 4 > w.size()) return false;
    at += 4;
  }
  for (unsigned i = 0; i < records; ++i) {
    if (!skip_name(w, &at) || at + 10 > w.size()) return false;
    std::uint16_t type = u16(w, at);
    if (type != kTypeOpt) out->push_back(static_cast<std::uint16_t>(at + 4));
    std::size_t rdlen = u16(w, at + 8);
    at += 10 + rdlen;
    if (at > w.size()) return false;
  }
  return at == w.size();
}

}  // namespace

bool parse_plain_query(std::span<const std::uint8_t> w, PlainQuery* q) {
  if (w.size() < 17) return false;
  std::uint8_t f1 = w[2], f2 = w[3];
  if ((f1 & 0x80) || ((f1 >> 3) & 0x0F) != 0) return false;  // a response, or not QUERY
  if (u16(w, 4) != 1 || u16(w, 6) != 0 || u16(w, 8) != 0) return false;
  std::uint16_t ar = u16(w, 10);
  if (ar > 1) return false;
  q->id = u16(w, 0);
  q->rd = f1 & 0x01;
  q->ad = f2 & 0x20;
  q->cd = f2 & 0x10;
  // The QNAME, lower-cased into the key; no compression, at most 255 bytes.
  std::size_t at = 12, k = 0;
  for (;;) {
    if (at >= w.size()) return false;
    std::uint8_t len = w[at];
    if (len & 0xC0) return false;
    if (at - 12 + 1 + len > 255 || at + 1 + len > w.size()) return false;
    q->key_buf[k++] = static_cast<char>(len);
    for (std::size_t i = 1; i <= len; ++i) {
      std::uint8_t c = w[at + i];
      q->key_buf[k++] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    at += 1 + len;
    if (len == 0) break;
  }
  q->qname_len = at - 12;
  if (at + 4 > w.size()) return false;
  q->qtype = u16(w, at);
  if (u16(w, at + 2) != 1) return false;  // class IN only
  at += 4;
  q->edns = q->do_bit = false;
  q->udp_size = 0;
  if (ar == 1) {
    // OPT: root owner, type 41, class = payload size, TTL = ext-rcode, version, flags; rdata.
    if (at + 11 > w.size() || w[at] != 0 || u16(w, at + 1) != kTypeOpt) return false;
    if (w[at + 6] != 0) return false;  // version > 0: BADVERS, the slow path's
    q->edns = true;
    q->udp_size = u16(w, at + 3);
    q->do_bit = w[at + 7] & 0x80;
    at += 11 + u16(w, at + 9);
  }
  if (at != w.size()) return false;
  q->key_buf[k++] = static_cast<char>(q->qtype >> 8);
  q->key_buf[k++] = static_cast<char>(q->qtype & 0xFF);
  q->key_buf[k++] = static_cast<char>((q->edns ? 1 : 0) | (q->do_bit ? 2 : 0) | (q->cd ? 4 : 0));
  q->key_len = k;
  return true;
}

bool ReplyCache::answer(const PlainQuery& q, std::span<const std::uint8_t> query_wire, std::uint64_t now_ms,
                        std::size_t limit, std::vector<std::uint8_t>* out) {
  auto it = entries_.find(q.key());
  if (it == entries_.end()) {
    ++stats_.misses;
    return false;
  }
  const Entry& e = it->second;
  if (now_ms >= e.expires_ms) {
    ++stats_.expired;
    bytes_ -= e.wire.size();
    entries_.erase(it);
    return false;
  }
  if (e.wire.size() > limit) {
    ++stats_.misses;
    return false;  // the usual path truncates it
  }
  out->assign(e.wire.begin(), e.wire.end());
  std::uint8_t* w = out->data();
  w[0] = static_cast<std::uint8_t>(q.id >> 8);
  w[1] = static_cast<std::uint8_t>(q.id);
  w[2] = static_cast<std::uint8_t>((w[2] & ~0x01) | (q.rd ? 0x01 : 0));
  bool ad = e.secure && (q.ad || q.do_bit);
  w[3] = static_cast<std::uint8_t>((w[3] & ~0x30) | (ad ? 0x20 : 0) | (q.cd ? 0x10 : 0));
  std::memcpy(w + 12, query_wire.data() + 12, q.qname_len);  // the asker's case (0x20)
  std::uint32_t elapsed = static_cast<std::uint32_t>((now_ms - e.stored_ms) / 1000);
  if (elapsed)
    for (std::uint16_t at : e.ttl_at) {
      std::uint32_t ttl = std::uint32_t{w[at]} << 24 | std::uint32_t{w[at + 1]} << 16 | std::uint32_t{w[at + 2]} << 8 | w[at + 3];
      ttl = ttl > elapsed ? ttl - elapsed : 0;
      w[at] = static_cast<std::uint8_t>(ttl >> 24);
      w[at + 1] = static_cast<std::uint8_t>(ttl >> 16);
      w[at + 2] = static_cast<std::uint8_t>(ttl >> 8);
      w[at + 3] = static_cast<std::uint8_t>(ttl);
    }
  ++stats_.hits;
  return true;
}

void ReplyCache::store(const PlainQuery& q, const std::vector<std::uint8_t>& reply, std::uint64_t now_ms,
                       std::uint64_t valid_ms, bool secure) {
  if (valid_ms == 0 || reply.size() < 12 || reply.size() > max_bytes_ / 16) return;
  if (reply[2] & 0x02) return;  // truncated: written for one client's limit
  Entry e;
  if (!ttl_offsets(reply, &e.ttl_at)) return;
  e.wire = reply;
  e.wire[0] = e.wire[1] = 0;
  e.stored_ms = now_ms;
  e.expires_ms = now_ms + valid_ms;
  e.secure = secure;
  auto it = entries_.find(q.key());
  if (it != entries_.end()) {
    bytes_ -= it->second.wire.size();
    entries_.erase(it);
  }
  // Room: expired entries first, then any (the table is a cache of a cache).
  if (bytes_ + e.wire.size() > max_bytes_) {
    for (auto i = entries_.begin(); i != entries_.end();) {
      if (now_ms >= i->second.expires_ms) {
        bytes_ -= i->second.wire.size();
        i = entries_.erase(i);
        ++stats_.expired;
      } else {
        ++i;
      }
    }
    while (bytes_ + e.wire.size() > max_bytes_ && !entries_.empty()) {
      bytes_ -= entries_.begin()->second.wire.size();
      entries_.erase(entries_.begin());
      ++stats_.evicted;
    }
  }
  bytes_ += e.wire.size();
  entries_.emplace(std::string(q.key()), std::move(e));
  ++stats_.stored;
}

void ReplyCache::clear() {
  if (!entries_.empty()) ++stats_.cleared;
  entries_.clear();
  bytes_ = 0;
}

}  // namespace outpost::dns
