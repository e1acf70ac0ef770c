#include "crypto/quantizer.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::crypto {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

uint32_t Encode(double v, const QuantizationSpec& spec, uint32_t random_word) {
  uint32_t out = 0;
  Quantize(std::span<const double>(&v, 1), spec, std::span<const uint32_t>(&random_word, 1),
           std::span<uint32_t>(&out, 1));
  return out;
}

double Decode(uint32_t word, const QuantizationSpec& spec) {
  double out = 0;
  Dequantize(std::span<const uint32_t>(&word, 1), spec, std::span<double>(&out, 1));
  return out;
}

TEST(QuantizerTest, MaxBitsForParties) {
  EXPECT_EQ(MaxBitsForParties(0), 31u);
  EXPECT_EQ(MaxBitsForParties(1), 31u);  // 32, capped
  EXPECT_EQ(MaxBitsForParties(2), 31u);
  EXPECT_EQ(MaxBitsForParties(3), 30u);
  EXPECT_EQ(MaxBitsForParties(4), 30u);
  EXPECT_EQ(MaxBitsForParties(5), 29u);
  EXPECT_EQ(MaxBitsForParties(40), 26u);
  EXPECT_EQ(MaxBitsForParties(64), 26u);
  EXPECT_EQ(MaxBitsForParties(65), 25u);
  EXPECT_EQ(MaxBitsForParties(100), 25u);
  EXPECT_EQ(MaxBitsForParties(1000), 22u);
  EXPECT_EQ(MaxBitsForParties(65536), 16u);
  EXPECT_EQ(MaxBitsForParties(65537), 15u);
}

TEST(QuantizerTest, CheckNoOverflow) {
  EXPECT_OK(CheckNoOverflow({.bits = 26, .bound = 1.0}, 40));
  EXPECT_THAT(CheckNoOverflow({.bits = 28, .bound = 1.0}, 40),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "b = 28 bits could overflow a sum over 40 parties (at most 26)"));
  for (uint32_t bits : {0u, 1u, 32u, 33u}) {
    EXPECT_THAT(CheckNoOverflow({.bits = bits, .bound = 1.0}, 2),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bits")));
  }
  for (double bound : {0.0, -1.0, std::numeric_limits<double>::infinity(),
                       std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THAT(CheckNoOverflow({.bits = 16, .bound = bound}, 2),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bound")));
  }
}

TEST(QuantizerTest, StepAndExactLevels) {
  const QuantizationSpec spec{.bits = 8, .bound = 2.0};
  EXPECT_DOUBLE_EQ(QuantizationStep(spec), 2.0 / 127);
  // Multiples of the step encode to themselves whatever the random word.
  for (int k : {-127, -5, -1, 0, 1, 64, 127}) {
    for (uint32_t r : {0u, 1u, 0x80000000u, 0xffffffffu}) {
      const uint32_t word = Encode(k * QuantizationStep(spec), spec, r);
      EXPECT_EQ(static_cast<int32_t>(word), k) << k << " " << r;
    }
  }
  // Two's complement: -1 is all ones.
  EXPECT_EQ(Encode(-QuantizationStep(spec), spec, 0), 0xffffffffu);
  EXPECT_DOUBLE_EQ(Decode(0xffffffffu, spec), -2.0 / 127);
}

TEST(QuantizerTest, RoundsUpWithProbabilityEqualToTheFraction) {
  // bound = 127 and b = 8 make the step exactly 1: 10.25 is level 10 plus a quarter.
  const QuantizationSpec spec{.bits = 8, .bound = 127.0};
  // Up exactly when word < 0.25 * 2^32 = 2^30.
  EXPECT_EQ(Encode(10.25, spec, 0), 11u);
  EXPECT_EQ(Encode(10.25, spec, (1u << 30) - 1), 11u);
  EXPECT_EQ(Encode(10.25, spec, 1u << 30), 10u);
  EXPECT_EQ(Encode(10.25, spec, 0xffffffffu), 10u);
  // Negative values round towards -inf or up alike: -10.25 = -11 + 0.75.
  EXPECT_EQ(static_cast<int32_t>(Encode(-10.25, spec, 0)), -10);
  EXPECT_EQ(static_cast<int32_t>(Encode(-10.25, spec, 3u << 30)), -11);
  EXPECT_EQ(static_cast<int32_t>(Encode(-10.25, spec, (3u << 30) - 1)), -10);
}

TEST(QuantizerTest, ClipsToTheBoundAndEncodesNanAsZero) {
  const QuantizationSpec spec{.bits = 12, .bound = 0.5};
  const int32_t top = (1 << 11) - 1;
  for (uint32_t r : {0u, 0x7fffffffu, 0xffffffffu}) {
    EXPECT_EQ(static_cast<int32_t>(Encode(0.5, spec, r)), top);
    EXPECT_EQ(static_cast<int32_t>(Encode(0.75, spec, r)), top);
    EXPECT_EQ(static_cast<int32_t>(Encode(1e300, spec, r)), top);
    EXPECT_EQ(static_cast<int32_t>(Encode(std::numeric_limits<double>::infinity(), spec, r)), top);
    EXPECT_EQ(static_cast<int32_t>(Encode(-0.5, spec, r)), -top);
    EXPECT_EQ(static_cast<int32_t>(Encode(-3.0, spec, r)), -top);
    EXPECT_EQ(static_cast<int32_t>(Encode(-std::numeric_limits<double>::infinity(), spec, r)),
              -top);
    EXPECT_EQ(Encode(std::numeric_limits<double>::quiet_NaN(), spec, r), 0u);
  }
  EXPECT_DOUBLE_EQ(Decode(Encode(9.0, spec, 0), spec), 0.5);
  EXPECT_DOUBLE_EQ(Decode(Encode(-9.0, spec, 0), spec), -0.5);
}

TEST(QuantizerTest, StochasticRoundingIsUnbiased) {
  // Mean of N independent encodings of v, decoded, is clip(v) up to sampling noise: each
  // decodes to floor or floor + step with P(up) = f, so the standard error of the mean is
  // step * sqrt(f (1 - f) / N). Allow 5 standard errors (a false failure about 1 in 10^6).
  const QuantizationSpec spec{.bits = 6, .bound = 1.0};  // coarse: step = 1/31
  const double step = QuantizationStep(spec);
  constexpr size_t kN = 200000;
  std::mt19937 rng(4242);
  for (double v : {0.3, -0.737, 0.01, -0.999, 0.5 + 0.5 * step, 1.7, -2.5}) {
    const double clipped = std::clamp(v, -spec.bound, spec.bound);
    std::vector<double> values(kN, v);
    std::vector<uint32_t> random(kN);
    for (uint32_t& r : random) r = rng();
    std::vector<uint32_t> words(kN);
    Quantize(values, spec, random, words);
    std::vector<double> decoded(kN);
    Dequantize(words, spec, decoded);
    double sum = 0;
    for (double d : decoded) sum += d;
    const double mean = sum / kN;
    const double f = clipped / step - std::floor(clipped / step);
    const double standard_error = step * std::sqrt(f * (1 - f) / kN);
    EXPECT_NEAR(mean, clipped, 5 * standard_error + 1e-12) << v;
    // Every encoding is one of the two neighbouring levels.
    for (double d : decoded) {
      ASSERT_TRUE(std::abs(d - clipped) < step + 1e-12) << v << " " << d;
    }
  }
}

TEST(QuantizerTest, SumsOfEncodingsDecodeToTheSumOfValues) {
  constexpr uint32_t kParties = 40;
  const QuantizationSpec spec{.bits = MaxBitsForParties(kParties), .bound = 3.0};
  ASSERT_OK(CheckNoOverflow(spec, kParties));
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> value(-4.0, 4.0);
  constexpr size_t kDim = 1000;
  std::vector<uint32_t> sum(kDim, 0);
  std::vector<double> want(kDim, 0.0);
  for (uint32_t p = 0; p < kParties; ++p) {
    std::vector<double> x(kDim);
    std::vector<uint32_t> random(kDim);
    for (size_t i = 0; i < kDim; ++i) {
      x[i] = value(rng);
      random[i] = rng();
      want[i] += std::clamp(x[i], -3.0, 3.0);
    }
    std::vector<uint32_t> words(kDim);
    Quantize(x, spec, random, words);
    for (size_t i = 0; i < kDim; ++i) sum[i] += words[i];  // mod 2^32
  }
  std::vector<double> got(kDim);
  Dequantize(sum, spec, got);
  for (size_t i = 0; i < kDim; ++i) {
    EXPECT_NEAR(got[i], want[i], kParties * QuantizationStep(spec)) << i;
  }
}

TEST(QuantizerTest, DecodesExactlyAtTheOverflowEdge) {
  // With b = MaxBitsForParties(n), n parties all at +bound sum to n (2^(b-1) - 1) <= 2^31 - n,
  // and all at -bound to its negation: both decode to +-n * bound. One more bit would wrap
  // the 32-bit sum, which CheckNoOverflow refuses.
  for (uint32_t n : {3u, 7u, 40u, 100u, 1000u, 65536u}) {
    SCOPED_TRACE(n);
    const uint32_t b = MaxBitsForParties(n);
    for (double bound : {1.0, 0.37, 250.0}) {
      const QuantizationSpec spec{.bits = b, .bound = bound};
      ASSERT_OK(CheckNoOverflow(spec, n));
      for (double sign : {1.0, -1.0}) {
        const uint32_t word = Encode(sign * bound, spec, 0x12345678u);
        uint32_t sum = 0;
        for (uint32_t i = 0; i < n; ++i) sum += word;
        const double decoded = Decode(sum, spec);
        EXPECT_NEAR(decoded, sign * n * bound, QuantizationStep(spec)) << bound;
        EXPECT_EQ(static_cast<int64_t>(static_cast<int32_t>(sum)),
                  static_cast<int64_t>(sign) * n * ((int64_t{1} << (b - 1)) - 1));
      }
      // b + 1 bits: refused, and rightly so, since the same sum would wrap.
      const QuantizationSpec too_wide{.bits = b + 1, .bound = bound};
      EXPECT_THAT(CheckNoOverflow(too_wide, n),
                  StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("could overflow")));
      const uint32_t word = Encode(bound, too_wide, 0);
      uint32_t sum = 0;
      for (uint32_t i = 0; i < n; ++i) sum += word;
      EXPECT_LT(Decode(sum, too_wide), 0.0);  // wrapped to a negative number
    }
  }
  // Two parties already use 31 bits, the most there is; 32 bits is refused as malformed.
  EXPECT_EQ(MaxBitsForParties(2), 31u);
  EXPECT_THAT(CheckNoOverflow({.bits = 32, .bound = 1.0}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::crypto
