// Internal: the on-disk record. Little-endian, a 48-byte header then key, metadata, body:
//   0 u32 magic "OPRC"   4 u32 header crc32c (bytes 8..47)   8 u64 sequence
//  16 u64 body length   24 i64 expiry hint   32 u32 metadata length   36 u16 key length
//  38 u8 namespace      39 u8 kind (1 object, 2 erase, 3 purge namespace)
//  40 u32 payload crc32c (key, metadata, body)   44 u32 reserved (0)
// A record is valid only if both checksums match; anything else is skipped and counted.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "cache/store.hpp"

namespace outpost::cache::detail {

inline constexpr std::size_t kRecordHeaderSize = 48;
inline constexpr std::uint32_t kRecordMagic = 0x4352504Fu;  // "OPRC" in file order

enum class RecordKind : std::uint8_t { kObject = 1, kErase = 2, kPurge = 3 };

struct RecordHeader {
  std::uint64_t seq = 0;
  std::uint64_t body_len = 0;
  std::int64_t expiry = 0;
  std::uint32_t meta_len = 0;
  std::uint16_t key_len = 0;
  Namespace ns = Namespace::kHttp;
  RecordKind kind = RecordKind::kObject;
  std::uint32_t payload_crc = 0;

  std::uint64_t payload_len() const { return std::uint64_t{key_len} + meta_len + body_len; }
  std::uint64_t record_len() const { return kRecordHeaderSize + payload_len(); }
};

// Writes the header (with its checksum) into out[0..48).
void encode_header(const RecordHeader& h, unsigned char* out);
// Parses and checks magic, header checksum and field sanity; nullopt if torn or corrupt.
std::optional<RecordHeader> decode_header(const unsigned char* in);

}  // namespace outpost::cache::detail
