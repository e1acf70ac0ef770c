#include "crypto/quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "crypto/internal/check.h"

namespace tessera::crypto {
namespace {

constexpr uint32_t kMinBits = 2;
constexpr uint32_t kMaxBits = 31;

bool ValidSpec(const QuantizationSpec& spec) {
  return spec.bits >= kMinBits && spec.bits <= kMaxBits && std::isfinite(spec.bound) &&
         spec.bound > 0;
}

// 2^(b-1) - 1: the integer `bound` maps to.
double MaxLevel(uint32_t bits) { return std::ldexp(1.0, static_cast<int>(bits) - 1) - 1.0; }

}  // namespace

uint32_t MaxBitsForParties(uint32_t num_parties) {
  // ceil(log2 n) = bit_width(n - 1) for n >= 1; no parties is treated as one.
  const uint32_t log2_ceil = num_parties <= 1 ? 0 : std::bit_width(num_parties - 1);
  return std::min<uint32_t>(32 - log2_ceil, kMaxBits);
}

absl::Status CheckNoOverflow(const QuantizationSpec& spec, uint32_t num_parties) {
  if (spec.bits < kMinBits || spec.bits > kMaxBits) {
    return absl::InvalidArgumentError(absl::StrCat("quantization bits must be in ", kMinBits, "..",
                                                   kMaxBits, ", got ", spec.bits));
  }
  if (!std::isfinite(spec.bound) || spec.bound <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization bound must be positive and finite, got ", spec.bound));
  }
  const uint32_t max_bits = MaxBitsForParties(num_parties);
  if (spec.bits > max_bits) {
    return absl::FailedPreconditionError(
        absl::StrCat("b = ", spec.bits, " bits could overflow a sum over ", num_parties,
                     " parties (at most ", max_bits, ")"));
  }
  return absl::OkStatus();
}

void Quantize(std::span<const double> values, const QuantizationSpec& spec,
              std::span<const uint32_t> random_words, std::span<uint32_t> out) {
  TESSERA_CRYPTO_CHECK(ValidSpec(spec));
  TESSERA_CRYPTO_CHECK(values.size() == random_words.size() && values.size() == out.size());
  const double max_level = MaxLevel(spec.bits);
  const double scale = max_level / spec.bound;
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (std::isnan(v)) {
      out[i] = 0;
      continue;
    }
    // min/max rather than std::clamp: they compile to branch-free minsd/maxsd.
    const double scaled = std::min(std::max(v, -spec.bound), spec.bound) * scale;
    // floor(scaled) by truncation and a correction for negatives: |scaled| < 2^31, and
    // this avoids a libm call where the target has no SSE4.1 rounding instruction.
    // Branch-free: signs are random, so a branch here would be mispredicted half the time.
    int64_t truncated = static_cast<int64_t>(scaled);
    truncated -= static_cast<int64_t>(static_cast<double>(truncated) > scaled);
    const double floor = static_cast<double>(truncated);
    const double fraction = scaled - floor;  // in [0, 1)
    // Up with probability `fraction`: (word + 1/2) / 2^32 is uniform over the midpoints of
    // 2^32 equal cells of [0, 1), so P(up) = fraction to within 2^-33. Midpoints (rather
    // than word / 2^32, which can be 0) keep a value that sits on a level, give or take a
    // rounding error of the scaling, on that level whatever the word.
    const double u = (static_cast<double>(random_words[i]) + 0.5) * 0x1p-32;
    const double up = u < fraction ? 1.0 : 0.0;
    // Rounding of `scale` can push `scaled` a hair past the top level; keep every encoding
    // within +-(2^(b-1) - 1), which the overflow budget assumes.
    const double level = std::min(std::max(floor + up, -max_level), max_level);
    out[i] = static_cast<uint32_t>(static_cast<int32_t>(level));
  }
}

void Dequantize(std::span<const uint32_t> summed, const QuantizationSpec& spec,
                std::span<double> out) {
  TESSERA_CRYPTO_CHECK(ValidSpec(spec));
  TESSERA_CRYPTO_CHECK(summed.size() == out.size());
  const double step = QuantizationStep(spec);
  for (size_t i = 0; i < summed.size(); ++i) {
    out[i] = static_cast<double>(static_cast<int32_t>(summed[i])) * step;
  }
}

double QuantizationStep(const QuantizationSpec& spec) { return spec.bound / MaxLevel(spec.bits); }

}  // namespace tessera::crypto
