#include "app/metrics_sources.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace outpost {

namespace {
double d(std::uint64_t v) { return static_cast<double>(v); }
}  // namespace

void collect_store_metrics(const cache::StoreStats& s, MetricsVisitor& out) {
  for (std::size_t i = 0; i < cache::kNamespaceCount; ++i) {
    const auto& n = s.ns[i];
    std::string_view ns = cache::namespace_name(static_cast<cache::Namespace>(i));
    out.gauge("outpost_store_objects", "Objects in the cache store, by namespace and tier",
              {{"namespace", ns}, {"tier", "memory"}}, d(n.objects_memory));
    out.gauge("outpost_store_objects", "Objects in the cache store, by namespace and tier",
              {{"namespace", ns}, {"tier", "disk"}}, d(n.objects_disk));
    out.gauge("outpost_store_bytes", "Bytes held by the cache store, by namespace and tier",
              {{"namespace", ns}, {"tier", "memory"}}, d(n.bytes_memory));
    out.gauge("outpost_store_bytes", "Bytes held by the cache store, by namespace and tier",
              {{"namespace", ns}, {"tier", "disk"}}, d(n.bytes_disk));
    out.counter("outpost_store_lookups_total", "Cache store lookups (DNS cache lookups are namespace dns)",
                {{"namespace", ns}}, d(n.lookups));
    out.counter("outpost_store_hits_total", "Cache store lookups answered from memory, or by a disk read",
                {{"namespace", ns}, {"tier", "memory"}}, d(n.hits));
    out.counter("outpost_store_hits_total", "Cache store lookups answered from memory, or by a disk read",
                {{"namespace", ns}, {"tier", "disk"}}, d(n.disk_hits));
    out.counter("outpost_store_misses_total", "Cache store lookups that found nothing", {{"namespace", ns}},
                d(n.misses));
    out.counter("outpost_store_admissions_total", "Objects admitted to the memory tier", {{"namespace", ns}},
                d(n.admissions));
    out.counter("outpost_store_evictions_total", "Objects evicted, by tier", {{"namespace", ns}, {"tier", "memory"}},
                d(n.evictions));
    out.counter("outpost_store_evictions_total", "Objects evicted, by tier", {{"namespace", ns}, {"tier", "disk"}},
                d(n.disk_evictions));
    out.counter("outpost_store_rejected_total",
                "Objects not admitted (memory: too big for the budget; disk: full, write error or too big)",
                {{"namespace", ns}, {"tier", "memory"}}, d(n.rejected));
    out.counter("outpost_store_rejected_total",
                "Objects not admitted (memory: too big for the budget; disk: full, write error or too big)",
                {{"namespace", ns}, {"tier", "disk"}}, d(n.disk_rejected));
    out.counter("outpost_store_disk_writes_total", "Objects written to the disk tier", {{"namespace", ns}},
                d(n.disk_writes));
    out.counter("outpost_store_disk_corrupt_records_total",
                "Disk records dropped for a bad checksum or a torn tail (never served)", {{"namespace", ns}},
                d(n.corrupt_skipped));
  }
  out.gauge("outpost_store_disk_segments", "Segment files of the disk tier", {}, d(s.segments));
  out.gauge("outpost_store_disk_full", "1 while the disk tier is full", {}, s.disk_full ? 1 : 0);
}

void collect_process_metrics(std::string_view version, double start_time, unsigned workers, MetricsVisitor& out) {
  out.gauge("outpost_build_info", "Always 1; the version in a label", {{"version", version}}, 1);
  out.gauge("outpost_start_time_seconds", "When this process started (Unix time)", {}, start_time);
  out.gauge("outpost_workers", "Worker threads", {}, workers);
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    out.counter("outpost_process_cpu_seconds_total", "User and system CPU time of the process", {}, cpu);
    out.gauge("outpost_process_max_resident_memory_bytes", "Peak resident memory of the process", {},
              static_cast<double>(ru.ru_maxrss) * 1024);
  }
  // /proc/self/statm: size resident ... in pages.
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2)
      out.gauge("outpost_process_resident_memory_bytes", "Resident memory of the process", {},
                static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    std::fclose(f);
  }
}

}  // namespace outpost
