// Record-level differential privacy of analytics (proto/analytics.h, "Differential
// privacy"): the sensitivities per layout, the one-row bound the Gaussian mechanism rests
// on (the statistics scaled by 1/(sqrt(m) Delta_i) move by at most 1 in L2, checked by
// brute force over random rows, extreme ones included), the noised encoding (nothing
// withheld, clipping, noise on its own statistic, the transport's range), and the noised
// release (rounding, clamping, suppression by the noisy counts). The exact path's tests
// (analytics_test.cc, analytics_release_test.cc) are unchanged.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A site's table of columns f (filter) and x (value), row-major.
struct Site {
  std::vector<std::string> header = {"f", "x"};
  std::vector<double> values;
  size_t num_rows = 0;
  void Add(double f, double x) {
    values.push_back(f);
    values.push_back(x);
    ++num_rows;
  }
};

v1::AnalyticsSpec::Query* AddQuery(v1::AnalyticsSpec* spec, double lo, double hi,
                                   const std::vector<double>& edges = {}) {
  auto* q = spec->add_queries();
  q->set_column("x");
  q->add_value_range(lo);
  q->add_value_range(hi);
  for (double e : edges) q->add_histogram_edges(e);
  return q;
}

// x with a histogram over [0, 10, 20] in [-5, 30], x again without one in [-40, 3], rows
// with f == 1, k = 5.
v1::AnalyticsSpec TwoQuerySpec() {
  v1::AnalyticsSpec spec;
  AddQuery(&spec, -5, 30, {0, 10, 20});
  AddQuery(&spec, -40, 3);
  spec.mutable_filter()->set_column("f");
  spec.mutable_filter()->set_op(v1::AnalyticsSpec::Filter::EQ);
  spec.mutable_filter()->set_value(1);
  spec.set_min_cell_size(5);
  return spec;
}

std::vector<double> Encode(const v1::AnalyticsSpec& spec, const Site& s,
                           std::vector<double> noise = {}) {
  if (noise.empty()) noise.assign(AnalyticsStatisticsLength(spec), 0.0);
  auto v = EncodeNoisedAnalytics(spec, noise, s.header, s.values, s.num_rows);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::vector<double>(AnalyticsLength(spec), 0.0);
}

std::vector<double> Statistics(const v1::AnalyticsSpec& spec, const std::vector<double>& v) {
  auto s = AnalyticsStatistics(spec, v, /*noised=*/true);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : std::vector<double>(AnalyticsStatisticsLength(spec), kNaN);
}

// ---- Sensitivities ----

TEST(AnalyticsSensitivityTest, PerLayout) {
  const v1::AnalyticsSpec spec = TwoQuerySpec();
  EXPECT_EQ(AnalyticsStatisticsLength(spec), (3u + 4u) + 3u);
  const AnalyticsSensitivity s = AnalyticsRecordSensitivity(spec);
  // Query 1: count, S (max(5, 30)), Q, 2 bins + below + above; query 2: count, S
  // (max(40, 3)), Q. One row: 3 + 1 histogram cell, then 3.
  EXPECT_EQ(s.row_statistics, 7u);
  EXPECT_THAT(s.per_statistic, ElementsAre(1, 30, 900, 1, 1, 1, 1, 1, 40, 1600));

  v1::AnalyticsSpec one;
  AddQuery(&one, 0.5, 2);
  const AnalyticsSensitivity o = AnalyticsRecordSensitivity(one);
  EXPECT_EQ(o.row_statistics, 3u);
  EXPECT_THAT(o.per_statistic, ElementsAre(1, 2, 4));

  v1::AnalyticsSpec histograms;
  for (int q = 0; q < 4; ++q) AddQuery(&histograms, -1, 1, {-1, 0, 1});
  EXPECT_EQ(AnalyticsRecordSensitivity(histograms).row_statistics, 16u);
  EXPECT_EQ(AnalyticsStatisticsLength(histograms), 4u * (3 + 4));
}

// The L2 norm of the change between two statistics vectors, each statistic scaled by
// 1/(sqrt(m) Delta_i).
double ScaledChange(const AnalyticsSensitivity& s, const std::vector<double>& a,
                    const std::vector<double>& b) {
  double sq = 0;
  const double root_m = std::sqrt(static_cast<double>(s.row_statistics));
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = (a[i] - b[i]) / (root_m * s.per_statistic[i]);
    sq += d * d;
  }
  return std::sqrt(sq);
}

// Rows beyond the ranges, at their ends, at the edges, huge, not finite, or random.
double RowValue(int kind, std::mt19937_64& rng) {
  constexpr double kKinds[] = {-40, 30, -5, 3, 1e300, -1e300, 20, 0, 10, kNaN, kInf};
  if (kind < static_cast<int>(std::size(kKinds))) return kKinds[kind];
  return std::uniform_real_distribution<double>(-100, 100)(rng);
}

// The largest scaled change of one row added to random tables of `spec`; expects every
// change at most 1.
double LargestOneRowChange(const v1::AnalyticsSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 15);
  const AnalyticsSensitivity s = AnalyticsRecordSensitivity(spec);
  double largest = 0;
  for (int table = 0; table < 40; ++table) {
    Site base;
    const int rows = table % 4 == 0 ? 0 : 1 + static_cast<int>(rng() % 60);
    for (int r = 0; r < rows; ++r) base.Add(rng() % 3 == 0 ? 0 : 1, RowValue(pick(rng), rng));
    const std::vector<double> before = Statistics(spec, Encode(spec, base));
    for (int trial = 0; trial < 60; ++trial) {
      // Kept rows of every kind, then rows the filter drops or cannot read.
      Site added = base;
      const double f = trial < 16 ? 1.0 : (trial % 5 == 0 ? 0.0 : trial % 5 == 1 ? kNaN : 1.0);
      added.Add(f, RowValue(trial < 16 ? trial : pick(rng), rng));
      const double change = ScaledChange(s, before, Statistics(spec, Encode(spec, added)));
      EXPECT_LE(change, 1 + 1e-12) << "table " << table << ", trial " << trial;
      largest = std::max(largest, change);
    }
  }
  return largest;
}

TEST(AnalyticsSensitivityTest, ScaledOneRowChangeIsAtMostOneInL2) {
  // Two queries of one column with different ranges: no value reaches both ranges'
  // largest magnitudes, so the bound is not attained.
  EXPECT_LT(LargestOneRowChange(TwoQuerySpec(), 20240611), 1.0);
  // One query: a kept row at 30 (or clipped to it) moves each of its m = 4 statistics by
  // exactly Delta_i, the bound.
  v1::AnalyticsSpec one;
  AddQuery(&one, -5, 30, {0, 10, 20});
  *one.mutable_filter() = TwoQuerySpec().filter();
  EXPECT_NEAR(LargestOneRowChange(one, 7), 1.0, 1e-12);
  // No histogram, a range whose lower end is the larger: -40 attains it.
  v1::AnalyticsSpec negative;
  AddQuery(&negative, -40, 3);
  *negative.mutable_filter() = TwoQuerySpec().filter();
  EXPECT_NEAR(LargestOneRowChange(negative, 8), 1.0, 1e-12);
}

// ---- The noised encoding ----

TEST(AnalyticsNoisedEncodingTest, NothingIsWithheldAndTheSumsAreExactWithoutNoise) {
  const v1::AnalyticsSpec spec = TwoQuerySpec();  // k = 5
  Site s;
  for (double x : {1.5, 12.0, 12.5}) s.Add(1, x);  // 3 kept rows: the exact path withholds
  s.Add(0, 7);
  const std::vector<double> v = Encode(spec, s);
  // Withheld entries: the main cells' (1, 19) and the histogram cells' (11, 13, 15, 17).
  for (size_t i : {1u, 11u, 13u, 15u, 17u, 19u}) EXPECT_EQ(v[i], 0) << i;
  // Query 2 clips 12 and 12.5 to 3.
  EXPECT_THAT(Statistics(spec, v),
              ElementsAre(3, 26, 1.5 * 1.5 + 144 + 156.25, 1, 2, 0, 0, 3, 7.5, 1.5 * 1.5 + 9 + 9));
  // The exact encoding withholds the whole query instead.
  auto exact = EncodeAnalytics(spec, MinCellSize(spec), s.header, s.values, s.num_rows);
  ASSERT_OK(exact.status());
  EXPECT_EQ((*exact)[1], 1);
}

TEST(AnalyticsNoisedEncodingTest, ValuesAreClippedIntoTheRangeAndBinnedAsThemselves) {
  const v1::AnalyticsSpec spec = TwoQuerySpec();  // [-5, 30] with bins; [-40, 3]
  Site s;
  for (double x : {-7.0, 45.0, 2.0}) s.Add(1, x);
  // Query 1: clipped to -5, 30, 2; -7 below, 45 above, 2 in bin [0, 10). Query 2: -7, 3, 2.
  EXPECT_THAT(Statistics(spec, Encode(spec, s)),
              ElementsAre(3, 27, 25 + 900 + 4, 1, 0, 1, 1, 3, -2, 49 + 9 + 4));
}

TEST(AnalyticsNoisedEncodingTest, EachNoiseValueLandsOnItsOwnStatistic) {
  const v1::AnalyticsSpec spec = TwoQuerySpec();
  Site s;
  for (int i = 0; i < 30; ++i) s.Add(1, 0.7 * i - 4);
  const std::vector<double> exact = Statistics(spec, Encode(spec, s));
  const size_t n = AnalyticsStatisticsLength(spec);
  for (size_t j = 0; j < n; ++j) {
    std::vector<double> noise(n, 0.0);
    noise[j] = -123.456 * static_cast<double>(j + 1);
    const std::vector<double> noised = Statistics(spec, Encode(spec, s, noise));
    for (size_t i = 0; i < n; ++i) {
      EXPECT_NEAR(noised[i], exact[i] + noise[i], 1e-9 * (1 + std::fabs(exact[i])))
          << "statistic " << i << ", noise on " << j;
    }
  }
}

TEST(AnalyticsNoisedEncodingTest, NoisedSumsStayInsideTheSmallestWideRange) {
  // The largest magnitudes a valid spec allows, 100000 rows at them, and noise at ten
  // standard deviations of the largest noise multiplier with t = 1: S and Q travel scaled
  // by 1/Delta, so every part stays below 2^27 (the per-site range of the WIDE encoding at
  // 10000 sites) and reads back without saturating.
  v1::AnalyticsSpec spec;
  AddQuery(&spec, -kMaxValueRangeMagnitude, kMaxValueRangeMagnitude);
  Site s;
  for (int i = 0; i < 100000; ++i) s.Add(1, kMaxValueRangeMagnitude);
  const AnalyticsSensitivity sens = AnalyticsRecordSensitivity(spec);
  std::vector<double> noise(3);
  for (size_t i = 0; i < 3; ++i) {
    noise[i] = 10 * kMaxAnalyticsNoiseMultiplier * std::sqrt(3.0) * sens.per_statistic[i];
  }
  const std::vector<double> v = Encode(spec, s, noise);
  for (double part : v) EXPECT_LT(std::fabs(part), 0x1p27);
  const std::vector<double> back = Statistics(spec, v);
  const double rows = 100000 + 10 * kMaxAnalyticsNoiseMultiplier * std::sqrt(3.0);
  EXPECT_NEAR(back[1] / kMaxValueRangeMagnitude, rows, 1e-6);
  EXPECT_NEAR(back[2] / (kMaxValueRangeMagnitude * kMaxValueRangeMagnitude), rows, 1e-6);
  // The exact transport of the same sums saturates at 2^76.
  v1::AnalyticsSpec exact_spec = spec;
  exact_spec.mutable_queries(0)->clear_value_range();
  auto exact = EncodeAnalytics(exact_spec, 0, s.header, s.values, s.num_rows);
  ASSERT_OK(exact.status());
  auto saturated = AnalyticsStatistics(exact_spec, *exact, /*noised=*/false);
  ASSERT_OK(saturated.status());
  EXPECT_LT((*saturated)[1], 0x1p77);
}

TEST(AnalyticsNoisedEncodingTest, RefusesWhatTheSpecMakesWrong) {
  v1::AnalyticsSpec spec = TwoQuerySpec();
  Site s;
  s.Add(1, 2);
  EXPECT_THAT(EncodeNoisedAnalytics(spec, std::vector<double>(3, 0.0), s.header, s.values, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise values")));
  std::vector<double> noise(AnalyticsStatisticsLength(spec), 0.0);
  noise[4] = kNaN;
  EXPECT_THAT(EncodeNoisedAnalytics(spec, noise, s.header, s.values, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("finite")));
  spec.mutable_queries(1)->clear_value_range();
  noise[4] = 0;
  EXPECT_THAT(EncodeNoisedAnalytics(spec, noise, s.header, s.values, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("value_range")));
  EXPECT_THAT(ReleaseAnalytics(spec, std::vector<double>(AnalyticsLength(spec), 0.0), true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("value_range")));
}

// ---- The noised release ----

// One site's noised vector of `xs` (all kept) for `spec`, with `noise` per statistic.
std::vector<double> Noised(const v1::AnalyticsSpec& spec, const std::vector<double>& xs,
                           const std::vector<double>& noise) {
  Site s;
  for (double x : xs) s.Add(1, x);
  return Encode(spec, s, noise);
}

std::vector<double> Repeat(double x, int n) { return std::vector<double>(n, x); }

// Query x in [0, 30] with bins [0, 10), [10, 20], below, above; k = 5.
v1::AnalyticsSpec HistogramSpec() {
  v1::AnalyticsSpec spec;
  AddQuery(&spec, 0, 30, {0, 10, 20});
  spec.set_min_cell_size(5);
  return spec;
}

TEST(AnalyticsNoisedReleaseTest, CountsAreRoundedAndClampedAtZero) {
  const v1::AnalyticsSpec spec = HistogramSpec();
  std::vector<double> xs = Repeat(4, 8);           // 8 in [0, 10)
  for (double x : Repeat(15, 6)) xs.push_back(x);  // 6 in [10, 20]
  for (double x : Repeat(-3, 5)) xs.push_back(x);  // 5 below
  for (double x : Repeat(40, 5)) xs.push_back(x);  // 5 above
  // count 24 + 0.4, bins 8 - 0.6 and 6 + 3.5, below 5 - 0.4, above 5 + 1.49.
  auto released =
      ReleaseAnalytics(spec, Noised(spec, xs, {0.4, 0, 0, -0.6, 3.5, -0.4, 1.49}), true);
  ASSERT_OK(released.status());
  const QueryRelease& q = (*released)[0];
  ASSERT_TRUE(q.main.has_value());
  EXPECT_EQ(q.main->count, 24);
  EXPECT_THAT(q.bins, ElementsAre(7, 10));  // 9.5 rounds half away from zero
  EXPECT_EQ(q.below, 5);
  EXPECT_EQ(q.above, 6);
  EXPECT_EQ(q.suppressed_cells, 0u);
  // `below` at 5 - 7: 0, suppressed; then the derivable total 24 - 23 < k takes the
  // smallest released cell (above, 6) too.
  released = ReleaseAnalytics(spec, Noised(spec, xs, {0.4, 0, 0, -0.6, 3.5, -7, 1.49}), true);
  ASSERT_OK(released.status());
  EXPECT_THAT((*released)[0].bins, ElementsAre(7, 10));
  EXPECT_EQ((*released)[0].below, std::nullopt);
  EXPECT_EQ((*released)[0].above, std::nullopt);
  EXPECT_EQ((*released)[0].suppressed_cells, 2u);
  // Noisy cells need not add up to the noisy count: released cells totalling more than
  // the count leave a negative "derivable" total, and the rule suppresses until it is at
  // least k, here every cell.
  released = ReleaseAnalytics(spec, Noised(spec, xs, {-12, 0, 0, 0, 0, -7, 0}), true);
  ASSERT_OK(released.status());
  EXPECT_EQ((*released)[0].main->count, 12);
  EXPECT_EQ((*released)[0].suppressed_cells, 4u);
}

TEST(AnalyticsNoisedReleaseTest, MeanAndVarianceComeFromTheNoisyCountAndSums) {
  v1::AnalyticsSpec spec;
  AddQuery(&spec, 0, 30);
  spec.set_min_cell_size(5);
  const std::vector<double> xs = {10, 12, 14, 16, 18, 20};  // S 90, Q 1420
  const auto released = ReleaseAnalytics(spec, Noised(spec, xs, {0.3, 3.0, 40.0}), true);
  ASSERT_OK(released.status());
  const MainCell& m = *(*released)[0].main;
  EXPECT_EQ(m.count, 6);  // 6.3 rounded
  EXPECT_NEAR(m.sum, 93, 1e-9);
  EXPECT_NEAR(m.mean, 15.5, 1e-9);
  EXPECT_NEAR(m.variance, 1460.0 / 6 - 15.5 * 15.5, 1e-9);
}

TEST(AnalyticsNoisedReleaseTest, MainCellValuesAreClampedToWhatTheRangeAllows) {
  v1::AnalyticsSpec spec;
  AddQuery(&spec, -2, 10);
  spec.set_min_cell_size(1);
  const std::vector<double> xs = {1, 2, 3, 4};
  // S far above 4 * 10, Q far below 0: sum n hi, mean hi, variance 0.
  auto high = ReleaseAnalytics(spec, Noised(spec, xs, {0, 1000, -5000}), true);
  ASSERT_OK(high.status());
  EXPECT_EQ((*high)[0].main->sum, 40);
  EXPECT_EQ((*high)[0].main->mean, 10);
  EXPECT_EQ((*high)[0].main->variance, 0);
  // S far below 4 * -2, Q far above: sum n lo, mean lo, variance ((hi - lo) / 2)^2.
  auto low = ReleaseAnalytics(spec, Noised(spec, xs, {0, -1000, 1e6}), true);
  ASSERT_OK(low.status());
  EXPECT_EQ((*low)[0].main->sum, -8);
  EXPECT_EQ((*low)[0].main->mean, -2);
  EXPECT_EQ((*low)[0].main->variance, 36);
}

TEST(AnalyticsNoisedReleaseTest, SuppressionFollowsTheNoisyCounts) {
  const v1::AnalyticsSpec spec = HistogramSpec();  // k = 5
  // 6 rows whose noisy count rounds to 4: the whole query is suppressed.
  auto below = ReleaseAnalytics(spec, Noised(spec, Repeat(5, 6), {-1.6, 0, 0, 0, 0, 0, 0}), true);
  ASSERT_OK(below.status());
  EXPECT_FALSE((*below)[0].main.has_value());
  EXPECT_EQ((*below)[0].suppressed_cells, 1u + 4);
  // 3 rows whose noisy count rounds to 5: released (the noise, not k, protects them).
  auto above = ReleaseAnalytics(spec, Noised(spec, Repeat(5, 3), {2.2, 0, 0, 0, 0, 0, 0}), true);
  ASSERT_OK(above.status());
  ASSERT_TRUE((*above)[0].main.has_value());
  EXPECT_EQ((*above)[0].main->count, 5);
  // A negative noisy count is 0.
  auto negative = ReleaseAnalytics(spec, Noised(spec, {}, {-3.4, 0, 0, 0, 0, 0, 0}), true);
  ASSERT_OK(negative.status());
  EXPECT_FALSE((*negative)[0].main.has_value());
  // Complementary suppression on the rounded counts: 20 rows, bins 9.6 -> 10 and 5.2 -> 5,
  // below 0.8 -> 1 (suppressed), above 4.7 -> 5. Released 20 of a count of 20: the
  // suppressed total 0 < k takes the smallest released cell (bin 1, 5; ties: lowest
  // index), then 5 >= k.
  std::vector<double> xs = Repeat(5, 10);
  for (double x : Repeat(15, 5)) xs.push_back(x);
  for (double x : Repeat(25, 5)) xs.push_back(x);
  auto cells = ReleaseAnalytics(spec, Noised(spec, xs, {0, 0, 0, -0.4, 0.2, 0.8, -0.3}), true);
  ASSERT_OK(cells.status());
  EXPECT_THAT((*cells)[0].bins, ElementsAre(10, std::nullopt));
  EXPECT_EQ((*cells)[0].below, std::nullopt);
  EXPECT_EQ((*cells)[0].above, 5);
  EXPECT_EQ((*cells)[0].suppressed_cells, 2u);
}

TEST(AnalyticsNoisedReleaseTest, SitesSumAndAWithheldEntryStillSuppresses) {
  const v1::AnalyticsSpec spec = HistogramSpec();
  std::vector<double> sum(AnalyticsLength(spec), 0.0);
  for (int site = 0; site < 3; ++site) {
    const std::vector<double> v = Noised(spec, Repeat(12, 4), {0.3, 0.1, -0.2, 0, 0.1, 0, 0});
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += v[i];
  }
  auto released = ReleaseAnalytics(spec, sum, true);
  ASSERT_OK(released.status());
  ASSERT_TRUE((*released)[0].main.has_value());
  EXPECT_EQ((*released)[0].main->count, 13);  // 12 + 0.9
  EXPECT_NEAR((*released)[0].main->sum, 144.3, 1e-9);
  // A site that marks the main cell withheld (no honest site does with noise).
  sum[1] = 1;
  auto withheld = ReleaseAnalytics(spec, sum, true);
  ASSERT_OK(withheld.status());
  EXPECT_FALSE((*withheld)[0].main.has_value());
  // Non-integer counts are still refused on the exact path.
  sum[1] = 0;
  EXPECT_THAT(ReleaseAnalytics(spec, sum, false), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::proto
