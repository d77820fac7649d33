#include <algorithm>
#include <list>
#include <unordered_map>

#include "bench/hitrate/policy.hpp"

namespace outpost::hitrate {

namespace {

// ARC with byte sizes: every "|list|" of the paper is that list's bytes, the adaptation steps
// are scaled by the requested object's size, and REPLACE runs until the object fits.
class Arc final : public Policy {
 public:
  explicit Arc(std::uint64_t capacity) : c_(capacity) {}

  bool access(std::uint64_t id, std::uint64_t charge) override {
    auto it = map_.find(id);
    if (it != map_.end() && (it->second.where == kT1 || it->second.where == kT2)) {
      move(it->second, kT2);
      return true;
    }
    if (charge > c_) return false;
    if (it != map_.end()) {  // a ghost hit: adapt p, then admit into T2
      Slot& s = it->second;
      bool in_b2 = s.where == kB2;
      auto b1 = static_cast<double>(lists_[kB1].bytes), b2 = static_cast<double>(lists_[kB2].bytes);
      auto step = static_cast<double>(charge);
      if (in_b2) {
        step *= std::max(1.0, b1 / b2);
        p_ = static_cast<std::uint64_t>(std::max(0.0, static_cast<double>(p_) - step));
      } else {
        step *= std::max(1.0, b2 / b1);
        p_ = static_cast<std::uint64_t>(std::min(static_cast<double>(c_), static_cast<double>(p_) + step));
      }
      s.charge = charge;
      lists_[s.where].remove(s);
      s.where = kNone;
      replace(charge, in_b2);
      lists_[kT2].push(s, id);
      s.where = kT2;
      trim_ghosts();
      return false;
    }
    replace(charge, false);
    Slot& s = map_[id];
    s.charge = charge;
    lists_[kT1].push(s, id);
    s.where = kT1;
    trim_ghosts();
    return false;
  }
  bool contains(std::uint64_t id) const override {
    auto it = map_.find(id);
    return it != map_.end() && (it->second.where == kT1 || it->second.where == kT2);
  }
  std::uint64_t used() const override { return lists_[kT1].bytes + lists_[kT2].bytes; }

 private:
  enum Where : int { kT1, kT2, kB1, kB2, kNone };
  struct Slot;
  struct List {
    std::list<std::uint64_t> ids;  // front = most recent
    std::uint64_t bytes = 0;
    void push(Slot& s, std::uint64_t id) {
      ids.push_front(id);
      s.pos = ids.begin();
      bytes += s.charge;
    }
    void remove(Slot& s) {
      ids.erase(s.pos);
      bytes -= s.charge;
    }
  };
  struct Slot {
    Where where = kNone;
    std::uint64_t charge = 0;
    std::list<std::uint64_t>::iterator pos;
  };

  void move(Slot& s, Where to) {
    std::uint64_t id = *s.pos;
    lists_[s.where].remove(s);
    lists_[to].push(s, id);
    s.where = to;
  }
  // Makes room for `need` bytes: T1's LRU goes to B1 while T1 is over its target p (or, on a
  // B2 hit, at it), else T2's LRU goes to B2.
  void replace(std::uint64_t need, bool b2_hit) {
    while (used() + need > c_) {
      const List& t1 = lists_[kT1];
      bool from_t1 = !t1.ids.empty() && (t1.bytes > p_ || (b2_hit && t1.bytes == p_) || lists_[kT2].ids.empty());
      Where from = from_t1 ? kT1 : kT2;
      move(map_[lists_[from].ids.back()], from_t1 ? kB1 : kB2);
    }
  }
  // |T1| + |B1| <= c and the whole directory <= 2c.
  void trim_ghosts() {
    while (lists_[kT1].bytes + lists_[kB1].bytes > c_ && !lists_[kB1].ids.empty()) drop(kB1);
    while (used() + lists_[kB1].bytes + lists_[kB2].bytes > 2 * c_) drop(lists_[kB2].ids.empty() ? kB1 : kB2);
  }
  void drop(Where w) {
    std::uint64_t id = lists_[w].ids.back();
    lists_[w].remove(map_[id]);
    map_.erase(id);
  }

  std::uint64_t c_, p_ = 0;
  List lists_[4];
  std::unordered_map<std::uint64_t, Slot> map_;
};

}  // namespace

std::unique_ptr<Policy> make_arc(std::uint64_t capacity) { return std::make_unique<Arc>(capacity); }

}  // namespace outpost::hitrate
