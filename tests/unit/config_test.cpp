// Core's configuration: [server] and [log], the strict reader and the section registry
// (core/config_section.hpp). This binary links no module and registers none of their sections:
// the proxy's own sections are tested in proxy_config_test.cpp, [cache] in tests/unit/cache.
#include "core/config.hpp"

#include "core/config_section.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace outpost;

static ConfigError expect_error(const std::string& text) {
  try {
    Config::parse(text, "t.toml");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << text;
  return ConfigError("", 0, "");
}

TEST(Config, EmptyFileGivesDefaults) {
  Config c = Config::parse("", "empty.toml");
  EXPECT_EQ(c.server.name, "outpost");
  EXPECT_EQ(c.server.workers, 0u);
  EXPECT_EQ(c.log.level, "info");
}

TEST(Config, UnknownKeyNamesFileAndLine) {
  auto e = expect_error("[server]\nworkers = 1\n\nworker = 3\n");
  EXPECT_EQ(e.file, "t.toml");
  EXPECT_EQ(e.line, 4u);
  EXPECT_EQ(std::string(e.what()), "t.toml:4: server.worker: unknown key");
}

TEST(Config, UnknownSection) {
  auto e = expect_error("x = 1\n[nosuch]\na=1\n");
  EXPECT_EQ(e.line, 1u);
  EXPECT_EQ(std::string(expect_error("[server]\n[nosuch]\n").what()), "t.toml:2: unknown section or key: nosuch");
}

TEST(Config, BadValues) {
  EXPECT_EQ(expect_error("[server]\nworkers = -1\n").line, 2u);
  EXPECT_EQ(expect_error("[server]\nworkers = \"two\"\n").line, 2u);
  EXPECT_EQ(expect_error("[log]\nlevel = \"loud\"\n").line, 2u);
  EXPECT_EQ(std::string(expect_error("[server]\nname = \"a b\"\n").what()),
            "t.toml:2: server.name: must be a non-empty token without spaces");
}

TEST(Config, SyntaxError) {
  auto e = expect_error("[server]\nname = \n");
  EXPECT_EQ(e.line, 2u);
}

// A module's section: parsed by the function it registers, with the same strict reader.
TEST(ConfigSections, RegisteredSectionParsedWithFileLineErrors) {
  EXPECT_EQ(expect_error("[example]\nlabel = \"x\"\n").reason, "unknown section or key: example");
  register_config_section("example", [](ConfigTable& t, Config& c) {
    c.server.name = t.string("label", c.server.name);
    if (c.server.name == "bad") t.fail("label", "must not be bad");
    for (auto& item : t.tables("items")) {
      item.integer("n", 0, 0, 9);
      item.check_unknown();
    }
    for (auto n : t.integers("ns", {}, 1, 5, "small numbers"))
      if (n == 4) t.fail("ns", 1, "not 4");
    t.check_unknown();
  });
  EXPECT_EQ(Config::parse("[example]\nlabel = \"from-module\"\n", "t.toml").server.name, "from-module");
  EXPECT_EQ(Config::parse("", "t.toml").server.name, "outpost");  // absent: the parser keeps defaults
  auto e = expect_error("[example]\n\nlabel = \"bad\"\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:3: example.label: must not be bad");
  e = expect_error("[example]\nitems = [\n  { n = 1 },\n  { n = 10 }]\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:4: example.items.n: must be between 0 and 9");
  e = expect_error("[example]\nitems = [{ n = 1, m = 2 }]\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:2: example.items.m: unknown key");
  EXPECT_EQ(std::string(expect_error("[example]\nitems = [1]\n").what()),
            "t.toml:2: example.items: expected an array of tables");
  e = expect_error("[example]\nlabel = \"x\"\nother = 1\n");
  EXPECT_EQ(std::string(e.what()), "t.toml:3: example.other: unknown key");
  EXPECT_EQ(expect_error("example = 3\n").reason, "example: expected a table");
  // Arrays of integers; an error at one element is reported at that element's line.
  EXPECT_EQ(std::string(expect_error("[example]\nns = [1,\n  9]\n").what()),
            "t.toml:3: example.ns: expected small numbers 1-5");
  EXPECT_EQ(std::string(expect_error("[example]\nns = 2\n").what()), "t.toml:2: example.ns: expected an array of small numbers");
  EXPECT_EQ(std::string(expect_error("[example]\nns = [1,\n  4]\n").what()), "t.toml:3: example.ns: not 4");
}

// Every section Config declares for a module; none is registered in this binary.
const char* const kModuleSections[] = {"proxy", "origin", "acl", "http_cache", "cache", "dns", "admin"};

// A module's section in a file, in a program that does not read it, is an error naming the
// section: the settings would otherwise be silently ignored and the struct's defaults used.
TEST(ConfigSections, UnregisteredSectionInAFileIsAnError) {
  for (const std::string name : kModuleSections) {
    SCOPED_TRACE(name);
    auto e = expect_error("[server]\nworkers = 1\n\n[" + name + "]\n");
    EXPECT_EQ(std::string(e.what()), "t.toml:4: [" + name + "]: this program does not read this section");
    EXPECT_EQ(std::string(expect_error(name + " = 1\n").what()), "t.toml:1: " + name + ": expected a table");
  }
  // The first problem in file order is the one reported.
  EXPECT_EQ(std::string(expect_error("[dns]\n[nosuch]\n").what()), "t.toml:1: [dns]: this program does not read this section");
  EXPECT_EQ(std::string(expect_error("[nosuch]\n[dns]\n").what()), "t.toml:1: unknown section or key: nosuch");
  // A file without those sections is fine: their structs keep the defaults nobody set.
  EXPECT_EQ(Config::parse("[server]\nworkers = 2\n", "t.toml").server.workers, 2u);
}

// The embedded default holds every module's section: a program that registers only some of
// them (a cache benchmark, a DNS test driver) still loads it, and the others keep the struct's
// defaults. The same text as a user's file is refused.
TEST(ConfigSections, EmbeddedDefaultSkipsUnregisteredSections) {
  Config c = Config::load_default();
  EXPECT_EQ(c.source, "<default>");
  EXPECT_EQ(c.server.name, "outpost");
  EXPECT_EQ(c.log.access_log, "-");
  EXPECT_TRUE(c.proxy.listen.empty());  // the default's 127.0.0.1:3128 was not read
  EXPECT_TRUE(c.acl.connect_ports.empty());
  EXPECT_TRUE(c.dns.allow_recursion.empty());
  std::string_view text = default_config_text();
  auto proxy_line = 1 + std::count(text.begin(), text.begin() + text.find("\n[proxy]\n") + 1, '\n');
  auto e = expect_error(std::string(text));
  EXPECT_EQ(std::string(e.what()),
            "t.toml:" + std::to_string(proxy_line) + ": [proxy]: this program does not read this section");
}
