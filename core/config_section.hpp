// Config sections owned by the module that uses them.
//
// Config::parse (config.cpp) reads core's own sections ([server], [log]); every other section
// is parsed by its module with the same strict reader, ConfigTable, through the parse function
// the module registers under the section's name: [proxy], [origin], [acl] and [http_cache] in
// proxy/proxy_config.cpp, [cache] in cache/cache_config.cpp, [dns] in
// resolver/dns_config.cpp, [admin] in services/admin/admin_config.cpp.
//
//   proxy::register_config_sections();  // register_config_section("proxy", &parse_proxy), ...
//
// Registration is an explicit call, made once by the program before it parses a config
// (app/main.cpp registers every module's section; a test registers what it reads). It is
// deliberately not a static object in the module: the modules are static libraries, and the
// linker leaves out an object file (with its static initialisers) that nothing references,
// so a self-registering section would silently vanish from programs that do not happen to
// call into that file.
//
// A section that Config declares for a module but that this program did not register:
//  - in a file (Config::parse, Config::load_file) it is an error at the section's line,
//    "[proxy]: this program does not read this section", never silently the struct's
//    defaults: a setting the program would ignore is a mistake the user must hear about;
//  - in the embedded default (Config::load_default) it is skipped and keeps the struct's
//    defaults: the default holds every section, and a program that does not link a module
//    (a cache benchmark, a DNS test driver) cannot use that module's section anyway.
// An absent section is not an error: its parser, if registered, sets every default.
// Any name Config does not declare is an "unknown section or key" error.
#pragma once
#include <cstddef>
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
  // An array of integers in [min, max]; `what` names them in errors ("expected an array of
  // <what>", "expected <what> <min>-<max>" at the offending element).
  std::vector<std::uint64_t> integers(const std::string& key, const std::vector<std::uint64_t>& def,
                                      std::uint64_t min, std::uint64_t max, const std::string& what);
  NetworkList networks(const std::string& key, const std::vector<std::string>& def);
  std::vector<Endpoint> endpoints(const std::string& key, const std::vector<std::string>& def);
  // An array of inline tables, each read as a section of its own named "<name>.<key>" (call
  // check_unknown() on each); `bad_element` is the reason given for an element that is not a
  // table (a hint of the shape expected).
  std::vector<ConfigTable> tables(const std::string& key, const std::string& bad_element = "expected an array of tables");
  // An error about `key`, at its value's line (the table's when the key is absent).
  [[noreturn]] void fail(const std::string& key, const std::string& why) const;
  // An error about element `index` of the array at `key`, at that element's line.
  [[noreturn]] void fail(const std::string& key, std::size_t index, const std::string& why) const;
  // The first key (in file order) that nothing read is an "unknown key" error.
  void check_unknown() const;

 private:
  std::shared_ptr<Impl> impl_;
};

// Parses one module section into the Config (its own struct in it: config.dns, ...). The
// table is empty when the file has no such section: the parser still sets every default.
using ConfigSectionParser = void (*)(ConfigTable& table, Config& config);

// Registers (or replaces) the parser of section `name`. Main thread, before any parse.
void register_config_section(std::string_view name, ConfigSectionParser parse);

}  // namespace outpost
