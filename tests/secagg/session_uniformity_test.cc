// What the server of a secure-aggregation session receives is indistinguishable from
// uniform words: chi-square tests on every byte position, for zero and for fixed inputs.
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "common/splitmix64.h"
#include "gtest/gtest.h"
#include "secagg/vector_codec.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/secagg/session_suite.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using testing::MakeSetup;
using testing::Session;

// P(X >= x) for X ~ chi-square with k degrees of freedom: the regularized upper incomplete
// gamma Q(k/2, x/2) (series below a + 1, continued fraction above; Numerical Recipes 6.2).
double ChiSquarePValue(double x, double k) {
  const double a = k / 2, z = x / 2;
  if (z <= 0) return 1.0;
  const double log_prefix = -z + a * std::log(z) - std::lgamma(a);
  if (z < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000; ++n) {
      term *= z / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-15) break;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  double b = z + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::fabs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < 1e-15) break;
  }
  return std::exp(log_prefix) * h;
}

// The p-value of "the byte at `shift` of these words is uniform" (256 bins).
double BytePValue(const std::vector<uint32_t>& words, int shift) {
  std::array<double, 256> counts{};
  for (uint32_t word : words) counts[(word >> shift) & 0xff] += 1;
  const double expected = static_cast<double>(words.size()) / 256;
  double chi2 = 0;
  for (double count : counts) chi2 += (count - expected) * (count - expected) / expected;
  return ChiSquarePValue(chi2, 255);
}

TEST(ChiSquareTest, PValuesMatchKnownQuantiles) {
  // Upper quantiles of chi-square with 255 degrees of freedom.
  EXPECT_NEAR(ChiSquarePValue(254.3349, 255), 0.5, 1e-3);
  EXPECT_NEAR(ChiSquarePValue(293.2478, 255), 0.05, 1e-3);
  EXPECT_NEAR(ChiSquarePValue(330.5197, 255), 0.001, 1e-4);
  EXPECT_NEAR(ChiSquarePValue(2.0, 2), std::exp(-1.0), 1e-12);
}

TEST_F(SecAggSessionTest, ServerOnlyEverSeesUniformWords) {
  // Ten clients with all-zero inputs of 2^16 words: everything the server is given must
  // pass a chi-square uniformity test on the high and the low byte of each word.
  const auto ids = Ids(10);
  const uint32_t words = 1u << 16;
  std::map<std::string, std::vector<uint32_t>> inputs;
  for (const std::string& id : ids) inputs[id] = std::vector<uint32_t>(words, 0);
  Session session(*federation_, MakeSetup(ids, 7, words), inputs);
  ASSERT_OK(session.Init());
  std::vector<uint32_t> seen;
  std::map<std::string, int> calls;
  session.server().set_masked_input_observer(
      [&](const std::string& id, std::span<const uint32_t> masked) {
        ++calls[id];
        seen.insert(seen.end(), masked.begin(), masked.end());
      });
  ASSERT_EQ(session.Run(), ServerState::kCompleted);
  EXPECT_EQ(calls.size(), ids.size());
  ASSERT_EQ(seen.size(), ids.size() * words);
  EXPECT_GT(BytePValue(seen, 24), 0.001);
  EXPECT_GT(BytePValue(seen, 0), 0.001);
  // And the sum is still right: all zeros.
  EXPECT_EQ(session.server().sum(), std::vector<uint32_t>(words, 0));

  // Sanity: the same test on what clients would have sent without masks fails, for the
  // zeros and for a realistic encoded update (small values around zero).
  std::vector<uint32_t> unmasked;
  for (const std::string& id : ids) {
    unmasked.insert(unmasked.end(), inputs[id].begin(), inputs[id].end());
  }
  EXPECT_LT(BytePValue(unmasked, 24), 1e-10);
  EXPECT_LT(BytePValue(unmasked, 0), 1e-10);
  v1::SecAggEncoding encoding = session.setup().encoding();
  std::vector<double> update(words);
  common::SplitMix64 rng(3);
  for (double& v : update) v = 0.02 * (rng.NextUnit() - 0.5);
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> encoded, EncodeVector(update, encoding));
  EXPECT_LT(BytePValue(encoded, 24), 1e-10);
}

TEST_F(SecAggSessionTest, ServerSeesUniformWordsForAFixedNonZeroInput) {
  const auto ids = Ids(10);
  const uint32_t words = 1u << 16;
  std::vector<uint32_t> pattern(words);
  for (uint32_t i = 0; i < words; ++i) pattern[i] = i % 7 == 0 ? 0x7fffffffu : i;
  std::map<std::string, std::vector<uint32_t>> inputs;
  for (const std::string& id : ids) inputs[id] = pattern;
  Session session(*federation_, MakeSetup(ids, 7, words), inputs);
  ASSERT_OK(session.Init());
  std::vector<uint32_t> seen;
  session.server().set_masked_input_observer(
      [&](const std::string&, std::span<const uint32_t> masked) {
        seen.insert(seen.end(), masked.begin(), masked.end());
      });
  ASSERT_EQ(session.Run(), ServerState::kCompleted);
  EXPECT_GT(BytePValue(seen, 24), 0.001);
  EXPECT_EQ(session.server().sum(), session.ExpectedSum(ids));
}

}  // namespace
}  // namespace tessera::secagg
