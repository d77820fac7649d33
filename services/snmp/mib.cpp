#include "services/snmp/mib.hpp"

#include <algorithm>
#include <cmath>

namespace outpost::snmp {

MibView::MibView(std::vector<MibEntry> entries) : entries_(std::move(entries)) {
  std::sort(entries_.begin(), entries_.end(), [](const MibEntry& a, const MibEntry& b) { return a.oid < b.oid; });
}

const MibEntry* MibView::get(const Oid& oid) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), oid,
                             [](const MibEntry& e, const Oid& o) { return e.oid < o; });
  return it != entries_.end() && it->oid == oid ? &*it : nullptr;
}

const MibEntry* MibView::next(const Oid& oid, bool inclusive) const {
  auto it = inclusive ? std::lower_bound(entries_.begin(), entries_.end(), oid,
                                         [](const MibEntry& e, const Oid& o) { return e.oid < o; })
                      : std::upper_bound(entries_.begin(), entries_.end(), oid,
                                         [](const Oid& o, const MibEntry& e) { return o < e.oid; });
  return it == entries_.end() ? nullptr : &*it;
}

Value MibView::missing(const Oid& oid) const {
  // Served objects are scalars (OBJECT.0): an OID below one's object is a wrong instance.
  for (const auto& e : entries_) {
    Oid object(e.oid.begin(), e.oid.end() - 1);
    if (oid_starts_with(oid, object) && oid.size() > object.size()) return Value::exception(Tag::kNoSuchInstance);
  }
  return Value::exception(Tag::kNoSuchObject);
}

namespace {

std::uint64_t u(double v) { return v <= 0 || std::isnan(v) ? 0 : static_cast<std::uint64_t>(v); }
std::int32_t i32(double v) {
  if (std::isnan(v) || v <= 0) return 0;
  return v >= 2147483647.0 ? 2147483647 : static_cast<std::int32_t>(v);
}

Oid under(const Oid& base, std::initializer_list<std::uint32_t> arcs) {
  Oid o = base;
  o.insert(o.end(), arcs);
  return o;
}

}  // namespace

MibView build_mib(const MetricSet& m, const MibInfo& info, double now) {
  std::vector<MibEntry> e;
  auto add = [&](const Oid& base, std::initializer_list<std::uint32_t> arcs, Value v) {
    e.push_back({under(base, arcs), std::move(v)});
  };
  const Oid& sq = kSquidMib;
  double start = m.sum("outpost_start_time_seconds");
  double uptime = start > 0 && now > start ? now - start : 0;
  double mem_bytes = m.sum("outpost_store_bytes", {{"tier", "memory"}});
  double disk_bytes = m.sum("outpost_store_bytes", {{"tier", "disk"}});
  double requests = m.sum("outpost_http_requests_total");
  double hits = 0;
  for (const char* o : {"TCP_HIT", "TCP_MEM_HIT", "TCP_IMS_HIT", "TCP_STALE_HIT", "TCP_CF_HIT", "TCP_REFRESH_UNMODIFIED",
                        "TCP_REFRESH_FAIL_OLD"})
    hits += m.sum("outpost_http_requests_total", {{"outcome", o}});
  double errors = m.sum("outpost_http_responses_total", {{"code", "4xx"}}) +
                  m.sum("outpost_http_responses_total", {{"code", "5xx"}});
  double http_objects = m.sum("outpost_store_objects", {{"namespace", "http"}});

  // cacheSystem
  add(sq, {1, 1, 0}, Value::integer32(i32(mem_bytes / 1024)));   // cacheSysVMsize, KB
  add(sq, {1, 2, 0}, Value::integer32(i32(disk_bytes / 1024)));  // cacheSysStorage, KB
  add(sq, {1, 3, 0}, Value::timeticks(u(uptime * 100)));         // cacheUptime
  // cacheConfig
  add(sq, {2, 2, 0}, Value::octets("Outpost"));  // cacheSoftware
  add(sq, {2, 3, 0}, Value::octets(info.version));  // cacheVersionId
  add(sq, {2, 5, 1, 0}, Value::integer32(i32(static_cast<double>(info.memory_size >> 20))));  // cacheMemMaxSize, MB
  add(sq, {2, 5, 2, 0}, Value::integer32(i32(static_cast<double>(info.disk_size >> 20))));    // cacheSwapMaxSize, MB
  add(sq, {2, 6, 0}, Value::octets(info.name));  // cacheUniqName
  // cachePerf.cacheSysPerf
  add(sq, {3, 1, 3, 0}, Value::integer32(i32(m.sum("outpost_process_resident_memory_bytes") / 1024)));  // cacheMemUsage
  add(sq, {3, 1, 4, 0}, Value::integer32(i32(m.sum("outpost_process_cpu_seconds_total"))));  // cacheCpuTime
  add(sq, {3, 1, 6, 0}, Value::integer32(i32(m.sum("outpost_process_max_resident_memory_bytes") / 1024)));  // cacheMaxResSize
  add(sq, {3, 1, 7, 0}, Value::gauge32(u(http_objects)));  // cacheNumObjCount
  // cachePerf.cacheProtoStats.cacheProtoAggregateStats
  add(sq, {3, 2, 1, 1, 0}, Value::counter32(u(requests)));  // cacheProtoClientHttpRequests
  add(sq, {3, 2, 1, 2, 0}, Value::counter32(u(hits)));      // cacheHttpHits
  add(sq, {3, 2, 1, 3, 0}, Value::counter32(u(errors)));    // cacheHttpErrors
  add(sq, {3, 2, 1, 5, 0}, Value::counter32(u(m.sum("outpost_client_sent_bytes_total") / 1024)));  // cacheHttpOutKb
  add(sq, {3, 2, 1, 12, 0}, Value::counter32(u(m.sum("outpost_origin_received_bytes_total") / 1024)));  // cacheServerInKb
  add(sq, {3, 2, 1, 14, 0}, Value::gauge32(u(disk_bytes / 1024)));  // cacheCurrentSwapSize, KB
  add(sq, {3, 2, 1, 15, 0}, Value::gauge32(u(m.sum("outpost_client_connections"))));  // cacheClients
  // cacheNetwork.cacheIpCache: the proxy's host lookups through the resolver
  add(sq, {4, 1, 2, 0}, Value::counter32(u(m.sum("outpost_dns_resolutions_total", {{"source", "proxy"}}))));  // cacheIpRequests
  add(sq, {4, 1, 3, 0}, Value::counter32(u(m.sum("outpost_dns_cache_hits_total", {{"source", "proxy"}}))));  // cacheIpHits
  add(sq, {4, 1, 6, 0}, Value::counter32(u(m.sum("outpost_dns_cache_misses_total", {{"source", "proxy"}}))));  // cacheIpMisses
  // cacheNetwork.cacheDns: queries to DNS servers
  add(sq, {4, 3, 1, 0}, Value::counter32(u(m.sum("outpost_dns_upstream_queries_total"))));  // cacheDnsRequests

  // Outpost's own subtree (docs/SNMP.md): .1 resolver, .2 store, .3 proxy. Counter64 for
  // counters, Gauge32 for levels.
  const Oid& op = kOutpostMib;
  add(op, {1, 1, 0}, Value::counter64(u(m.sum("outpost_dns_queries_total"))));  // DNS server queries
  add(op, {1, 2, 0}, Value::counter64(u(m.sum("outpost_dns_resolutions_total"))));
  add(op, {1, 3, 0}, Value::counter64(u(m.sum("outpost_dns_cache_hits_total"))));
  add(op, {1, 4, 0}, Value::counter64(u(m.sum("outpost_dns_cache_misses_total"))));
  add(op, {1, 5, 0}, Value::counter64(u(m.sum("outpost_dns_resolution_servfail_total"))));
  add(op, {1, 6, 0}, Value::counter64(u(m.sum("outpost_dns_upstream_queries_total"))));
  add(op, {1, 7, 0}, Value::counter64(u(m.sum("outpost_dns_upstream_timeouts_total"))));
  add(op, {1, 8, 0}, Value::counter64(u(m.sum("outpost_dns_stale_answers_total"))));
  add(op, {1, 9, 0}, Value::counter64(u(m.sum("outpost_dns_prefetches_total"))));
  add(op, {1, 10, 0}, Value::counter64(u(m.sum("outpost_dns_error_responses_total"))));
  add(op, {2, 1, 0}, Value::gauge32(u(m.sum("outpost_store_objects", {{"tier", "memory"}}))));
  add(op, {2, 2, 0}, Value::gauge32(u(m.sum("outpost_store_objects", {{"tier", "disk"}}))));
  add(op, {2, 3, 0}, Value::gauge32(u(mem_bytes / 1024)));  // KB, as Squid's sizes
  add(op, {2, 4, 0}, Value::gauge32(u(disk_bytes / 1024)));
  add(op, {2, 5, 0}, Value::counter64(u(m.sum("outpost_store_lookups_total"))));
  add(op, {2, 6, 0}, Value::counter64(u(m.sum("outpost_store_hits_total", {{"tier", "memory"}}))));
  add(op, {2, 7, 0}, Value::counter64(u(m.sum("outpost_store_hits_total", {{"tier", "disk"}}))));
  add(op, {2, 8, 0}, Value::counter64(u(m.sum("outpost_store_misses_total"))));
  add(op, {2, 9, 0}, Value::counter64(u(m.sum("outpost_store_evictions_total"))));
  add(op, {2, 10, 0}, Value::gauge32(u(m.sum("outpost_store_objects", {{"namespace", "dns"}}))));
  add(op, {3, 1, 0}, Value::counter64(u(requests)));
  add(op, {3, 2, 0}, Value::counter64(u(hits)));
  add(op, {3, 3, 0}, Value::counter64(u(m.sum("outpost_client_sent_bytes_total"))));
  add(op, {3, 4, 0}, Value::gauge32(u(m.sum("outpost_client_connections"))));
  add(op, {3, 5, 0}, Value::counter64(u(m.sum("outpost_tunnels_total"))));
  return MibView(std::move(e));
}

}  // namespace outpost::snmp
