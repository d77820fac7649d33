// DNSSEC cryptography on OpenSSL 3's EVP (RFC 4034, 5155, 5702, 6605, 8080, 8624): key tags,
// RRSIG verification (RSA/SHA-1, RSA/SHA-256, RSA/SHA-512, ECDSA P-256/SHA-256, ECDSA
// P-384/SHA-384, Ed25519, Ed448), DS digests (SHA-1, SHA-256, SHA-384) and NSEC3 hashes.
// Stateless and thread-safe; keys and signatures are untrusted input: any malformed one
// fails verification, nothing throws or aborts.
#pragma once
#include <cstdint>
#include <optional>

#include "resolver/dnssec_records.hpp"
#include "resolver/rrset.hpp"

namespace outpost::dns {

// RFC 4034 appendix B (every algorithm in use; algorithm 1 is not supported).
std::uint16_t key_tag(std::span<const std::uint8_t> dnskey_rdata);

bool algorithm_supported(std::uint8_t algorithm);
bool digest_supported(std::uint8_t digest_type);

enum class SigResult { ok, bad_signature, expired, not_yet_valid, unsupported, malformed };
const char* to_string(SigResult r);

// The data an RRSIG signs (RFC 4034 section 3.1.8.1): its rdata without the signature (signer
// in lower case), then the RRset's records in canonical form and order, with the RRSIG's
// original TTL, wildcard owners rebuilt from its labels field. nullopt if the RRSIG's labels
// field exceeds the owner's label count.
std::optional<Bytes> signed_data(const RRset& set, const RrsigRdata& sig);

// Verifies one RRSIG over `set` with `key` at time `now` (unix seconds; serial arithmetic on
// the validity window, RFC 4034 section 3.1.5). The caller matched signer, key tag and
// algorithm; this checks them again.
// revoked_ok: a key with the REVOKE bit may verify too (only RFC 5011's check that a revoked
// key signed its own DNSKEY set; such a key never validates data).
SigResult verify_rrsig(const RRset& set, const RrsigRdata& sig, const DnskeyRdata& key, std::uint32_t now,
                       bool revoked_ok = false);

// The DS digest of a DNSKEY (RFC 4034 section 5.1.4); empty for an unsupported digest type.
Bytes ds_digest(const Name& owner, const DnskeyRdata& key, std::uint8_t digest_type);
bool ds_matches(const Name& owner, const DnskeyRdata& key, const DsRdata& ds);

// The NSEC3 hash of a name (RFC 5155 section 5): iterated SHA-1 over the lower-case wire
// name with the salt. Empty for an unknown hash algorithm.
Bytes nsec3_hash(const Name& name, std::uint8_t algorithm, std::span<const std::uint8_t> salt, std::uint16_t iterations);

}  // namespace outpost::dns
