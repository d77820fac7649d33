#include "proxy/proxy_config.hpp"

#include <cctype>
#include <fstream>
#include <regex>

#include "core/config_section.hpp"
#include "proxy/http_chars.hpp"
#include "tls/leaf_cache.hpp"
#include "tls/tls_context.hpp"

namespace outpost::proxy {

namespace {

void parse_proxy(ConfigTable& s, Config& config) {
  Config::Proxy& p = config.proxy;
  p.listen = s.endpoints("listen", {"127.0.0.1:3128"});
  p.max_request_line = s.integer("max_request_line", 65536, 256, 1 << 24);
  p.max_header_size = s.integer("max_header_size", 65536, 1024, 1 << 24);
  p.max_request_body = s.integer("max_request_body", 0, 0, INT64_MAX);
  p.header_timeout = s.number("header_timeout", 30, 0.01, 86400);
  p.body_timeout = s.number("body_timeout", 60, 0.01, 86400);
  p.idle_timeout = s.number("idle_timeout", 120, 0.01, 86400);
  p.write_timeout = s.number("write_timeout", 900, 0.01, 86400);
  p.max_connections_per_worker = static_cast<unsigned>(s.integer("max_connections_per_worker", 0, 0, 1 << 20));
  p.forwarded_for = s.string("forwarded_for", "on", {"on", "off", "delete", "transparent"});
  p.via = s.boolean("via", true);
  p.tunnel_idle_timeout = s.number("tunnel_idle_timeout", 300, 0.01, 86400 * 7);
  p.resolver = s.string("resolver", "dns", {"dns", "system"});
  p.tls_listen = s.endpoints("tls_listen", {});
  p.tls_certificate = s.string("tls_certificate", "");
  p.tls_key = s.string("tls_key", "");
  p.intercept_listen = s.endpoints("intercept_listen", {});
  p.intercept_tls_listen = s.endpoints("intercept_tls_listen", {});
  p.intercept_mode = s.string("intercept_mode", "redirect", {"redirect", "tproxy"});
  if (!p.tls_listen.empty()) {
    if (p.tls_certificate.empty()) s.fail("tls_certificate", "tls_listen needs a certificate (PEM file)");
    if (p.tls_key.empty()) s.fail("tls_key", "tls_listen needs a private key (PEM file)");
    std::string why;
    if (!tls::ServerContext::create({p.tls_certificate, p.tls_key}, &why))
      s.fail("tls_certificate", "cannot use " + p.tls_certificate + " with " + p.tls_key + ": " + why);
  }
  s.check_unknown();
}

void parse_origin(ConfigTable& s, Config& config) {
  Config::Origin& o = config.origin;
  o.connect_timeout = s.number("connect_timeout", 10, 0.01, 3600);
  o.read_timeout = s.number("read_timeout", 60, 0.01, 86400);
  o.max_idle_per_host = static_cast<unsigned>(s.integer("max_idle_per_host", 256, 0, 100000));
  o.idle_timeout = s.number("idle_timeout", 60, 0.01, 86400);
  o.ca_file = s.string("ca_file", "");
  if (!o.ca_file.empty() && !std::ifstream(o.ca_file).good()) s.fail("ca_file", "cannot read " + o.ca_file);
  s.check_unknown();
}

// Host names, "*.suffix" or ".suffix" (destination_acl.hpp, HostPattern).
std::vector<std::string> host_patterns(ConfigTable& s, const std::string& key) {
  auto pats = s.strings(key, {});
  for (std::size_t i = 0; i < pats.size(); ++i) {
    const auto& p = pats[i];
    bool ok = !p.empty() && p.size() < 256;
    for (char c : p)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*' || c == '_' || c == ':')) ok = false;
    auto star = p.find('*');
    if (star != std::string::npos && (star != 0 || p.size() < 3 || p[1] != '.' || p.find('*', 1) != std::string::npos)) ok = false;
    if (!ok) s.fail(key, i, "not a host-name pattern: \"" + p + "\"");
  }
  return pats;
}

void parse_acl(ConfigTable& s, Config& config) {
  Config::Acl& a = config.acl;
  a.allow_clients = s.networks("allow_clients", {"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"});
  a.connect_ports.clear();
  for (auto port : s.integers("connect_ports", {443}, 1, 65535, "port numbers"))
    a.connect_ports.push_back(static_cast<std::uint16_t>(port));
  a.allow_hosts = host_patterns(s, "allow_hosts");
  a.deny_hosts = host_patterns(s, "deny_hosts");
  a.allow_networks = s.networks("allow_networks", {});
  a.deny_networks = s.networks("deny_networks", {});
  a.deny_link_local = s.boolean("deny_link_local", true);
  a.protect_local_services = s.boolean("protect_local_services", true);
  a.purge_clients = s.networks("purge_clients", {"127.0.0.0/8", "::1/128"});
  s.check_unknown();
}

void parse_intercept(ConfigTable& s, Config& config) {
  Config::Intercept& i = config.intercept;
  i.ca_certificate = s.string("ca_certificate", "");
  i.ca_key = s.string("ca_key", "");
  i.bump = host_patterns(s, "bump");
  i.splice = host_patterns(s, "splice");
  i.peek_timeout = s.number("peek_timeout", 10, 0.01, 3600);
  if (i.ca_certificate.empty() != i.ca_key.empty())
    s.fail(i.ca_key.empty() ? "ca_key" : "ca_certificate", "ca_certificate and ca_key go together");
  if (!i.bump.empty() && i.ca_certificate.empty())
    s.fail("bump", "interception needs a CA: set ca_certificate and ca_key (make them with `outpost ca init`)");
  if (!i.ca_certificate.empty()) {
    std::string why;
    if (!tls::LeafCache::load(i.ca_certificate, i.ca_key, &why)) s.fail("ca_certificate", why);
  }
  s.check_unknown();
}

void parse_http_cache(ConfigTable& s, Config& config) {
  Config::HttpCache& hc = config.http_cache;
  hc.enabled = s.boolean("enabled", true);
  hc.heuristic_percent = s.number("heuristic_percent", 10, 0, 100);
  hc.heuristic_max = s.number("heuristic_max", 86400, 0, 86400.0 * 365);
  hc.store_set_cookie = s.boolean("store_set_cookie", false);
  hc.max_variants = static_cast<unsigned>(s.integer("max_variants", 32, 0, 100000));
  hc.targeted_cache_control = s.string("targeted_cache_control", "");
  hc.range_offset_limit = s.integer("range_offset_limit", 0, 0, 1ull << 50);
  hc.range_max_parts = static_cast<unsigned>(s.integer("range_max_parts", 32, 1, 4096));
  hc.range_parts_percent = s.number("range_parts_percent", 25, 0, 100);
  for (char c : hc.targeted_cache_control)
    if (!http::is_tchar(static_cast<unsigned char>(c))) {
      s.fail("targeted_cache_control", "must be a header field name, e.g. \"CDN-Cache-Control\"");
      break;
    }
  for (auto& r : s.tables("refresh_patterns", "expected { pattern = \"...\", min = S, percent = P, max = S }")) {
    Config::HttpCache::RefreshPattern p;
    p.pattern = r.string("pattern", "");
    p.ignore_case = r.boolean("ignore_case", false);
    p.min = r.number("min", 0, 0, 86400.0 * 365);
    p.percent = r.number("percent", 10, 0, 1000);
    p.max = r.number("max", 86400, 0, 86400.0 * 365);
    if (p.pattern.empty()) r.fail("pattern", "is required");
    try {
      std::regex re(p.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& ex) {
      r.fail("pattern", std::string("not a valid regular expression: ") + ex.what());
    }
    if (p.max < p.min) r.fail("max", "must not be less than min");
    r.check_unknown();
    hc.refresh_patterns.push_back(p);
  }
  s.check_unknown();
}

}  // namespace

void register_config_sections() {
  register_config_section("proxy", &parse_proxy);
  register_config_section("origin", &parse_origin);
  register_config_section("acl", &parse_acl);
  register_config_section("intercept", &parse_intercept);
  register_config_section("http_cache", &parse_http_cache);
}

}  // namespace outpost::proxy
