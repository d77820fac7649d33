// For unit tests that parse a configuration with the proxy's sections: registers [proxy],
// [origin], [acl], [http_cache] and [cache] (core/config_section.hpp) before the binary's
// first test. Each file that includes this adds its own environment (registering twice is
// harmless), so a test file keeps working whichever binary it is built into.
#pragma once
#include <gtest/gtest.h>

#include "cache/cache_config.hpp"
#include "proxy/proxy_config.hpp"

namespace {

struct ProxyConfigSections : ::testing::Environment {
  void SetUp() override {
    outpost::proxy::register_config_sections();
    outpost::cache::register_config_section();
  }
};
const auto* const kProxyConfigSections = ::testing::AddGlobalTestEnvironment(new ProxyConfigSections);

}  // namespace
