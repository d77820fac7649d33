// outpost: command line, configuration, wiring of the modules, signals.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "cache/store.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/worker_pool.hpp"
#include "proxy/access_log.hpp"
#include "proxy/http_cache.hpp"
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
  SystemResolver resolver;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<http::HttpCache> http_cache;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<ProxyWorker>> proxies;
  uv_loop_t* loop = nullptr;
  uv_signal_t sig_term, sig_int, sig_hup;
  bool stopping = false;

  bool start_workers();
  void shutdown(const char* why);
  void reload();
};

bool App::start_workers() {
  unsigned n = config.server.workers ? config.server.workers : std::max(1u, std::thread::hardware_concurrency());
  auto settings = ProxySettings::make(config);
  std::vector<std::future<std::string>> started;
  for (unsigned i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<Worker>(i));
    proxies.push_back(nullptr);
  }
  for (unsigned i = 0; i < n; ++i) {
    auto promise = std::make_shared<std::promise<std::string>>();
    started.push_back(promise->get_future());
    workers[i]->start([this, i, settings, promise](Worker& w) {
      proxies[i] = std::make_unique<ProxyWorker>(w, settings, resolver, access_log, http_cache.get());
      std::string err;
      if (!proxies[i]->start(&err)) {
        promise->set_value(err);
        return;
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
    for (unsigned i = 0; i < n; ++i) {
      workers[i]->post([this, i] {
        proxies[i]->begin_shutdown(0, [this, i] { workers[i]->stop(); });
      });
    }
    for (auto& w : workers) w->join();
    return false;
  }
  std::string where;
  for (auto& ep : config.proxy.listen) where += (where.empty() ? "" : ", ") + ep.to_string();
  spdlog::info("outpost {} started: {} worker(s), proxy on {}", OUTPOST_VERSION, n, where);
  return true;
}

void App::shutdown(const char* why) {
  if (stopping) return;
  stopping = true;
  spdlog::info("{}: stopping (grace period {} s)", why, config.server.shutdown_grace);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    workers[i]->post([this, i] {
      proxies[i]->begin_shutdown(config.server.shutdown_grace, [this, i] { workers[i]->stop(); });
    });
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_term), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_int), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sig_hup), nullptr);
}

void App::reload() {
  std::string err;
  if (!log::reopen(&err)) spdlog::error("cannot reopen log file: {}", err);
  if (!access_log.reopen(&err)) spdlog::error("cannot reopen access log: {}", err);
  if (config_path.empty()) {
    spdlog::info("SIGHUP: logs reopened (embedded configuration, nothing to reload)");
    return;
  }
  Config fresh;
  try {
    fresh = Config::load_file(config_path);
  } catch (const ConfigError& e) {
    spdlog::error("SIGHUP: configuration not reloaded: {}", e.what());
    return;
  }
  bool listen_changed = fresh.proxy.listen.size() != config.proxy.listen.size();
  for (std::size_t i = 0; !listen_changed && i < fresh.proxy.listen.size(); ++i)
    listen_changed = fresh.proxy.listen[i].to_string() != config.proxy.listen[i].to_string();
  if (listen_changed) {
    spdlog::warn("SIGHUP: listening addresses changed; a restart is needed to apply them");
    fresh.proxy.listen = config.proxy.listen;
  }
  if (fresh.log.level != config.log.level) spdlog::set_level(spdlog::level::from_str(fresh.log.level));
  config = fresh;
  auto settings = ProxySettings::make(config);
  for (std::size_t i = 0; i < workers.size(); ++i)
    workers[i]->post([this, i, settings] { proxies[i]->update_settings(settings); });
  spdlog::info("SIGHUP: configuration reloaded from {}, logs reopened", config_path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Outpost: a caching forward proxy with a recursive DNS resolver"};
  App app;
  bool check = false, print_default = false, version = false;
  cli.add_option("-c,--config", app.config_path, "Configuration file (TOML); default: the embedded configuration");
  cli.add_flag("--check-config", check, "Validate the configuration and exit");
  cli.add_flag("--print-default-config", print_default, "Print the embedded default configuration and exit");
  cli.add_flag("-V,--version", version, "Print the version and exit");
  CLI11_PARSE(cli, argc, argv);

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
    std::cout << "outpost: configuration " << app.config.source << " is valid\n";
    return 0;
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
    if (app.config.http_cache.enabled) app.http_cache = std::make_unique<http::HttpCache>(*app.store, app.config.http_cache);
  }
  app.loop = uv_default_loop();
  uv_signal_init(app.loop, &app.sig_term);
  uv_signal_init(app.loop, &app.sig_int);
  uv_signal_init(app.loop, &app.sig_hup);
  app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
  if (!app.start_workers()) return 1;
  uv_signal_start(&app.sig_term, [](uv_signal_t* s, int) { static_cast<App*>(s->data)->shutdown("SIGTERM"); }, SIGTERM);
  uv_signal_start(&app.sig_int, [](uv_signal_t* s, int) { static_cast<App*>(s->data)->shutdown("SIGINT"); }, SIGINT);
  uv_signal_start(&app.sig_hup, [](uv_signal_t* s, int) { static_cast<App*>(s->data)->reload(); }, SIGHUP);
  uv_run(app.loop, UV_RUN_DEFAULT);
  for (auto& w : app.workers) w->join();
  app.proxies.clear();
  app.workers.clear();
  app.http_cache.reset();
  app.store.reset();  // finishes queued disk writes
  spdlog::info("outpost stopped");
  spdlog::shutdown();
  return 0;
}
