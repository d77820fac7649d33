// Unpredictable numbers for query IDs (and 0x20 bits): the kernel's CSPRNG, buffered.
#pragma once
#include <cstdint>

namespace outpost::dns {

std::uint32_t random_u32();
inline std::uint16_t random_id() { return static_cast<std::uint16_t>(random_u32()); }

}  // namespace outpost::dns
