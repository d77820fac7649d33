// The DNS server's rendered-answer cache, one per worker (Unbound's message cache): the wire
// reply to a question answered from the cache, kept under (lower-case QNAME, QTYPE, DO, CD,
// EDNS or not) so the next client asking the same gets it without a cache lookup, a parse or
// a write. On the way out the copy gets the query's ID, its QNAME bytes (the asker's case:
// 0x20 clients see their own), its RD and CD bits, AD as the query asks (RFC 6840 §5.7), and
// every TTL counted down by the seconds since it was kept. An entry lives only as long as the
// cache entries it was made from stay fresh (with prefetch: until the first of them enters the
// last tenth of its TTL, so the hit that starts the prefetch goes through the resolver); clear()
// drops everything (`outpost ctl dns flush`, a reload).
//
// Only plain queries take the fast path (`parse_query`): QR=0, opcode QUERY, one question of
// class IN, no answer or authority records, at most an OPT record of version 0 and nothing
// after it, a QNAME without compression. Anything else, and any miss, goes the usual way.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace outpost::dns {

// What the fast path reads of a query.
struct PlainQuery {
  std::uint16_t id = 0;
  bool rd = false, ad = false, cd = false;
  bool edns = false, do_bit = false;
  std::uint16_t udp_size = 0;      // the client's EDNS payload size (0 without EDNS)
  std::size_t qname_len = 0;       // wire length of the QNAME (from offset 12)
  std::uint16_t qtype = 0;
  // The cache key: lower-case QNAME, QTYPE and the bits that change the answer (DO, CD, EDNS).
  std::array<char, 256 + 3> key_buf{};
  std::size_t key_len = 0;
  std::string_view key() const { return {key_buf.data(), key_len}; }
};

// False if the query is not plain (see above); else fills *out.
bool parse_plain_query(std::span<const std::uint8_t> wire, PlainQuery* out);

struct ReplyCacheStats {
  std::uint64_t hits = 0, misses = 0, stored = 0, expired = 0, evicted = 0, cleared = 0;
};

class ReplyCache {
 public:
  explicit ReplyCache(std::size_t max_bytes = 4u << 20) : max_bytes_(max_bytes) {}

  // The kept reply for q, rewritten for it, if one is live at now_ms and fits in `limit`
  // bytes; false otherwise (a miss: the query goes the usual way).
  bool answer(const PlainQuery& q, std::span<const std::uint8_t> query_wire, std::uint64_t now_ms, std::size_t limit,
              std::vector<std::uint8_t>* out);
  // Keeps `reply` (a complete, untruncated reply to q, as written for the client that asked)
  // for valid_ms from now_ms. secure: an AD answer (AD is set per query on the way out).
  void store(const PlainQuery& q, const std::vector<std::uint8_t>& reply, std::uint64_t now_ms, std::uint64_t valid_ms,
             bool secure);
  void clear();
  std::size_t size() const { return entries_.size(); }
  const ReplyCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::vector<std::uint8_t> wire;      // ID 0, TTLs as they were at stored_ms
    std::vector<std::uint16_t> ttl_at;   // offsets of the TTL fields (not OPT's)
    std::uint64_t stored_ms = 0, expires_ms = 0;
    bool secure = false;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  std::size_t bytes_ = 0, max_bytes_;
  ReplyCacheStats stats_;
};

}  // namespace outpost::dns
