// Proxy authentication: a back end (auth/backend.hpp) behind a verdict cache, shared by every
// worker (thread-safe), one per configuration snapshot (a reload makes a new one: a user
// removed from the file loses access at once).
//
// A request's credentials are looked up in the cache on the loop (a hash and a map lookup
// under a mutex); a miss is checked on the thread pool (core/blocking_work), since password
// hashes cost milliseconds on purpose. Concurrent checks of the same credentials (a page
// load opens several connections at once) wait for the first one: one hash per user and
// password per cache_ttl, whatever the page. Good and bad verdicts are kept cache_ttl
// seconds; "unavailable" ones (a directory down) never.
//
// The cache key is SHA-256 over a random per-process salt, the user and the password: no
// password is kept in memory beyond its check, and a memory dump gives no table to look
// passwords up in.
#pragma once
#include <uv.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "auth/backend.hpp"
#include "core/blocking_work.hpp"
#include "core/config.hpp"

namespace outpost::auth {

class Authenticator : public std::enable_shared_from_this<Authenticator> {
 public:
  static constexpr std::size_t kMaxCached = 65536;

  Authenticator(std::unique_ptr<Backend> backend, const Config::Auth& config);

  const std::string& realm() const { return realm_; }
  std::string_view backend_name() const { return backend_->name(); }

  // The cached verdict for these credentials, if any (any thread).
  std::optional<Identity> cached(const std::string& user, const std::string& password) const;
  // Checks on the thread pool; `done` on `loop`'s thread (never inside the call) unless the
  // returned work is cancelled or destroyed first. With pending_limit() checks pending
  // already, the verdict is "unavailable" without asking the back end.
  [[nodiscard]] BlockingWork verify(uv_loop_t* loop, std::string user, std::string password,
                                    std::function<void(Identity)> done) const;
  // The blocking check itself (a pool thread; tests): cache, or wait for the same check in
  // progress, or the back end.
  Identity verify_now(const std::string& user, const std::string& password) const;

  // Figures: back-end checks made, and verdicts served from the cache.
  std::uint64_t backend_checks() const { return checks_.load(std::memory_order_relaxed); }
  // Checks queued or running on the pool now, and the bound on them (0: none).
  std::size_t pending() const { return pending_.load(std::memory_order_relaxed); }
  std::size_t pending_limit() const { return pending_limit_; }

 private:
  using Key = std::array<unsigned char, 32>;
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    Identity identity;
    std::chrono::steady_clock::time_point expires;
  };
  Key key_of(const std::string& user, const std::string& password) const;
  std::optional<Identity> cached_locked(const Key& k) const;

  std::unique_ptr<Backend> backend_;
  std::string realm_;
  std::chrono::milliseconds ttl_;
  std::array<unsigned char, 32> salt_;
  mutable std::mutex mu_;
  mutable std::condition_variable settled_;
  mutable std::unordered_map<Key, Entry, KeyHash> cache_;
  mutable std::unordered_set<Key, KeyHash> in_flight_;
  mutable std::atomic<std::uint64_t> checks_{0};
  // A remote back end's checks each hold a pool thread: at most pending_limit_ at once
  // (Backend::max_pending, and never all of the pool's threads).
  std::size_t pending_limit_ = 0;
  mutable std::atomic<std::size_t> pending_{0};
  struct PendingSlot;
};

// The authenticator [auth] describes: nullptr without error for backend "none"; nullptr
// with *error if its files cannot be read. Blocking (reads files): at start-up, or on the
// thread pool during a reload. Warnings (skipped lines) go to *warnings.
std::shared_ptr<const Authenticator> load_authenticator(const Config::Auth& config, std::string* error,
                                                        std::vector<std::string>* warnings);

}  // namespace outpost::auth
