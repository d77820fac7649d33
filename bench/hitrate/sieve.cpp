#include <list>
#include <unordered_map>

#include "bench/hitrate/policy.hpp"

namespace outpost::hitrate {

namespace {

class Sieve final : public Policy {
 public:
  explicit Sieve(std::uint64_t capacity) : capacity_(capacity) {}

  bool access(std::uint64_t id, std::uint64_t charge) override {
    auto it = map_.find(id);
    if (it != map_.end()) {
      it->second->visited = true;
      return true;
    }
    if (charge > capacity_) return false;
    while (used_ + charge > capacity_) evict();
    queue_.push_front(Node{id, charge, false});
    map_[id] = queue_.begin();
    used_ += charge;
    return false;
  }
  bool contains(std::uint64_t id) const override { return map_.count(id) != 0; }
  std::uint64_t used() const override { return used_; }

 private:
  struct Node {
    std::uint64_t id, charge;
    bool visited;
  };
  using Iter = std::list<Node>::iterator;

  // The hand walks from the oldest object (back) towards the newest (front) and wraps.
  void evict() {
    Iter h = hand_valid_ ? hand_ : std::prev(queue_.end());
    while (h->visited) {
      h->visited = false;
      h = h == queue_.begin() ? std::prev(queue_.end()) : std::prev(h);
    }
    hand_valid_ = h != queue_.begin();
    if (hand_valid_) hand_ = std::prev(h);
    used_ -= h->charge;
    map_.erase(h->id);
    queue_.erase(h);
  }

  std::uint64_t capacity_, used_ = 0;
  std::list<Node> queue_;  // front = newest
  std::unordered_map<std::uint64_t, Iter> map_;
  Iter hand_;
  bool hand_valid_ = false;
};

}  // namespace

std::unique_ptr<Policy> make_sieve(std::uint64_t capacity) { return std::make_unique<Sieve>(capacity); }

}  // namespace outpost::hitrate
