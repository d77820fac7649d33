// The per-worker resolver engine: owns the transport, server selection and the running
// queries of one libuv loop; shares the cache and configuration with the other workers.
#pragma once
#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "resolver/dns_cache.hpp"
#include "resolver/iterator.hpp"
#include "resolver/local_zones.hpp"
#include "resolver/resolver_config.hpp"
#include "resolver/resolver_metrics.hpp"
#include "resolver/server_selection.hpp"
#include "resolver/upstream.hpp"
#include "resolver/validator.hpp"

namespace outpost::dns {

class ResolverCore {
 public:
  ResolverCore(uv_loop_t* loop, std::shared_ptr<const ResolverConfig> config, std::shared_ptr<DnsCache> cache,
               std::shared_ptr<const LocalZones> local = nullptr);
  ~ResolverCore();
  ResolverCore(const ResolverCore&) = delete;
  ResolverCore& operator=(const ResolverCore&) = delete;

  // Starts resolving; the callback runs once, never inside start(). Returns an id for cancel().
  // checking_disabled: a client's CD bit, answered without DNSSEC validation.
  std::uint64_t start(const Question& q, ResolutionCallback cb, TraceSink trace = {}, bool checking_disabled = false);
  void cancel(std::uint64_t id);
  // Local zones, then the cache; nullopt if the network would be needed. A hit due a
  // prefetch starts one (ResolverConfig::prefetch); with serve-stale, a recently failed
  // question is answered stale if it can be (RFC 8767's failure recheck).
  std::optional<Resolution> answer_locally(const Question& q, bool checking_disabled = false);
  // Runs fn on the next loop turn (dropped by shutdown()).
  void post(std::function<void()> fn) { defer(0, std::move(fn)); }
  // Stops everything (pending callbacks are not called) and closes the loop handles.
  void shutdown();
  // RFC 5011 active refresh, on one worker: each trust point's DNSKEY set fetched at start and
  // then as the tracker says (trust_anchors.hpp), and handed to the configuration's
  // anchor_tracker. Nothing while there is none (validation off, or static anchors).
  void track_trust_anchors();
  // New settings and local zones (a reload): questions started from now on use them; running
  // ones read the settings afresh at each step (they keep no pointers into them).
  void update(std::shared_ptr<const ResolverConfig> config, std::shared_ptr<const LocalZones> local) {
    config_ = std::move(config);
    local_ = std::move(local);
    upstream_.set_dnssec_ok(config_->dnssec_validation);
    validator_.clear();  // the trust anchors may have changed
  }

  // For IterativeQuery.
  std::uint64_t start_subquery(const Question& q, unsigned depth, std::shared_ptr<WorkBudget> budget,
                               ResolutionCallback cb, TraceSink trace, QueryMode mode = QueryMode::validate);
  void retire(std::uint64_t id);
  // Runs `done` (from the loop) once the root priming query has ended; one priming query at a
  // time per worker, whoever asks for it. The priming steps go to the trace of each waiting
  // query (`waiter`) that is still running.
  void prime_root(std::uint64_t waiter, std::function<void()> done, TraceSink trace);
  bool alive(std::uint64_t id) const;
  Upstream& upstream() { return upstream_; }
  ServerSelection& selection() { return selection_; }
  Validator& validator() { return validator_; }
  DnsCache& cache() { return *cache_; }
  const ResolverConfig& config() const { return *config_; }
  std::uint64_t now_ms() const { return uv_now(loop_); }
  uv_loop_t* loop() const { return loop_; }
  std::size_t running() const { return queries_.size(); }
  const RefreshStats& refresh_stats() const { return refresh_stats_; }

 private:
  struct StaleWait;
  static void close_wait(StaleWait* w);
  void defer(std::uint64_t id, std::function<void()> fn);
  void arm_tick();
  // The expired answer kept for q (serve-stale), TTLs set to stale_answer_ttl; nullopt if none.
  std::optional<Resolution> stale_answer(const Question& q);
  // Resolves q with a stale answer in hand: the fresh result if it comes within
  // stale_client_timeout_ms and is not SERVFAIL, else the stale one (the resolution goes on
  // in the background and refreshes the cache).
  std::uint64_t start_with_stale(const Question& q, Resolution stale, ResolutionCallback cb);
  // Ends a wait: with the fresh result, or (null) the stale answer; nothing if cancelled.
  void end_stale_wait(std::uint64_t id, const Resolution* fresh);
  // Re-resolves q past its cached answer (prefetch, stale refresh): one query per question at
  // a time; `then` (optional) gets its result, from the loop.
  void refresh(const Question& q, bool prefetch, ResolutionCallback then);
  uv_loop_t* loop_;
  std::shared_ptr<const ResolverConfig> config_;
  std::shared_ptr<DnsCache> cache_;
  std::shared_ptr<const LocalZones> local_;
  Upstream upstream_;
  ServerSelection selection_;
  Validator validator_{*this};
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<IterativeQuery>> queries_;
  // Finished queries are destroyed, and early results delivered, on the next loop turn.
  std::vector<std::unique_ptr<IterativeQuery>> graveyard_;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> deferred_;  // (query id, delivery)
  struct PrimingWaiter {
    std::uint64_t id;
    std::function<void()> done;
    TraceSink trace;
  };
  std::vector<PrimingWaiter> priming_waiters_;  // non-empty while priming runs
  // Refreshes in flight, by question (lower-case name and type), with who waits for them.
  std::unordered_map<std::string, std::vector<ResolutionCallback>> refreshes_;
  std::unordered_map<std::uint64_t, StaleWait*> stale_waits_;  // client id -> its wait
  RefreshStats refresh_stats_;
  uv_timer_t* tick_ = nullptr;
  void probe_trust_anchors();
  uv_timer_t* anchor_timer_ = nullptr;  // track_trust_anchors()
};

}  // namespace outpost::dns
