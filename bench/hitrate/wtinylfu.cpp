#include <algorithm>
#include <cmath>
#include <list>
#include <unordered_map>

#include "bench/hitrate/policy.hpp"
#include "cache/frequency_sketch.hpp"

namespace outpost::hitrate {

namespace {

using cache::detail::FrequencySketch;

// Caffeine's design (BoundedLocalCache + its simulator's hill climber), in bytes:
// - every request is counted in the sketch (with a doorkeeper);
// - a miss enters the window LRU; what overflows the window becomes the admission candidate;
// - while the cache is over capacity the candidate meets main's victim (probation's LRU, else
//   protected's): the one the sketch thinks more frequent stays, the other is evicted;
// - a probation hit promotes to protected, whose overflow is demoted back to probation;
// - every 10 x (sketch width) requests the hill climber moves the window size by a step in
//   the direction that last improved the hit ratio; the step decays by 0.98 and restarts at
//   6.25% of the capacity when the hit ratio changes by more than 5%.
class WTinyLfu final : public Policy {
 public:
  explicit WTinyLfu(const WTinyLfuOptions& o)
      : o_(o), window_max_(static_cast<double>(o.capacity) * o.window), step_(-kStepShare * static_cast<double>(o.capacity)) {
    sketch_.ensure_capacity(o.expected_objects);
  }

  bool access(std::uint64_t id, std::uint64_t charge) override {
    sketch_.add(id);
    bool hit = lookup(id);
    if (!hit && charge <= o_.capacity) admit(id, charge);
    if (o_.climb) climb(hit);
    return hit;
  }
  bool contains(std::uint64_t id) const override { return map_.count(id) != 0; }
  std::uint64_t used() const override { return lists_[kWindow].bytes + lists_[kProbation].bytes + lists_[kProtected].bytes; }
  double window_bytes() const { return window_max_; }

 private:
  enum Where : int { kWindow, kProbation, kProtected };
  struct Slot;
  struct List {
    std::list<std::uint64_t> ids;  // front = most recent
    std::uint64_t bytes = 0;
  };
  struct Slot {
    Where where;
    std::uint64_t charge;
    std::list<std::uint64_t>::iterator pos;
  };
  static constexpr double kStepShare = 0.0625, kStepDecay = 0.98, kRestart = 0.05;

  void link(std::uint64_t id, Slot& s, Where w) {
    s.where = w;
    lists_[w].ids.push_front(id);
    s.pos = lists_[w].ids.begin();
    lists_[w].bytes += s.charge;
  }
  void unlink(Slot& s) {
    lists_[s.where].ids.erase(s.pos);
    lists_[s.where].bytes -= s.charge;
  }
  double main_max() const { return static_cast<double>(o_.capacity) - window_max_; }
  double protected_max() const { return main_max() * o_.protected_share; }

  bool lookup(std::uint64_t id) {
    auto it = map_.find(id);
    if (it == map_.end()) return false;
    Slot& s = it->second;
    unlink(s);
    link(id, s, s.where == kWindow ? kWindow : kProtected);
    demote_protected();
    return true;
  }

  void demote_protected() {
    while (static_cast<double>(lists_[kProtected].bytes) > protected_max()) {
      std::uint64_t v = lists_[kProtected].ids.back();
      Slot& s = map_[v];
      unlink(s);
      link(v, s, kProbation);
    }
  }

  void admit(std::uint64_t id, std::uint64_t charge) {
    Slot& s = map_[id];
    s.charge = charge;
    link(id, s, kWindow);
    // Window overflow: its LRU objects become candidates at probation's head, in order.
    std::vector<std::uint64_t> candidates;
    while (static_cast<double>(lists_[kWindow].bytes) > window_max_ && !lists_[kWindow].ids.empty()) {
      std::uint64_t c = lists_[kWindow].ids.back();
      Slot& cs = map_[c];
      unlink(cs);
      link(c, cs, kProbation);
      candidates.push_back(c);
    }
    evict_main(candidates);
  }

  // Caffeine's evictFromMain: candidates (oldest first) against victims from probation's LRU
  // end (then protected's, then the window's) until everything fits.
  void evict_main(const std::vector<std::uint64_t>& candidates) {
    std::size_t next = 0;
    while (used() > o_.capacity) {
      std::uint64_t victim;
      if (!victim_of(&victim)) break;
      if (next == candidates.size() || victim == candidates[next]) {
        // No candidate left (or the candidate is probation's oldest itself): plain eviction.
        if (next < candidates.size()) ++next;
        drop(victim);
        continue;
      }
      std::uint64_t cand = candidates[next];
      if (sketch_.estimate(cand) > sketch_.estimate(victim)) {
        drop(victim);
      } else {
        ++next;
        drop(cand);
      }
    }
  }
  bool victim_of(std::uint64_t* v) const {
    for (Where w : {kProbation, kProtected, kWindow})
      if (!lists_[w].ids.empty()) {
        *v = lists_[w].ids.back();
        return true;
      }
    return false;
  }
  void drop(std::uint64_t id) {
    auto it = map_.find(id);
    unlink(it->second);
    map_.erase(it);
  }

  void climb(bool hit) {
    hits_ += hit;
    if (++requests_ < sketch_.sample_size()) return;
    double rate = static_cast<double>(hits_) / static_cast<double>(requests_);
    double delta = rate - last_rate_;
    double amount = delta >= 0 ? step_ : -step_;
    step_ = std::abs(delta) >= kRestart ? kStepShare * static_cast<double>(o_.capacity) * (amount >= 0 ? 1 : -1)
                                        : kStepDecay * amount;
    last_rate_ = rate;
    hits_ = requests_ = 0;
    window_max_ = std::clamp(window_max_ + amount, 0.0, static_cast<double>(o_.capacity));
    // A smaller window spills into main at the next admission; a larger one shrinks
    // protected, whose overflow goes to probation now.
    demote_protected();
  }

  WTinyLfuOptions o_;
  FrequencySketch sketch_{true};
  double window_max_, step_, last_rate_ = 0;
  std::uint64_t hits_ = 0, requests_ = 0;
  List lists_[3];
  std::unordered_map<std::uint64_t, Slot> map_;
};

}  // namespace

std::unique_ptr<Policy> make_wtinylfu(const WTinyLfuOptions& o) { return std::make_unique<WTinyLfu>(o); }

}  // namespace outpost::hitrate
