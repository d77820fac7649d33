// Minted leaf certificates for interception, shared by every worker of the process: the
// minter (tls/ca) and an in-memory cache of what it minted, keyed by the names a leaf
// carries.
//
// - find() is cheap (a mutex and a hash lookup) and runs on a loop thread: a name bumped
//   before costs no minting and no pool hop.
// - find_or_mint() blocks (a store read; minting signs with the CA key): it runs off the
//   loop, on the pool (core/blocking_work). It reads the store without a lock, then holds one
//   mutex while it looks again and mints, so N concurrent handshakes for one name list, on
//   any workers, mint once; the others find that leaf.
// - A leaf is reused until a day before it expires; then the next request mints a new one.
// - At most `capacity` leaves are kept; beyond it the least recently used goes.
#pragma once
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tls/ca.hpp"

namespace outpost::tls {

// Where minted leaves outlive the process: the shared store's certificate namespace
// (proxy/leaf_store). Certificates only: the leaf key is derived from the CA key at load
// (tls/ca), never stored. Both calls may block (disk): the cache calls them off the loop.
class LeafStore {
 public:
  virtual ~LeafStore() = default;
  virtual std::optional<std::string> get(const std::string& key) = 0;
  virtual void put(const std::string& key, const std::string& value, std::int64_t expiry) = 0;
};

class LeafCache {
 public:
  static constexpr std::size_t kDefaultCapacity = 20000;
  static constexpr std::int64_t kRenewBefore = 86400;  // seconds before expiry

  // nullptr and a reason when the CA cannot be used (tls/ca LeafMinter::load).
  static std::shared_ptr<LeafCache> load(const std::string& ca_cert, const std::string& ca_key, std::string* error,
                                         std::size_t capacity = kDefaultCapacity);

  // Persists leaves in `store` from now on (call before any use, from one thread), under
  // keys prefixed by the CA's fingerprint. Leaves stored by an earlier run with this CA are
  // usable: the leaf key is the same (derived from the CA key).
  void use_store(std::shared_ptr<LeafStore> store);

  // A leaf for exactly these names, from memory (a new reference), or nullptr.
  X509Ptr find(const std::vector<std::string>& names);
  // The same, from the store or minted when absent (blocking: call off the loop). nullptr and a reason if
  // the names cannot go in a certificate. `*minted`: this call minted it.
  // `*minted`: this call minted it (not found in memory or in the store).
  X509Ptr find_or_mint(const std::vector<std::string>& names, std::string* error, bool* minted = nullptr);

  // Origins' certificates, as far as minting needs them: the subjectAltName list of the
  // certificate an origin ("host:port") presented, verified, the last time it was dialled.
  // A leaf for that origin copies it. At most `capacity` origins are kept.
  void note_origin(const std::string& authority, std::vector<std::string> names);
  std::vector<std::string> origin_names(const std::string& authority) const;

  EVP_PKEY* leaf_key() const { return minter_->leaf_key(); }
  X509* ca_certificate() const { return minter_->ca_certificate(); }

  std::uint64_t mints() const { return mints_.load(std::memory_order_relaxed); }
  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t store_hits() const { return store_hits_.load(std::memory_order_relaxed); }
  std::size_t size() const;

 private:
  struct Entry {
    X509Ptr cert;
    std::int64_t renew_at;  // epoch seconds: mint again from then on
  };
  using Lru = std::list<std::pair<std::string, Entry>>;
  LeafCache() = default;
  static std::string key_of(const std::vector<std::string>& names);
  X509Ptr find_locked(const std::string& key);

  std::unique_ptr<LeafMinter> minter_;
  std::size_t capacity_ = kDefaultCapacity;
  mutable std::mutex mu_;       // the index and the LRU
  std::mutex mint_mu_;          // one mint at a time (LeafMinter is not thread-safe)
  Lru lru_;                     // most recently used first
  std::unordered_map<std::string, Lru::iterator> index_;
  std::unordered_map<std::string, std::vector<std::string>> origins_;  // under mu_
  std::atomic<std::uint64_t> mints_{0}, hits_{0}, store_hits_{0};
  std::shared_ptr<LeafStore> store_;
  std::string store_prefix_;  // "<CA fingerprint>\n": a new CA never finds the old one's leaves
  X509Ptr from_store(const std::string& key);
  void remember(const std::string& key, X509* x);
};

// The names of a certificate's subjectAltName, in order, as far as they are fit to copy into
// a leaf: well-formed DNS names (lower-cased; "*." wildcards kept) and IP addresses as text.
// Anything else (odd characters, NULs, over-long names) is left out.
std::vector<std::string> subject_alt_names(X509* cert);

}  // namespace outpost::tls
