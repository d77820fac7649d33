#include <list>
#include <unordered_map>

#include "bench/hitrate/policy.hpp"

namespace outpost::hitrate {

namespace {

class Lru final : public Policy {
 public:
  explicit Lru(std::uint64_t capacity) : capacity_(capacity) {}

  bool access(std::uint64_t id, std::uint64_t charge) override {
    auto it = map_.find(id);
    if (it != map_.end()) {
      order_.splice(order_.begin(), order_, it->second.pos);
      return true;
    }
    if (charge > capacity_) return false;
    order_.push_front(id);
    map_[id] = Slot{order_.begin(), charge};
    used_ += charge;
    while (used_ > capacity_) {
      auto victim = map_.find(order_.back());
      used_ -= victim->second.charge;
      map_.erase(victim);
      order_.pop_back();
    }
    return false;
  }
  bool contains(std::uint64_t id) const override { return map_.count(id) != 0; }
  std::uint64_t used() const override { return used_; }

 private:
  struct Slot {
    std::list<std::uint64_t>::iterator pos;
    std::uint64_t charge;
  };
  std::uint64_t capacity_, used_ = 0;
  std::list<std::uint64_t> order_;  // front = most recent
  std::unordered_map<std::uint64_t, Slot> map_;
};

}  // namespace

std::unique_ptr<Policy> make_lru(std::uint64_t capacity) { return std::make_unique<Lru>(capacity); }

}  // namespace outpost::hitrate
