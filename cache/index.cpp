#include "cache/index.hpp"

#include <bit>

namespace outpost::cache::detail {

Index::Index(unsigned shards)
    : mask_(std::bit_ceil(std::max(shards, 1u)) - 1), shards_(std::make_unique<Shard[]>(mask_ + 1)) {}

}  // namespace outpost::cache::detail
