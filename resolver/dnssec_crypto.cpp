#include "resolver/dnssec_crypto.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <memory>
#include <string>
#include <unordered_map>

namespace outpost::dns {

namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;


// The digest an algorithm signs with, fetched once per thread (an implicit fetch by name on
// every use — what EVP_sha256() and friends cost in OpenSSL 3 — is a lookup under a lock);
// nullptr: none, the EdDSA algorithms sign the data itself.
const EVP_MD* algorithm_md(std::uint8_t alg) {
  struct Mds {
    EVP_MD* sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
    EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
    ~Mds() {
      for (EVP_MD* md : {sha1, sha256, sha384, sha512}) EVP_MD_free(md);
    }
  };
  static thread_local Mds mds;
  switch (alg) {
    case 5:
    case 7: return mds.sha1;
    case 8:
    case 13: return mds.sha256;
    case 10: return mds.sha512;
    case 14: return mds.sha384;
    default: return nullptr;
  }
}

// A public key of `type` from the parameters in `bld`.
Ptr<EVP_PKEY> key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  Ptr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  Ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
    return nullptr;
  return Ptr<EVP_PKEY>(key);
}

// RFC 3110: exponent length (one byte, or zero and two bytes), exponent, modulus.
Ptr<EVP_PKEY> rsa_key(const Bytes& k) {
  std::size_t pos = 0, elen = 0;
  if (k.empty()) return nullptr;
  if (k[0] != 0) {
    elen = k[0];
    pos = 1;
  } else {
    if (k.size() < 3) return nullptr;
    elen = static_cast<std::size_t>(k[1] << 8 | k[2]);
    pos = 3;
  }
  if (elen == 0 || pos + elen >= k.size()) return nullptr;
  const std::size_t mlen = k.size() - pos - elen;
  if (mlen < 64 || mlen > 512) return nullptr;  // 512 to 4096 bits (RFC 3110, RFC 5702)
  Ptr<BIGNUM> e(BN_bin2bn(k.data() + pos, static_cast<int>(elen), nullptr));
  Ptr<BIGNUM> n(BN_bin2bn(k.data() + pos + elen, static_cast<int>(mlen), nullptr));
  Ptr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!e || !n || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
    return nullptr;
  return key_from_params("RSA", bld.get());
}

// RFC 6605: the point's X and Y, 32 or 48 bytes each.
Ptr<EVP_PKEY> ec_key(const Bytes& k, const char* group, std::size_t coord) {
  if (k.size() != 2 * coord) return nullptr;
  Bytes point{0x04};
  point.insert(point.end(), k.begin(), k.end());
  Ptr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
    return nullptr;
  return key_from_params("EC", bld.get());
}

Ptr<EVP_PKEY> public_key(const DnskeyRdata& key) {
  switch (key.algorithm) {
    case 5:
    case 7:
    case 8:
    case 10: return rsa_key(key.public_key);
    case 13: return ec_key(key.public_key, "P-256", 32);
    case 14: return ec_key(key.public_key, "P-384", 48);
    case 15:
      if (key.public_key.size() != 32) return nullptr;
      return Ptr<EVP_PKEY>(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.public_key.data(), 32));
    case 16:
      if (key.public_key.size() != 57) return nullptr;
      return Ptr<EVP_PKEY>(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED448, nullptr, key.public_key.data(), 57));
    default: return nullptr;
  }
}

// One DER INTEGER (X.690) of a big-endian unsigned number: leading zeros dropped, one zero
// byte put back where the top bit is set (it would read as negative).
void der_integer(Bytes* out, const std::uint8_t* p, std::size_t n) {
  while (n > 1 && *p == 0) ++p, --n;
  const bool pad = (*p & 0x80) != 0;
  out->push_back(0x02);
  out->push_back(static_cast<std::uint8_t>(n + pad));
  if (pad) out->push_back(0);
  out->insert(out->end(), p, p + n);
}

// ECDSA signatures are r || s in DNSSEC (RFC 6605 section 4) and DER in OpenSSL: SEQUENCE of
// two INTEGERs, at most 2 * (48 + 3) bytes of content here, so one-byte lengths.
std::optional<Bytes> ecdsa_der(const Bytes& sig, std::size_t coord) {
  if (sig.size() != 2 * coord) return std::nullopt;
  Bytes body;
  body.reserve(2 * coord + 6);
  der_integer(&body, sig.data(), coord);
  der_integer(&body, sig.data() + coord, coord);
  Bytes out{0x30, static_cast<std::uint8_t>(body.size())};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// The parsed form of a DNSKEY, ready to verify with. Building an EVP_PKEY from a key's
// parameters and setting up a verification costs about as much as the verification itself
// (OpenSSL 3: provider fetches and key import), and a zone's few keys sign every answer from
// it, so each thread keeps what it built, by the key's rdata.
struct Verifier {
  Ptr<EVP_PKEY> pkey;
  // RSA and ECDSA: a context set up for EVP_PKEY_verify over a digest (reused call after
  // call); EdDSA signs the data itself and has none.
  Ptr<EVP_PKEY_CTX> ctx;
};

const Verifier* verifier_for(const DnskeyRdata& key) {
  constexpr std::size_t kMaxKeys = 1024;  // then the cache starts again (keys of a few hundred zones)
  static thread_local std::unordered_map<std::string, Verifier> cache;
  std::string id(key.wire.begin(), key.wire.end());
  if (auto it = cache.find(id); it != cache.end()) return it->second.pkey ? &it->second : nullptr;
  if (cache.size() >= kMaxKeys) cache.clear();
  Verifier v;
  v.pkey = public_key(key);
  if (v.pkey && algorithm_md(key.algorithm)) {
    v.ctx.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, v.pkey.get(), nullptr));
    if (!v.ctx || EVP_PKEY_verify_init(v.ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(v.ctx.get(), algorithm_md(key.algorithm)) <= 0)
      v.pkey.reset();  // cannot verify with it: remembered as unusable
  }
  auto& slot = cache[std::move(id)] = std::move(v);
  return slot.pkey ? &slot : nullptr;
}

bool verify_bytes(const DnskeyRdata& key, const Bytes& data, const Bytes& sig) {
  const Verifier* v = verifier_for(key);
  if (!v) return false;
  if (!v->ctx) {
    // EdDSA: one-shot over the data.
    Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, v->pkey.get()) != 1) return false;
    return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &dlen, algorithm_md(key.algorithm), nullptr) != 1) return false;
  if (key.algorithm == 13 || key.algorithm == 14) {
    auto der = ecdsa_der(sig, key.algorithm == 13 ? 32 : 48);
    return der && EVP_PKEY_verify(v->ctx.get(), der->data(), der->size(), digest, dlen) == 1;
  }
  return EVP_PKEY_verify(v->ctx.get(), sig.data(), sig.size(), digest, dlen) == 1;
}

// Serial number arithmetic (RFC 1982) on 32-bit times: a is before b.
bool before(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }

}  // namespace

std::uint16_t key_tag(std::span<const std::uint8_t> rdata) {
  std::uint32_t ac = 0;
  for (std::size_t i = 0; i < rdata.size(); ++i) ac += (i & 1) ? rdata[i] : static_cast<std::uint32_t>(rdata[i]) << 8;
  ac += (ac >> 16) & 0xFFFF;
  return static_cast<std::uint16_t>(ac & 0xFFFF);
}

bool algorithm_supported(std::uint8_t alg) {
  switch (alg) {
    case 5:
    case 7:
    case 8:
    case 10:
    case 13:
    case 14:
    case 15:
    case 16: return true;
    default: return false;
  }
}

bool digest_supported(std::uint8_t digest_type) { return digest_type == 1 || digest_type == 2 || digest_type == 4; }

const char* to_string(SigResult r) {
  switch (r) {
    case SigResult::ok: return "ok";
    case SigResult::bad_signature: return "bad signature";
    case SigResult::expired: return "signature expired";
    case SigResult::not_yet_valid: return "signature not yet valid";
    case SigResult::unsupported: return "unsupported algorithm";
    case SigResult::malformed: return "malformed";
  }
  return "?";
}

std::optional<Bytes> signed_data(const RRset& set, const RrsigRdata& sig) {
  unsigned owner_labels = set.name.label_count();
  // A wildcard's expansion: the labels field counts the owner's labels without the "*".
  if (sig.labels > owner_labels) return std::nullopt;
  Name owner = set.name;
  if (sig.labels < owner_labels) {
    owner = set.name.suffix(sig.labels);
    if (!owner.prepend("*")) return std::nullopt;
  }
  Bytes data;
  append_u16(&data, sig.type_covered);
  data.push_back(sig.algorithm);
  data.push_back(sig.labels);
  append_u32(&data, sig.original_ttl);
  append_u32(&data, sig.expiration);
  append_u32(&data, sig.inception);
  append_u16(&data, sig.key_tag);
  const std::string signer = sig.signer.lowercase_wire();
  data.insert(data.end(), signer.begin(), signer.end());
  // Canonical order: by the rdata's canonical wire form; duplicates once (RFC 4034 6.3).
  std::vector<Bytes> rdatas;
  for (auto& rd : set.rdata) rdatas.push_back(canonical_rdata(ResourceRecord{set.name, set.type, set.cls, 0, rd}));
  std::sort(rdatas.begin(), rdatas.end(), bytes_less);
  rdatas.erase(std::unique(rdatas.begin(), rdatas.end(), bytes_equal), rdatas.end());
  const std::string owner_wire = owner.lowercase_wire();
  for (auto& rd : rdatas) {
    data.insert(data.end(), owner_wire.begin(), owner_wire.end());
    append_u16(&data, set.type);
    append_u16(&data, set.cls);
    append_u32(&data, sig.original_ttl);
    append_u16(&data, static_cast<std::uint32_t>(rd.size()));
    data.insert(data.end(), rd.begin(), rd.end());
  }
  return data;
}

SigResult verify_rrsig(const RRset& set, const RrsigRdata& sig, const DnskeyRdata& key, std::uint32_t now,
                       bool revoked_ok) {
  if (!algorithm_supported(sig.algorithm)) return SigResult::unsupported;
  if (sig.type_covered != set.type || sig.algorithm != key.algorithm || key.protocol != 3 || !key.zone_key() ||
      (key.revoked() && !revoked_ok) || sig.key_tag != key_tag(key.wire) || !set.name.is_subdomain_of(sig.signer))
    return SigResult::malformed;
  auto data = signed_data(set, sig);
  if (!data) return SigResult::malformed;
  if (!verify_bytes(key, *data, sig.signature)) return SigResult::bad_signature;
  // Checked after the signature, so that a forged RRSIG never says "expired".
  if (before(sig.expiration, now)) return SigResult::expired;
  if (before(now, sig.inception)) return SigResult::not_yet_valid;
  return SigResult::ok;
}

Bytes ds_digest(const Name& owner, const DnskeyRdata& key, std::uint8_t digest_type) {
  // The same digests as the signature algorithms': SHA-1 (as 5), SHA-256 (as 8), SHA-384 (as 14).
  const EVP_MD* md = digest_type == 1 ? algorithm_md(5) : digest_type == 2 ? algorithm_md(8) : digest_type == 4 ? algorithm_md(14) : nullptr;
  if (!md) return {};
  Bytes input;
  const std::string o = owner.lowercase_wire();
  input.insert(input.end(), o.begin(), o.end());
  input.insert(input.end(), key.wire.begin(), key.wire.end());
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  if (EVP_Digest(input.data(), input.size(), out.data(), &len, md, nullptr) != 1) return {};
  out.resize(len);
  return out;
}

bool ds_matches(const Name& owner, const DnskeyRdata& key, const DsRdata& ds) {
  if (ds.algorithm != key.algorithm || ds.key_tag != key_tag(key.wire)) return false;
  auto d = ds_digest(owner, key, ds.digest_type);
  return !d.empty() && bytes_equal(d, ds.digest);
}

Bytes nsec3_hash(const Name& name, std::uint8_t algorithm, std::span<const std::uint8_t> salt, std::uint16_t iterations) {
  if (algorithm != 1) return {};
  const std::string w = name.lowercase_wire();
  Bytes buf(w.begin(), w.end());
  Bytes digest(20);
  for (unsigned i = 0; i <= iterations; ++i) {
    buf.insert(buf.end(), salt.begin(), salt.end());
    unsigned len = 0;
    if (EVP_Digest(buf.data(), buf.size(), digest.data(), &len, algorithm_md(5), nullptr) != 1 || len != 20) return {};
    buf = digest;
  }
  return digest;
}

}  // namespace outpost::dns
