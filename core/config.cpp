#include "core/config.hpp"

#include "core/config_section.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace outpost {

ConfigError::ConfigError(std::string f, unsigned l, std::string r)
    : std::runtime_error(f + ":" + std::to_string(l) + ": " + r), file(std::move(f)), line(l), reason(std::move(r)) {}

// One TOML table and the keys read from it (so that the rest can be reported as unknown).
struct ConfigTable::Impl {
  Impl(const toml::table* t, std::string name, std::string file) : t_(t), name_(std::move(name)), file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::node* n, const std::string& key, const std::string& why) const {
    unsigned line = n ? static_cast<unsigned>(n->source().begin.line) : (t_ ? static_cast<unsigned>(t_->source().begin.line) : 0);
    throw ConfigError(file_, line, name_ + "." + key + ": " + why);
  }

  const toml::node* get(const std::string& key) {
    seen_.insert(key);
    return t_ ? t_->get(key) : nullptr;
  }

  double number(const std::string& key, double def, double min, double max) {
    auto* n = get(key);
    if (!n) return def;
    double v;
    if (auto i = n->value_exact<int64_t>()) v = static_cast<double>(*i);
    else if (auto d = n->value_exact<double>()) v = *d;
    else fail(n, key, "expected a number");
    if (v < min || v > max) fail(n, key, "must be between " + fmt(min) + " and " + fmt(max));
    return v;
  }

  std::uint64_t integer(const std::string& key, std::uint64_t def, std::uint64_t min, std::uint64_t max) {
    auto* n = get(key);
    if (!n) return def;
    auto i = n->value_exact<int64_t>();
    if (!i) fail(n, key, "expected an integer");
    if (*i < 0 || static_cast<std::uint64_t>(*i) < min || static_cast<std::uint64_t>(*i) > max)
      fail(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return static_cast<std::uint64_t>(*i);
  }

  bool boolean(const std::string& key, bool def) {
    auto* n = get(key);
    if (!n) return def;
    auto b = n->value_exact<bool>();
    if (!b) fail(n, key, "expected true or false");
    return *b;
  }

  std::string string(const std::string& key, const std::string& def, const std::set<std::string>& choices = {}) {
    auto* n = get(key);
    if (!n) return def;
    auto s = n->value_exact<std::string>();
    if (!s) fail(n, key, "expected a string");
    if (!choices.empty() && !choices.count(*s)) {
      std::string list;
      for (auto& c : choices) list += (list.empty() ? "" : ", ") + c;
      fail(n, key, "must be one of: " + list);
    }
    return *s;
  }

  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& def) {
    auto* n = get(key);
    if (!n) return def;
    auto* arr = n->as_array();
    if (!arr) fail(n, key, "expected an array of strings");
    std::vector<std::string> out;
    for (auto& e : *arr) {
      auto s = e.value_exact<std::string>();
      if (!s) fail(&e, key, "expected an array of strings");
      out.push_back(*s);
    }
    return out;
  }

  std::vector<std::uint64_t> integers(const std::string& key, const std::vector<std::uint64_t>& def, std::uint64_t min,
                                      std::uint64_t max, const std::string& what) {
    auto* n = get(key);
    if (!n) return def;
    auto* arr = n->as_array();
    if (!arr) fail(n, key, "expected an array of " + what);
    std::vector<std::uint64_t> out;
    for (auto& e : *arr) {
      auto i = e.value_exact<int64_t>();
      if (!i || *i < 0 || static_cast<std::uint64_t>(*i) < min || static_cast<std::uint64_t>(*i) > max)
        fail(&e, key, "expected " + what + " " + std::to_string(min) + "-" + std::to_string(max));
      out.push_back(static_cast<std::uint64_t>(*i));
    }
    return out;
  }

  NetworkList networks(const std::string& key, const std::vector<std::string>& def) {
    auto* n = get(key);
    auto texts = strings(key, def);
    std::size_t bad = 0;
    auto list = NetworkList::parse(texts, &bad);
    if (!list) fail(n && n->as_array() ? n->as_array()->get(bad) : n, key, "not a network: \"" + texts[bad] + "\"");
    return *list;
  }

  std::vector<Endpoint> endpoints(const std::string& key, const std::vector<std::string>& def) {
    auto* n = get(key);
    auto texts = strings(key, def);
    std::vector<Endpoint> out;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      auto e = Endpoint::parse(texts[i]);
      sockaddr_storage ss;
      socklen_t len;
      if (!e || !e->to_sockaddr(&ss, &len))
        fail(n && n->as_array() ? n->as_array()->get(i) : n, key, "not an address:port: \"" + texts[i] + "\"");
      out.push_back(*e);
    }
    return out;
  }

  std::vector<ConfigTable> tables(const std::string& key, const std::string& bad_element) {
    std::vector<ConfigTable> out;
    auto* n = get(key);
    if (!n) return out;
    auto* arr = n->as_array();
    if (!arr) fail(n, key, "expected an array of tables");
    for (auto& e : *arr) {
      if (!e.as_table()) fail(&e, key, bad_element);
      out.emplace_back(std::make_shared<Impl>(e.as_table(), name_ + "." + key, file_));
    }
    return out;
  }

  void check_unknown() const {
    if (!t_) return;
    // Report the first unknown key in file order (the table itself is sorted by name).
    const toml::node* first = nullptr;
    std::string first_key;
    for (auto& [k, v] : *t_) {
      std::string key(k.str());
      if (!seen_.count(key) && (!first || v.source().begin.line < first->source().begin.line)) {
        first = &v;
        first_key = key;
      }
    }
    if (first) fail(first, first_key, "unknown key");
  }

  static std::string fmt(double d) {
    std::ostringstream o;
    o << d;
    return o.str();
  }
  const toml::table* t_;
  std::string name_;
  std::string file_;
  std::set<std::string> seen_;
};

ConfigTable::ConfigTable(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
const std::string& ConfigTable::name() const { return impl_->name_; }
double ConfigTable::number(const std::string& key, double def, double min, double max) {
  return impl_->number(key, def, min, max);
}
std::uint64_t ConfigTable::integer(const std::string& key, std::uint64_t def, std::uint64_t min, std::uint64_t max) {
  return impl_->integer(key, def, min, max);
}
bool ConfigTable::boolean(const std::string& key, bool def) { return impl_->boolean(key, def); }
std::string ConfigTable::string(const std::string& key, const std::string& def, const std::set<std::string>& choices) {
  return impl_->string(key, def, choices);
}
std::vector<std::string> ConfigTable::strings(const std::string& key, const std::vector<std::string>& def) {
  return impl_->strings(key, def);
}
NetworkList ConfigTable::networks(const std::string& key, const std::vector<std::string>& def) {
  return impl_->networks(key, def);
}
std::vector<Endpoint> ConfigTable::endpoints(const std::string& key, const std::vector<std::string>& def) {
  return impl_->endpoints(key, def);
}
std::vector<std::uint64_t> ConfigTable::integers(const std::string& key, const std::vector<std::uint64_t>& def,
                                                  std::uint64_t min, std::uint64_t max, const std::string& what) {
  return impl_->integers(key, def, min, max, what);
}
std::vector<ConfigTable> ConfigTable::tables(const std::string& key, const std::string& bad_element) {
  return impl_->tables(key, bad_element);
}
void ConfigTable::fail(const std::string& key, const std::string& why) const {
  impl_->fail(impl_->t_ ? impl_->t_->get(key) : nullptr, key, why);
}
void ConfigTable::fail(const std::string& key, std::size_t index, const std::string& why) const {
  const toml::node* n = impl_->t_ ? impl_->t_->get(key) : nullptr;
  const toml::node* element = n && n->as_array() ? n->as_array()->get(index) : nullptr;
  impl_->fail(element ? element : n, key, why);
}
void ConfigTable::check_unknown() const { impl_->check_unknown(); }

namespace {

struct RegisteredSection {
  std::string name;
  ConfigSectionParser parse;
};

// Constructed on first use (no static-initialisation order to get wrong); written only by
// register_config_section() before any parse.
std::vector<RegisteredSection>& registered_sections() {
  static std::vector<RegisteredSection> sections;
  return sections;
}

RegisteredSection* registered(std::string_view name) {
  for (auto& r : registered_sections())
    if (r.name == name) return &r;
  return nullptr;
}

// Parsed here, by core.
const std::set<std::string> kCoreSections = {"server", "log"};
// Declared in Config for a module that parses them (config_section.hpp).
const std::set<std::string> kModuleSections = {"proxy", "origin", "intercept", "acl", "http_cache", "cache", "dns", "admin", "control", "auth", "pac", "dhcp", "snmp", "sntp", "ftp"};

// What to do with a module's section that this program did not register (config_section.hpp).
enum class Unregistered { kError, kSkip };

void parse_server(ConfigTable& s, Config::Server& server) {
  server.workers = static_cast<unsigned>(s.integer("workers", 0, 0, 256));
  server.name = s.string("name", "outpost");
  if (server.name.empty() || server.name.find_first_of(" \t\r\n,;") != std::string::npos)
    s.fail("name", "must be a non-empty token without spaces");
  server.shutdown_grace = s.number("shutdown_grace", 10, 0, 3600);
  s.check_unknown();
}

void parse_log(ConfigTable& s, Config::Log& log) {
  log.level = s.string("level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"});
  log.file = s.string("file", "");
  log.access_log = s.string("access_log", "-");
  s.check_unknown();
}

Config parse_config(std::string_view text, const std::string& source_name, Unregistered unregistered) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source_name, static_cast<unsigned>(e.source().begin.line), std::string(e.description()));
  }
  // The first top-level entry (in file order) that cannot be read is the error.
  auto problem = [&](const std::string& name, const toml::node& v) -> std::string {
    bool read = kCoreSections.count(name) || registered(name);
    if (!read && !kModuleSections.count(name)) return "unknown section or key: " + name;
    if (!v.is_table()) return name + ": expected a table";
    if (!read && unregistered == Unregistered::kError) return "[" + name + "]: this program does not read this section";
    return "";
  };
  const toml::node* bad = nullptr;
  std::string bad_reason;
  for (auto& [k, v] : root) {
    if (bad && v.source().begin.line >= bad->source().begin.line) continue;
    if (auto why = problem(std::string(k.str()), v); !why.empty()) {
      bad = &v;
      bad_reason = why;
    }
  }
  if (bad) throw ConfigError(source_name, static_cast<unsigned>(bad->source().begin.line), bad_reason);

  auto table = [&](const std::string& name) {
    return ConfigTable(std::make_shared<ConfigTable::Impl>(root.get_as<toml::table>(name), name, source_name));
  };
  Config c;
  c.source = source_name;
  auto server = table("server");
  parse_server(server, c.server);
  auto log = table("log");
  parse_log(log, c.log);
  for (auto& r : registered_sections()) {
    auto t = table(r.name);
    r.parse(t, c);
  }
  return c;
}

}  // namespace

void register_config_section(std::string_view name, ConfigSectionParser parse) {
  if (auto* r = registered(name))
    r->parse = parse;
  else
    registered_sections().push_back({std::string(name), parse});
}

Config Config::parse(std::string_view text, const std::string& source_name) {
  return parse_config(text, source_name, Unregistered::kError);
}

Config Config::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

// The embedded default names every module's section; a program reads those it registered.
Config Config::load_default() { return parse_config(default_config_text(), "<default>", Unregistered::kSkip); }

}  // namespace outpost
