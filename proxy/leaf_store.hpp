// Minted leaves kept in the shared store's certificate namespace (memory and, with a disk
// tier, on disk across restarts): tls::LeafStore over cache::Store.
#pragma once
#include <memory>

#include "cache/store.hpp"
#include "tls/leaf_cache.hpp"

namespace outpost {

std::shared_ptr<tls::LeafStore> make_leaf_store(std::shared_ptr<cache::Store> store);

}  // namespace outpost
