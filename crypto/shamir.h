// Shamir t-of-n secret sharing of 32-byte secrets (X25519 private keys, mask seeds) over
// the prime field GF(p), p = 2^61 - 1.
//
// The secret is cut into five 7-byte pieces (35 bytes, the last 3 zero), each below 2^56 <
// p; each piece is shared with its own random polynomial of degree t - 1 (coefficients from
// the system's secure random source). A share is the point x (1..n) and the five
// evaluations there. Any t shares rebuild the secret; t - 1 shares are consistent with
// every possible secret.
//
// Shares are secret material: ShamirShare wipes itself.
#ifndef TESSERA_CRYPTO_SHAMIR_H_
#define TESSERA_CRYPTO_SHAMIR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::crypto {

inline constexpr uint64_t kShamirPrime = (uint64_t{1} << 61) - 1;
inline constexpr size_t kShamirPieces = 5;
inline constexpr size_t kShamirSecretBytes = 32;
// Serialized share: x (4 bytes) + 5 pieces (8 bytes each), little-endian.
inline constexpr size_t kShamirShareBytes = 4 + 8 * kShamirPieces;

struct ShamirShare {
  uint32_t x = 0;
  std::array<uint64_t, kShamirPieces> y{};

  ShamirShare() = default;
  ShamirShare(const ShamirShare&) = default;
  ShamirShare& operator=(const ShamirShare&) = default;
  ~ShamirShare();

  SecretBytes Serialize() const;
  // INVALID_ARGUMENT unless 44 bytes with x >= 1 and every y < p.
  static absl::StatusOr<ShamirShare> Parse(std::string_view bytes);
};

// Shares of `secret` (exactly 32 bytes) at x = 1..num_shares, any `threshold` of which
// rebuild it. INVALID_ARGUMENT unless 1 <= threshold <= num_shares <= 65535.
absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(const SecretBytes& secret, int threshold,
                                                     int num_shares);

// Shares of `secret` at the given x values only, in their order (a sharing among some of
// a larger group, whose members' points are their places in it): any `threshold` of them
// rebuild it, and ShamirCombine takes them as any other shares. O(points x threshold).
// INVALID_ARGUMENT unless 1 <= threshold <= points.size() and the points are distinct and
// in 1..65535.
absl::StatusOr<std::vector<ShamirShare>> ShamirSplitAt(const SecretBytes& secret, int threshold,
                                                       std::span<const uint32_t> points);

// Rebuilds the secret by Lagrange interpolation at 0 from the first `threshold` of `shares`.
// INVALID_ARGUMENT with fewer shares than `threshold`, a repeated or zero x, or a value out
// of the field; FAILED_PRECONDITION if the rebuilt pieces do not form a 32-byte secret (a
// share was corrupted).
absl::StatusOr<SecretBytes> ShamirCombine(std::span<const ShamirShare> shares, int threshold);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_SHAMIR_H_
