// The local certificate authority for HTTPS interception: creating it (`outpost ca init`),
// describing it (`outpost ca show`), and minting leaf certificates from it.
//
// Rules kept here (the pitfalls of ../shared/notes/tls-interception.md):
// - leaves have their own key, never the CA's (a leaked leaf key must not leak the CA): one
//   key for all leaves, derived from the CA key by HMAC, so it is never written anywhere and
//   leaves kept across restarts stay usable;
// - a leaf's validity is at most 397 days and inside the CA's;
// - serials are random (128 bits), so two mints never share one;
// - the leaf's subject key identifier is its own key's, never the CA's;
// - names go in the subjectAltName (DNS names, and IP addresses as iPAddress entries): clients
//   ignore the common name.
// Key files are written 0600 and never overwritten unless asked.
#pragma once
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outpost::tls {

enum class KeyType { kEcP256, kRsa2048 };

struct CaOptions {
  std::string cert_file, key_file;
  KeyType key_type = KeyType::kEcP256;
  std::string common_name;  // empty: "Outpost interception CA (<host name>)"
  int days = 3650;
  bool overwrite = false;  // replace existing files
};

// Makes a self-signed CA (CA:TRUE, pathlen 0, keyCertSign and cRLSign) and writes it. False
// and a reason when it cannot (files exist and !overwrite, unwritable path, OpenSSL failure).
bool create_ca(const CaOptions& o, std::string* error);

// A certificate with a fresh EC P-256 key of its own, signed by the CA in ca_cert_file and
// ca_key_file: the control channel's server certificate (serverAuth, `names` as SANs) or
// client certificate (clientAuth), made by `outpost ctl setup`. Written as create_ca writes
// (key 0600, never replaced unless asked). False and a reason when it cannot.
struct IssueOptions {
  std::string ca_cert_file, ca_key_file;
  std::string cert_file, key_file;
  std::string common_name;
  std::vector<std::string> names;  // subjectAltName: DNS names, IP literals as iPAddress
  bool client = false;             // clientAuth (else serverAuth)
  int days = 3650;
  bool overwrite = false;
};
bool issue_certificate(const IssueOptions& o, std::string* error);

struct CertificateInfo {
  std::string subject;
  std::string sha256_fingerprint;  // "AB:CD:..."
  std::string not_before, not_after;  // as OpenSSL prints them
  bool is_ca = false;
};
std::optional<CertificateInfo> describe_certificate(const std::string& cert_file, std::string* error);

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// What a leaf is for: the names it must carry. IP literals (v4 or v6, IPv6 without brackets)
// become iPAddress entries; everything else a dNSName.
struct LeafRequest {
  std::vector<std::string> names;
};

// Mints leaves from one CA, all with one EC P-256 key of their own, derived from the CA key
// (the same in every run for one CA, never stored; not the CA's key).
// Not thread-safe: one per thread, or callers serialise (minting runs off the event loop).
class LeafMinter {
 public:
  static constexpr int kMaxDays = 397;

  static std::unique_ptr<LeafMinter> load(const std::string& cert_file, const std::string& key_file,
                                          std::string* error);
  // A new leaf for `r` (nullptr and a reason if the request is empty or invalid), signed by
  // the CA. `now` is for tests (0: the clock).
  X509Ptr mint(const LeafRequest& r, std::string* error, std::int64_t now = 0);
  EVP_PKEY* leaf_key() const { return leaf_key_.get(); }
  X509* ca_certificate() const { return ca_cert_.get(); }

 private:
  LeafMinter() = default;
  X509Ptr ca_cert_;
  PkeyPtr ca_key_;
  PkeyPtr leaf_key_;
};

// PEM text of a certificate (for caching minted leaves and for tests).
std::string to_pem(X509* x);

}  // namespace outpost::tls
