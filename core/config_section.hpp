// Config sections owned by the module that uses them.
//
// Config::parse (config.cpp) reads the sections of core and the proxy itself ([server], [log],
// [proxy], [origin], [acl], [cache], [http_cache]); a module parses its own section ([dns] in
// resolver/dns_config.cpp, [admin] in services/admin/admin_config.cpp) with the same strict
// reader, ConfigTable, and registers the parse function under the section's name:
//
//   dns::register_config_section();    // register_config_section("dns", &parse_dns)
//
// Registration is an explicit call, made once by the program before it parses a config
// (app/main.cpp registers every module's section; a test registers what it reads). It is
// deliberately not a static object in the module: the modules are static libraries, and the
// linker leaves out an object file (with its static initialisers) that nothing references,
// so a self-registering section would silently vanish from programs that do not happen to
// call into that file.
//
// Top-level sections: a section of core is parsed here; a registered section by its parser.
// A section that Config declares for a module (dns, admin) but that this program did not
// register is accepted and left at the struct's defaults: the program does not link that
// module, so it cannot use the section (a cache test reading the embedded default config
// need not link the resolver). Any other name is an "unknown section" error.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace outpost {

// One TOML table read strictly: every key read is remembered, check_unknown() reports the
// others; every error is a ConfigError "file:line: section.key: reason", at the line of the
// offending value (or of the table when the key is absent).
class ConfigTable {
 public:
  struct Impl;
  explicit ConfigTable(std::shared_ptr<Impl> impl);

  // The section's name as errors show it ("dns", "dns.local_zones").
  const std::string& name() const;

  double number(const std::string& key, double def, double min, double max);
  std::uint64_t integer(const std::string& key, std::uint64_t def, std::uint64_t min, std::uint64_t max);
  bool boolean(const std::string& key, bool def);
  // `choices` non-empty: the value must be one of them.
  std::string string(const std::string& key, const std::string& def, const std::set<std::string>& choices = {});
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& def);
  NetworkList networks(const std::string& key, const std::vector<std::string>& def);
  std::vector<Endpoint> endpoints(const std::string& key, const std::vector<std::string>& def);
  // An array of inline tables, each read as a section of its own named "<name>.<key>" (call
  // check_unknown() on each).
  std::vector<ConfigTable> tables(const std::string& key);
  // An error about `key`, at its value's line (the table's when the key is absent).
  [[noreturn]] void fail(const std::string& key, const std::string& why) const;
  // The first key (in file order) that nothing read is an "unknown key" error.
  void check_unknown() const;

  // For core's own readers (config.cpp).
  Impl& impl() { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

// Parses one module section into the Config (its own struct in it: config.dns, ...). The
// table is empty when the file has no such section: the parser still sets every default.
using ConfigSectionParser = void (*)(ConfigTable& table, Config& config);

// Registers (or replaces) the parser of section `name`. Main thread, before any parse.
void register_config_section(std::string_view name, ConfigSectionParser parse);

}  // namespace outpost
