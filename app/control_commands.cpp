#include "app/control_commands.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <ctime>

#include "cache/store.hpp"
#include "proxy/cache_policy.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/url.hpp"
#include "resolver/dns_cache.hpp"
#include "resolver/dns_message.hpp"

namespace outpost {

namespace {

using control::ControlService;
using control::on_each_worker;
using Args = std::vector<std::string>;
using Reply = ControlService::Reply;

// The level names of [log] level (spdlog's own say "warning" and "error").
constexpr const char* kLevelNames[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// The cache key of an absolute http(s) URL, or an error for the operator.
bool url_key(const std::string& text, std::string* key, std::string* error) {
  http::UrlError err = http::UrlError::kNone;
  auto url = http::parse_absolute_url(text, &err);
  if (!url) {
    *error = "not an absolute http:// or https:// URL: " + text;
    return false;
  }
  *key = http::cache_key(*url);
  return true;
}

// A prefix of cache keys: the URL's key up to where the text given stops (a prefix such as
// "http://example.com/img/" is a URL too; "http://example.com" alone keys as ".../").
bool prefix_key(const std::string& text, std::string* key, std::string* error) {
  if (!url_key(text, key, error)) return false;
  // cache_key adds "/" to an empty path: "http://host" means every path of the host.
  if (!text.ends_with("/") && key->ends_with("/")) key->pop_back();
  return true;
}

std::string describe_entry(const http::HttpCache::StoredEntry& e, std::int64_t now) {
  std::string out;
  auto sep = e.store_key.find('\x1f');
  if (!e.parts.empty()) {
    out += "parts: " + e.parts + "\n";
  } else if (sep != std::string::npos) {
    std::string vary = e.store_key.substr(sep + 1);
    for (auto& c : vary)
      if (c == '\x1f') c = ' ';
    out += "variant: " + vary + "\n";
  }
  out += std::string("location: ") + (e.from_disk ? "disk" : "memory") + "\n";
  out += "body: " + std::to_string(e.body_size) + " bytes\n";
  if (!e.meta) return out + "metadata: unreadable\n";
  const auto& m = *e.meta;
  std::int64_t age = http::current_age(m, now);
  out += "status: " + std::to_string(m.status) + " " + m.reason + "\n";
  out += "stored: " + utc(m.response_time) + "\n";
  out += "age: " + std::to_string(age) + " s\n";
  out += "freshness lifetime: " + std::to_string(m.lifetime) + " s\n";
  std::int64_t left = m.lifetime - age;
  out += left > 0 ? "fresh for: " + std::to_string(left) + " s\n" : "stale for: " + std::to_string(-left) + " s\n";
  out += "headers:\n";
  for (const auto& f : m.headers) out += "  " + f.name + ": " + f.value + "\n";
  return out;
}

// The types `dns lookup` shows (what the cache holds of a name is looked up type by type).
constexpr std::uint16_t kLookupTypes[] = {1, 28, 5, 39, 2, 6, 15, 16, 12, 33, 43, 48, 257, 64, 65, 35, 29, 44, 13, 99};

}  // namespace

void add_control_commands(ControlService& control, ControlTargets targets) {
  auto t = std::make_shared<ControlTargets>(std::move(targets));

  control.add("status", "", "version, uptime, workers, connections, cache", [t](Worker& home, const Args&, Reply reply) {
    on_each_worker(
        t->workers, home, [t](unsigned i) { return std::to_string(t->connection_count(i)); },
        [t, reply](std::vector<std::string> counts) {
          std::size_t total = 0;
          std::string per;
          for (auto& c : counts) {
            total += std::stoull(c);
            per += (per.empty() ? "" : ", ") + c;
          }
          auto st = t->store->stats();
          auto http_ns = st.of(cache::Namespace::kHttp);
          auto total_ns = st.total();
          std::string out;
          out += "version: " + t->version + "\n";
          out += "pid: " + std::to_string(::getpid()) + "\n";
          out += "uptime: " + std::to_string(unix_now() - static_cast<std::int64_t>(t->start_time)) + " s\n";
          out += "config: " + t->config_source + "\n";
          out += "workers: " + std::to_string(t->workers.size()) + "\n";
          out += "log level: " + std::string(kLevelNames[static_cast<int>(spdlog::get_level())]) + "\n";
          out += "connections: " + std::to_string(total) + " (per worker: " + per + ")\n";
          out += "cache: " + std::to_string(total_ns.objects_memory) + " objects in memory (" +
                 std::to_string(total_ns.bytes_memory) + " bytes), " + std::to_string(total_ns.objects_disk) +
                 " on disk (" + std::to_string(total_ns.bytes_disk) + " bytes)\n";
          out += "http cache: " + std::string(t->http_cache ? "on" : "off") + ", " +
                 std::to_string(http_ns.objects_memory) + " objects in memory, " +
                 std::to_string(http_ns.objects_disk) + " on disk\n";
          out += "dns cache: " + std::to_string(t->dns_cache ? t->dns_cache->size() : 0) + " entries\n";
          reply(true, out);
        });
  });

  control.add("stats", "", "every figure of /metrics, one sample a line", [t](Worker& home, const Args&, Reply reply) {
    t->metrics->gather(home, [reply](MetricSet m) {
      std::string text = m.to_prometheus(), out;
      out.reserve(text.size());
      std::size_t pos = 0;
      while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        if (text[pos] != '#') out.append(text, pos, end + 1 - pos);
        pos = end + 1;
      }
      reply(true, out);
    });
  });

  control.add("reload", "", "read the configuration again (as SIGHUP); answers once applied",
              [t](Worker& home, const Args&, Reply reply) {
                t->reload([&home, reply](bool ok, std::string text) {
                  home.post([reply, ok, text = std::move(text)] { reply(ok, text); });
                });
              });

  control.add("purge", "URL | --prefix URL", "remove a URL (with its variants), or every URL starting so",
              [t](Worker&, const Args& args, Reply reply) {
                bool prefix = !args.empty() && args[0] == "--prefix";
                if (args.size() != (prefix ? 2u : 1u)) return reply(false, "usage: purge URL | purge --prefix URL");
                if (!t->http_cache) return reply(false, "the HTTP cache is off ([http_cache] enabled = false)");
                std::string key, error;
                if (!(prefix ? prefix_key(args[1], &key, &error) : url_key(args[0], &key, &error)))
                  return reply(false, error);
                std::size_t n = t->http_cache->purge(key, prefix);
                reply(true, "purged " + std::to_string(n) + " object(s)\n");
              });

  control.add("cache info", "URL", "what is stored for a URL: headers, age, freshness left, variants",
              [t](Worker& home, const Args& args, Reply reply) {
                if (args.size() != 1) return reply(false, "usage: cache info URL");
                if (!t->http_cache) return reply(false, "the HTTP cache is off ([http_cache] enabled = false)");
                std::string key, error;
                if (!url_key(args[0], &key, &error)) return reply(false, error);
                t->http_cache->inspect(home, key, [key, reply](std::vector<http::HttpCache::StoredEntry> entries) {
                  if (entries.empty()) return reply(false, "not in the cache: " + key);
                  std::string out = "key: " + key + "\n";
                  if (entries.size() > 1 || entries[0].store_key != key)
                    out += "variants: " + std::to_string(entries.size()) + "\n";
                  std::int64_t now = unix_now();
                  for (std::size_t i = 0; i < entries.size(); ++i) {
                    if (i) out += "\n";
                    out += describe_entry(entries[i], now);
                  }
                  reply(true, out);
                });
              });

  control.add("dns flush", "NAME | --zone NAME", "drop a name's cached DNS entries, or a whole zone's",
              [t](Worker& home, const Args& args, Reply reply) {
                bool zone = !args.empty() && args[0] == "--zone";
                if (args.size() != (zone ? 2u : 1u)) return reply(false, "usage: dns flush NAME | dns flush --zone NAME");
                auto name = dns::Name::from_text(args.back());
                if (!name) return reply(false, "not a domain name: " + args.back());
                std::size_t n = t->dns_cache->erase_names(*name, zone);
                std::string text = "flushed " + std::to_string(n) + " entr" + (n == 1 ? "y" : "ies") + "\n";
                if (!t->dns_flush_worker) return reply(true, text);
                // What each worker keeps on its own, derived from the shared cache, goes whole
                // (a reply or a key may rest on the flushed names): kept replies, DNSSEC keys,
                // aggressive-NSEC records, bogus verdicts.
                on_each_worker(
                    t->workers, home,
                    [t](unsigned i) {
                      t->dns_flush_worker(i);
                      return std::string();
                    },
                    [reply, text](std::vector<std::string>) { reply(true, text); });
              });

  control.add("dns lookup", "NAME", "what the DNS cache holds for a name, with TTLs left",
              [t](Worker& home, const Args& args, Reply reply) {
                if (args.size() != 1) return reply(false, "usage: dns lookup NAME");
                auto name = dns::Name::from_text(args[0]);
                if (!name) return reply(false, "not a domain name: " + args[0]);
                uv_update_time(home.loop());
                std::uint64_t now = uv_now(home.loop());
                std::string out;
                bool nxdomain_shown = false;
                for (std::uint16_t type : kLookupTypes) {
                  dns::Freshness fresh;
                  if (auto set = t->dns_cache->peek_rrset(*name, type, now, dns::Trust::glue, &fresh, true)) {
                    for (const auto& rr : set->to_records(set->ttl)) out += dns::rr_to_text(rr) + "\n";
                    if (fresh.expired()) out += ";; (stale, expired " + std::to_string(-fresh.remaining_ms / 1000) + " s ago)\n";
                    out += ";; " + dns::type_to_text(type) + ": original TTL " + std::to_string(fresh.original_ttl) +
                           ", " + dns::to_string(set->security) + "\n";
                  }
                  if (auto neg = t->dns_cache->peek_negative(*name, type, now, &fresh, true)) {
                    if (neg->nxdomain && nxdomain_shown) continue;
                    nxdomain_shown = nxdomain_shown || neg->nxdomain;
                    out += ";; " + std::string(neg->nxdomain ? "NXDOMAIN" : "NODATA " + dns::type_to_text(type)) +
                           ", TTL " + std::to_string(neg->ttl) + ", " + dns::to_string(neg->security) + "\n";
                  }
                }
                if (out.empty()) return reply(false, "nothing cached for " + name->to_text());
                reply(true, out);
              });

  control.add("log level", "LEVEL", "trace, debug, info, warn, error, critical or off (until the next reload)",
              [](Worker&, const Args& args, Reply reply) {
                if (args.size() != 1 ||
                    std::find(std::begin(kLevelNames), std::end(kLevelNames), args[0]) == std::end(kLevelNames))
                  return reply(false, "usage: log level trace|debug|info|warn|error|critical|off");
                spdlog::set_level(spdlog::level::from_str(args[0]));
                spdlog::warn("control: log level {}", args[0]);
                reply(true, "log level " + args[0] + "\n");
              });

  control.add("connections", "", "client connections: address, age, phase, request in flight",
              [t](Worker& home, const Args&, Reply reply) {
                on_each_worker(t->workers, home, [t](unsigned i) { return t->connections(i); },
                               [reply](std::vector<std::string> lists) {
                                 std::string out;
                                 for (std::size_t i = 0; i < lists.size(); ++i) {
                                   std::size_t pos = 0;
                                   while (pos < lists[i].size()) {
                                     auto end = lists[i].find('\n', pos);
                                     out += "worker " + std::to_string(i) + " " + lists[i].substr(pos, end - pos) + "\n";
                                     pos = end + 1;
                                   }
                                 }
                                 reply(true, out.empty() ? "no client connections\n" : out);
                               });
              });
}

}  // namespace outpost
