#include "services/pac/pac_script.hpp"

#include <algorithm>
#include <charconv>

#include "core/config_section.hpp"
#include "core/net_address.hpp"

namespace outpost::pac {

namespace {

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

// "host:port", "[v6]:port": what may stand in a PROXY entry. Strict, because the text goes
// into a JavaScript string (a Host header is the client's).
bool valid_proxy_authority(std::string_view a) {
  if (a.empty() || a.size() > 300) return false;
  std::string_view host, port;
  if (a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos || close + 1 >= a.size() || a[close + 1] != ':') return false;
    if (!IpAddress::parse(a.substr(1, close - 1))) return false;
    port = a.substr(close + 2);
  } else {
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) return false;
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  return ec == std::errc() && end == port.data() + port.size() && p > 0 && p < 65536;
}

bool valid_domain_pattern(std::string_view p) {
  if (p.starts_with("*.")) p.remove_prefix(2);
  else if (p.starts_with(".")) p.remove_prefix(1);
  return !p.empty() && p.size() < 254 && p.front() != '.' && std::all_of(p.begin(), p.end(), host_char);
}

void parse_section(ConfigTable& s, Config& config) {
  Config::Pac& p = config.pac;
  p.enabled = s.boolean("enabled", false);
  p.proxies = s.strings("proxies", {});
  for (std::size_t i = 0; i < p.proxies.size(); ++i)
    if (!valid_proxy_authority(p.proxies[i])) s.fail("proxies", i, "not host:port: \"" + p.proxies[i] + "\"");
  p.direct_domains = s.strings("direct_domains", {});
  for (std::size_t i = 0; i < p.direct_domains.size(); ++i)
    if (!valid_domain_pattern(p.direct_domains[i]))
      s.fail("direct_domains", i, "not a domain pattern: \"" + p.direct_domains[i] + "\"");
  p.direct_networks =
      s.strings("direct_networks", {"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"});
  for (std::size_t i = 0; i < p.direct_networks.size(); ++i)
    if (!Cidr::parse(p.direct_networks[i]))
      s.fail("direct_networks", i, "not a network (address/prefix): \"" + p.direct_networks[i] + "\"");
  p.direct_plain_hosts = s.boolean("direct_plain_hosts", true);
  p.resolve_names = s.boolean("resolve_names", false);
  p.fallback_direct = s.boolean("fallback_direct", false);
  s.check_unknown();
}

// JavaScript string literal of text we validated (no quotes or backslashes can be in it).
std::string js_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string ipv4_mask(unsigned prefix) {
  std::uint32_t m = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return std::to_string(m >> 24) + "." + std::to_string((m >> 16) & 255) + "." + std::to_string((m >> 8) & 255) + "." +
         std::to_string(m & 255);
}

std::string proxy_for(const Config& config, std::string_view host_header, bool on_proxy_port) {
  if (on_proxy_port && valid_proxy_authority(host_header)) return std::string(host_header);
  std::uint16_t port = config.proxy.listen.empty() ? 3128 : config.proxy.listen.front().port;
  std::string host;
  if (!host_header.empty()) {
    // The Host's host part (without its port, if any).
    std::string_view h = host_header;
    if (h.front() == '[') h = h.substr(0, h.find(']') + 1);
    else h = h.substr(0, h.rfind(':') == std::string_view::npos ? h.size() : h.rfind(':'));
    host = std::string(h);
  }
  std::string candidate = host + ":" + std::to_string(port);
  if (!host.empty() && valid_proxy_authority(candidate)) return candidate;
  if (config.proxy.listen.empty()) return "127.0.0.1:3128";
  const auto& ep = config.proxy.listen.front();
  std::string lh = ep.host;
  if (lh == "0.0.0.0" || lh == "::" || lh.empty()) lh = "127.0.0.1";
  if (lh.find(':') != std::string::npos) lh = "[" + lh + "]";
  return lh + ":" + std::to_string(ep.port);
}

}  // namespace

void register_config_section() { outpost::register_config_section("pac", &parse_section); }

bool is_pac_path(std::string_view path) { return path == "/proxy.pac" || path == "/wpad.dat"; }

std::string make_script(const Config& config, std::string_view host_header, bool on_proxy_port) {
  const Config::Pac& p = config.pac;
  std::string proxies;
  if (p.proxies.empty()) proxies = "PROXY " + proxy_for(config, host_header, on_proxy_port);
  for (const auto& px : p.proxies) proxies += (proxies.empty() ? "PROXY " : "; PROXY ") + px;
  if (p.fallback_direct) proxies += "; DIRECT";

  std::string v4, v6;
  for (const auto& n : p.direct_networks) {
    auto slash = n.find('/');
    std::string addr = n.substr(0, slash);
    unsigned prefix = slash == std::string::npos ? 0 : static_cast<unsigned>(std::stoul(n.substr(slash + 1)));
    if (addr.find(':') == std::string::npos) {
      if (slash == std::string::npos) prefix = 32;
      v4 += "    if (isInNet(ip, " + js_string(addr) + ", " + js_string(ipv4_mask(prefix)) + ")) return true;\n";
    } else {
      v6 += "  if (typeof isInNetEx == \"function\" && isInNetEx(ip, " + js_string(n) + ")) return true;\n";
    }
  }

  std::string s;
  s += "// Proxy auto-config generated by Outpost from its [pac] section.\n";
  s += "function outpostLocalAddress(ip) {\n";
  s += "  if (ip.indexOf(\":\") < 0) {\n" + v4 + "    return false;\n  }\n";
  s += v6;
  s += "  return false;\n}\n\n";
  s += "function FindProxyForURL(url, host) {\n";
  s += "  host = host.toLowerCase();\n";
  s += "  if (host.charAt(0) == \"[\") host = host.substring(1, host.length - 1);\n";
  if (p.direct_plain_hosts) s += "  if (isPlainHostName(host)) return \"DIRECT\";\n";
  if (!p.direct_domains.empty()) {
    s += "  var domains = [";
    for (std::size_t i = 0; i < p.direct_domains.size(); ++i) {
      std::string d = p.direct_domains[i];
      std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (d.starts_with("*.")) d.erase(0, 1);
      s += (i ? ", " : "") + js_string(d);
    }
    s += "];\n";
    s += "  for (var i = 0; i < domains.length; i++) {\n";
    s += "    var d = domains[i];\n";
    s += "    if (d.charAt(0) == \".\" ? (host == d.substring(1) || dnsDomainIs(host, d)) : host == d) return \"DIRECT\";\n";
    s += "  }\n";
  }
  if (!p.direct_networks.empty()) {
    s += "  var literal = /^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host) || host.indexOf(\":\") >= 0;\n";
    s += "  if (literal && outpostLocalAddress(host)) return \"DIRECT\";\n";
    if (p.resolve_names) {
      s += "  if (!literal) {\n";
      s += "    var ip = dnsResolve(host);\n";
      s += "    if (ip && outpostLocalAddress(ip)) return \"DIRECT\";\n";
      s += "  }\n";
    }
  }
  s += "  return " + js_string(proxies) + ";\n";
  s += "}\n";
  return s;
}

std::optional<OwnPage> page(const Config& config, std::string_view path, std::string_view host_header,
                            bool on_proxy_port) {
  if (!config.pac.enabled || !is_pac_path(path)) return std::nullopt;
  return OwnPage{std::string(kContentType), make_script(config, host_header, on_proxy_port)};
}

}  // namespace outpost::pac
