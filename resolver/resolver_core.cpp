#include "resolver/resolver_core.hpp"

#include <algorithm>
#include <ctime>

#include "core/log.hpp"

#include "resolver/cache_lookup.hpp"
#include "resolver/hints.hpp"
#include "resolver/query_types.hpp"
#include "resolver/trust_anchors.hpp"

namespace outpost::dns {

// A client waiting on a resolution with a stale answer in hand (serve-stale).
struct ResolverCore::StaleWait {
  uv_timer_t timer;  // stale_client_timeout_ms
  ResolverCore* core = nullptr;
  std::uint64_t id = 0;
  ResolutionCallback cb;  // empty once cancelled
  Resolution stale;
};

void ResolverCore::close_wait(StaleWait* w) {
  uv_timer_stop(&w->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer), [](uv_handle_t* h) { delete static_cast<StaleWait*>(h->data); });
}

ResolverCore::ResolverCore(uv_loop_t* loop, std::shared_ptr<const ResolverConfig> config, std::shared_ptr<DnsCache> cache,
                           std::shared_ptr<const LocalZones> local)
    : loop_(loop), config_(std::move(config)), cache_(std::move(cache)), local_(std::move(local)), upstream_(loop) {
  upstream_.set_dnssec_ok(config_->dnssec_validation);
  tick_ = new uv_timer_t;
  uv_timer_init(loop_, tick_);
  tick_->data = this;
}

ResolverCore::~ResolverCore() { shutdown(); }

void ResolverCore::shutdown() {
  for (auto& [id, q] : queries_) graveyard_.push_back(std::move(q));
  queries_.clear();
  upstream_.close_all();
  graveyard_.clear();
  deferred_.clear();
  priming_waiters_.clear();
  refreshes_.clear();
  for (auto& [id, w] : stale_waits_) close_wait(w);
  stale_waits_.clear();
  if (anchor_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(anchor_timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    anchor_timer_ = nullptr;
  }
  if (tick_) {
    tick_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(tick_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    tick_ = nullptr;
  }
}

void ResolverCore::track_trust_anchors() {
  if (anchor_timer_) return;
  anchor_timer_ = new uv_timer_t;
  uv_timer_init(loop_, anchor_timer_);
  anchor_timer_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(anchor_timer_));  // never what keeps a loop running
  uv_timer_start(anchor_timer_, [](uv_timer_t* t) { static_cast<ResolverCore*>(t->data)->probe_trust_anchors(); }, 0, 0);
}

// A wrong clock makes every signature look expired or not yet valid, and validation then
// fails everywhere: when no RRSIG over a trust point's keys is inside its validity window,
// the warning says so.
static std::string clock_hint(const std::vector<RrsigRdata>& sigs, std::uint32_t now) {
  auto before = [](std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; };
  bool late = false, early = false;
  for (auto& s : sigs) {
    if (before(s.expiration, now))
      late = true;
    else if (before(now, s.inception))
      early = true;
    else
      return "";
  }
  if (!late && !early) return "";
  char when[32] = "?";
  std::time_t t = now;
  std::tm tm{};
  if (gmtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string("; every signature over it is ") + (late && !early ? "expired" : !late ? "not yet valid" : "outside its validity") +
         " at this host's time, " + when + ": is the system clock right?";
}

void ResolverCore::probe_trust_anchors() {
  auto tracker = config_->anchor_tracker;
  auto rearm = [this](std::uint64_t seconds) {
    if (anchor_timer_)
      uv_timer_start(anchor_timer_, [](uv_timer_t* t) { static_cast<ResolverCore*>(t->data)->probe_trust_anchors(); },
                     seconds * 1000, 0);
  };
  if (!tracker || !config_->dnssec_validation) {
    rearm(60);  // a reload may turn it on
    return;
  }
  auto points = tracker->trust_points();
  if (points.empty()) {
    rearm(3600);
    return;
  }
  auto left = std::make_shared<std::size_t>(points.size());
  auto next = std::make_shared<std::uint32_t>(UINT32_MAX);
  for (const Name& zone : points) {
    auto budget = std::make_shared<WorkBudget>(WorkBudget{config_->max_sends, now_ms()});
    auto done = [tracker, zone, left, next, rearm](const Resolution& r) {
      std::vector<RrsigRdata> sigs;
      for (auto& rr : r.dnssec)
        if (rr.type == type::RRSIG && rr.name == zone && rrsig_covered(rr) == type::DNSKEY)
          if (auto s = parse_rrsig(rr.rdata)) sigs.push_back(std::move(*s));
      auto sets = group_rrsets(r.answer);
      const RRset* keys = r.rcode == rcode::NOERROR ? find_rrset(sets, zone, type::DNSKEY) : nullptr;
      std::uint32_t wait = 0;
      if (keys && !sigs.empty()) {
        auto outcome = tracker->update(zone, *keys, sigs, static_cast<std::uint32_t>(std::time(nullptr)));
        for (auto& line : outcome.changes) spdlog::warn("dns: trust anchor (RFC 5011): {}", line);
        if (!outcome.validated)
          spdlog::warn("dns: trust anchor (RFC 5011): the DNSKEY set of {} is signed by no trusted key{}", zone.to_text(),
                       clock_hint(sigs, static_cast<std::uint32_t>(std::time(nullptr))));
        wait = outcome.validated ? outcome.next_probe_s : tracker->retry_after_failure();
      } else {
        wait = tracker->retry_after_failure();
        spdlog::info("dns: trust anchor (RFC 5011): no signed DNSKEY set for {} ({}); again in {} s", zone.to_text(),
                     r.why.empty() ? rcode_to_text(r.rcode) : r.why, wait);
      }
      *next = std::min(*next, wait);
      if (--*left == 0) rearm(*next);
    };
    start_subquery({zone, type::DNSKEY, kClassIN}, 0, std::move(budget), std::move(done), {}, QueryMode::raw);
  }
}

void ResolverCore::arm_tick() {
  if (!tick_ || uv_is_active(reinterpret_cast<uv_handle_t*>(tick_))) return;
  uv_timer_start(
      tick_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ResolverCore*>(t->data);
        if (!self) return;
        // Deliveries may start more work; take the current batch only.
        auto batch = std::move(self->deferred_);
        self->deferred_.clear();
        self->graveyard_.clear();
        for (auto& [id, fn] : batch) fn();
        if (!self->deferred_.empty() || !self->graveyard_.empty()) self->arm_tick();
      },
      0, 0);
}

void ResolverCore::defer(std::uint64_t id, std::function<void()> fn) {
  deferred_.emplace_back(id, std::move(fn));
  arm_tick();
}

void ResolverCore::retire(std::uint64_t id) {
  auto it = queries_.find(id);
  if (it == queries_.end()) return;
  graveyard_.push_back(std::move(it->second));
  queries_.erase(it);
  arm_tick();
}

bool ResolverCore::alive(std::uint64_t id) const { return queries_.count(id) != 0; }

void ResolverCore::cancel(std::uint64_t id) {
  std::erase_if(deferred_, [id](const auto& d) { return d.first == id; });
  if (auto w = stale_waits_.find(id); w != stale_waits_.end()) {
    // The client goes; the refresh it started goes on (it only fills the cache).
    close_wait(w->second);
    stale_waits_.erase(w);
    return;
  }
  auto it = queries_.find(id);
  if (it != queries_.end()) it->second->cancel();
}

std::optional<Resolution> ResolverCore::answer_locally(const Question& q, bool checking_disabled) {
  if (auto rc = unresolvable_type_rcode(q.type)) return Resolution{*rc, {}, {}, false, true, "not a data type"};
  if (local_)
    if (auto r = local_->answer(q)) return r;
  const bool validating = config_->dnssec_validation && !checking_disabled;
  if (validating)
    if (auto bogus = validator_.cached_bogus(q)) {
      Resolution r{rcode::SERVFAIL, {}, {}, false, true, "DNSSEC bogus (cached): " + bogus->why};
      r.security = Security::bogus;
      r.ede = bogus->ede;
      return r;
    }
  auto ca = lookup_in_cache(*cache_, q, now_ms(), config_->max_cname_chain, false, validating);
  if (!ca.complete) return std::nullopt;
  if (ca.resolution.rcode == rcode::SERVFAIL && config_->serve_stale) {
    // RFC 8767 section 5: after a failure, stale data is answered without asking again
    // until the failure is forgotten (servfail_ttl).
    if (auto stale = stale_answer(q)) {
      ++refresh_stats_.stale_answers;
      return stale;
    }
  }
  if (ca.prefetch && config_->prefetch) refresh(q, true, {});
  if (!ca.stale && (ca.resolution.rcode == rcode::NOERROR || ca.resolution.rcode == rcode::NXDOMAIN)) {
    std::int64_t left = config_->prefetch ? ca.until_prefetch_ms : ca.fresh_ms;
    if (left > 0 && left != INT64_MAX) ca.resolution.reuse_ms = static_cast<std::uint64_t>(left);
  }
  return ca.resolution;
}

std::optional<Resolution> ResolverCore::stale_answer(const Question& q) {
  auto ca = lookup_in_cache(*cache_, q, now_ms(), config_->max_cname_chain, true, config_->dnssec_validation);
  if (!ca.complete || !ca.stale || ca.resolution.rcode == rcode::SERVFAIL) return std::nullopt;
  Resolution r = std::move(ca.resolution);
  r.stale = true;
  for (auto* section : {&r.answer, &r.authority})
    for (auto& rr : *section) rr.ttl = config_->stale_answer_ttl;  // RFC 8767 section 4: 30 s
  return r;
}

std::uint64_t ResolverCore::start_with_stale(const Question& q, Resolution stale, ResolutionCallback cb) {
  std::uint64_t id = next_id_++;
  auto* w = new StaleWait;
  w->core = this;
  w->id = id;
  w->cb = std::move(cb);
  w->stale = std::move(stale);
  uv_timer_init(loop_, &w->timer);
  w->timer.data = w;
  // From the loop even with a timeout of 0: never inside start().
  uv_timer_start(
      &w->timer,
      [](uv_timer_t* t) {
        auto* w = static_cast<StaleWait*>(t->data);
        w->core->end_stale_wait(w->id, nullptr);
      },
      config_->stale_client_timeout_ms, 0);
  stale_waits_[id] = w;
  refresh(q, false, [this, id](const Resolution& r) { end_stale_wait(id, &r); });
  return id;
}

void ResolverCore::end_stale_wait(std::uint64_t id, const Resolution* fresh) {
  auto it = stale_waits_.find(id);
  if (it == stale_waits_.end()) return;  // answered already (the timer, then the result)
  StaleWait* w = it->second;
  stale_waits_.erase(it);
  auto cb = std::move(w->cb);
  Resolution stale = std::move(w->stale);
  close_wait(w);
  if (fresh && fresh->rcode != rcode::SERVFAIL) {
    cb(*fresh);
    return;
  }
  ++refresh_stats_.stale_answers;
  cb(stale);
}

void ResolverCore::refresh(const Question& q, bool prefetch, ResolutionCallback then) {
  std::string key = q.name.lowercase_wire();
  key += static_cast<char>(q.type >> 8);
  key += static_cast<char>(q.type);
  auto [it, first] = refreshes_.try_emplace(key);
  if (then) it->second.push_back(std::move(then));
  if (!first) return;  // one refresh per question in flight
  if (prefetch) ++refresh_stats_.prefetches;
  auto budget = std::make_shared<WorkBudget>(WorkBudget{config_->max_sends, now_ms()});
  std::uint64_t id = next_id_++;
  auto query = std::make_unique<IterativeQuery>(
      *this, id, q, 0, std::move(budget),
      [this, key](const Resolution& r) {
        auto waiting = refreshes_.extract(key);
        if (waiting.empty()) return;
        // From the loop: the query may end inside refresh(), itself inside start().
        for (auto& cb : waiting.mapped()) post([cb = std::move(cb), r] { cb(r); });
      },
      TraceSink{});
  query->mark_refresh();
  auto* raw = query.get();
  queries_[id] = std::move(query);
  raw->start();
}

std::uint64_t ResolverCore::start(const Question& q, ResolutionCallback cb, TraceSink trace, bool checking_disabled) {
  if (auto r = answer_locally(q, checking_disabled)) {
    std::uint64_t id = next_id_++;
    defer(id, [cb = std::move(cb), r = std::move(*r)] { cb(r); });
    return id;
  }
  if (config_->serve_stale && !trace && !checking_disabled)
    if (auto stale = stale_answer(q)) return start_with_stale(q, std::move(*stale), std::move(cb));
  auto budget = std::make_shared<WorkBudget>(WorkBudget{config_->max_sends, now_ms()});
  // The iterator may finish inside start() (cache hits along the way): such a result is held
  // back to the next loop turn, so callers never see their callback before start() returns.
  auto sync = std::make_shared<bool>(true);
  std::uint64_t id = next_id_;
  auto wrapped = [this, id, sync, cb = std::move(cb)](const Resolution& r) {
    if (*sync) defer(id, [cb, r] { cb(r); });
    else cb(r);
  };
  std::uint64_t started = start_subquery(q, 0, std::move(budget), std::move(wrapped), std::move(trace),
                                         checking_disabled ? QueryMode::unchecked : QueryMode::validate);
  *sync = false;
  return started;
}

void ResolverCore::prime_root(std::uint64_t waiter, std::function<void()> done, TraceSink trace) {
  priming_waiters_.push_back({waiter, std::move(done), std::move(trace)});
  if (priming_waiters_.size() > 1) return;
  // Its own budget: it serves every waiting query, and no waiter's cancel ends it.
  auto budget = std::make_shared<WorkBudget>(WorkBudget{config_->max_sends, now_ms()});
  std::uint64_t id = next_id_++;
  TraceSink to_waiters = [this](const TraceStep& step) {
    for (auto& w : priming_waiters_)
      if (w.trace && alive(w.id)) w.trace(step);
  };
  auto query = std::make_unique<IterativeQuery>(
      *this, id, priming_question(), 0, std::move(budget),
      [this](const Resolution&) {
        auto waiters = std::move(priming_waiters_);
        priming_waiters_.clear();
        for (auto& w : waiters) post(std::move(w.done));
      },
      std::move(to_waiters));
  query->mark_priming();
  query->set_mode(QueryMode::unchecked);
  auto* raw = query.get();
  queries_[id] = std::move(query);
  raw->start();
}

std::uint64_t ResolverCore::start_subquery(const Question& q, unsigned depth, std::shared_ptr<WorkBudget> budget,
                                           ResolutionCallback cb, TraceSink trace, QueryMode mode) {
  std::uint64_t id = next_id_++;
  auto query = std::make_unique<IterativeQuery>(*this, id, q, depth, std::move(budget), std::move(cb), std::move(trace));
  query->set_mode(mode);
  auto* raw = query.get();
  queries_[id] = std::move(query);
  raw->start();
  return id;
}

}  // namespace outpost::dns
