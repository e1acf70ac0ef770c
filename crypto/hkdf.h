// HKDF with SHA-256 (RFC 5869), through OpenSSL's EVP_KDF.
#ifndef TESSERA_CRYPTO_HKDF_H_
#define TESSERA_CRYPTO_HKDF_H_

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::crypto {

// Extract-then-expand: `length` bytes (1..8160) of output keying material from `ikm`.
// INVALID_ARGUMENT for an empty ikm or a length out of range.
absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view salt,
                                       std::string_view info, size_t length);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_HKDF_H_
