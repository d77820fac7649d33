// The [cache] section of the configuration (cache/cache_config.cpp): defaults, values,
// strict validation.
#include "cache/cache_config.hpp"

#include <gtest/gtest.h>

#include "core/config.hpp"

using namespace outpost;

namespace {

// [cache] is parsed once its module registers it (core/config_section.hpp).
struct RegisterSections : ::testing::Environment {
  void SetUp() override { cache::register_config_section(); }
};
const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new RegisterSections);

unsigned error_line(const std::string& text, std::string* reason = nullptr) {
  try {
    Config::parse(text, "c.toml");
  } catch (const ConfigError& e) {
    if (reason) *reason = e.reason;
    return e.line;
  }
  ADD_FAILURE() << "no error for: " << text;
  return 0;
}

}  // namespace

TEST(CacheConfig, DefaultIsMemoryOnly) {
  Config c = Config::load_default();
  EXPECT_TRUE(c.cache.disk_dir.empty());
  EXPECT_EQ(c.cache.memory_size, 256ull << 20);
  EXPECT_EQ(c.cache.segment_size, 16ull << 20);
  EXPECT_EQ(c.cache.max_object_size, 8ull << 20);
  Config e = Config::parse("", "e.toml");
  EXPECT_EQ(e.cache.memory_size, c.cache.memory_size);
  EXPECT_EQ(e.cache.disk_size, c.cache.disk_size);
}

TEST(CacheConfig, Values) {
  Config c = Config::parse(
      "[cache]\nmemory_size = 33554432\ndisk_dir = \"/var/cache/outpost\"\ndisk_size = 4194304\n"
      "segment_size = 1048576\nmax_object_size = 65536\n",
      "v.toml");
  EXPECT_EQ(c.cache.memory_size, 33554432u);
  EXPECT_EQ(c.cache.disk_dir, "/var/cache/outpost");
  EXPECT_EQ(c.cache.disk_size, 4194304u);
  EXPECT_EQ(c.cache.segment_size, 1048576u);
  EXPECT_EQ(c.cache.max_object_size, 65536u);
}

TEST(CacheConfig, StrictValidation) {
  std::string why;
  EXPECT_EQ(error_line("[cache]\nmemory_size = 1\n", &why), 2u);
  EXPECT_NE(why.find("cache.memory_size"), std::string::npos);
  EXPECT_EQ(error_line("[cache]\n\nsize = 1\n", &why), 3u);
  EXPECT_NE(why.find("unknown"), std::string::npos);
  EXPECT_EQ(error_line("[cache]\ndisk_dir = 3\n"), 2u);
  EXPECT_EQ(error_line("[cache]\nmemory_size = \"1G\"\n"), 2u);
  EXPECT_EQ(error_line("[cache]\nsegment_size = 1024\n"), 2u);
  EXPECT_EQ(error_line("[cache]\nmemory_size = 2097152\nmax_object_size = 4194304\n", &why), 3u);
  EXPECT_NE(why.find("max_object_size"), std::string::npos);
  // With a disk tier: at least two segments, objects at most half a segment.
  EXPECT_EQ(error_line("[cache]\ndisk_dir = \"/d\"\nsegment_size = 1048576\ndisk_size = 1048576\n", &why), 4u);
  EXPECT_NE(why.find("disk_size"), std::string::npos);
  EXPECT_EQ(error_line("[cache]\ndisk_dir = \"/d\"\nsegment_size = 1048576\nmax_object_size = 1048576\n"), 4u);
  EXPECT_EQ(error_line("cache = 1\n", &why), 1u);
}
