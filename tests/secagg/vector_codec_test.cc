// The vector codec: encoding checks, BOUNDED round trips and unbiasedness, WIDE exactness
// (single values and sums over many parties, integers and fixed point, at the overflow
// edge), saturation of values that do not fit (never a refusal).
#include "secagg/vector_codec.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/splitmix64.h"
#include "crypto/quantizer.h"
#include "crypto/secret.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/secagg.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {

using crypto::MaxBitsForParties;
using crypto::QuantizationSpec;
using crypto::QuantizationStep;
using crypto::SecretBytes;
namespace {

using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using Int128 = __int128;

v1::SecAggSegment Bounded(uint32_t length, uint32_t bits, double bound) {
  v1::SecAggSegment segment;
  segment.set_kind(v1::SecAggSegment::BOUNDED);
  segment.set_length(length);
  segment.set_bits(bits);
  segment.set_bound(bound);
  return segment;
}

v1::SecAggSegment Wide(uint32_t length, uint32_t bits, uint32_t fraction_bits, uint32_t limbs) {
  v1::SecAggSegment segment;
  segment.set_kind(v1::SecAggSegment::WIDE);
  segment.set_length(length);
  segment.set_bits(bits);
  segment.set_fraction_bits(fraction_bits);
  segment.set_limbs(limbs);
  return segment;
}

v1::SecAggEncoding Encoding(std::initializer_list<v1::SecAggSegment> segments) {
  v1::SecAggEncoding encoding;
  for (const v1::SecAggSegment& segment : segments) *encoding.add_segments() = segment;
  return encoding;
}

// Word-wise sum mod 2^32 of the encodings of every party's values.
std::vector<uint32_t> SumEncodings(const std::vector<std::vector<double>>& parties,
                                   const v1::SecAggEncoding& encoding) {
  std::vector<uint32_t> sum(EncodedWords(encoding), 0);
  for (const std::vector<double>& values : parties) {
    auto words = EncodeVector(values, encoding);
    EXPECT_TRUE(words.ok()) << words.status();
    if (!words.ok()) return {};
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += (*words)[i];
  }
  return sum;
}

TEST(VectorCodecTest, ValidateRefusesMalformedEncodings) {
  EXPECT_OK(ValidateEncoding(Encoding({Bounded(3, 20, 1), Wide(2, 20, 8, 2)}), 10));
  EXPECT_THAT(ValidateEncoding(v1::SecAggEncoding(), 10),
              StatusIs(absl::StatusCode::kInvalidArgument));
  v1::SecAggSegment unspecified = Bounded(3, 20, 1);
  unspecified.set_kind(v1::SecAggSegment::KIND_UNSPECIFIED);
  const std::vector<v1::SecAggSegment> bad = {
      unspecified,       Bounded(0, 20, 1),  Bounded(3, 1, 1),    Bounded(3, 32, 1),
      Bounded(3, 20, 0), Bounded(3, 20, -1), Bounded(3, 20, NAN), Bounded(3, 20, INFINITY),
      Wide(2, 20, 8, 0), Wide(2, 20, 8, 5),  Wide(2, 20, 41, 2),  Wide(0, 20, 8, 2),
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_THAT(ValidateEncoding(Encoding({Bounded(3, 20, 1), bad[i]}), 10),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("segments[1]")))
        << i;
  }
}

TEST(VectorCodecTest, ValidateEnforcesTheOverflowBudget) {
  // b <= 32 - ceil(log2 n), capped at 31, for both kinds.
  for (uint32_t n : {1u, 2u, 3u, 4u, 5u, 100u, 1000u}) {
    const uint32_t max_bits = MaxBitsForParties(n);
    for (bool wide : {false, true}) {
      auto segment = [&](uint32_t bits) {
        return wide ? Wide(4, bits, 10, 2) : Bounded(4, bits, 1.0);
      };
      EXPECT_OK(ValidateEncoding(Encoding({segment(max_bits)}), n)) << n;
      if (max_bits < 31) {
        EXPECT_THAT(ValidateEncoding(Encoding({segment(max_bits + 1)}), n),
                    StatusIs(absl::StatusCode::kFailedPrecondition))
            << n;
      }
    }
  }
  EXPECT_EQ(MaxBitsForParties(100), 25u);
}

TEST(VectorCodecTest, CountsValuesAndWords) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(5, 20, 1), Wide(3, 20, 8, 3)});
  EXPECT_EQ(EncodedValues(encoding), 8u);
  EXPECT_EQ(EncodedWords(encoding), 14u);
}

TEST(VectorCodecTest, RefusesWrongLengths) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(5, 20, 1), Wide(3, 20, 8, 3)});
  EXPECT_THAT(EncodeVector(std::vector<double>(7), encoding),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeSum(std::vector<uint32_t>(13), encoding),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeSum(std::vector<uint32_t>(14), v1::SecAggEncoding()),
              Not(tessera::testing::IsOk()));
}

TEST(VectorCodecTest, BoundedRoundTripsWithinOneStepAndClips) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(9, 16, 2.0)});
  QuantizationSpec spec;
  spec.bits = 16;
  spec.bound = 2.0;
  const double step = QuantizationStep(spec);
  const std::vector<double> values = {0.0, 1.0, -1.0, 0.123456, -1.999, 2.0, -2.0, 7.5, -100};
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words, EncodeVector(values, encoding));
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
  for (size_t i = 0; i < values.size(); ++i) {
    const double clipped = std::clamp(values[i], -2.0, 2.0);
    EXPECT_LE(std::fabs(decoded[i] - clipped), step) << i;
  }
  EXPECT_EQ(decoded[0], 0.0);
  EXPECT_DOUBLE_EQ(decoded[7], 2.0);
  EXPECT_DOUBLE_EQ(decoded[8], -2.0);
}

TEST(VectorCodecTest, BoundedIsUnbiasedThroughTheCodec) {
  // 16 parties, 50000 coordinates, every one holding the same off-grid value: the mean of
  // the decoded sums divided by 16 is the value, to within 5 standard errors.
  const uint32_t parties = 16, length = 50000;
  const v1::SecAggEncoding encoding = Encoding({Bounded(length, 12, 1.0)});
  QuantizationSpec spec;
  spec.bits = 12;
  spec.bound = 1.0;
  const double step = QuantizationStep(spec);
  const double value = 0.3 * step + 17 * step;  // 0.3 of a step above the grid
  const std::vector<std::vector<double>> inputs(parties, std::vector<double>(length, value));
  ASSERT_OK_AND_ASSIGN(std::vector<double> sums,
                       DecodeSum(SumEncodings(inputs, encoding), encoding));
  double mean = 0;
  for (double s : sums) mean += s / parties;
  mean /= length;
  // Each encoding is value +- at most a step, variance 0.3 * 0.7 * step^2.
  const double standard_error = std::sqrt(0.21) * step / std::sqrt(double{parties} * length);
  EXPECT_NEAR(mean, value, 5 * standard_error);
  // A deterministic rounding would be off by 0.3 (down) or 0.7 (up) of a step.
  EXPECT_GT(std::fabs(mean - (value - 0.3 * step)), 100 * standard_error);
}

TEST(VectorCodecTest, BoundedRoundingFollowsTheCallersKey) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(500, 12, 1.0), Bounded(500, 12, 1.0)});
  std::vector<double> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37 * i) * 0.9;
  const SecretBytes key = SecretBytes::CopyFrom(std::string(16, 'k'));
  const SecretBytes other = SecretBytes::CopyFrom(std::string(16, 'o'));
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> a, EncodeVector(values, encoding, &key));
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> b, EncodeVector(values, encoding, &key));
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> c, EncodeVector(values, encoding, &other));
  EXPECT_EQ(a, b);  // reproducible under one key
  EXPECT_NE(a, c);
  // The two identical segments draw different words (keystream word = value index).
  EXPECT_NE(std::vector<uint32_t>(a.begin(), a.begin() + 500),
            std::vector<uint32_t>(a.begin() + 500, a.end()));
  const SecretBytes short_key = SecretBytes::CopyFrom("short");
  EXPECT_THAT(EncodeVector(values, encoding, &short_key),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VectorCodecTest, WideRoundTripsExactly) {
  const v1::SecAggEncoding encoding = Encoding({Wide(8, 24, 16, 3)});
  // On the 2^-16 grid, within +-2^(3*24-1) / 2^16 = 2^55.
  const std::vector<double> values = {0.0,
                                      1.5,
                                      -1.5,
                                      123456.7890625,
                                      -0.0000152587890625,
                                      std::ldexp(1.0, 54),
                                      -std::ldexp(1.0, 55),
                                      std::ldexp(1.0, 55) - std::ldexp(1.0, 3)};
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words, EncodeVector(values, encoding));
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(decoded[i], values[i]) << i;
  // Limb layout: 1.5 * 2^16 = 0x18000 in the low limb, nothing above.
  EXPECT_EQ(words[3], 0x18000u);
  EXPECT_EQ(words[4], 0u);
  EXPECT_EQ(words[5], 0u);
  // -1.5: the low limbs of -0x18000 unsigned, the top limb -1.
  EXPECT_EQ(words[6], (0u - 0x18000u) & 0xffffffu);
  EXPECT_EQ(words[7], 0xffffffu);
  EXPECT_EQ(words[8], 0xffffffffu);
}

TEST(VectorCodecTest, WideRoundsToTheNearestGridPoint) {
  const v1::SecAggEncoding encoding = Encoding({Wide(3, 20, 2, 2)});
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words,
                       EncodeVector(std::vector<double>{0.3, -0.3, 0.125}, encoding));
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
  EXPECT_EQ(decoded[0], 0.25);
  EXPECT_EQ(decoded[1], -0.25);
  EXPECT_EQ(decoded[2], 0.25);  // half away from zero, like llround
}

TEST(VectorCodecTest, WideHoldsHugeValuesWithFourLimbs) {
  const v1::SecAggEncoding encoding = Encoding({Wide(3, 31, 0, 4)});  // 124-bit integers
  const std::vector<double> values = {
      std::ldexp(1.0, 100), -std::ldexp(1.0, 110) + std::ldexp(1.0, 60), -std::ldexp(1.0, 123)};
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words, EncodeVector(values, encoding));
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(decoded[i], values[i]) << i;
  // 2^123 is one past the largest value, 2^123 - 1, which rounds to 2^123 as a double.
  ASSERT_OK_AND_ASSIGN(words,
                       EncodeVector(std::vector<double>{0, 0, std::ldexp(1.0, 123)}, encoding));
  for (int j = 8; j < 11; ++j) EXPECT_EQ(words[j], 0x7fffffffu) << j;  // low limbs all ones
  EXPECT_EQ(words[11], 0x3fffffffu);  // the top limb: (2^123 - 1) >> 93 = 2^30 - 1
  ASSERT_OK_AND_ASSIGN(decoded, DecodeSum(words, encoding));
  EXPECT_EQ(decoded[2], std::ldexp(1.0, 123));
}

TEST(VectorCodecTest, WideSumsAreExactOverManyParties) {
  // 100 parties (bits <= 25), random signed fixed-point values with 20 fractional bits:
  // the decoded sum equals the exact sum computed in 128-bit integers.
  const uint32_t parties = 100, length = 200;
  const v1::SecAggEncoding encoding = Encoding({Wide(length, 25, 20, 2)});
  ASSERT_OK(ValidateEncoding(encoding, parties));
  common::SplitMix64 rng(11);
  std::vector<std::vector<double>> inputs(parties, std::vector<double>(length));
  std::vector<Int128> exact(length, 0);
  for (auto& values : inputs) {
    for (uint32_t i = 0; i < length; ++i) {
      // |q| < 2^40: fits 2 * 25 - 1 bits; sums stay below 2^47, exact in a double.
      const int64_t q = static_cast<int64_t>(rng.Below(uint64_t{1} << 41)) - (int64_t{1} << 40);
      values[i] = std::ldexp(static_cast<double>(q), -20);
      exact[i] += q;
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<double> sums,
                       DecodeSum(SumEncodings(inputs, encoding), encoding));
  for (uint32_t i = 0; i < length; ++i) {
    EXPECT_EQ(sums[i], std::ldexp(static_cast<double>(exact[i]), -20)) << i;
  }
}

TEST(VectorCodecTest, WideIntegerSumsAreExact) {
  // Counts and integer feature sums (fraction_bits 0) over 7 parties.
  const v1::SecAggEncoding encoding = Encoding({Wide(4, 29, 0, 2)});
  const std::vector<std::vector<double>> inputs(7,
                                                std::vector<double>{1.0, 1e15, -3e14, 123456789.0});
  ASSERT_OK_AND_ASSIGN(std::vector<double> sums,
                       DecodeSum(SumEncodings(inputs, encoding), encoding));
  EXPECT_EQ(sums[0], 7.0);
  EXPECT_EQ(sums[1], 7e15);
  EXPECT_EQ(sums[2], -21e14);
  EXPECT_EQ(sums[3], 864197523.0);
}

TEST(VectorCodecTest, SumsDecodeExactlyAtTheOverflowEdge) {
  // 64 parties at b = 26 bits (= 32 - log2 64), two limbs: every party at the largest and
  // at the smallest representable value.
  const uint32_t parties = 64;
  const v1::SecAggEncoding wide = Encoding({Wide(2, 26, 0, 2)});
  ASSERT_OK(ValidateEncoding(wide, parties));
  const double top = std::ldexp(1.0, 51) - 1, bottom = -std::ldexp(1.0, 51);
  const std::vector<std::vector<double>> inputs(parties, std::vector<double>{top, bottom});
  ASSERT_OK_AND_ASSIGN(std::vector<double> sums, DecodeSum(SumEncodings(inputs, wide), wide));
  EXPECT_EQ(sums[0], parties * top);
  EXPECT_EQ(sums[1], parties * bottom);

  // BOUNDED at the same budget: every party at +bound and at -bound.
  const v1::SecAggEncoding bounded = Encoding({Bounded(2, 26, 1.0)});
  ASSERT_OK(ValidateEncoding(bounded, parties));
  const std::vector<std::vector<double>> extremes(parties, std::vector<double>{1.0, -1.0});
  ASSERT_OK_AND_ASSIGN(std::vector<double> bounded_sums,
                       DecodeSum(SumEncodings(extremes, bounded), bounded));
  EXPECT_DOUBLE_EQ(bounded_sums[0], 64.0);
  EXPECT_DOUBLE_EQ(bounded_sums[1], -64.0);
}

TEST(VectorCodecTest, WideSaturatesValuesBeyondItsRangeAndZeroesNonFiniteOnes) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(2, 20, 1), Wide(3, 20, 10, 2)});
  // Range: [-2^39, 2^39 - 1] / 2^10 = [-2^29, 2^29 - 2^-10].
  const double top = std::ldexp(1.0, 29) - 1.0 / 1024, bottom = -std::ldexp(1.0, 29);
  struct Case {
    double value;
    double decoded;
  };
  const std::vector<Case> cases = {
      {top, top},                     // the edges themselves
      {bottom, bottom},               //
      {top + 1.0 / 1024, top},        // one step beyond
      {bottom - 1.0 / 1024, bottom},  //
      {1e300, top},                   // far beyond
      {-1e300, bottom},               //
      {std::ldexp(1.0, 1023), top},   // scaling overflows to infinity
      {INFINITY, 0},                  // not finite
      {-INFINITY, 0},                 //
      {NAN, 0},                       //
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words,
                         EncodeVector(std::vector<double>{0, 0, 0, c.value, 0}, encoding));
    ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
    EXPECT_EQ(decoded[3], c.decoded);
    EXPECT_EQ(decoded[2], 0);
    EXPECT_EQ(decoded[4], 0);
  }
}

TEST(VectorCodecTest, BoundedClipsInfinitiesAndZeroesNaN) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(4, 20, 2.0)});
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint32_t> words,
      EncodeVector(std::vector<double>{INFINITY, -INFINITY, NAN, 1e300}, encoding));
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
  EXPECT_DOUBLE_EQ(decoded[0], 2.0);
  EXPECT_DOUBLE_EQ(decoded[1], -2.0);
  EXPECT_EQ(decoded[2], 0.0);
  EXPECT_DOUBLE_EQ(decoded[3], 2.0);
}

TEST(VectorCodecTest, SumsOfSaturatedValuesDoNotOverflow) {
  // 64 parties at the overflow budget (b = 26), every one far beyond the range: the sum is
  // 64 times the range's edge, exactly, for two limbs and for four.
  const uint32_t parties = 64;
  for (uint32_t limbs : {2u, 4u}) {
    SCOPED_TRACE(limbs);
    const v1::SecAggEncoding wide = Encoding({Wide(3, 26, 8, limbs)});
    ASSERT_OK(ValidateEncoding(wide, parties));
    const int total = static_cast<int>(26 * limbs);
    const Int128 largest = (static_cast<Int128>(1) << (total - 1)) - 1;
    const Int128 smallest = -(static_cast<Int128>(1) << (total - 1));
    const std::vector<std::vector<double>> inputs(parties, std::vector<double>{1e300, -1e300, NAN});
    ASSERT_OK_AND_ASSIGN(std::vector<double> sums, DecodeSum(SumEncodings(inputs, wide), wide));
    EXPECT_EQ(sums[0], std::ldexp(static_cast<double>(largest * parties), -8));
    EXPECT_EQ(sums[1], std::ldexp(static_cast<double>(smallest * parties), -8));
    EXPECT_EQ(sums[2], 0.0);
    EXPECT_GT(sums[0], 0.0);
    EXPECT_LT(sums[1], 0.0);
  }
}

TEST(VectorCodecTest, EncodeFailsOnlyForTheCallersOwnErrors) {
  const v1::SecAggEncoding encoding = Encoding({Bounded(2, 20, 1), Wide(3, 20, 10, 2)});
  EXPECT_THAT(EncodeVector(std::vector<double>(4), encoding),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 4")));
  v1::SecAggEncoding malformed = encoding;
  malformed.mutable_segments(1)->set_limbs(7);
  EXPECT_THAT(EncodeVector(std::vector<double>(5), malformed),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VectorCodecTest, MixedSegmentsKeepTheirPlaces) {
  const v1::SecAggEncoding encoding =
      Encoding({Wide(1, 20, 0, 2), Bounded(3, 20, 1.0), Wide(2, 20, 4, 1)});
  const std::vector<double> values = {42, 0, 1, -1, 2.5, -3.0625};
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> words, EncodeVector(values, encoding));
  ASSERT_EQ(words.size(), 7u);
  ASSERT_OK_AND_ASSIGN(std::vector<double> decoded, DecodeSum(words, encoding));
  EXPECT_EQ(decoded[0], 42);
  EXPECT_EQ(decoded[1], 0);
  EXPECT_DOUBLE_EQ(decoded[2], 1);
  EXPECT_DOUBLE_EQ(decoded[3], -1);
  EXPECT_EQ(decoded[4], 2.5);
  EXPECT_EQ(decoded[5], -3.0625);
}

}  // namespace
}  // namespace tessera::secagg
