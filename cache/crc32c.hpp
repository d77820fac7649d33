// CRC-32C (Castagnoli), as used by iSCSI/ext4: SSE4.2 instruction when the CPU has it,
// else a slicing-by-8 table. crc32c(data) == crc32c_extend(0, data).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace outpost::cache {

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n);
inline std::uint32_t crc32c(std::string_view s) { return crc32c_extend(0, s.data(), s.size()); }
// The portable implementation (exposed so tests can check both agree).
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n);

}  // namespace outpost::cache
