#include "resolver/resolver_metrics.hpp"

#include "resolver/dns_server.hpp"
#include "resolver/resolver.hpp"
#include "resolver/resolver_core.hpp"

namespace outpost::dns {

namespace {

double d(std::uint64_t v) { return static_cast<double>(v); }

void collect_server(const DnsServer& server, MetricsVisitor& out) {
  const DnsServerStats& s = server.stats();
  out.counter("outpost_dns_queries_total", "Queries received by the DNS server", {}, d(s.queries));
  out.counter("outpost_dns_responses_total", "Responses sent by the DNS server", {}, d(s.answered));
  const char* err_help = "DNS server responses with an error rcode (NXDOMAIN is an answer, not counted here)";
  out.counter("outpost_dns_error_responses_total", err_help, {{"rcode", "SERVFAIL"}}, d(s.servfail));
  out.counter("outpost_dns_error_responses_total", err_help, {{"rcode", "REFUSED"}}, d(s.refused));
  out.counter("outpost_dns_error_responses_total", err_help, {{"rcode", "FORMERR"}}, d(s.formerr));
  out.counter("outpost_dns_error_responses_total", err_help, {{"rcode", "NOTIMP"}}, d(s.notimp));
  out.counter("outpost_dns_dropped_total", "Queries dropped without an answer (too short, or not a query)", {},
              d(s.dropped));
  out.counter("outpost_dns_truncated_total", "UDP responses truncated to the client's size (TC set)", {},
              d(s.truncated));
  out.counter("outpost_dns_reply_cache_hits_total",
              "Queries answered with a reply kept from an earlier identical question (per-worker reply cache)", {},
              d(server.reply_cache().stats().hits));
}

void collect_upstream(const Upstream& u, MetricsVisitor& out) {
  const UpstreamStats& s = u.stats();
  const char* help = "Queries the resolver sent to authoritative or forward servers";
  out.counter("outpost_dns_upstream_queries_total", help, {{"transport", "udp"}}, d(s.udp_sent));
  out.counter("outpost_dns_upstream_queries_total", help, {{"transport", "tcp"}}, d(s.tcp_sent));
  out.counter("outpost_dns_upstream_timeouts_total", "Upstream queries that timed out", {}, d(s.timeouts));
  out.counter("outpost_dns_upstream_merged_total",
              "Upstream questions not sent: they joined an identical query to the same server in flight", {},
              d(s.merged));
  const char* bad =
      "Upstream replies ignored: not matching the query (address, port, ID, question; case_mismatch: the "
      "question's case with 0x20) or malformed";
  out.counter("outpost_dns_upstream_bad_replies_total", bad, {{"reason", "mismatched"}}, d(s.mismatched));
  out.counter("outpost_dns_upstream_bad_replies_total", bad, {{"reason", "malformed"}}, d(s.malformed));
  out.counter("outpost_dns_upstream_bad_replies_total", bad, {{"reason", "case_mismatch"}}, d(s.case_mismatches));
  out.counter("outpost_dns_upstream_tcp_connections_total", "TCP connections the resolver opened to upstream servers",
              {}, d(s.tcp_connections));
  out.counter("outpost_dns_upstream_tcp_reused_total",
              "Upstream TCP queries sent on a connection an earlier query had opened (RFC 7766 reuse, pipelined "
              "or after an idle wait)",
              {}, d(s.tcp_reused));
  out.counter("outpost_dns_upstream_tcp_retries_total",
              "Upstream TCP queries sent again on a new connection: the server closed the reused one first", {},
              d(s.tcp_retries));
  out.gauge("outpost_dns_upstream_tcp_idle_connections", "Upstream TCP connections kept open for reuse, no query on them",
            {}, d(static_cast<std::uint64_t>(u.idle_tcp_connections())));
}

void collect_refresh(const RefreshStats& s, MetricsVisitor& out) {
  out.counter("outpost_dns_stale_answers_total", "Answers given from expired cache entries (serve-stale, RFC 8767)", {},
              d(s.stale_answers));
  out.counter("outpost_dns_prefetches_total",
              "Background re-resolutions started by cache hits in the last tenth of an entry's TTL", {},
              d(s.prefetches));
}

void collect_validation(const ValidationStats& s, MetricsVisitor& out) {
  const char* help = "DNSSEC verdicts on upstream responses (validation on)";
  out.counter("outpost_dns_dnssec_verdicts_total", help, {{"verdict", "secure"}}, d(s.secure));
  out.counter("outpost_dns_dnssec_verdicts_total", help, {{"verdict", "insecure"}}, d(s.insecure));
  out.counter("outpost_dns_dnssec_verdicts_total", help, {{"verdict", "bogus"}}, d(s.bogus));
  out.counter("outpost_dns_dnssec_synthesized_total",
              "NXDOMAIN and NODATA answers proven from cached validated NSEC/NSEC3 records (RFC 8198)", {},
              d(s.synthesized));
}

void collect_resolutions(const ResolverMetrics& m, MetricsVisitor& out) {
  static constexpr const char* kSources[] = {"client", "proxy"};
  for (int s = 0; s < ResolverMetrics::kSourceCount; ++s) {
    out.counter("outpost_dns_resolutions_total",
                "Questions resolved, by source (client: DNS server queries; proxy: origin host lookups)",
                {{"source", kSources[s]}}, d(m.resolutions[s]));
    out.counter("outpost_dns_cache_hits_total", "Resolutions answered from the cache or a local zone, no upstream query",
                {{"source", kSources[s]}}, d(m.cache_hits[s]));
    out.counter("outpost_dns_cache_misses_total", "Resolutions that needed upstream queries",
                {{"source", kSources[s]}}, d(m.resolutions[s] - m.cache_hits[s]));
    out.counter("outpost_dns_resolution_servfail_total", "Resolutions that ended in SERVFAIL",
                {{"source", kSources[s]}}, d(m.servfails[s]));
    out.histogram("outpost_dns_resolution_duration_seconds", "Time from a question's arrival to its answer",
                  {{"source", kSources[s]}}, m.duration[s]);
  }
}

}  // namespace

void collect_metrics(Resolver& resolver, const DnsServer* server, MetricsVisitor& out) {
  if (server) collect_server(*server, out);
  collect_upstream(resolver.core().upstream(), out);
  collect_refresh(resolver.core().refresh_stats(), out);
  collect_validation(resolver.core().validator().stats(), out);
  collect_resolutions(resolver.metrics(), out);
}

}  // namespace outpost::dns
