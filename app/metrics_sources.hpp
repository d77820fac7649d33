// Metrics of modules that do not report their own yet: the cache store (process-wide, its
// stats are thread-safe), and per worker the DNS server and the resolver's upstream queries
// (plain counters, read on their worker's loop thread at each scrape; core/metrics.hpp).
// Each could move into its module as a collect_metrics() beside its stats.
#pragma once
#include <string_view>

#include "cache/store.hpp"
#include "core/metrics.hpp"
#include "resolver/dns_server.hpp"
#include "resolver/upstream.hpp"

namespace outpost {

void collect_store_metrics(const cache::StoreStats& s, MetricsVisitor& out);
void collect_dns_server_metrics(const dns::DnsServerStats& s, MetricsVisitor& out);
void collect_upstream_metrics(const dns::UpstreamStats& s, MetricsVisitor& out);
// outpost_build_info and the process start time.
void collect_process_metrics(std::string_view version, double start_time, unsigned workers, MetricsVisitor& out);

}  // namespace outpost
