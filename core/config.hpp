// Outpost configuration: parsed from TOML, validated strictly (unknown keys and bad
// values are errors that name the file, line and reason). Every section's values live here;
// core parses [server] and [log], a module its own sections (core/config_section.hpp).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/net_address.hpp"

namespace outpost {

struct ConfigError : std::runtime_error {
  ConfigError(std::string file, unsigned line, std::string reason);
  std::string file;
  unsigned line;
  std::string reason;
};

struct Config {
  struct Server {
    unsigned workers = 0;  // 0 = number of cores
    std::string name = "outpost";
    double shutdown_grace = 10;
  } server;

  struct Log {
    std::string level = "info";
    std::string file;
    std::string access_log = "-";
  } log;

  struct Proxy {
    std::vector<Endpoint> listen;
    std::uint64_t max_request_line = 65536;
    std::uint64_t max_header_size = 65536;
    std::uint64_t max_request_body = 0;
    double header_timeout = 30;
    double body_timeout = 60;
    double idle_timeout = 120;
    double write_timeout = 900;
    unsigned max_connections_per_worker = 0;  // 0: derived from the file descriptor limit (app/)
    std::string forwarded_for = "on";
    bool via = true;
    double tunnel_idle_timeout = 300;
    std::string resolver = "dns";  // "dns": the built-in recursive resolver; "system": getaddrinfo
    // The proxy over TLS (browsers' and curl's https:// proxy setting): listeners, and the
    // certificate chain and key they present (PEM; read again on SIGHUP).
    std::vector<Endpoint> tls_listen;
    std::string tls_certificate;
    std::string tls_key;
    // Transparent interception: listeners for plain-HTTP connections the kernel redirects to
    // Outpost (clients that know nothing of a proxy), and how the original destination is
    // found: "redirect" (NAT: iptables/nftables REDIRECT or DNAT, SO_ORIGINAL_DST) or
    // "tproxy" (TPROXY; the listeners get IP_TRANSPARENT).
    std::vector<Endpoint> intercept_listen;
    // The same for TLS (port 443 redirected, no CONNECT: Squid's `https_port intercept
    // ssl-bump`): the ClientHello is peeked at, then the connection is spliced to its
    // original destination or bumped by the [intercept] rules on its server name.
    std::vector<Endpoint> intercept_tls_listen;
    std::string intercept_mode = "redirect";  // for both kinds of intercept listener
  } proxy;

  struct Origin {
    double connect_timeout = 10;
    double read_timeout = 60;
    unsigned max_idle_per_host = 256;
    double idle_timeout = 60;
    // TLS to origins (https:// targets): the CA certificates that verify them (PEM); empty:
    // the system trust store.
    std::string ca_file;
  } origin;

  // HTTPS interception ("bump") of CONNECT tunnels and TLS-listener tunnels (proxy/intercept).
  // Off unless a CA is given and some destination is listed in `bump`.
  struct Intercept {
    std::string ca_certificate;  // PEM, made by `outpost ca init`
    std::string ca_key;
    std::vector<std::string> bump;    // host patterns (as acl.allow_hosts) and IP literals
    std::vector<std::string> splice;  // never bumped, even when `bump` matches too
    double peek_timeout = 10;         // seconds for the client's ClientHello
  } intercept;

  struct Acl {
    NetworkList allow_clients;
    std::vector<std::uint16_t> connect_ports;
    std::vector<std::string> allow_hosts;
    std::vector<std::string> deny_hosts;
    NetworkList allow_networks;
    NetworkList deny_networks;
    bool deny_link_local = true;         // 169.254.0.0/16, fe80::/10 and cloud metadata addresses
    bool protect_local_services = true;  // loopback destinations only for loopback clients
    NetworkList purge_clients;
  } acl;

  struct HttpCache {
    struct RefreshPattern {
      std::string pattern;  // ECMAScript regex searched in the URL
      bool ignore_case = false;
      double min = 0;       // seconds
      double percent = 10;  // of (Date - Last-Modified)
      double max = 86400;   // seconds
    };
    bool enabled = true;
    double heuristic_percent = 10;
    double heuristic_max = 86400;
    bool store_set_cookie = false;
    unsigned max_variants = 32;  // Vary variants stored per URL; 0 = no limit
    std::string targeted_cache_control;  // RFC 9213 field obeyed before Cache-Control; "" = none
    // Partial content: a Range miss starting below this offset fetches the whole object
    // (Squid's range_offset_limit; 0, Squid's default, never does).
    std::uint64_t range_offset_limit = 0;
    unsigned range_max_parts = 32;                     // stored ranges per object
    double range_parts_percent = 25;  // of cache.memory_size, for all parts objects together; 0 = none stored
    std::vector<RefreshPattern> refresh_patterns;
  } http_cache;

  // Shared cache store (cache/). Sizes in bytes.
  struct Cache {
    std::uint64_t memory_size = 256ull << 20;
    std::string disk_dir;  // empty = memory only
    std::uint64_t disk_size = 1ull << 30;
    std::uint64_t segment_size = 16ull << 20;
    std::uint64_t max_object_size = 8ull << 20;
  } cache;
  // DNS server and resolver (resolver/). The parser's default listener is 127.0.0.1:53, on
  // loopback only: never an open resolver unless an operator lists another address.
  struct Dns {
    std::vector<Endpoint> listen;  // UDP and TCP on each, every worker (SO_REUSEPORT); [] = off
    NetworkList allow_recursion;   // others get REFUSED
    std::string hints;             // root hints file; empty = the embedded IANA hints
    bool qname_minimisation = true;
    bool qname_minimisation_strict = false;  // RFC 8020 stop on NXDOMAIN, no full-name retry
    std::uint32_t min_ttl = 0;
    std::uint32_t max_ttl = 86400;
    std::uint32_t negative_max_ttl = 3600;
    std::uint32_t servfail_ttl = 5;
    std::uint64_t cache_entries = 1000000;
    // Serve-stale (RFC 8767), prefetch and 0x20 (deploy/outpost.toml, resolver_config.hpp).
    bool serve_stale = false;
    std::uint32_t stale_answer_ttl = 30;
    std::uint32_t stale_max_age = 86400;
    std::uint32_t stale_client_timeout = 1800;  // milliseconds
    bool prefetch = false;
    bool use_0x20 = false;
    // DNSSEC validation (resolver/validator.hpp), on by default as Debian's Unbound; anchors:
    // DS/DNSKEY records in zone-file syntax, empty = the root's KSK-2017 and KSK-2024 built in.
    bool dnssec_validation = true;
    std::string trust_anchor_file;
    bool aggressive_nsec = true;  // RFC 8198, with validation
    // Names at or below which answers are not validated (Unbound's domain-insecure): private
    // names, local or forwarded zones under a TLD the real root denies.
    std::vector<std::string> domain_insecure;
    // RFC 5011 tracking of the trust anchors: the state file (default: "dns-trust-anchors" in
    // [cache] disk_dir when the built-in anchors are used; "" there and no disk_dir: in memory).
    // Given with trust_anchor_file, those anchors are tracked from there.
    std::string auto_trust_anchor_file;
    // For tests only: RFC 5011's hold-down (30 days) and probe interval (0: the RFC's).
    std::uint32_t auto_trust_hold_down = 30 * 86400;
    std::uint32_t auto_trust_probe_interval = 0;
    struct LocalZone {
      std::string name;
      std::string file;
    };
    std::vector<LocalZone> local_zones;
    struct ForwardZone {
      std::string name;
      std::vector<Endpoint> servers;  // IP literals with port
    };
    std::vector<ForwardZone> forward_zones;
  } dns;
  // Admin endpoint (services/admin/): Prometheus /metrics and /health. Off unless enabled.
  struct Admin {
    bool enabled = false;
    std::vector<Endpoint> listen;  // HTTP, on every worker (SO_REUSEPORT)
    NetworkList allow_clients;     // others get 403
    double timeout = 10;           // a request must arrive, and its answer leave, within this
  } admin;
  // Proxy authentication (auth/, used by proxy/): Basic credentials checked against a back
  // end, verdicts cached; rules by user and group. Off unless a back end is named.
  struct Auth {
    std::string backend = "none";  // "none", "htpasswd" or "ldap"
    std::string realm = "Outpost";
    std::string htpasswd_file;     // user:hash lines (bcrypt $2y$/$2b$, SHA-crypt $5$/$6$, yescrypt $y$)
    std::string group_file;        // "group: user user ..." lines (Apache's AuthGroupFile); optional
    double cache_ttl = 300;        // seconds a verdict (good or bad) is kept
    // The LDAP back end (auth/ldap.hpp): simple bind as the user (bind_dn_template) or
    // search-then-bind (base_dn, user_filter; with a service account, or anonymous).
    struct Ldap {
      std::string uri;                 // ldap://host[:port] or ldaps://host[:port] (several: space-separated)
      bool starttls = false;           // StartTLS on ldap:// (TLS always verifies the server: ca_file or the system's)
      std::string ca_file;             // CA certificates for the server's; empty: the system's
      std::string bind_dn_template;    // "uid=%s,ou=people,dc=example,dc=org": bind as the user directly
      std::string bind_dn;             // service account for search-then-bind; empty: anonymous search
      std::string bind_password_file;  // its password (first line); never in the config itself
      std::string base_dn;             // where users are searched
      std::string user_filter = "(uid=%s)";
      std::string group_base_dn;       // where groups are searched; empty: base_dn; both empty: no groups
      std::string group_filter =
          "(|(&(objectClass=groupOfNames)(member=%D))(&(objectClass=posixGroup)(memberUid=%s)))";
      std::string group_attribute = "cn";
      double timeout = 5;              // connecting, TLS, and each LDAP operation
      unsigned connections = 4;        // pooled connections (at most this many operations at once)
      unsigned max_pending = 16;       // checks queued or running; more: refused at once (unavailable)
    } ldap;
    struct Rule {
      bool allow = true;
      std::vector<std::string> users;   // names; "*" any authenticated user
      std::vector<std::string> groups;
      std::vector<std::string> hosts;   // destination host patterns (as acl.allow_hosts); empty: any
    };
    std::vector<Rule> rules;       // first match wins
    bool default_allow = true;     // no rule matched
  } auth;
  // Control channel (services/control/): `outpost ctl` commands over a Unix socket. Off
  // unless a socket path is set.
  struct Control {
    std::string socket;         // path of the Unix socket; empty: no control channel
    unsigned mode = 0600;       // the socket file's permissions: they are the access control
    double timeout = 30;        // a command must arrive, and its answer leave, within this
    // TCP with mutual TLS (unbound-control's control-use-cert); empty: no TCP listener.
    std::vector<Endpoint> tls_listen;
    std::string tls_certificate, tls_key;  // the server's certificate (chain) and key, PEM
    std::string tls_ca;  // the CA both ends trust: clients' certificates and the server's
    // What `outpost ctl` presents and expects over TCP (the server does not read these).
    std::string ctl_certificate, ctl_key;
    std::string tls_server_name = "outpost-control";  // the name the server's certificate carries
  } control;

  // Proxy auto-config (services/pac/): /proxy.pac and /wpad.dat on the proxy port and the
  // admin listener. Off unless enabled.
  struct Pac {
    bool enabled = false;
    std::vector<std::string> proxies;          // "host:port" in order; empty: where the script was fetched
    std::vector<std::string> direct_domains;   // "example.com" (exact), ".example.com" / "*.example.com"
    std::vector<std::string> direct_networks;  // CIDRs: IP-literal hosts (and resolved names) go DIRECT
    bool direct_plain_hosts = true;            // names without a dot go DIRECT
    bool resolve_names = false;                // the browser resolves names to test direct_networks
    bool fallback_direct = false;              // "; DIRECT" after the proxies
  } pac;
  // DHCP server with WPAD (services/dhcp/): leases from address pools on one interface, the
  // resolver and /wpad.dat handed out as options. Off unless enabled.
  struct Dhcp {
    struct Pool {
      std::string subnet;                    // "10.0.0.0/24": the network the pool serves
      std::string first, last;               // the range handed out, inside the subnet
      std::vector<std::string> routers;      // option 3
      std::vector<std::string> dns_servers;  // option 6; empty: the section's
      std::string domain_name;               // option 15; empty: the section's
      double lease_time = 0;                 // option 51; 0: the section's
      bool operator==(const Pool&) const = default;
    };
    struct Reservation {
      std::string mac;        // "02:00:00:00:00:01" (hardware address), or
      std::string client_id;  // option 61 as hex bytes "01:02:00:00:00:00:01"
      std::string address;
      bool operator==(const Reservation&) const = default;
    };
    bool enabled = false;
    std::string interface;                 // the one interface served (SO_BINDTODEVICE)
    std::string server_address;            // option 54; empty: the interface's IPv4 address
    std::uint16_t port = 67;               // server port (clients always get answers on 68)
    std::string lease_file = "/var/lib/outpost/dhcp.leases";
    double lease_time = 3600;
    double offer_time = 60;                // an offered address is held this long
    double decline_time = 600;             // a declined address stays unused this long
    std::vector<std::string> dns_servers;  // empty: Outpost's own resolver ([dns] listen)
    std::string domain_name;
    std::string wpad_url;                  // option 252; empty: http://<proxy>/wpad.dat; "none": not sent
    std::vector<Pool> pools;
    std::vector<Reservation> reservations;
    bool operator==(const Dhcp&) const = default;
  } dhcp;
  // SNMP agent (services/snmp/): Squid's enterprise MIB and Outpost's own subtree, read-only,
  // as a standalone SNMPv2c agent on UDP and/or an AgentX subagent of the host's snmpd. Off
  // unless enabled.
  struct Snmp {
    bool enabled = false;
    std::vector<Endpoint> listen;  // SNMPv2c over UDP, every worker (SO_REUSEPORT); [] = none
    std::string community;         // v2c community (required with listen)
    NetworkList allow_clients;     // others are dropped without an answer
    std::string agentx;            // AgentX master: a Unix socket path or "tcp:ADDR:PORT"; "" = none
    double agentx_timeout = 5;     // seconds for the master's answers (Open, Register)
    double agentx_retry = 5;       // seconds between attempts to reach the master
  } snmp;
  // SNTP server (services/sntp/): the host clock to NTPv3/v4 clients. Off unless enabled.
  struct Sntp {
    bool enabled = false;
    std::vector<Endpoint> listen;  // UDP, every worker (SO_REUSEPORT)
    unsigned stratum = 10;         // what the answers claim (1-15)
    std::string reference_id = "LOCL";  // 1-4 ASCII ("GPS", "LOCL") or the upstream's IPv4 address
    NetworkList allow_clients;     // others are dropped without an answer
    double rate = 8;               // requests per second per client address (token bucket) ...
    double burst = 16;             // ... and its depth; over it: a KoD RATE, or nothing
    double root_delay = 0;         // seconds to the reference clock (what the host's sync adds)
    double root_dispersion = 0.01; // seconds of error claimed towards it
  } sntp;

  // FTP gateway (services/ftp/): ftp:// URLs through the proxy, as Squid serves them.
  struct Ftp {
    bool enabled = true;
    std::string anonymous_password = "outpost@";  // PASS for anonymous logins
    double timeout = 60;              // seconds without a reply or data from the server
    std::uint64_t max_listing = 4ull << 20;  // bytes of a directory listing read at most
    bool cache = true;                // files kept in the store, revalidated by MDTM and SIZE
  } ftp;

  std::string source;  // file name the config came from ("<default>" for the embedded one)

  // Parses TOML text; throws ConfigError. A module's section that this program did not
  // register is an error in a file, skipped in the embedded default (config_section.hpp).
  static Config parse(std::string_view text, const std::string& source_name);
  static Config load_file(const std::string& path);
  static Config load_default();
};

// The embedded default configuration (deploy/outpost.toml).
std::string_view default_config_text();

}  // namespace outpost
