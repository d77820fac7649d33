#include "auth/authenticator.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "auth/htpasswd.hpp"
#include "auth/ldap.hpp"

namespace outpost::auth {

std::size_t Authenticator::KeyHash::operator()(const Key& k) const noexcept {
  std::size_t h;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

struct Authenticator::PendingSlot {
  std::shared_ptr<const Authenticator> a;
  explicit PendingSlot(std::shared_ptr<const Authenticator> p) : a(std::move(p)) {}
  ~PendingSlot() { a->pending_.fetch_sub(1, std::memory_order_relaxed); }
};

Authenticator::Authenticator(std::unique_ptr<Backend> backend, const Config::Auth& config)
    : backend_(std::move(backend)),
      realm_(config.realm),
      ttl_(static_cast<std::int64_t>(config.cache_ttl * 1000)) {
  if (std::size_t limit = backend_->max_pending()) {
    // Other blocking work (reloads, minted certificates) keeps two of the pool's threads.
    std::size_t pool = blocking_pool_threads();
    pending_limit_ = std::max<std::size_t>(1, std::min(limit, pool > 2 ? pool - 2 : 1));
  }
  if (RAND_bytes(salt_.data(), static_cast<int>(salt_.size())) != 1) {
    // No randomness from OpenSSL: the address of this object and the time are still unknown
    // to a reader of the log; the key stays a salted hash.
    auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    std::memcpy(salt_.data(), &t, sizeof t);
    const void* self = this;
    std::memcpy(salt_.data() + sizeof t, &self, sizeof self);
  }
}

Authenticator::Key Authenticator::key_of(const std::string& user, const std::string& password) const {
  Key k{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, salt_.data(), salt_.size());
  std::uint32_t len = static_cast<std::uint32_t>(user.size());
  EVP_DigestUpdate(ctx, &len, sizeof len);  // "ab"+"c" and "a"+"bc" differ
  EVP_DigestUpdate(ctx, user.data(), user.size());
  EVP_DigestUpdate(ctx, password.data(), password.size());
  EVP_DigestFinal_ex(ctx, k.data(), &n);
  EVP_MD_CTX_free(ctx);
  return k;
}

std::optional<Identity> Authenticator::cached_locked(const Key& k) const {
  auto it = cache_.find(k);
  if (it == cache_.end()) return std::nullopt;
  if (it->second.expires <= std::chrono::steady_clock::now()) {
    cache_.erase(it);
    return std::nullopt;
  }
  return it->second.identity;
}

std::optional<Identity> Authenticator::cached(const std::string& user, const std::string& password) const {
  Key k = key_of(user, password);
  std::lock_guard lk(mu_);
  return cached_locked(k);
}

Identity Authenticator::verify_now(const std::string& user, const std::string& password) const {
  Key k = key_of(user, password);
  {
    std::unique_lock lk(mu_);
    // The same credentials being checked on another thread: wait for that verdict.
    settled_.wait(lk, [&] { return !in_flight_.count(k); });
    if (auto id = cached_locked(k)) return *id;
    in_flight_.insert(k);
  }
  Identity id;
  try {
    id = backend_->verify(user, password);
  } catch (const std::exception& e) {
    id.verdict = Verdict::kUnavailable;
    id.why = e.what();
  }
  checks_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lk(mu_);
    in_flight_.erase(k);
    if (id.verdict != Verdict::kUnavailable && ttl_.count() > 0) {
      if (cache_.size() >= kMaxCached) {
        auto now = std::chrono::steady_clock::now();
        std::erase_if(cache_, [now](const auto& kv) { return kv.second.expires <= now; });
        if (cache_.size() >= kMaxCached) cache_.clear();
      }
      cache_[k] = Entry{id, std::chrono::steady_clock::now() + ttl_};
    }
  }
  settled_.notify_all();
  return id;
}

BlockingWork Authenticator::verify(uv_loop_t* loop, std::string user, std::string password,
                                   std::function<void(Identity)> done) const {
  std::shared_ptr<PendingSlot> slot;
  if (pending_limit_) {
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= pending_limit_) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      OPENSSL_cleanse(password.data(), password.size());
      std::string why = "back end busy: " + std::to_string(pending_limit_) + " checks pending already";
      return run_blocking(
          loop,
          [why] {
            Identity id;
            id.verdict = Verdict::kUnavailable;
            id.why = why;
            return id;
          },
          std::move(done));
    }
    // Released when the work is over (or dropped before it started).
    slot = std::make_shared<PendingSlot>(shared_from_this());
  }
  // The work keeps the authenticator alive: a check already running finishes on its pool
  // thread even after a reload replaced this authenticator and its request went away.
  return run_blocking(
      loop,
      [self = shared_from_this(), slot = std::move(slot), user = std::move(user),
       password = std::move(password)]() mutable {
        Identity id = self->verify_now(user, password);
        OPENSSL_cleanse(password.data(), password.size());
        return id;
      },
      std::move(done));
}

std::shared_ptr<const Authenticator> load_authenticator(const Config::Auth& config, std::string* error,
                                                        std::vector<std::string>* warnings) {
  if (config.backend == "none") return nullptr;
  if (config.backend == "htpasswd") {
    auto b = HtpasswdBackend::load(config.htpasswd_file, config.group_file, error, warnings);
    if (!b) return nullptr;
    if (b->users() == 0) warnings->push_back(config.htpasswd_file + ": no usable user: nobody can log in");
    return std::make_shared<const Authenticator>(std::move(b), config);
  }
  if (config.backend == "ldap") {
    auto b = LdapBackend::load(config.ldap, error);
    if (!b) return nullptr;
    return std::make_shared<const Authenticator>(std::move(b), config);
  }
  *error = "auth.backend: unknown back end " + config.backend;
  return nullptr;
}

}  // namespace outpost::auth
