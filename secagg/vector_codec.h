// From the real vector a client contributes to the 32-bit words secure aggregation sums,
// and from the summed words back to real sums, per a v1::SecAggEncoding (segments laid end
// to end). BOUNDED segments use crypto/quantizer.h (clip, fixed point, stochastic
// rounding, one word per value). WIDE segments hold round(v * 2^f) as `limbs` words of
// `bits` bits each — the low limbs unsigned, the top one signed — so that sums whose range
// is unknown in advance (feature sums, sums of squares, metric sums) add exactly.
//
// The overflow rule. With n parties, ValidateEncoding requires bits <= 32 - ceil(log2 n)
// (capped at 31) for every segment, BOUNDED and WIDE alike, and then no word of a sum over
// at most n parties wraps:
//   - BOUNDED: each word is an integer in [-(2^(b-1) - 1), 2^(b-1) - 1]; n of them sum to
//     less than n * 2^(b-1) <= 2^31 in magnitude: an exact int32.
//   - WIDE: q = round(v * 2^f) lies in [-2^(L*b - 1), 2^(L*b - 1)) (EncodeVector saturates
//     a value beyond it to the nearest edge). Limb j < L-1 holds bits [j*b, (j+1)*b) of q as an
//     unsigned value in [0, 2^b), so n of them sum to at most n * (2^b - 1) < 2^32: read as uint32.
//     The top limb holds q >> ((L-1)*b) (arithmetic shift), in [-2^(b-1), 2^(b-1)), so n of them
//     sum to within [-2^31, 2^31): read as int32. The real sum is
//     (sum_j limb_sum_j * 2^(j*b)) / 2^f, computed exactly in 128-bit integers (at most
//     127 bits for any valid encoding) and rounded once to a double.
//
// Pure functions apart from the rounding randomness (from the system's CSPRNG); thread-safe.
#ifndef TESSERA_SECAGG_VECTOR_CODEC_H_
#define TESSERA_SECAGG_VECTOR_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret.h"

namespace tessera::v1 {
class SecAggEncoding;
}  // namespace tessera::v1

namespace tessera::secagg {

// INVALID_ARGUMENT for a malformed encoding (no segments, zero length, bits out of 2..31,
// bound not positive and finite, limbs out of 1..4, fraction bits over 40);
// FAILED_PRECONDITION if a sum over `num_parties` could overflow a word.
absl::Status ValidateEncoding(const v1::SecAggEncoding& encoding, uint32_t num_parties);

// Number of real values, and of words, the encoding holds.
size_t EncodedValues(const v1::SecAggEncoding& encoding);
size_t EncodedWords(const v1::SecAggEncoding& encoding);

// Never declines a value, so that no error can tell anything about the data: BOUNDED
// values are clipped to [-bound, bound] (a NaN encodes as 0; crypto/quantizer.h); WIDE
// values round to the nearest multiple of 2^-f, halves away from zero, and a value beyond
// the limbs' range saturates to the largest (smallest) representable value, a non-finite
// one encodes as 0. Saturated values still obey the overflow rule above, so a sum over n
// parties of them decodes to n times the edge. Fails only for the caller's own errors:
// INVALID_ARGUMENT if `values` has the wrong length or the encoding is malformed (as for
// ValidateEncoding; its overflow budget is not checked here), INTERNAL if the random
// source fails.
//
// The stochastic rounding of BOUNDED values draws one word per value from AES-128-CTR under
// `rounding_key` (16 bytes; value i uses keystream word i), or under a fresh random key if
// it is null. The rounding noise protects nothing (the masks do), so a site may derive the
// key from the task's seed to make its encodings — and the task's models — reproducible.
absl::StatusOr<std::vector<uint32_t>> EncodeVector(
    std::span<const double> values, const v1::SecAggEncoding& encoding,
    const crypto::SecretBytes* rounding_key = nullptr);

// The real sums from summed words. INVALID_ARGUMENT on a wrong length.
absl::StatusOr<std::vector<double>> DecodeSum(std::span<const uint32_t> words,
                                              const v1::SecAggEncoding& encoding);

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_VECTOR_CODEC_H_
