#include "cache/record.hpp"

#include <cstring>

#include "cache/crc32c.hpp"

namespace outpost::cache::detail {

namespace {

template <typename T>
void put(unsigned char* out, std::size_t at, T v) {
  std::memcpy(out + at, &v, sizeof v);  // little-endian hosts
}

template <typename T>
T get(const unsigned char* in, std::size_t at) {
  T v;
  std::memcpy(&v, in + at, sizeof v);
  return v;
}

}  // namespace

void encode_header(const RecordHeader& h, unsigned char* out) {
  put(out, 0, kRecordMagic);
  put(out, 8, h.seq);
  put(out, 16, h.body_len);
  put(out, 24, h.expiry);
  put(out, 32, h.meta_len);
  put(out, 36, h.key_len);
  put(out, 38, static_cast<std::uint8_t>(h.ns));
  put(out, 39, static_cast<std::uint8_t>(h.kind));
  put(out, 40, h.payload_crc);
  put(out, 44, std::uint32_t{0});
  put(out, 4, crc32c_extend(0, out + 8, kRecordHeaderSize - 8));
}

std::optional<RecordHeader> decode_header(const unsigned char* in) {
  if (get<std::uint32_t>(in, 0) != kRecordMagic) return std::nullopt;
  if (get<std::uint32_t>(in, 4) != crc32c_extend(0, in + 8, kRecordHeaderSize - 8)) return std::nullopt;
  RecordHeader h;
  h.seq = get<std::uint64_t>(in, 8);
  h.body_len = get<std::uint64_t>(in, 16);
  h.expiry = get<std::int64_t>(in, 24);
  h.meta_len = get<std::uint32_t>(in, 32);
  h.key_len = get<std::uint16_t>(in, 36);
  auto ns = get<std::uint8_t>(in, 38);
  auto kind = get<std::uint8_t>(in, 39);
  h.payload_crc = get<std::uint32_t>(in, 40);
  if (ns >= kNamespaceCount || kind < 1 || kind > 3 || h.body_len > (1ull << 40)) return std::nullopt;
  h.ns = static_cast<Namespace>(ns);
  h.kind = static_cast<RecordKind>(kind);
  return h;
}

}  // namespace outpost::cache::detail
