#include <set>
#include <unordered_map>

#include "bench/hitrate/policy.hpp"

namespace outpost::hitrate {

namespace {

class Gdsf final : public Policy {
 public:
  explicit Gdsf(std::uint64_t capacity) : capacity_(capacity) {}

  bool access(std::uint64_t id, std::uint64_t charge) override {
    auto it = map_.find(id);
    if (it != map_.end()) {
      Slot& s = it->second;
      queue_.erase({s.priority, s.seq});
      ++s.freq;
      enqueue(id, s);
      return true;
    }
    if (charge > capacity_) return false;
    while (used_ + charge > capacity_) {
      auto lowest = queue_.begin();
      inflation_ = lowest->priority;
      auto victim = map_.find(lowest->id);
      used_ -= victim->second.charge;
      map_.erase(victim);
      queue_.erase(lowest);
    }
    Slot& s = map_[id];
    s.charge = charge;
    s.freq = 1;
    enqueue(id, s);
    used_ += charge;
    return false;
  }
  bool contains(std::uint64_t id) const override { return map_.count(id) != 0; }
  std::uint64_t used() const override { return used_; }

 private:
  struct Slot {
    std::uint64_t charge = 0, freq = 0, seq = 0;
    double priority = 0;
  };
  // Lowest priority first; among equals the least recently requested.
  struct Key {
    double priority;
    std::uint64_t seq, id = 0;
    bool operator<(const Key& o) const { return priority != o.priority ? priority < o.priority : seq < o.seq; }
  };

  void enqueue(std::uint64_t id, Slot& s) {
    s.priority = inflation_ + static_cast<double>(s.freq) / static_cast<double>(s.charge);
    s.seq = ++clock_;
    queue_.insert({s.priority, s.seq, id});
  }

  std::uint64_t capacity_, used_ = 0, clock_ = 0;
  double inflation_ = 0;  // L
  std::set<Key> queue_;
  std::unordered_map<std::uint64_t, Slot> map_;
};

}  // namespace

std::unique_ptr<Policy> make_gdsf(std::uint64_t capacity) { return std::make_unique<Gdsf>(capacity); }

}  // namespace outpost::hitrate
