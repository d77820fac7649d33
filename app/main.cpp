// outpost: command line, configuration, wiring of the modules, signals.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <uv.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/ca_command.hpp"
#include "app/control_commands.hpp"
#include "app/ctl_command.hpp"
#include "app/metrics_sources.hpp"
#include "auth/auth_config.hpp"
#include "auth/authenticator.hpp"
#include "cache/cache_config.hpp"
#include "cache/store.hpp"
#include "core/blocking_work.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/service.hpp"
#include "core/worker_pool.hpp"
#include "resolver/dns_config.hpp"
#include "resolver/dns_server.hpp"
#include "resolver/resolver.hpp"
#include "resolver/resolver_metrics.hpp"
#include "services/admin/admin_config.hpp"
#include "services/admin/admin_service.hpp"
#include "services/control/control_config.hpp"
#include "services/control/control_service.hpp"
#include "services/ftp/ftp_service.hpp"
#include "services/pac/pac_script.hpp"
#include "services/dhcp/dhcp_config.hpp"
#include "services/dhcp/dhcp_service.hpp"
#include "services/snmp/snmp_config.hpp"
#include "services/snmp/snmp_service.hpp"
#include "services/sntp/sntp_config.hpp"
#include "services/sntp/sntp_server.hpp"
#include "proxy/access_log.hpp"
#include "proxy/dns_name_resolver.hpp"
#include "proxy/http_cache.hpp"
#include "proxy/proxy_config.hpp"
#include "proxy/proxy_worker.hpp"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "0.0.0"
#endif

namespace {

using namespace outpost;

struct App {
  std::string config_path;
  Config config;
  AccessLogFile access_log;
  SystemResolver system_resolver;
  std::shared_ptr<cache::Store> store;
  std::unique_ptr<http::HttpCache> http_cache;
  std::shared_ptr<dns::ResolverContext> dns_context;
  // Proxy authentication ([auth]): the running one (null when off); a reload loads another.
  std::shared_ptr<const auth::Authenticator> authenticator;
  // Per worker: the recursive resolver, its DNS server (if [dns] listen is set), and the
  // proxy's view of it.
  struct DnsParts {
    std::unique_ptr<dns::Resolver> resolver;
    std::unique_ptr<dns::DnsServer> server;
    std::unique_ptr<DnsNameResolver> names;
  };
  std::vector<DnsParts> dns;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<ProxyWorker>> proxies;
  std::unique_ptr<MetricsRegistry> metrics;
  // Started in this order on each worker (after its proxy), drained in reverse before it.
  std::vector<std::unique_ptr<Service>> services;
  admin::AdminService* admin_service = nullptr;
  std::atomic<std::size_t> services_draining{0};
  double start_time = 0;
  uv_loop_t* loop = nullptr;
  uv_signal_t sig_term, sig_int, sig_hup;
  // Work posted to the main loop from workers (the control channel's reload).
  uv_async_t main_wake;
  std::mutex main_mu;
  std::vector<std::function<void()>> main_tasks;
  bool main_wake_closed = false;  // under main_mu: nothing is posted once shutdown began
  void post_main(std::function<void()> fn) {
    std::lock_guard lk(main_mu);
    if (main_wake_closed) return;
    main_tasks.push_back(std::move(fn));
    uv_async_send(&main_wake);
  }
  // Who waits for the reload in progress (`outpost ctl reload`): told once it is applied or
  // refused.
  std::vector<std::function<void(bool, std::string)>> reload_waiters;
  void reload_finished(bool ok, const std::string& text) {
    auto waiters = std::move(reload_waiters);
    reload_waiters.clear();
    for (auto& w : waiters) w(ok, text);
  }
  // A reload reads its files on the thread pool (core/blocking_work.hpp); applied on `loop`.
  BlockingWork reload_work;
  bool stopping = false;
  std::uint64_t fd_limit = 0;
  unsigned worker_count = 0;

  bool start_workers();
  bool configure_services();
  void register_collectors(unsigned i);
  void apply_connection_cap(Config& c) const;
  // On worker i's loop, once its proxy has drained: DNS server and resolver, then the loop.
  void stop_worker(unsigned i) {
    if (dns[i].server) dns[i].server->stop();
    if (dns[i].resolver) dns[i].resolver->shutdown();
    workers[i]->stop();
  }
  // Drains the services on every worker (in reverse order) and, once all are drained
  // everywhere, the proxies; each worker then stops.
  void stop_all(double grace);
  void drain_services(unsigned i, std::size_t n, std::function<void()> then);
  void shutdown(const char* why);
  void reload();
  // What a reload read, off the loop: the new config and the resolver settings it names.
  struct Reloaded {
    std::optional<Config> config;
    std::optional<dns::ResolverSettings> dns;
    std::shared_ptr<const auth::Authenticator> auth;
    std::vector<std::string> auth_warnings;
    std::string error;
  };
  void apply_reload(Reloaded r);
  std::vector<std::string> keep_restart_only_settings(Config& fresh) const;
};

// Raises the soft limit on open files to the hard limit (each client connection needs one,
// and usually an origin connection another; the common soft default of 1024 is far too low)
// and returns the limit in force.
std::uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("cannot read the file descriptor limit: {}", std::strerror(errno));
    return 1024;
  }
  if (rl.rlim_cur >= rl.rlim_max) {
    spdlog::info("file descriptor limit: {}", rl.rlim_cur);
    return rl.rlim_cur;
  }
  rlim_t before = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("cannot raise the file descriptor limit from {} to {}: {}", before, rl.rlim_max, std::strerror(errno));
    return before;
  }
  spdlog::info("file descriptor limit raised from {} to {} (the hard limit)", before, rl.rlim_max);
  return rl.rlim_max;
}

// Replaces proxy.max_connections_per_worker = 0 ("auto") by the cap the descriptor limit
// allows, and clamps an explicit value to it. The DNS server's TCP clients (with its UDP and
// TCP sockets) come out of the same limit.
void App::apply_connection_cap(Config& c) const {
  std::uint64_t dns_fds =
      c.dns.listen.empty() ? 0 : dns::make_server_options(c.dns).max_tcp_connections + 2 * c.dns.listen.size();
  auto cap = connection_cap(c.proxy.max_connections_per_worker, worker_count, fd_limit, dns_fds);
  if (cap.clamped)
    spdlog::warn("proxy.max_connections_per_worker = {} needs more than the file descriptor limit {} allows for "
                 "{} worker(s); using {}",
                 c.proxy.max_connections_per_worker, fd_limit, worker_count, cap.value);
  else if (cap.derived)
    spdlog::info("connections per worker: {} (derived from the file descriptor limit {} and {} worker(s))", cap.value,
                 fd_limit, worker_count);
  else
    spdlog::info("connections per worker: {} (configured)", cap.value);
  c.proxy.max_connections_per_worker = cap.value;
}

// Every address Outpost will listen on must be free: the workers' SO_REUSEPORT sockets would
// otherwise join another server's and take half of its clients without a word.
static bool addresses_free(const Config& c) {
  struct Want {
    const std::vector<Endpoint>* eps;
    bool tcp;
    const char* what;
  };
  std::vector<Want> wants = {{&c.proxy.listen, true, "proxy.listen"},
                             {&c.proxy.tls_listen, true, "proxy.tls_listen"},
                             {&c.proxy.intercept_listen, true, "proxy.intercept_listen"},
                             {&c.proxy.intercept_tls_listen, true, "proxy.intercept_tls_listen"},
                             {&c.dns.listen, false, "dns.listen (UDP)"},
                             {&c.dns.listen, true, "dns.listen (TCP)"}};
  if (c.admin.enabled) wants.push_back({&c.admin.listen, true, "admin.listen"});
  wants.push_back({&c.control.tls_listen, true, "control.tls_listen"});
  if (c.snmp.enabled) wants.push_back({&c.snmp.listen, false, "snmp.listen (UDP)"});
  if (c.sntp.enabled) wants.push_back({&c.sntp.listen, false, "sntp.listen (UDP)"});
  bool ok = true;
  for (const auto& w : wants)
    for (const auto& ep : *w.eps)
      if (int rc = probe_address(ep, w.tcp); rc != 0) {
        std::string why = rc == -EADDRINUSE ? " (another program, or another Outpost, holds it)"
                          : rc == -EACCES   ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                                            : "";
        // The DNS listener is on by default (127.0.0.1:53): say how to move it or turn it off.
        if (w.eps == &c.dns.listen)
          why += "; set [dns] listen to a free address, or listen = [] for no DNS server (the proxy's resolver "
                 "works without it)";
        spdlog::critical("{}: cannot use {}: {}{}", w.what, ep.to_string(), std::strerror(-rc), why);
        ok = false;
      }
  return ok;
}

bool App::start_workers() {
  if (!addresses_free(config)) return false;
  unsigned n = config.server.workers ? config.server.workers : std::max(1u, std::thread::hardware_concurrency());
  worker_count = n;
  apply_connection_cap(config);
  auto settings = ProxySettings::make(config, store, authenticator);
  std::vector<std::future<std::string>> started;
  for (unsigned i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<Worker>(i));
    proxies.push_back(nullptr);
  }
  dns.resize(n);
  if (!configure_services()) return false;
  for (unsigned i = 0; i < n; ++i) {
    auto promise = std::make_shared<std::promise<std::string>>();
    started.push_back(promise->get_future());
    workers[i]->start([this, i, settings, promise](Worker& w) {
      auto& d = dns[i];
      d.resolver = std::make_unique<dns::Resolver>(w.loop(), dns_context);
      if (i == 0) d.resolver->track_trust_anchors();  // RFC 5011: one worker probes
      d.names = std::make_unique<DnsNameResolver>(*d.resolver);
      NameResolver& names = config.proxy.resolver == "system" ? static_cast<NameResolver&>(system_resolver)
                                                              : static_cast<NameResolver&>(*d.names);
      proxies[i] = std::make_unique<ProxyWorker>(w, settings, names, access_log, http_cache.get());
      // The PAC script ([pac]) on the proxy port and the admin listener, from this worker's
      // current settings snapshot (read on its own thread).
      OwnPageFn pages = [this, i](std::string_view path, std::string_view host, bool proxy_port) {
        return pac::page(proxies[i]->settings()->config, path, host, proxy_port);
      };
      proxies[i]->set_own_pages(pages);
      admin_service->set_own_pages(i, std::move(pages));
      std::string err;
      if (!config.dns.listen.empty()) {
        d.server = std::make_unique<dns::DnsServer>(w.loop(), *d.resolver, dns::make_server_options(config.dns));
        if (!d.server->start(&err)) {
          promise->set_value(err);
          return;
        }
      }
      if (!proxies[i]->start(&err)) {
        promise->set_value(err);
        return;
      }
      register_collectors(i);
      for (auto& s : services) {
        if (!s->start(w, &err)) {
          promise->set_value(err);
          return;
        }
      }
      promise->set_value("");
    });
  }
  bool ok = true;
  for (auto& f : started) {
    std::string err = f.get();
    if (!err.empty() && ok) {
      spdlog::critical("{}", err);
      ok = false;
    }
  }
  if (!ok) {
    stop_all(0);
    for (auto& w : workers) w->join();
    return false;
  }
  std::string where, dns_where;
  for (auto& ep : config.proxy.listen) where += (where.empty() ? "" : ", ") + ep.to_string();
  for (auto& ep : config.proxy.tls_listen) where += (where.empty() ? "" : ", ") + ep.to_string() + " (TLS)";
  for (auto& ep : config.proxy.intercept_listen)
    where += (where.empty() ? "" : ", ") + ep.to_string() + " (intercept, " + config.proxy.intercept_mode + ")";
  for (auto& ep : config.proxy.intercept_tls_listen)
    where += (where.empty() ? "" : ", ") + ep.to_string() + " (intercept TLS, " + config.proxy.intercept_mode + ")";
  for (auto& ep : config.dns.listen) dns_where += (dns_where.empty() ? "" : ", ") + ep.to_string();
  std::string admin_where;
  for (auto& ep : config.admin.listen) admin_where += (admin_where.empty() ? "" : ", ") + ep.to_string();
  spdlog::info("outpost {} started: {} worker(s), proxy on {}, DNS {}, admin {}", OUTPOST_VERSION, n, where,
               dns_where.empty() ? "server off (in-process resolver only)" : "on " + dns_where,
               config.admin.enabled ? "on " + admin_where : "off");
  return true;
}

bool App::configure_services() {
  std::vector<Worker*> ptrs;
  for (auto& w : workers) ptrs.push_back(w.get());
  metrics = std::make_unique<MetricsRegistry>(ptrs);
  auto admin = std::make_unique<admin::AdminService>(*metrics, ptrs);
  admin_service = admin.get();
  services.push_back(std::move(admin));
  auto control = std::make_unique<control::ControlService>(ptrs);
  ControlTargets targets;
  targets.workers = ptrs;
  targets.metrics = metrics.get();
  targets.store = store.get();
  targets.http_cache = http_cache.get();
  targets.dns_cache = dns_context->cache;
  targets.reload = [this](std::function<void(bool, std::string)> done) {
    post_main([this, done = std::move(done)]() mutable {
      if (stopping) return done(false, "shutting down");
      reload_waiters.push_back(std::move(done));
      reload();
    });
  };
  targets.dns_flush_worker = [this](unsigned i) {
    if (dns[i].server) dns[i].server->clear_reply_cache();
    if (dns[i].resolver) dns[i].resolver->flush_worker_caches();
  };
  targets.connections = [this](unsigned i) { return proxies[i] ? proxies[i]->describe_connections() : std::string(); };
  targets.connection_count = [this](unsigned i) { return proxies[i] ? proxies[i]->session_count() : 0; };
  targets.version = OUTPOST_VERSION;
  targets.config_source = config.source;
  targets.start_time = start_time;
  add_control_commands(*control, std::move(targets));
  services.push_back(std::move(control));
  services.push_back(std::make_unique<dhcp::DhcpService>());
  services.push_back(std::make_unique<snmp::SnmpService>(*metrics, ptrs, OUTPOST_VERSION));
  services.push_back(std::make_unique<sntp::SntpServer>(ptrs));
  services.push_back(std::make_unique<ftp::FtpService>(
      ptrs, [this](unsigned i) { return proxies[i].get(); }, store.get()));
  for (auto& s : services) {
    std::string err;
    if (!s->configure(config, &err)) {
      spdlog::critical("{}: {}", s->name(), err);
      return false;
    }
  }
  metrics->add_global_collector([this](MetricsVisitor& out) {
    collect_process_metrics(OUTPOST_VERSION, start_time, worker_count, out);
    collect_store_metrics(store->stats(), out);
  });
  return true;
}

// On worker i's loop, once its parts exist: what a scrape collects there.
void App::register_collectors(unsigned i) {
  metrics->add_worker_collector(i, [this, i](MetricsVisitor& out) {
    proxies[i]->collect_metrics(out);
    dns::collect_metrics(*dns[i].resolver, dns[i].server.get(), out);
    for (auto& s : services) s->collect_metrics(*workers[i], out);
  });
}

void App::drain_services(unsigned i, std::size_t n, std::function<void()> then) {
  if (n == 0) {
    then();
    return;
  }
  services[n - 1]->drain(*workers[i], [this, i, n, then = std::move(then)]() mutable {
    drain_services(i, n - 1, std::move(then));
  });
}

void App::stop_all(double grace) {
  services_draining = workers.size();
  for (std::size_t i = 0; i < workers.size(); ++i) {
    workers[i]->post([this, i, grace] {
      drain_services(static_cast<unsigned>(i), services.size(), [this, grace] {
        if (--services_draining > 0) return;
        // No service is left anywhere (a scrape gathers from every worker): the proxies go.
        for (std::size_t j = 0; j < workers.size(); ++j)
          workers[j]->post([this, j, grace] {
            if (!proxies[j]) {  // its start-up failed before the proxy existed
              stop_worker(static_cast<unsigned>(j));
              return;
            }
            proxies[j]->begin_shutdown(grace, [this, j] { stop_worker(static_cast<unsigned>(j)); });
          });
      });
    });
  }
}

void App::shutdown(const char* why) {
  if (stopping) return;
  stopping = true;
  reload_work.cancel();  // workers are stopping: nothing more is posted to them
  reload_waiters.clear();
  spdlog::info("{}: stopping (grace period {} s)", why, config.server.shutdown_grace);
  stop_all(config.server.shutdown_grace);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_term), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_int), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_hup), nullptr);
  {
    std::lock_guard lk(main_mu);
    main_wake_closed = true;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&main_wake), nullptr);
}

void App::reload() {
  std::string err;
  if (!log::reopen(&err)) spdlog::error("cannot reopen log file: {}", err);
  if (!access_log.reopen(&err)) spdlog::error("cannot reopen access log: {}", err);
  if (config_path.empty()) {
    spdlog::info("SIGHUP: logs reopened (embedded configuration, nothing to reload)");
    reload_finished(true, "logs reopened; the configuration is the embedded one: nothing to reload\n");
    return;
  }
  // Reading the configuration, the hints file and the local zone files blocks: on the thread
  // pool. A SIGHUP during a reload starts it again (assigning cancels the one in progress).
  reload_work = run_blocking(
      loop,
      [path = config_path] {
        Reloaded r;
        try {
          r.config = Config::load_file(path);
        } catch (const std::exception& e) {
          r.error = e.what();
          return r;
        }
        r.dns = dns::load_resolver_settings(r.config->dns, &r.error, r.config->cache.disk_dir);
        if (!r.dns) {
          r.error = "DNS: " + r.error;
          return r;
        }
        // The user database (a file today): read here, off the loop.
        std::string auth_error;
        r.auth = auth::load_authenticator(r.config->auth, &auth_error, &r.auth_warnings);
        if (!auth_error.empty()) {
          r.error = "auth: " + auth_error;
          r.dns.reset();
        }
        return r;
      },
      [this](Reloaded r) { apply_reload(std::move(r)); });
}

// The settings that only take effect at start-up: named (for the one "restart needed" line)
// and kept at their running values, so that `config` always says what is running.
std::vector<std::string> App::keep_restart_only_settings(Config& fresh) const {
  std::vector<std::string> keys;
  auto keep = [&keys](const char* key, auto& fresh_value, const auto& running_value, bool changed) {
    if (!changed) return;
    keys.push_back(key);
    fresh_value = running_value;
  };
  auto text = [](const std::vector<Endpoint>& eps) {
    std::string t;
    for (auto& ep : eps) t += ep.to_string() + " ";
    return t;
  };
  const Config& run = config;
  keep("server.workers", fresh.server.workers, run.server.workers, fresh.server.workers != run.server.workers);
  keep("log.file", fresh.log.file, run.log.file, fresh.log.file != run.log.file);
  keep("log.access_log", fresh.log.access_log, run.log.access_log, fresh.log.access_log != run.log.access_log);
  keep("proxy.listen", fresh.proxy.listen, run.proxy.listen, text(fresh.proxy.listen) != text(run.proxy.listen));
  keep("proxy.tls_listen", fresh.proxy.tls_listen, run.proxy.tls_listen,
       text(fresh.proxy.tls_listen) != text(run.proxy.tls_listen));
  keep("proxy.intercept_listen", fresh.proxy.intercept_listen, run.proxy.intercept_listen,
       text(fresh.proxy.intercept_listen) != text(run.proxy.intercept_listen));
  keep("proxy.intercept_tls_listen", fresh.proxy.intercept_tls_listen, run.proxy.intercept_tls_listen,
       text(fresh.proxy.intercept_tls_listen) != text(run.proxy.intercept_tls_listen));
  keep("proxy.intercept_mode", fresh.proxy.intercept_mode, run.proxy.intercept_mode,
       fresh.proxy.intercept_mode != run.proxy.intercept_mode);
  keep("proxy.resolver", fresh.proxy.resolver, run.proxy.resolver, fresh.proxy.resolver != run.proxy.resolver);
  // The store is opened once, and the HTTP cache on it exists or not; its policy (refresh
  // patterns, heuristics, Set-Cookie) comes with each ProxySettings snapshot.
  const auto &fc = fresh.cache, &rc = run.cache;
  keep("cache", fresh.cache, run.cache,
       fc.memory_size != rc.memory_size || fc.disk_dir != rc.disk_dir || fc.disk_size != rc.disk_size ||
           fc.segment_size != rc.segment_size || fc.max_object_size != rc.max_object_size);
  keep("http_cache.enabled", fresh.http_cache.enabled, run.http_cache.enabled,
       fresh.http_cache.enabled != run.http_cache.enabled);
  for (auto& key : dns::restart_needed(run.dns, fresh.dns)) keys.push_back(key);
  fresh.dns.listen = run.dns.listen;
  fresh.dns.cache_entries = run.dns.cache_entries;
  return keys;
}

void App::apply_reload(Reloaded r) {
  if (!r.config || !r.dns) {
    spdlog::error("SIGHUP: configuration not reloaded: {}", r.error);
    reload_finished(false, "configuration not reloaded: " + r.error);
    return;
  }
  Config fresh = std::move(*r.config);
  for (auto& w : r.auth_warnings) spdlog::warn("auth: {}", w);
  authenticator = std::move(r.auth);
  std::vector<std::string> restart = keep_restart_only_settings(fresh);
  // The file's level, also over one `outpost ctl log level` set meanwhile.
  if (spdlog::level::from_str(fresh.log.level) != spdlog::get_level()) {
    spdlog::set_level(spdlog::level::from_str(fresh.log.level));
    spdlog::info("SIGHUP: log level {}", fresh.log.level);
  }
  apply_connection_cap(fresh);
  for (auto& s : services)
    for (auto& key : s->reload(fresh)) restart.push_back(key);

  // DNS: the cache's TTL limits once (the cache is shared); the resolver settings, local
  // zones and recursion ACL posted to every worker.
  dns_context->cache->set_limits(r.dns->limits);
  auto context = std::make_shared<dns::ResolverContext>();
  context->config = std::make_shared<const dns::ResolverConfig>(std::move(r.dns->config));
  context->cache = dns_context->cache;
  context->local_zones = std::move(r.dns->local_zones);
  dns_context = context;

  config = std::move(fresh);
  auto settings = ProxySettings::make(config, store, authenticator);
  for (std::size_t i = 0; i < workers.size(); ++i)
    workers[i]->post([this, i, settings, context, allow = config.dns.allow_recursion] {
      proxies[i]->update_settings(settings);
      if (dns[i].resolver) dns[i].resolver->update(*context);
      if (dns[i].server) {
        dns[i].server->set_allow_recursion(allow);
        dns[i].server->clear_reply_cache();  // settings (validation, TTL caps) may have changed
      }
    });
  std::string answer = "configuration reloaded from " + config_path + "\n";
  if (!restart.empty()) {
    std::string keys;
    for (auto& k : restart) keys += (keys.empty() ? "" : ", ") + k;
    spdlog::warn("SIGHUP: a restart is needed to apply: {} (the old values stay in force)", keys);
    answer += "a restart is needed to apply: " + keys + " (the old values stay in force)\n";
  }
  spdlog::info("SIGHUP: configuration reloaded from {}, logs reopened", config_path);
  reload_finished(true, answer);
}

// Every module's section of the configuration (core/config_section.hpp), before any parse.
void register_config_sections() {
  proxy::register_config_sections();
  cache::register_config_section();
  dns::register_config_section();
  admin::register_config_section();
  control::register_config_section();
  pac::register_config_section();
  dhcp::register_config_section();
  snmp::register_config_section();
  sntp::register_config_section();
  ftp::register_config_section();
  auth::register_config_section();
}

}  // namespace

int main(int argc, char** argv) {
  register_config_sections();
  CLI::App cli{"Outpost: a caching forward proxy with a recursive DNS resolver"};
  App app;
  bool check = false, print_default = false, version = false;
  cli.add_option("-c,--config", app.config_path, "Configuration file (TOML); default: the embedded configuration");
  cli.add_flag("--check-config", check, "Validate the configuration and exit");
  cli.add_flag("--print-default-config", print_default, "Print the embedded default configuration and exit");
  cli.add_flag("-V,--version", version, "Print the version and exit");
  std::string q_name, q_type = "A";
  bool q_trace = false;
  auto* query = cli.add_subcommand("query", "Resolve NAME (iteratively, on the configured hints) and print the answer");
  query->add_option("name", q_name, "Domain name")->required();
  query->add_option("type", q_type, "Record type (A, AAAA, NS, MX, TXT, ...)");
  query->add_flag("--trace", q_trace, "Show each step from the root, like dig +trace");
  CaCommand ca;
  add_ca_command(cli, ca);
  CtlCommand ctl;
  add_ctl_command(cli, ctl);
  CLI11_PARSE(cli, argc, argv);
  if (int rc = run_ca_command(ca); rc >= 0) return rc;
  if (int rc = run_ctl_command(ctl, app.config_path); rc >= 0) return rc;

  if (version) {
    std::cout << "outpost " << OUTPOST_VERSION << "\n";
    return 0;
  }
  if (print_default) {
    std::cout << default_config_text();
    return 0;
  }
  try {
    app.config = app.config_path.empty() ? Config::load_default() : Config::load_file(app.config_path);
  } catch (const ConfigError& e) {
    std::cerr << "outpost: configuration error: " << e.what() << "\n";
    return 2;
  }
  if (check) {
    std::string e;
    if (!dns::make_resolver_context(app.config.dns, &e, nullptr, app.config.cache.disk_dir)) {
      std::cerr << "outpost: configuration error: " << e << "\n";
      return 2;
    }
    std::vector<std::string> warnings;
    e.clear();
    auth::load_authenticator(app.config.auth, &e, &warnings);
    for (auto& w : warnings) std::cerr << "outpost: auth: " << w << "\n";
    if (!e.empty()) {
      std::cerr << "outpost: configuration error: auth: " << e << "\n";
      return 2;
    }
    std::cout << "outpost: configuration " << app.config.source << " is valid\n";
    return 0;
  }
  if (query->parsed()) {
    std::string e;
    auto ctx = dns::make_resolver_context(app.config.dns, &e, nullptr, app.config.cache.disk_dir);
    auto qname = dns::Name::from_text(q_name);
    auto qtype = dns::type_from_text(q_type);
    if (!ctx || !qname || !qtype) {
      std::cerr << "outpost query: " << (!ctx ? e : !qname ? "bad name " + q_name : "unknown type " + q_type) << "\n";
      return 2;
    }
    auto rcode = dns::run_query(*ctx, {*qname, *qtype, dns::kClassIN}, q_trace, std::cout);
    return rcode == dns::rcode::NOERROR || rcode == dns::rcode::NXDOMAIN ? 0 : 1;
  }
  std::string err;
  if (!log::init(app.config.log.level, app.config.log.file, &err)) {
    std::cerr << "outpost: cannot open log file: " << err << "\n";
    return 1;
  }
  if (!app.access_log.open(app.config.log.access_log, &err)) {
    std::cerr << "outpost: cannot open access log: " << err << "\n";
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  // LDAP checks wait on the directory in pool threads: room for them beside the pool's
  // other work (auth/ldap.hpp). Before any loop runs: libuv sizes its pool once.
  if (app.config.auth.backend == "ldap") reserve_blocking_threads(app.config.auth.ldap.max_pending);
  app.start_time = static_cast<double>(std::time(nullptr));
  app.fd_limit = raise_fd_limit();
  {
    // The shared store: opening it with a disk tier rebuilds the index (before any loop runs).
    app.store = cache::Store::open(cache::StoreOptions::from_config(app.config.cache), &err);
    if (!app.store) {
      spdlog::critical("cannot open the cache store: {}", err);
      return 1;
    }
    auto st = app.store->stats();
    if (st.disk_enabled)
      spdlog::info("cache store: disk tier {} with {} record(s) recovered in {:.3f} s", app.config.cache.disk_dir,
                   st.recovered_records, st.recovery_seconds);
    if (app.config.http_cache.enabled) app.http_cache = std::make_unique<http::HttpCache>(*app.store);
    app.dns_context = dns::make_resolver_context(app.config.dns, &err, app.store, app.config.cache.disk_dir);
    if (!app.dns_context) {
      spdlog::critical("DNS: {}", err);
      return 1;
    }
    std::vector<std::string> warnings;
    err.clear();
    app.authenticator = auth::load_authenticator(app.config.auth, &err, &warnings);
    for (auto& w : warnings) spdlog::warn("auth: {}", w);
    if (!err.empty()) {
      spdlog::critical("auth: {}", err);
      return 1;
    }
    if (app.authenticator)
      spdlog::info("proxy authentication: {} back end, realm \"{}\"", app.authenticator->backend_name(),
                   app.authenticator->realm());
  }
  app.loop = uv_default_loop();
  uv_signal_init(app.loop, &app.sig_term);
  uv_signal_init(app.loop, &app.sig_int);
  uv_signal_init(app.loop, &app.sig_hup);
  app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
  uv_async_init(app.loop, &app.main_wake, [](uv_async_t* a) {
    auto* self = static_cast<App*>(a->data);
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lk(self->main_mu);
      tasks.swap(self->main_tasks);
    }
    for (auto& t : tasks) t();
  });
  app.main_wake.data = &app;
  if (!app.start_workers()) return 1;
  uv_signal_start(&app.sig_term, [](uv_signal_t* s, int) { static_cast<App*>(s->data)->shutdown("SIGTERM"); }, SIGTERM);
  uv_signal_start(&app.sig_int, [](uv_signal_t* s, int) { static_cast<App*>(s->data)->shutdown("SIGINT"); }, SIGINT);
  uv_signal_start(&app.sig_hup, [](uv_signal_t* s, int) { static_cast<App*>(s->data)->reload(); }, SIGHUP);
  uv_run(app.loop, UV_RUN_DEFAULT);
  for (auto& w : app.workers) w->join();
  app.proxies.clear();
  app.services.clear();
  app.workers.clear();
  app.dns.clear();
  app.http_cache.reset();
  app.dns_context.reset();
  app.store.reset();  // finishes queued disk writes
  spdlog::info("outpost stopped");
  spdlog::shutdown();
  return 0;
}
