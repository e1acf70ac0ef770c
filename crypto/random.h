// Cryptographically secure random bytes (OpenSSL's DRBG).
#ifndef TESSERA_CRYPTO_RANDOM_H_
#define TESSERA_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::crypto {

// `n` random bytes. INTERNAL if the DRBG fails (never silently weaker randomness).
absl::StatusOr<SecretBytes> RandomBytes(size_t n);

// A random 64-bit value (for nonces and ids, not for keys).
absl::StatusOr<uint64_t> RandomUint64();

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_RANDOM_H_
