// From the real vector a client contributes to the 32-bit words secure aggregation sums,
// and from the summed words back to real sums, per a v1::SecAggEncoding (segments laid end
// to end). BOUNDED segments use crypto/quantizer.h (clip, fixed point, stochastic
// rounding, one word per value). WIDE segments hold round(v * 2^f) as `limbs` words of
// `bits` bits each — the low limbs unsigned, the top one signed — so that sums whose range
// is unknown in advance (feature sums, sums of squares, metric sums) add exactly.
//
// Pure functions apart from the rounding randomness (from the system's CSPRNG); thread-safe.
#ifndef TESSERA_CRYPTO_SECAGG_VECTOR_CODEC_H_
#define TESSERA_CRYPTO_SECAGG_VECTOR_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::v1 {
class SecAggEncoding;
}  // namespace tessera::v1

namespace tessera::crypto::secagg {

// INVALID_ARGUMENT for a malformed encoding (no segments, zero length, bits out of 2..31,
// bound not positive and finite, limbs out of 1..4, fraction bits over 40);
// FAILED_PRECONDITION if a sum over `num_parties` could overflow a word.
absl::Status ValidateEncoding(const v1::SecAggEncoding& encoding, uint32_t num_parties);

// Number of real values, and of words, the encoding holds.
size_t EncodedValues(const v1::SecAggEncoding& encoding);
size_t EncodedWords(const v1::SecAggEncoding& encoding);

// INVALID_ARGUMENT if `values` has the wrong length, a WIDE value is not finite or does not
// fit its limbs (the message names the value's index, never its value).
absl::StatusOr<std::vector<uint32_t>> EncodeVector(std::span<const double> values,
                                                   const v1::SecAggEncoding& encoding);

// The real sums from summed words. INVALID_ARGUMENT on a wrong length.
absl::StatusOr<std::vector<double>> DecodeSum(std::span<const uint32_t> words,
                                              const v1::SecAggEncoding& encoding);

}  // namespace tessera::crypto::secagg

#endif  // TESSERA_CRYPTO_SECAGG_VECTOR_CODEC_H_
