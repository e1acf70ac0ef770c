// X25519 key agreement (RFC 7748) through OpenSSL's EVP interface.
//
// Secure aggregation uses two fresh key pairs per session and client: one whose shared
// secrets key the client-to-client share channel, one whose shared secrets seed the
// pairwise masks. A private key's raw 32 bytes are exposed (as SecretBytes) because the
// protocol secret-shares them so that a dropped client's masks can be rebuilt.
//
// Thread-safe: objects are immutable after creation.
#ifndef TESSERA_CRYPTO_KEY_AGREEMENT_H_
#define TESSERA_CRYPTO_KEY_AGREEMENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace tessera::crypto {

inline constexpr size_t kX25519KeyBytes = 32;

class X25519PublicKey {
 public:
  // INVALID_ARGUMENT unless exactly 32 bytes.
  static absl::StatusOr<X25519PublicKey> FromBytes(std::string_view bytes);

  const std::string& bytes() const { return bytes_; }
  bool operator==(const X25519PublicKey& other) const { return bytes_ == other.bytes_; }

 private:
  explicit X25519PublicKey(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

class X25519PrivateKey {
 public:
  // A fresh key pair from the system's secure random source.
  static absl::StatusOr<X25519PrivateKey> Generate();
  // From a raw 32-byte scalar (e.g. rebuilt from Shamir shares). INVALID_ARGUMENT unless 32
  // bytes.
  static absl::StatusOr<X25519PrivateKey> FromBytes(const SecretBytes& bytes);

  X25519PrivateKey(X25519PrivateKey&&) noexcept = default;
  X25519PrivateKey& operator=(X25519PrivateKey&&) noexcept = default;

  const X25519PublicKey& public_key() const { return public_key_; }
  // The raw 32-byte scalar.
  const SecretBytes& bytes() const { return bytes_; }

  // The 32-byte shared secret with `peer`. INVALID_ARGUMENT if it is all zeros (the peer
  // sent a small-order point; RFC 7748 section 6.1 says to refuse it). The key is loaded
  // into OpenSSL once, when the object is made, not at each agreement (a session agrees
  // with every peer two or three times).
  absl::StatusOr<SecretBytes> Agree(const X25519PublicKey& peer) const;

 private:
  X25519PrivateKey(SecretBytes bytes, X25519PublicKey public_key, std::shared_ptr<evp_pkey_st> key)
      : bytes_(std::move(bytes)), public_key_(std::move(public_key)), key_(std::move(key)) {}

  SecretBytes bytes_;
  X25519PublicKey public_key_;
  // The key pair as OpenSSL holds it, freed (and wiped by OpenSSL) with the last copy of
  // the handle. Only read after creation.
  std::shared_ptr<evp_pkey_st> key_;
};

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_KEY_AGREEMENT_H_
