#include "cache/disk_backend.hpp"

namespace outpost::cache::detail {

std::unique_ptr<DiskBackend> open_disk_tier(const StoreOptions&, DiskEvents*, std::string* error) {
  if (error) *error = "disk tier not available yet";
  return nullptr;
}

}  // namespace outpost::cache::detail
