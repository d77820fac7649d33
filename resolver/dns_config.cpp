#include "resolver/dns_config.hpp"

#include "core/config_section.hpp"
#include "resolver/hints.hpp"
#include "resolver/trust_anchors.hpp"
#include "resolver/validator.hpp"
#include "resolver/zone_file.hpp"

namespace outpost::dns {

namespace {

bool is_zone_name(const std::string& n) {
  if (n.empty() || n.size() > 254) return false;
  if (n == ".") return true;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  return n.find("..") == std::string::npos && n.front() != '.';
}

// local_zones and forward_zones are arrays of inline tables, each checked as strictly as a
// section of its own.
void parse_section(ConfigTable& s, Config& config) {
  Config::Dns& d = config.dns;
  // Loopback only by default: recursion is allowed to private networks too (allow_recursion),
  // but nothing outside this host can reach the listener unless an operator opens one.
  d.listen = s.endpoints("listen", {"127.0.0.1:53"});
  d.allow_recursion = s.networks("allow_recursion", {"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"});
  d.hints = s.string("hints", "");
  d.qname_minimisation = s.boolean("qname_minimisation", true);
  d.qname_minimisation_strict = s.boolean("qname_minimisation_strict", false);
  d.min_ttl = static_cast<std::uint32_t>(s.integer("min_ttl", 0, 0, 86400));
  d.max_ttl = static_cast<std::uint32_t>(s.integer("max_ttl", 86400, 1, 604800));
  if (d.min_ttl > d.max_ttl) s.fail("min_ttl", "must not exceed max_ttl");
  d.negative_max_ttl = static_cast<std::uint32_t>(s.integer("negative_max_ttl", 3600, 0, 86400));
  d.servfail_ttl = static_cast<std::uint32_t>(s.integer("servfail_ttl", 5, 0, 300));
  d.cache_entries = s.integer("cache_entries", 1000000, 16, 1ull << 32);
  d.serve_stale = s.boolean("serve_stale", false);
  d.stale_answer_ttl = static_cast<std::uint32_t>(s.integer("stale_answer_ttl", 30, 1, 3600));
  d.stale_max_age = static_cast<std::uint32_t>(s.integer("stale_max_age", 86400, 1, 604800));
  d.stale_client_timeout = static_cast<std::uint32_t>(s.integer("stale_client_timeout", 1800, 0, 10000));
  d.prefetch = s.boolean("prefetch", false);
  d.use_0x20 = s.boolean("use_0x20", false);
  d.dnssec_validation = s.boolean("dnssec_validation", true);
  d.trust_anchor_file = s.string("trust_anchor_file", "");
  d.aggressive_nsec = s.boolean("aggressive_nsec", true);
  d.auto_trust_anchor_file = s.string("auto_trust_anchor_file", "");
  d.auto_trust_hold_down = static_cast<std::uint32_t>(s.integer("auto_trust_hold_down", 30 * 86400, 0, 365 * 86400));
  d.auto_trust_probe_interval = static_cast<std::uint32_t>(s.integer("auto_trust_probe_interval", 0, 0, 15 * 86400));
  d.domain_insecure = s.strings("domain_insecure", {});
  for (auto& n : d.domain_insecure)
    if (!is_zone_name(n)) s.fail("domain_insecure", "expected zone names, got \"" + n + "\"");
  for (auto& z : s.tables("local_zones")) {
    Config::Dns::LocalZone lz{z.string("name", ""), z.string("file", "")};
    if (!is_zone_name(lz.name)) z.fail("name", "expected a zone name");
    if (lz.file.empty()) z.fail("file", "expected a zone file path");
    z.check_unknown();
    d.local_zones.push_back(lz);
  }
  for (auto& f : s.tables("forward_zones")) {
    Config::Dns::ForwardZone fz{f.string("name", ""), f.endpoints("servers", {})};
    if (!is_zone_name(fz.name)) f.fail("name", "expected a zone name (\".\" for everything)");
    if (fz.servers.empty()) f.fail("servers", "expected at least one address:port");
    f.check_unknown();
    d.forward_zones.push_back(fz);
  }
  s.check_unknown();
}

}  // namespace

void register_config_section() { outpost::register_config_section("dns", &parse_section); }

std::optional<ResolverSettings> load_resolver_settings(const Config::Dns& cfg, std::string* error,
                                                       const std::string& cache_dir) {
  ResolverSettings out;
  ResolverConfig& rc = out.config;
  if (cfg.hints.empty()) {
    rc.root_hints = builtin_root_hints();
  } else {
    auto h = load_root_hints_file(cfg.hints, error);
    if (!h) return std::nullopt;
    rc.root_hints = *h;
  }
  rc.qname_minimisation = cfg.qname_minimisation;
  rc.qname_minimisation_strict = cfg.qname_minimisation_strict;
  rc.serve_stale = cfg.serve_stale;
  rc.stale_answer_ttl = cfg.stale_answer_ttl;
  rc.stale_client_timeout_ms = cfg.stale_client_timeout;
  rc.prefetch = cfg.prefetch;
  rc.use_0x20 = cfg.use_0x20;
  rc.dnssec_validation = cfg.dnssec_validation;
  rc.aggressive_nsec = cfg.aggressive_nsec;
  for (auto& n : cfg.domain_insecure) {
    auto name = Name::from_text(n);
    if (!name) {
      *error = "dns.domain_insecure: bad name " + n;
      return std::nullopt;
    }
    rc.domain_insecure.push_back(*name);
  }
  if (cfg.trust_anchor_file.empty()) {
    rc.trust_anchors = builtin_trust_anchors();
  } else {
    ZoneFileError ze;
    auto rrs = load_zone_file(cfg.trust_anchor_file, Name::root(), &ze);
    if (!rrs) {
      *error = "dns.trust_anchor_file: " + cfg.trust_anchor_file + ":" + std::to_string(ze.line) + ": " + ze.reason;
      return std::nullopt;
    }
    for (auto& rr : *rrs)
      if (rr.type == type::DS || rr.type == type::DNSKEY) rc.trust_anchors.push_back(rr);
    if (rc.trust_anchors.empty()) {
      *error = "dns.trust_anchor_file: " + cfg.trust_anchor_file + ": no DS or DNSKEY record";
      return std::nullopt;
    }
  }
  // RFC 5011: the built-in anchors are always tracked (their state in the cache directory,
  // else in memory); anchors from trust_anchor_file when auto_trust_anchor_file is given.
  std::string state_file = cfg.auto_trust_anchor_file;
  if (state_file.empty() && cfg.trust_anchor_file.empty() && !cache_dir.empty()) state_file = cache_dir + "/dns-trust-anchors";
  if (cfg.dnssec_validation && (cfg.trust_anchor_file.empty() || !cfg.auto_trust_anchor_file.empty())) {
    AutoTrustSettings ats{state_file, cfg.auto_trust_hold_down, cfg.auto_trust_probe_interval};
    rc.anchor_tracker = std::make_shared<TrustAnchorTracker>(rc.trust_anchors, ats);
    std::string why;
    if (!rc.anchor_tracker->load(&why)) {
      *error = "dns.auto_trust_anchor_file: " + why;
      return std::nullopt;
    }
  }
  for (auto& f : cfg.forward_zones) {
    ForwardZone fz;
    auto zone = Name::from_text(f.name);
    if (!zone) {
      *error = "dns.forward_zones: bad zone name " + f.name;
      return std::nullopt;
    }
    fz.zone = *zone;
    for (auto& ep : f.servers) {
      auto ip = IpAddress::parse(ep.host);
      if (!ip) {
        *error = "dns.forward_zones: not an IP address: " + ep.host;
        return std::nullopt;
      }
      // One port per forward zone: the first server's (they normally share 53).
      if (fz.servers.empty()) fz.port = ep.port;
      fz.servers.push_back(*ip);
    }
    rc.forward_zones.push_back(std::move(fz));
  }
  if (!cfg.local_zones.empty()) {
    auto local = std::make_shared<LocalZones>();
    for (auto& z : cfg.local_zones) {
      auto apex = Name::from_text(z.name);
      if (!apex) {
        *error = "dns.local_zones: bad zone name " + z.name;
        return std::nullopt;
      }
      if (!local->load_file(z.file, *apex, error)) return std::nullopt;
    }
    out.local_zones = std::move(local);
  }
  // Expired entries are kept only while stale answers may be given.
  out.limits = CacheLimits{cfg.min_ttl, cfg.max_ttl, cfg.servfail_ttl, cfg.negative_max_ttl,
                           cfg.serve_stale ? cfg.stale_max_age : 0};
  return out;
}

std::vector<std::string> restart_needed(const Config::Dns& running, const Config::Dns& fresh) {
  std::vector<std::string> keys;
  bool listen_changed = running.listen.size() != fresh.listen.size();
  for (std::size_t i = 0; !listen_changed && i < fresh.listen.size(); ++i)
    listen_changed = running.listen[i].to_string() != fresh.listen[i].to_string();
  if (listen_changed) keys.push_back("dns.listen");
  if (running.cache_entries != fresh.cache_entries) keys.push_back("dns.cache_entries");
  return keys;
}

std::shared_ptr<ResolverContext> make_resolver_context(const Config::Dns& cfg, std::string* error,
                                                       std::shared_ptr<cache::Store> store, const std::string& cache_dir) {
  auto s = load_resolver_settings(cfg, error, cache_dir);
  if (!s) return nullptr;
  return ResolverContext::create(std::move(s->config), s->limits, std::move(s->local_zones), std::move(store),
                                 cfg.cache_entries);
}

DnsServerOptions make_server_options(const Config::Dns& cfg) {
  DnsServerOptions o;
  o.listen = cfg.listen;
  o.allow_recursion = cfg.allow_recursion;
  return o;
}

}  // namespace outpost::dns
