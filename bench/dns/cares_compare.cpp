// c-ares comparison benchmark (issue 5, "Benchmarks"); not a test. Driven by cares_compare.py,
// which starts the fake hierarchy, Outpost's DNS server and Unbound inside netns_run.sh.
//
//   cares_compare cares ADDR:PORT NAMES_FILE INFLIGHT
//       c-ares 1.18 (no query cache) asks ADDR:PORT an A question for every name in the file,
//       keeping INFLIGHT queries outstanding (ares_query, ares_getsock + poll + ares_process_fd).
//   cares_compare inproc HINTS_FILE NAMES_FILE INFLIGHT [warm_rounds] [store|memory] [host|a]
//       A fresh ResolverContext (fake root hints) on one libuv loop, its cache in a fresh
//       memory-only cache::Store as the app builds it (make_resolver_context; "store", the
//       default) or in the resolver's private memory cache ("memory"). Cold phase: every name
//       once, INFLIGHT outstanding; then warm_rounds passes of one-at-a-time lookups on the warm
//       cache (call to callback, one loop turn included). "host" (default): Resolver::resolve,
//       A and AAAA in parallel, what the proxy does; "a": Resolver::query for A only, what the
//       c-ares client asks.
//
// Output: one line per phase, "phase=NAME n=.. ok=.. total_ms=.. qps=.. median_us=.. p99_us=..
// mean_us=..", parsed by the driver.
#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cache/cache_config.hpp"
#include "cache/store.hpp"
#include "core/config.hpp"
#include "resolver/dns_config.hpp"
#include "resolver/hints.hpp"
#include "resolver/resolver.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

std::vector<std::string> read_names(const char* path) {
  std::vector<std::string> names;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) names.push_back(line);
  return names;
}

void report(const char* phase, std::vector<double> lat_us, std::size_t ok, double total_us) {
  std::sort(lat_us.begin(), lat_us.end());
  auto pct = [&](double p) {
    if (lat_us.empty()) return 0.0;
    auto i = static_cast<std::size_t>(p * static_cast<double>(lat_us.size() - 1) + 0.5);
    return lat_us[std::min(i, lat_us.size() - 1)];
  };
  double n = static_cast<double>(lat_us.size());
  double sum = 0;
  for (double v : lat_us) sum += v;
  std::printf("phase=%s n=%zu ok=%zu total_ms=%.3f qps=%.1f median_us=%.2f p99_us=%.2f mean_us=%.2f\n", phase,
              lat_us.size(), ok, total_us / 1000, n > 0 ? n / (total_us / 1e6) : 0.0, pct(0.5), pct(0.99),
              n > 0 ? sum / n : 0.0);
  std::fflush(stdout);
}

// ---- c-ares ----

struct CaresRun {
  ares_channel channel = nullptr;
  const std::vector<std::string>* names = nullptr;
  std::size_t next = 0, done = 0, ok = 0, inflight = 0, max_inflight = 1;
  std::vector<double> lat_us;
};

struct CaresQuery {
  CaresRun* run;
  Clock::time_point start;
};

void cares_start_next(CaresRun* r);

void cares_done(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  auto* q = static_cast<CaresQuery*>(arg);
  CaresRun* r = q->run;
  r->lat_us.push_back(us_between(q->start, Clock::now()));
  delete q;
  if (status == ARES_SUCCESS) {
    hostent* host = nullptr;
    if (ares_parse_a_reply(abuf, alen, &host, nullptr, nullptr) == ARES_SUCCESS) ++r->ok;
    if (host) ares_free_hostent(host);
  }
  ++r->done;
  --r->inflight;
  if (status != ARES_EDESTRUCTION) cares_start_next(r);
}

void cares_start_next(CaresRun* r) {
  while (r->inflight < r->max_inflight && r->next < r->names->size()) {
    auto* q = new CaresQuery{r, Clock::now()};
    ++r->inflight;
    ares_query(r->channel, (*r->names)[r->next++].c_str(), ns_c_in, ns_t_a, cares_done, q);
  }
}

int run_cares(const char* server, const char* names_file, std::size_t inflight) {
  auto names = read_names(names_file);
  ares_library_init(ARES_LIB_INIT_ALL);
  ares_options opts{};
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
  opts.timeout = 2000;  // ms, with ARES_OPT_TIMEOUTMS
  opts.tries = 3;
  opts.ndots = 0;
  opts.ednspsz = 1232;
  opts.udp_port = 0;
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS | ARES_OPT_EDNSPSZ;
  CaresRun r;
  if (ares_init_options(&r.channel, &opts, mask) != ARES_SUCCESS) {
    std::fprintf(stderr, "ares_init_options failed\n");
    return 1;
  }
  if (int rc = ares_set_servers_ports_csv(r.channel, server); rc != ARES_SUCCESS) {
    std::fprintf(stderr, "ares_set_servers_ports_csv(%s): %s\n", server, ares_strerror(rc));
    return 1;
  }
  r.names = &names;
  r.max_inflight = inflight;
  r.lat_us.reserve(names.size());
  auto t0 = Clock::now();
  cares_start_next(&r);
  while (r.done < names.size()) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(r.channel, socks, ARES_GETSOCK_MAXNUM);
    pollfd pfds[ARES_GETSOCK_MAXNUM];
    nfds_t n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short ev = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
      if (ev) pfds[n++] = pollfd{socks[i], ev, 0};
    }
    timeval tv{}, max_tv{1, 0};
    timeval* tvp = ares_timeout(r.channel, &max_tv, &tv);
    int ms = static_cast<int>(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
    int rc = poll(pfds, n, ms);
    if (rc <= 0) {
      ares_process_fd(r.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      continue;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (!pfds[i].revents) continue;
      ares_socket_t rd = (pfds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfds[i].fd : ARES_SOCKET_BAD;
      ares_socket_t wr = (pfds[i].revents & POLLOUT) ? pfds[i].fd : ARES_SOCKET_BAD;
      ares_process_fd(r.channel, rd, wr);
    }
  }
  double total = us_between(t0, Clock::now());
  report("cares", r.lat_us, r.ok, total);
  ares_destroy(r.channel);
  ares_library_cleanup();
  return 0;
}

// ---- in-process resolver ----

int run_inproc(const char* hints_file, const char* names_file, std::size_t inflight, int warm_rounds, bool use_store,
               bool a_only) {
  using namespace outpost::dns;
  auto names = read_names(names_file);
  std::string err;
  std::shared_ptr<ResolverContext> ctx;
  if (use_store) {
    outpost::cache::register_config_section();  // the default's [cache] and [dns], as the app reads them
    outpost::dns::register_config_section();
    auto config = outpost::Config::load_default();
    config.cache.disk_dir.clear();
    config.dns.hints = hints_file;
    config.dns.dnssec_validation = false;  // the fake root is unsigned (validation is on by default)
    std::shared_ptr<outpost::cache::Store> store = outpost::cache::Store::open(
        outpost::cache::StoreOptions::from_config(config.cache), &err);
    if (store) ctx = make_resolver_context(config.dns, &err, store);
  } else if (auto hints = load_root_hints_file(hints_file, &err)) {
    ResolverConfig cfg;
    cfg.root_hints = *hints;
    ctx = ResolverContext::create(cfg);
  }
  if (!ctx) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  std::vector<Name> qnames;
  for (const auto& n : names) qnames.push_back(*Name::from_text(n + "."));
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    Resolver resolver(&loop, ctx);
    // One lookup of names[i]; done(ok) runs on the loop.
    auto lookup = [&](std::size_t i, std::function<void(bool)> done) {
      if (a_only)
        resolver.query(Question{qnames[i], type::A, kClassIN}, [done](const Resolution& r) {
          done(r.rcode == rcode::NOERROR && !r.answer.empty());
        });
      else
        resolver.resolve(names[i], [done](ResolveStatus s, std::vector<outpost::IpAddress>, std::uint32_t) {
          done(s == ResolveStatus::ok);
        });
    };
    // Cold: every name once, `inflight` outstanding.
    std::vector<double> lat;
    lat.reserve(names.size());
    std::size_t next = 0, done = 0, ok = 0, outstanding = 0;
    std::function<void()> start_more = [&] {
      while (outstanding < inflight && next < names.size()) {
        ++outstanding;
        auto t = Clock::now();
        lookup(next++, [&, t](bool good) {
          lat.push_back(us_between(t, Clock::now()));
          if (good) ++ok;
          ++done;
          --outstanding;
          start_more();
        });
      }
    };
    auto t0 = Clock::now();
    start_more();
    while (done < names.size()) uv_run(&loop, UV_RUN_ONCE);
    report("inproc_cold", lat, ok, us_between(t0, Clock::now()));

    // Warm: one lookup at a time, from the call to the callback (one loop turn included).
    for (int round = 0; round < warm_rounds; ++round) {
      std::vector<double> wlat;
      wlat.reserve(names.size());
      std::size_t wok = 0;
      auto w0 = Clock::now();
      for (std::size_t i = 0; i < names.size(); ++i) {
        bool fin = false;
        auto t = Clock::now();
        lookup(i, [&, t](bool good) {
          wlat.push_back(us_between(t, Clock::now()));
          if (good) ++wok;
          fin = true;
        });
        while (!fin) uv_run(&loop, UV_RUN_ONCE);
      }
      report("inproc_warm", wlat, wok, us_between(w0, Clock::now()));
    }
    resolver.shutdown();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::strcmp(argv[1], "cares") == 0)
    return run_cares(argv[2], argv[3], std::strtoul(argv[4], nullptr, 10));
  if (argc >= 5 && std::strcmp(argv[1], "inproc") == 0)
    return run_inproc(argv[2], argv[3], std::strtoul(argv[4], nullptr, 10), argc > 5 ? std::atoi(argv[5]) : 1,
                      !(argc > 6 && std::strcmp(argv[6], "memory") == 0), argc > 7 && std::strcmp(argv[7], "a") == 0);
  std::fprintf(stderr,
               "usage: %s cares ADDR:PORT NAMES_FILE INFLIGHT\n"
               "       %s inproc HINTS_FILE NAMES_FILE INFLIGHT [warm_rounds] [store|memory] [host|a]\n",
               argv[0], argv[0]);
  return 2;
}
