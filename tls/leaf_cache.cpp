#include "tls/leaf_cache.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "core/net_address.hpp"

namespace outpost::tls {

std::shared_ptr<LeafCache> LeafCache::load(const std::string& ca_cert, const std::string& ca_key, std::string* error,
                                           std::size_t capacity) {
  auto minter = LeafMinter::load(ca_cert, ca_key, error);
  if (!minter) return nullptr;
  std::shared_ptr<LeafCache> c(new LeafCache);
  c->minter_ = std::move(minter);
  c->capacity_ = capacity == 0 ? 1 : capacity;
  return c;
}

std::string LeafCache::key_of(const std::vector<std::string>& names) {
  std::string key;
  for (const auto& n : names) {
    key += n;
    key += '\n';  // never inside a name (the minter refuses it)
  }
  return key;
}

X509Ptr LeafCache::find_locked(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  if (it->second->second.renew_at <= static_cast<std::int64_t>(std::time(nullptr))) {
    lru_.erase(it->second);
    index_.erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  X509* x = it->second->second.cert.get();
  X509_up_ref(x);
  return X509Ptr(x);
}

X509Ptr LeafCache::find(const std::vector<std::string>& names) {
  std::string key = key_of(names);
  std::lock_guard lock(mu_);
  X509Ptr x = find_locked(key);
  if (x) hits_.fetch_add(1, std::memory_order_relaxed);
  return x;
}

namespace {
std::int64_t not_after_of(X509* x) {
  struct tm t {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &t) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&t));
}
}  // namespace

void LeafCache::use_store(std::shared_ptr<LeafStore> store) {
  store_ = std::move(store);
  if (!store_) return;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  X509_digest(minter_->ca_certificate(), EVP_sha256(), md, &len);
  store_prefix_.clear();
  static const char* hex = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    store_prefix_ += hex[md[i] >> 4];
    store_prefix_ += hex[md[i] & 15];
  }
  store_prefix_ += '\n';
}

X509Ptr LeafCache::from_store(const std::string& key) {
  if (!store_) return nullptr;
  auto pem = store_->get(store_prefix_ + key);
  if (!pem) return nullptr;
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())), &BIO_free);
  X509Ptr x(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  // Usable only with this cache's leaf key, and not about to expire.
  if (!x || X509_check_private_key(x.get(), minter_->leaf_key()) != 1 ||
      not_after_of(x.get()) - kRenewBefore <= static_cast<std::int64_t>(std::time(nullptr))) {
    ERR_clear_error();
    return nullptr;
  }
  return x;
}

void LeafCache::remember(const std::string& key, X509* x) {
  X509_up_ref(x);
  X509Ptr kept(x);
  std::int64_t renew_at = not_after_of(x) - kRenewBefore;
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(key, Entry{std::move(kept), renew_at});
  index_.emplace(key, lru_.begin());
  while (index_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

X509Ptr LeafCache::find_or_mint(const std::vector<std::string>& names, std::string* error, bool* minted) {
  if (minted) *minted = false;
  std::string key = key_of(names);
  // The store first, without the mint lock (a disk read must not hold up other names' mints).
  if (X509Ptr x = from_store(key)) {
    store_hits_.fetch_add(1, std::memory_order_relaxed);
    remember(key, x.get());
    return x;
  }
  std::lock_guard mint_lock(mint_mu_);
  {
    std::lock_guard lock(mu_);
    if (X509Ptr x = find_locked(key)) {  // minted meanwhile (another handshake for the name)
      hits_.fetch_add(1, std::memory_order_relaxed);
      return x;
    }
  }
  X509Ptr x = minter_->mint(LeafRequest{names}, error);
  if (!x) return nullptr;
  mints_.fetch_add(1, std::memory_order_relaxed);
  if (minted) *minted = true;
  remember(key, x.get());
  if (store_) store_->put(store_prefix_ + key, to_pem(x.get()), not_after_of(x.get()));
  return x;
}

void LeafCache::note_origin(const std::string& authority, std::vector<std::string> names) {
  if (names.size() > 100) names.resize(100);  // enough for any real leaf; a bound for a hostile one
  std::lock_guard lock(mu_);
  auto it = origins_.find(authority);
  if (it != origins_.end()) {
    if (it->second != names) it->second = std::move(names);
    return;
  }
  if (origins_.size() >= capacity_) origins_.clear();  // rare: start again rather than track use
  origins_.emplace(authority, std::move(names));
}

std::vector<std::string> LeafCache::origin_names(const std::string& authority) const {
  std::lock_guard lock(mu_);
  auto it = origins_.find(authority);
  return it == origins_.end() ? std::vector<std::string>{} : it->second;
}

std::size_t LeafCache::size() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

namespace {
// A DNS name fit to copy into a leaf (lower-cased before): a host name, "*." first allowed.
bool copyable_dns_name(std::string_view n) {
  if (n.size() >= 2 && n[0] == '*' && n[1] == '.') n.remove_prefix(2);
  return is_host_name(n);
}
}  // namespace

std::vector<std::string> subject_alt_names(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      const auto* s = g->d.dNSName;
      std::string n(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
      for (char& c : n)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (copyable_dns_name(n)) out.push_back(std::move(n));
    } else if (g->type == GEN_IPADD) {
      const auto* s = g->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(s);
      if (len == 4 || len == 16)
        if (inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), text, sizeof text)) out.emplace_back(text);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace outpost::tls
