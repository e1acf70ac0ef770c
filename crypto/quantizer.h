// Fixed-point encoding of real values into Z_{2^32} words for secure aggregation.
//
// A value is clipped to [-bound, bound], scaled so that bound maps to 2^(b-1) - 1, and
// rounded stochastically: up with probability equal to the fractional part, so the
// encoding is unbiased (E[decode(encode(v))] = clip(v)). The integer is stored two's
// complement in a 32-bit word. Words add mod 2^32; a sum of n encodings decodes exactly
// as long as b <= 32 - ceil(log2 n), which CheckNoOverflow enforces.
//
// Pure functions; thread-safe.
#ifndef TESSERA_CRYPTO_QUANTIZER_H_
#define TESSERA_CRYPTO_QUANTIZER_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace tessera::crypto {

struct QuantizationSpec {
  // Bits per value, 2..31 (the sign included).
  uint32_t bits = 24;
  // Clipping bound c > 0.
  double bound = 1.0;
};

// Largest b for which a sum over `num_parties` values cannot overflow a 32-bit word:
// 32 - ceil(log2 num_parties) (32 for one party), capped at 31.
uint32_t MaxBitsForParties(uint32_t num_parties);

// INVALID_ARGUMENT for bits outside 2..31 or a bound that is not positive and finite;
// FAILED_PRECONDITION "b = 28 bits could overflow a sum over 40 parties (at most 26)" when
// the budget does not fit.
absl::Status CheckNoOverflow(const QuantizationSpec& spec, uint32_t num_parties);

// out[i] = encode(values[i]); random_words[i] is a uniform 32-bit word used for the
// rounding of value i (sizes must match; a NaN encodes as 0).
void Quantize(std::span<const double> values, const QuantizationSpec& spec,
              std::span<const uint32_t> random_words, std::span<uint32_t> out);

// out[i] = the real value of a sum of encodings (words read as signed 32-bit integers).
void Dequantize(std::span<const uint32_t> summed, const QuantizationSpec& spec,
                std::span<double> out);

// The real value one quantisation step stands for: bound / (2^(b-1) - 1).
double QuantizationStep(const QuantizationSpec& spec);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_QUANTIZER_H_
