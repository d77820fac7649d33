// Metrics of modules that do not report their own yet: the cache store (process-wide, its
// stats are thread-safe) and the process itself. The resolver and DNS server export their
// own (resolver/resolver_metrics.hpp), as the proxy and the services do.
#pragma once
#include <string_view>

#include "cache/store.hpp"
#include "core/metrics.hpp"

namespace outpost {

void collect_store_metrics(const cache::StoreStats& s, MetricsVisitor& out);
// outpost_build_info and the process start time.
void collect_process_metrics(std::string_view version, double start_time, unsigned workers, MetricsVisitor& out);

}  // namespace outpost
