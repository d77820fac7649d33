// Test driver: runs Outpost's DNS server alone on an Outpost config file ([server] workers,
// [cache] and [dns] are read), until SIGTERM/SIGINT. Prints "ready" on stdout once every worker listens.
// Stands in for `outpost` until app/ wires the resolver. Usage: dns_server CONFIG
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "cache/cache_config.hpp"
#include "cache/store.hpp"
#include "core/config.hpp"
#include "core/worker_pool.hpp"
#include "resolver/dns_config.hpp"

using namespace outpost;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: dns_server CONFIG\n";
    return 2;
  }
  cache::register_config_section();
  dns::register_config_section();
  Config cfg;
  try {
    cfg = Config::load_file(argv[1]);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  std::string err;
  // As app/ will: one shared store ([cache] section) holds the DNS cache too.
  std::shared_ptr<cache::Store> store = cache::Store::open(cache::StoreOptions::from_config(cfg.cache), &err);
  if (!store) {
    std::cerr << "cache: " << err << "\n";
    return 2;
  }
  auto ctx = dns::make_resolver_context(cfg.dns, &err, store);
  if (!ctx) {
    std::cerr << err << "\n";
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);  // workers inherit the mask; main waits below

  unsigned n = cfg.server.workers ? cfg.server.workers : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<unsigned> ready{0};
  std::atomic<bool> failed{false};
  struct PerWorker {
    std::unique_ptr<dns::Resolver> resolver;
    std::unique_ptr<dns::DnsServer> server;
  };
  std::vector<PerWorker> per(n);
  for (unsigned i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<Worker>(i));
    workers.back()->start([&, i](Worker& w) {
      per[i].resolver = std::make_unique<dns::Resolver>(w.loop(), ctx);
      per[i].server = std::make_unique<dns::DnsServer>(w.loop(), *per[i].resolver, dns::make_server_options(cfg.dns));
      std::string e;
      if (!per[i].server->start(&e)) {
        std::cerr << e << "\n";
        failed = true;
      }
      ++ready;
    });
  }
  while (ready < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (failed) {
    std::_Exit(1);
  }
  std::cout << "ready" << std::endl;
  int sig = 0;
  sigwait(&sigs, &sig);
  for (unsigned i = 0; i < n; ++i) {
    workers[i]->post([&, i] {
      per[i].server->stop();
      per[i].resolver->shutdown();
    });
    workers[i]->stop();
  }
  for (auto& w : workers) w->join();
  return 0;
}
