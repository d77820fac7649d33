#include "tls/ca.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/net_address.hpp"
#include "tls/tls_context.hpp"

namespace outpost::tls {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

PkeyPtr make_key(KeyType t) {
  return PkeyPtr(t == KeyType::kRsa2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
}

// The leaves' EC P-256 key, derived from the CA key: HMAC-SHA256(CA key as DER, a label)
// as the private scalar (reduced mod the group order; zero is as likely as guessing the
// CA key). The same CA gives the same leaf key in every run, so leaves kept in the store stay
// usable, and no leaf key is ever written anywhere: it is as safe as the CA key file (0600)
// and changes with the CA. Knowing it gives nothing about the CA key (HMAC is one-way).
PkeyPtr derive_leaf_key(EVP_PKEY* ca_key) {
  unsigned char* der = nullptr;
  int der_len = i2d_PrivateKey(ca_key, &der);
  if (der_len <= 0) return nullptr;
  static const char kLabel[] = "outpost interception leaf key v1";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  bool ok = HMAC(EVP_sha256(), der, der_len, reinterpret_cast<const unsigned char*>(kLabel), sizeof kLabel - 1, mac,
                 &mac_len) != nullptr;
  OPENSSL_clear_free(der, static_cast<std::size_t>(der_len));
  if (!ok) return nullptr;
  std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1),
                                                            &EC_GROUP_free);
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> bn_ctx(BN_CTX_new(), &BN_CTX_free);
  std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> priv(BN_bin2bn(mac, static_cast<int>(mac_len), nullptr),
                                                         &BN_clear_free);
  OPENSSL_cleanse(mac, sizeof mac);
  if (!group || !bn_ctx || !priv) return nullptr;
  if (BN_nnmod(priv.get(), priv.get(), EC_GROUP_get0_order(group.get()), bn_ctx.get()) != 1 || BN_is_zero(priv.get()))
    return nullptr;
  std::unique_ptr<EC_POINT, decltype(&EC_POINT_free)> pub(EC_POINT_new(group.get()), &EC_POINT_free);
  if (!pub || EC_POINT_mul(group.get(), pub.get(), priv.get(), nullptr, nullptr, bn_ctx.get()) != 1) return nullptr;
  unsigned char pub_oct[65];
  std::size_t pub_len = EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, pub_oct,
                                           sizeof pub_oct, bn_ctx.get());
  if (pub_len == 0) return nullptr;
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), &OSSL_PARAM_BLD_free);
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub_oct, pub_len) != 1)
    return nullptr;
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), &OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr),
                                                                   &EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  if (!params || !pctx || EVP_PKEY_fromdata_init(pctx.get()) != 1 ||
      EVP_PKEY_fromdata(pctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()) != 1)
    return nullptr;
  return PkeyPtr(key);
}

// 128 random bits, top bit clear (a positive INTEGER of at most 16 bytes).
bool set_random_serial(X509* x) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;  // never a leading zero byte: always 16 bytes long
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  if (!bn) return false;
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  if (!serial) return false;
  bool ok = X509_set_serialNumber(x, serial) == 1;
  ASN1_INTEGER_free(serial);
  return ok;
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool set_name(X509* x, const std::string& cn, bool issuer_too) {
  X509_NAME* name = X509_get_subject_name(x);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1)
    return false;
  return !issuer_too || X509_set_issuer_name(x, name) == 1;
}

// Writes `text` to `path` with `mode`, refusing to replace a file unless `overwrite`.
bool write_file(const std::string& path, const std::string& text, mode_t mode, bool overwrite, std::string* error) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    set_error(error, "cannot write " + path + ": " + std::strerror(errno));
    return false;
  }
  ::fchmod(fd, mode);  // an existing file keeps no wider mode
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      set_error(error, "cannot write " + path + ": " + std::strerror(errno));
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    set_error(error, "cannot write " + path + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

// What `write(bio)` writes to a memory BIO, or `fallback` if it fails.
template <class Write>
std::string bio_text(Write&& write, const char* fallback = "") {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return fallback;
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of_key(EVP_PKEY* k) {
  return bio_text([k](BIO* b) { return PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr); });
}

// The key (0600) and the certificate (0644), as PEM.
bool write_key_and_certificate(EVP_PKEY* key, X509* x, const std::string& key_file, const std::string& cert_file,
                               bool overwrite, std::string* error) {
  std::string key_pem = pem_of_key(key);
  if (key_pem.empty()) {
    set_error(error, "cannot encode the key: " + take_openssl_error("failed"));
    return false;
  }
  return write_file(key_file, key_pem, 0600, overwrite, error) &&
         write_file(cert_file, to_pem(x), 0644, overwrite, error);
}

std::string default_ca_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) return "Outpost interception CA";
  return std::string("Outpost interception CA (") + host + ")";
}

std::string asn1_time_text(const ASN1_TIME* t) {
  return bio_text([t](BIO* b) { return ASN1_TIME_print(b, t); }, "?");
}

X509Ptr read_cert(const std::string& file, std::string* error) {
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    set_error(error, "cannot read " + file + ": " + take_openssl_error("no such file"));
    return nullptr;
  }
  X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!x) set_error(error, file + ": not a PEM certificate (" + take_openssl_error("unreadable") + ")");
  return x;
}

// Seconds since the epoch of an ASN1_TIME.
bool epoch_of(const ASN1_TIME* t, std::int64_t* out) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return false;
  *out = static_cast<std::int64_t>(timegm(&tm));
  return true;
}
}  // namespace

bool create_ca(const CaOptions& o, std::string* error) {
  if (!o.overwrite) {
    for (const auto& f : {o.cert_file, o.key_file})
      if (::access(f.c_str(), F_OK) == 0) {
        set_error(error, f + " exists (an existing CA is never replaced silently; remove it or ask to overwrite)");
        return false;
      }
  }
  PkeyPtr key = make_key(o.key_type);
  X509Ptr x(X509_new());
  if (!key || !x) {
    set_error(error, "cannot make a key: " + take_openssl_error("failed"));
    return false;
  }
  std::string cn = o.common_name.empty() ? default_ca_name() : o.common_name;
  bool ok = X509_set_version(x.get(), 2) == 1 && set_random_serial(x.get()) &&
            X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x.get()), static_cast<long>(o.days) * 86400) != nullptr &&
            X509_set_pubkey(x.get(), key.get()) == 1 && set_name(x.get(), cn, true) &&
            add_ext(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
            add_ext(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign") &&
            add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash") &&
            X509_sign(x.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) {
    set_error(error, "cannot make the CA certificate: " + take_openssl_error("failed"));
    return false;
  }
  return write_key_and_certificate(key.get(), x.get(), o.key_file, o.cert_file, o.overwrite, error);
}

bool issue_certificate(const IssueOptions& o, std::string* error) {
  if (!o.overwrite) {
    for (const auto& f : {o.cert_file, o.key_file})
      if (::access(f.c_str(), F_OK) == 0) {
        set_error(error, f + " exists (never replaced silently; remove it or ask to overwrite)");
        return false;
      }
  }
  X509Ptr ca = read_cert(o.ca_cert_file, error);
  if (!ca) return false;
  PkeyPtr ca_key;
  BioPtr bio(BIO_new_file(o.ca_key_file.c_str(), "r"));
  if (bio) ca_key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!ca_key || X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    set_error(error, "cannot use the CA key " + o.ca_key_file + ": " + take_openssl_error("not the CA's key"));
    return false;
  }
  std::string san;
  for (const auto& name : o.names) {
    if (name.empty() || name.find_first_of(",\n\r") != std::string::npos) {
      set_error(error, "not a name for a certificate: \"" + name + "\"");
      return false;
    }
    san += (san.empty() ? "" : ",") + std::string(IpAddress::parse(name) ? "IP:" : "DNS:") + name;
  }
  PkeyPtr key = make_key(KeyType::kEcP256);
  X509Ptr x(X509_new());
  bool ok = key && x && X509_set_version(x.get(), 2) == 1 && set_random_serial(x.get()) &&
            X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x.get()), static_cast<long>(o.days) * 86400) != nullptr &&
            X509_set_pubkey(x.get(), key.get()) == 1 && set_name(x.get(), o.common_name, false) &&
            X509_set_issuer_name(x.get(), X509_get_subject_name(ca.get())) == 1 &&
            add_ext(x.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            add_ext(x.get(), ca.get(), NID_key_usage, "critical,digitalSignature") &&
            add_ext(x.get(), ca.get(), NID_ext_key_usage, o.client ? "clientAuth" : "serverAuth") &&
            add_ext(x.get(), ca.get(), NID_subject_key_identifier, "hash") &&
            add_ext(x.get(), ca.get(), NID_authority_key_identifier, "keyid:always") &&
            (san.empty() || add_ext(x.get(), ca.get(), NID_subject_alt_name, san)) &&
            X509_sign(x.get(), ca_key.get(), EVP_sha256()) > 0;
  if (!ok) {
    set_error(error, "cannot make the certificate " + o.cert_file + ": " + take_openssl_error("failed"));
    return false;
  }
  return write_key_and_certificate(key.get(), x.get(), o.key_file, o.cert_file, o.overwrite, error);
}

std::optional<CertificateInfo> describe_certificate(const std::string& cert_file, std::string* error) {
  X509Ptr x = read_cert(cert_file, error);
  if (!x) return std::nullopt;
  CertificateInfo info;
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x.get()), buf, sizeof buf);
  info.subject = buf;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(x.get(), EVP_sha256(), md, &n);
  static const char* hex = "0123456789ABCDEF";
  for (unsigned i = 0; i < n; ++i) {
    if (i) info.sha256_fingerprint.push_back(':');
    info.sha256_fingerprint.push_back(hex[md[i] >> 4]);
    info.sha256_fingerprint.push_back(hex[md[i] & 15]);
  }
  info.not_before = asn1_time_text(X509_get0_notBefore(x.get()));
  info.not_after = asn1_time_text(X509_get0_notAfter(x.get()));
  info.is_ca = X509_check_ca(x.get()) > 0;
  return info;
}

std::unique_ptr<LeafMinter> LeafMinter::load(const std::string& cert_file, const std::string& key_file,
                                             std::string* error) {
  std::unique_ptr<LeafMinter> m(new LeafMinter);
  m->ca_cert_ = read_cert(cert_file, error);
  if (!m->ca_cert_) return nullptr;
  BioPtr bio(BIO_new_file(key_file.c_str(), "r"));
  if (bio) m->ca_key_.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!m->ca_key_) {
    set_error(error, "cannot read the CA key " + key_file + ": " + take_openssl_error("unreadable"));
    return nullptr;
  }
  if (X509_check_private_key(m->ca_cert_.get(), m->ca_key_.get()) != 1) {
    set_error(error, key_file + " is not the key of " + cert_file);
    ERR_clear_error();
    return nullptr;
  }
  if (X509_check_ca(m->ca_cert_.get()) <= 0) {
    set_error(error, cert_file + " is not a CA certificate");
    return nullptr;
  }
  m->leaf_key_ = derive_leaf_key(m->ca_key_.get());
  if (!m->leaf_key_) {
    set_error(error, "cannot make the leaf key: " + take_openssl_error("failed"));
    return nullptr;
  }
  return m;
}

X509Ptr LeafMinter::mint(const LeafRequest& r, std::string* error, std::int64_t now) {
  if (r.names.empty()) {
    set_error(error, "a leaf needs at least one name");
    return nullptr;
  }
  std::string san;
  for (const auto& name : r.names) {
    if (name.empty() || name.size() > 253 || name.find_first_of(",\n\r") != std::string::npos) {
      set_error(error, "not a name for a certificate: \"" + name + "\"");
      return nullptr;
    }
    if (!san.empty()) san += ",";
    san += (IpAddress::parse(name) ? "IP:" : "DNS:") + name;
  }
  if (now == 0) now = static_cast<std::int64_t>(std::time(nullptr));
  // Validity: from an hour ago (clocks differ) for at most kMaxDays, and inside the CA's.
  std::int64_t ca_from = 0, ca_to = 0;
  if (!epoch_of(X509_get0_notBefore(ca_cert_.get()), &ca_from) || !epoch_of(X509_get0_notAfter(ca_cert_.get()), &ca_to)) {
    set_error(error, "the CA's validity cannot be read");
    return nullptr;
  }
  std::int64_t from = std::max(now - 3600, ca_from);
  std::int64_t to = std::min(now + static_cast<std::int64_t>(kMaxDays) * 86400 - 3600, ca_to);
  if (to <= now) {
    set_error(error, "the CA has expired");
    return nullptr;
  }
  X509Ptr x(X509_new());
  const std::string& cn = r.names.front();
  bool ok = x && X509_set_version(x.get(), 2) == 1 && set_random_serial(x.get()) &&
            ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(from)) != nullptr &&
            ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(to)) != nullptr &&
            X509_set_pubkey(x.get(), leaf_key_.get()) == 1 && set_name(x.get(), cn.substr(0, 64), false) &&
            X509_set_issuer_name(x.get(), X509_get_subject_name(ca_cert_.get())) == 1 &&
            add_ext(x.get(), ca_cert_.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            add_ext(x.get(), ca_cert_.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
            add_ext(x.get(), ca_cert_.get(), NID_ext_key_usage, "serverAuth") &&
            add_ext(x.get(), ca_cert_.get(), NID_subject_key_identifier, "hash") &&
            add_ext(x.get(), ca_cert_.get(), NID_authority_key_identifier, "keyid:always") &&
            add_ext(x.get(), ca_cert_.get(), NID_subject_alt_name, san) &&
            X509_sign(x.get(), ca_key_.get(), EVP_sha256()) > 0;
  if (!ok) {
    set_error(error, "cannot mint a certificate for " + cn + ": " + take_openssl_error("failed"));
    return nullptr;
  }
  return x;
}

std::string to_pem(X509* x) {
  return bio_text([x](BIO* b) { return PEM_write_bio_X509(b, x); });
}

}  // namespace outpost::tls
