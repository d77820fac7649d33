#include "core/config.hpp"

#include "core/config_section.hpp"

#include <fstream>
#include <regex>
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

  std::vector<ConfigTable> tables(const std::string& key) {
    std::vector<ConfigTable> out;
    auto* n = get(key);
    if (!n) return out;
    auto* arr = n->as_array();
    if (!arr) fail(n, key, "expected an array of tables");
    for (auto& e : *arr) {
      if (!e.as_table()) fail(&e, key, "expected an array of tables");
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
std::vector<ConfigTable> ConfigTable::tables(const std::string& key) { return impl_->tables(key); }
void ConfigTable::fail(const std::string& key, const std::string& why) const {
  impl_->fail(impl_->t_ ? impl_->t_->get(key) : nullptr, key, why);
}
void ConfigTable::check_unknown() const { impl_->check_unknown(); }

namespace {

using Section = ConfigTable::Impl;

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

// Parsed by config.cpp itself (Config::parse).
const std::set<std::string> kCoreSections = {"server", "log", "proxy", "origin", "acl", "cache", "http_cache"};
// Declared in Config for a module that parses them (config_section.hpp).
const std::set<std::string> kModuleSections = {"dns", "admin"};

void check_host_patterns(Section& s, const toml::node* n, const std::string& key, const std::vector<std::string>& pats) {
  for (std::size_t i = 0; i < pats.size(); ++i) {
    const auto& p = pats[i];
    bool ok = !p.empty() && p.size() < 256;
    for (char c : p)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*' || c == '_' || c == ':')) ok = false;
    auto star = p.find('*');
    if (star != std::string::npos && (star != 0 || p.size() < 3 || p[1] != '.' || p.find('*', 1) != std::string::npos)) ok = false;
    if (!ok) s.fail(n && n->as_array() ? n->as_array()->get(i) : n, key, "not a host-name pattern: \"" + p + "\"");
  }
}

}  // namespace

void register_config_section(std::string_view name, ConfigSectionParser parse) {
  auto& sections = registered_sections();
  for (auto& s : sections)
    if (s.name == name) {
      s.parse = parse;
      return;
    }
  sections.push_back({std::string(name), parse});
}

void parse_http_cache(const toml::table* t, const std::string& source_name, Config::HttpCache& hc);

Config Config::parse(std::string_view text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source_name, static_cast<unsigned>(e.source().begin.line), std::string(e.description()));
  }
  Config c;
  c.source = source_name;
  auto known = [](const std::string& name) {
    if (kCoreSections.count(name) || kModuleSections.count(name)) return true;
    for (auto& r : registered_sections())
      if (r.name == name) return true;
    return false;
  };
  const toml::node* bad = nullptr;
  std::string bad_key;
  for (auto& [k, v] : root) {
    std::string key(k.str());
    if ((!known(key) || !v.is_table()) && (!bad || v.source().begin.line < bad->source().begin.line)) {
      bad = &v;
      bad_key = key;
    }
  }
  if (bad)
    throw ConfigError(source_name, static_cast<unsigned>(bad->source().begin.line),
                      known(bad_key) ? bad_key + ": expected a table" : "unknown section or key: " + bad_key);
  auto table = [&](const std::string& name) { return root.get_as<toml::table>(name); };

  {
    Section s(table("server"), "server", source_name);
    c.server.workers = static_cast<unsigned>(s.integer("workers", 0, 0, 256));
    c.server.name = s.string("name", "outpost");
    if (c.server.name.empty() || c.server.name.find_first_of(" \t\r\n,;") != std::string::npos)
      s.fail(s.get("name"), "name", "must be a non-empty token without spaces");
    c.server.shutdown_grace = s.number("shutdown_grace", 10, 0, 3600);
    s.check_unknown();
  }
  {
    Section s(table("log"), "log", source_name);
    c.log.level = s.string("level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"});
    c.log.file = s.string("file", "");
    c.log.access_log = s.string("access_log", "-");
    s.check_unknown();
  }
  {
    Section s(table("proxy"), "proxy", source_name);
    c.proxy.listen = s.endpoints("listen", {"127.0.0.1:3128"});
    c.proxy.max_request_line = s.integer("max_request_line", 65536, 256, 1 << 24);
    c.proxy.max_header_size = s.integer("max_header_size", 65536, 1024, 1 << 24);
    c.proxy.max_request_body = s.integer("max_request_body", 0, 0, INT64_MAX);
    c.proxy.header_timeout = s.number("header_timeout", 30, 0.01, 86400);
    c.proxy.body_timeout = s.number("body_timeout", 60, 0.01, 86400);
    c.proxy.idle_timeout = s.number("idle_timeout", 120, 0.01, 86400);
    c.proxy.write_timeout = s.number("write_timeout", 900, 0.01, 86400);
    c.proxy.max_connections_per_worker = static_cast<unsigned>(s.integer("max_connections_per_worker", 0, 0, 1 << 20));
    c.proxy.forwarded_for = s.string("forwarded_for", "on", {"on", "off", "delete", "transparent"});
    c.proxy.via = s.boolean("via", true);
    c.proxy.tunnel_idle_timeout = s.number("tunnel_idle_timeout", 300, 0.01, 86400 * 7);
    c.proxy.resolver = s.string("resolver", "dns", {"dns", "system"});
    s.check_unknown();
  }
  {
    Section s(table("origin"), "origin", source_name);
    c.origin.connect_timeout = s.number("connect_timeout", 10, 0.01, 3600);
    c.origin.read_timeout = s.number("read_timeout", 60, 0.01, 86400);
    c.origin.max_idle_per_host = static_cast<unsigned>(s.integer("max_idle_per_host", 256, 0, 100000));
    c.origin.idle_timeout = s.number("idle_timeout", 60, 0.01, 86400);
    s.check_unknown();
  }
  {
    Section s(table("acl"), "acl", source_name);
    c.acl.allow_clients = s.networks("allow_clients", {"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"});
    if (auto* n = s.get("connect_ports")) {
      auto* arr = n->as_array();
      if (!arr) s.fail(n, "connect_ports", "expected an array of port numbers");
      for (auto& e : *arr) {
        auto p = e.value_exact<int64_t>();
        if (!p || *p < 1 || *p > 65535) s.fail(&e, "connect_ports", "expected port numbers 1-65535");
        c.acl.connect_ports.push_back(static_cast<std::uint16_t>(*p));
      }
    } else {
      c.acl.connect_ports = {443};
    }
    c.acl.allow_hosts = s.strings("allow_hosts", {});
    check_host_patterns(s, s.get("allow_hosts"), "allow_hosts", c.acl.allow_hosts);
    c.acl.deny_hosts = s.strings("deny_hosts", {});
    check_host_patterns(s, s.get("deny_hosts"), "deny_hosts", c.acl.deny_hosts);
    c.acl.allow_networks = s.networks("allow_networks", {});
    c.acl.deny_networks = s.networks("deny_networks", {});
    c.acl.deny_link_local = s.boolean("deny_link_local", true);
    c.acl.protect_local_services = s.boolean("protect_local_services", true);
    c.acl.purge_clients = s.networks("purge_clients", {"127.0.0.0/8", "::1/128"});
    s.check_unknown();
  }
  {
    Section s(table("cache"), "cache", source_name);
    c.cache.memory_size = s.integer("memory_size", 256ull << 20, 1 << 20, 1ull << 44);
    c.cache.disk_dir = s.string("disk_dir", "");
    c.cache.segment_size = s.integer("segment_size", 16ull << 20, 1 << 20, 1ull << 30);
    c.cache.disk_size = s.integer("disk_size", 1ull << 30, 0, 1ull << 50);
    c.cache.max_object_size = s.integer("max_object_size", 8ull << 20, 1, 1ull << 40);
    if (c.cache.max_object_size > c.cache.memory_size)
      s.fail(s.get("max_object_size"), "max_object_size", "must not exceed memory_size");
    if (!c.cache.disk_dir.empty()) {
      if (c.cache.disk_size < 2 * c.cache.segment_size)
        s.fail(s.get("disk_size"), "disk_size", "must be at least two segments (2 * segment_size)");
      if (c.cache.max_object_size > c.cache.segment_size / 2)
        s.fail(s.get("max_object_size"), "max_object_size", "must not exceed half of segment_size when disk_dir is set");
    }
    s.check_unknown();
  }
  parse_http_cache(table("http_cache"), source_name, c.http_cache);
  for (auto& r : registered_sections()) {
    ConfigTable t(std::make_shared<ConfigTable::Impl>(table(r.name), r.name, source_name));
    r.parse(t, c);
  }
  return c;
}

void parse_http_cache(const toml::table* t, const std::string& source_name, Config::HttpCache& hc) {
  Section s(t, "http_cache", source_name);
  hc.enabled = s.boolean("enabled", true);
  hc.heuristic_percent = s.number("heuristic_percent", 10, 0, 100);
  hc.heuristic_max = s.number("heuristic_max", 86400, 0, 86400.0 * 365);
  hc.store_set_cookie = s.boolean("store_set_cookie", false);
  if (auto* n = s.get("refresh_patterns")) {
    auto* arr = n->as_array();
    if (!arr) s.fail(n, "refresh_patterns", "expected an array of tables");
    for (auto& e : *arr) {
      auto* rt = e.as_table();
      if (!rt) s.fail(&e, "refresh_patterns", "expected { pattern = \"...\", min = S, percent = P, max = S }");
      Section r(rt, "http_cache.refresh_patterns", source_name);
      Config::HttpCache::RefreshPattern p;
      p.pattern = r.string("pattern", "");
      p.ignore_case = r.boolean("ignore_case", false);
      p.min = r.number("min", 0, 0, 86400.0 * 365);
      p.percent = r.number("percent", 10, 0, 1000);
      p.max = r.number("max", 86400, 0, 86400.0 * 365);
      if (p.pattern.empty()) r.fail(rt, "pattern", "is required");
      try {
        std::regex re(p.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& ex) {
        r.fail(r.get("pattern"), "pattern", std::string("not a valid regular expression: ") + ex.what());
      }
      if (p.max < p.min) r.fail(r.get("max"), "max", "must not be less than min");
      r.check_unknown();
      hc.refresh_patterns.push_back(p);
    }
  }
  s.check_unknown();
}

Config Config::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Config Config::load_default() { return parse(default_config_text(), "<default>"); }

}  // namespace outpost
