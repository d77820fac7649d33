#include "proxy/leaf_store.hpp"

#include <future>

namespace outpost {
namespace {

class StoreLeafStore final : public tls::LeafStore {
 public:
  explicit StoreLeafStore(std::shared_ptr<cache::Store> s) : store_(std::move(s)) {}

  // Blocks for a disk read (the leaf cache calls this off the loop, or at load).
  std::optional<std::string> get(const std::string& key) override {
    std::promise<cache::Handle> found;
    auto f = found.get_future();
    store_->lookup_async(cache::Namespace::kCert, key, [&found](cache::Handle h, bool) { found.set_value(std::move(h)); });
    cache::Handle h = f.get();
    if (!h) return std::nullopt;
    return h.body_string();
  }

  void put(const std::string& key, const std::string& value, std::int64_t expiry) override {
    store_->insert(cache::Namespace::kCert, key, {}, value, expiry);
  }

 private:
  std::shared_ptr<cache::Store> store_;
};

}  // namespace

std::shared_ptr<tls::LeafStore> make_leaf_store(std::shared_ptr<cache::Store> store) {
  if (!store) return nullptr;
  return std::make_shared<StoreLeafStore>(std::move(store));
}

}  // namespace outpost
