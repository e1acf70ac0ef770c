// AES-256-GCM authenticated encryption, used for the Shamir shares that clients send each
// other through the coordinator. Encryption makes its own random 96-bit nonce.
//
// Ciphertext format: nonce (12 bytes) || encrypted data || tag (16 bytes).
// Thread-safe: immutable after creation.
#ifndef TESSERA_CRYPTO_AEAD_H_
#define TESSERA_CRYPTO_AEAD_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::crypto {

class AesGcm256 {
 public:
  static constexpr size_t kKeyBytes = 32;
  static constexpr size_t kNonceBytes = 12;
  static constexpr size_t kTagBytes = 16;

  // INVALID_ARGUMENT unless `key` is 32 bytes.
  static absl::StatusOr<AesGcm256> Create(SecretBytes key);

  absl::StatusOr<std::string> Encrypt(std::string_view plaintext,
                                      std::string_view associated_data) const;

  // UNAUTHENTICATED if the ciphertext, its nonce or tag, the key or the associated data
  // do not match; INVALID_ARGUMENT if it is shorter than nonce + tag.
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext,
                                      std::string_view associated_data) const;

 private:
  explicit AesGcm256(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_AEAD_H_
