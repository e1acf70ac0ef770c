// Private to tessera_crypto (and its tests): arithmetic in GF(p), p = 2^61 - 1, and the
// deterministic core of ShamirSplit, so tests can share with known coefficients and check
// results worked out by hand.
#ifndef TESSERA_CRYPTO_INTERNAL_SHAMIR_FIELD_H_
#define TESSERA_CRYPTO_INTERNAL_SHAMIR_FIELD_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret.h"
#include "crypto/shamir.h"

namespace tessera::crypto::internal {

// Operands and results are field elements (< kShamirPrime).
uint64_t GfAdd(uint64_t a, uint64_t b);
uint64_t GfSub(uint64_t a, uint64_t b);
uint64_t GfMul(uint64_t a, uint64_t b);
// a^(p-2), the inverse of a != 0 (0 for a == 0).
uint64_t GfInverse(uint64_t a);

// The five 7-byte little-endian pieces of a 32-byte secret (the last three bytes of the
// 35 are zero), and back. Preconditions: 32 bytes; every piece < 2^56, the last < 2^32.
std::array<uint64_t, kShamirPieces> SecretToPieces(const SecretBytes& secret);
SecretBytes PiecesToSecret(const std::array<uint64_t, kShamirPieces>& pieces);

// ShamirSplit with the polynomials given: piece j is shared with
//   f_j(x) = piece_j + sum_{k=1}^{t-1} higher[k-1][j] * x^k.
// INVALID_ARGUMENT as ShamirSplit, or unless higher.size() == threshold - 1 and every
// coefficient < p.
absl::StatusOr<std::vector<ShamirShare>> ShamirSplitWithCoefficients(
    const SecretBytes& secret, int threshold, int num_shares,
    std::span<const std::array<uint64_t, kShamirPieces>> higher);

// The same at the given points (ShamirSplitAt's), in their order.
absl::StatusOr<std::vector<ShamirShare>> ShamirSplitAtWithCoefficients(
    const SecretBytes& secret, int threshold, std::span<const uint32_t> points,
    std::span<const std::array<uint64_t, kShamirPieces>> higher);

}  // namespace tessera::crypto::internal

#endif  // TESSERA_CRYPTO_INTERNAL_SHAMIR_FIELD_H_
