#include "cache/cache_config.hpp"

#include "core/config_section.hpp"

namespace outpost::cache {

namespace {

void parse_section(ConfigTable& s, Config& config) {
  Config::Cache& c = config.cache;
  c.memory_size = s.integer("memory_size", 256ull << 20, 1 << 20, 1ull << 44);
  c.disk_dir = s.string("disk_dir", "");
  c.segment_size = s.integer("segment_size", 16ull << 20, 1 << 20, 1ull << 30);
  c.disk_size = s.integer("disk_size", 1ull << 30, 0, 1ull << 50);
  c.max_object_size = s.integer("max_object_size", 8ull << 20, 1, 1ull << 40);
  if (c.max_object_size > c.memory_size) s.fail("max_object_size", "must not exceed memory_size");
  if (!c.disk_dir.empty()) {
    if (c.disk_size < 2 * c.segment_size) s.fail("disk_size", "must be at least two segments (2 * segment_size)");
    if (c.max_object_size > c.segment_size / 2)
      s.fail("max_object_size", "must not exceed half of segment_size when disk_dir is set");
  }
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("cache", &parse_section); }

}  // namespace outpost::cache
