// The interception CA and leaf minting (tls/ca): every rule of tls/ca.hpp checked on real
// certificates with OpenSSL's own verification and parsing.
#include "tls/ca.hpp"
#include "tls/leaf_cache.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core/net_address.hpp"

using namespace outpost::tls;

namespace {

class TlsCa : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/outpost-ca-XXXXXX";
    dir_ = mkdtemp(tmpl);
    cert_ = dir_ + "/ca.pem";
    key_ = dir_ + "/ca.key";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<LeafMinter> make_minter(KeyType t = KeyType::kEcP256, int days = 3650) {
    std::string error;
    CaOptions o{cert_, key_, t, "Test CA", days, true};
    EXPECT_TRUE(create_ca(o, &error)) << error;
    auto m = LeafMinter::load(cert_, key_, &error);
    EXPECT_TRUE(m) << error;
    return m;
  }

  // Verifies `leaf` against the CA alone, as a client trusting it would, for `host`.
  static bool verifies(LeafMinter& m, X509* leaf, const std::string& host, std::string* why) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, m.ca_certificate());
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, nullptr);
    X509_VERIFY_PARAM* p = X509_STORE_CTX_get0_param(ctx);
    if (outpost::IpAddress::parse(host)) X509_VERIFY_PARAM_set1_ip_asc(p, host.c_str());
    else X509_VERIFY_PARAM_set1_host(p, host.c_str(), 0);
    X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
    bool ok = X509_verify_cert(ctx) == 1;
    if (!ok) *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
  }

  static std::string key_id(const ASN1_OCTET_STRING* s) {
    return s ? std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s)) : "";
  }

  std::string dir_, cert_, key_;
};

TEST_F(TlsCa, CreatesACaWithAPrivateKeyFileAndNeverReplacesOneSilently) {
  std::string error;
  CaOptions o{cert_, key_, KeyType::kEcP256, "", 3650, false};
  ASSERT_TRUE(create_ca(o, &error)) << error;
  struct stat st {};
  ASSERT_EQ(stat(key_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto info = describe_certificate(cert_, &error);
  ASSERT_TRUE(info) << error;
  EXPECT_TRUE(info->is_ca);
  EXPECT_NE(info->subject.find("Outpost interception CA"), std::string::npos) << info->subject;
  EXPECT_EQ(info->sha256_fingerprint.size(), 32u * 3 - 1);
  std::ifstream f(cert_);
  std::string before((std::istreambuf_iterator<char>(f)), {});
  EXPECT_FALSE(create_ca(o, &error));
  EXPECT_NE(error.find("exists"), std::string::npos) << error;
  std::ifstream g(cert_);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(g)), {}), before);
  o.overwrite = true;
  EXPECT_TRUE(create_ca(o, &error)) << error;
}

TEST_F(TlsCa, LeavesVerifyForTheirNamesOnlyWithTheirOwnKey) {
  for (KeyType t : {KeyType::kEcP256, KeyType::kRsa2048}) {
    auto m = make_minter(t);
    ASSERT_TRUE(m);
    std::string error, why;
    auto leaf = m->mint({{"origin.test", "www.origin.test", "127.0.0.1", "2001:db8::7"}}, &error);
    ASSERT_TRUE(leaf) << error;
    for (const char* host : {"origin.test", "www.origin.test", "127.0.0.1", "2001:db8::7"})
      EXPECT_TRUE(verifies(*m, leaf.get(), host, &why)) << host << ": " << why;
    for (const char* host : {"other.test", "127.0.0.2", "sub.origin.test"})
      EXPECT_FALSE(verifies(*m, leaf.get(), host, &why)) << host;
    // IP literals are iPAddress entries, names dNSName entries.
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf.get(), NID_subject_alt_name, nullptr, nullptr));
    ASSERT_TRUE(sans);
    std::set<int> types;
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) types.insert(sk_GENERAL_NAME_value(sans, i)->type);
    GENERAL_NAMES_free(sans);
    EXPECT_EQ(types, (std::set<int>{GEN_DNS, GEN_IPADD}));
    // The leaf's key is the minter's, never the CA's; its key identifier is its own.
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), m->leaf_key()), 1);
    EXPECT_NE(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), X509_get0_pubkey(m->ca_certificate())), 1);
    EXPECT_NE(key_id(X509_get0_subject_key_id(leaf.get())), key_id(X509_get0_subject_key_id(m->ca_certificate())));
    EXPECT_FALSE(key_id(X509_get0_subject_key_id(leaf.get())).empty());
    EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  }
}

TEST_F(TlsCa, TheLeafKeyIsDerivedFromTheCaKeyAndStable) {
  for (KeyType t : {KeyType::kEcP256, KeyType::kRsa2048}) {
    auto m = make_minter(t);
    ASSERT_TRUE(m);
    std::string error;
    // The same CA loaded again: the same leaf key (leaves kept in the store stay usable).
    auto again = LeafMinter::load(cert_, key_, &error);
    ASSERT_TRUE(again) << error;
    EXPECT_EQ(EVP_PKEY_eq(m->leaf_key(), again->leaf_key()), 1);
    EXPECT_EQ(EVP_PKEY_get_base_id(m->leaf_key()), EVP_PKEY_EC);
    EXPECT_NE(EVP_PKEY_eq(m->leaf_key(), X509_get0_pubkey(m->ca_certificate())), 1);
    // A leaf from one verifies with the other's key (the key signs for the leaf).
    auto leaf = again->mint({{"origin.test"}}, &error);
    ASSERT_TRUE(leaf) << error;
    EXPECT_EQ(X509_check_private_key(leaf.get(), m->leaf_key()), 1);
    // Another CA: another leaf key.
    auto other = make_minter(t);
    ASSERT_TRUE(other);
    EXPECT_NE(EVP_PKEY_eq(m->leaf_key(), other->leaf_key()), 1);
  }
}

TEST_F(TlsCa, OnlyWellFormedNamesOfACertificateAreCopied) {
  auto m = make_minter();
  ASSERT_TRUE(m);
  std::string error;
  std::string long_label(64, 'a');
  auto cert = m->mint({{"Good.Example", "bad name", "*.wild.example", "192.0.2.1", "a..b", long_label + ".example",
                        "x*.example", "2001:db8::7", "under_score.example"}},
                      &error);
  ASSERT_TRUE(cert) << error;
  EXPECT_EQ(subject_alt_names(cert.get()), (std::vector<std::string>{"good.example", "*.wild.example", "192.0.2.1",
                                                                     "2001:db8::7", "under_score.example"}));
}

TEST_F(TlsCa, ValidityIsAtMost397DaysAndInsideTheCas) {
  auto m = make_minter();
  ASSERT_TRUE(m);
  std::string error;
  auto leaf = m->mint({{"origin.test"}}, &error);
  ASSERT_TRUE(leaf) << error;
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf.get()), X509_get0_notAfter(leaf.get())), 1);
  EXPECT_LE(days * 86400 + secs, 397 * 86400);
  EXPECT_GE(days, 390);
  // A CA with 30 days left: the leaf ends with it.
  auto short_ca = make_minter(KeyType::kEcP256, 30);
  ASSERT_TRUE(short_ca);
  auto leaf2 = short_ca->mint({{"origin.test"}}, &error);
  ASSERT_TRUE(leaf2) << error;
  EXPECT_LE(ASN1_TIME_compare(X509_get0_notAfter(leaf2.get()), X509_get0_notAfter(short_ca->ca_certificate())), 0);
  EXPECT_GE(ASN1_TIME_compare(X509_get0_notBefore(leaf2.get()), X509_get0_notBefore(short_ca->ca_certificate())), 0);
  // Past the CA's end nothing is minted.
  EXPECT_FALSE(short_ca->mint({{"origin.test"}}, &error, std::time(nullptr) + 40 * 86400));
  EXPECT_NE(error.find("expired"), std::string::npos) << error;
}

TEST_F(TlsCa, SerialsAreRandomAndLong) {
  auto m = make_minter();
  ASSERT_TRUE(m);
  std::set<std::string> serials;
  for (int i = 0; i < 50; ++i) {
    std::string error;
    auto leaf = m->mint({{"origin.test"}}, &error);
    ASSERT_TRUE(leaf) << error;
    const ASN1_INTEGER* s = X509_get0_serialNumber(leaf.get());
    EXPECT_EQ(ASN1_STRING_length(s), 16);
    serials.insert(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s)));
  }
  EXPECT_EQ(serials.size(), 50u);
}

TEST_F(TlsCa, BadInputIsRefusedWithAReason) {
  auto m = make_minter();
  ASSERT_TRUE(m);
  std::string error;
  EXPECT_FALSE(m->mint({{}}, &error));
  EXPECT_FALSE(m->mint({{"a.test,DNS:evil.test"}}, &error));  // no extension injection
  EXPECT_NE(error.find("not a name"), std::string::npos) << error;
  EXPECT_FALSE(LeafMinter::load(dir_ + "/missing.pem", key_, &error));
  // A key that is not the CA's.
  CaOptions other{dir_ + "/b.pem", dir_ + "/b.key", KeyType::kEcP256, "B", 10, false};
  ASSERT_TRUE(create_ca(other, &error)) << error;
  EXPECT_FALSE(LeafMinter::load(cert_, dir_ + "/b.key", &error));
  EXPECT_NE(error.find("is not the key of"), std::string::npos) << error;
  // A leaf is not a CA.
  auto leaf = m->mint({{"origin.test"}}, &error);
  ASSERT_TRUE(leaf);
  std::ofstream(dir_ + "/leaf.pem") << to_pem(leaf.get());
  EXPECT_FALSE(LeafMinter::load(dir_ + "/leaf.pem", key_, &error));
}

}  // namespace
