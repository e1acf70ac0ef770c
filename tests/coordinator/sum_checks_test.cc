// The checks on decoded sums (coordinator/sum_checks.h): honest sites' vectors, encoded as
// the sites encode them (secagg/stage_encoding.h), summed word by word and decoded, pass
// every check, edge values and rounding included; the same sums with one site's words
// shifted by 2^30 or replaced by random words are refused naming the check.
#include "coordinator/sum_checks.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/secagg.pb.h"
#include "proto/task.pb.h"
#include "secagg/stage_encoding.h"
#include "secagg/vector_codec.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

enum class Tamper { kNone, kShift, kRandom };

// The decoded sum of `vectors` under `encoding`, the last site's words tampered with.
std::vector<double> Sum(const std::vector<std::vector<double>>& vectors,
                        const v1::SecAggEncoding& encoding, Tamper tamper = Tamper::kNone) {
  std::vector<uint32_t> total(secagg::EncodedWords(encoding), 0);
  std::mt19937 random(11);
  for (size_t s = 0; s < vectors.size(); ++s) {
    auto words = secagg::EncodeVector(vectors[s], encoding);
    EXPECT_OK(words.status());
    for (size_t i = 0; i < total.size(); ++i) {
      uint32_t w = (*words)[i];
      if (s + 1 == vectors.size() && tamper == Tamper::kShift) w += uint32_t{1} << 30;
      if (s + 1 == vectors.size() && tamper == Tamper::kRandom) w = random();
      total[i] += w;
    }
  }
  auto sums = secagg::DecodeSum(total, encoding);
  EXPECT_OK(sums.status());
  return *sums;
}

constexpr uint32_t kSites = 5;
constexpr size_t kParameters = 50;
constexpr double kClip = 0.5;

// Five sites' FIT vectors; `edge`: every delta at the clip (the largest honest update).
std::vector<std::vector<double>> FitVectors(bool edge) {
  std::vector<std::vector<double>> out;
  std::mt19937 random(3);
  std::uniform_real_distribution<float> delta(-2 * kClip, 2 * kClip);
  const uint64_t rows[kSites] = {17, 40, 3, 99, 41};  // pooled: 200
  for (uint64_t n : rows) {
    std::vector<float> d(kParameters);
    for (float& v : d) v = edge ? static_cast<float>(kClip) : delta(random);
    out.push_back(proto::EncodeWeightedFit(n, 200, d, kClip));
  }
  return out;
}

TEST(SumChecksTest, HonestFitSumsPass) {
  const v1::SecAggEncoding encoding = secagg::FitEncoding(kParameters, kClip, kSites);
  for (bool edge : {false, true}) {
    const std::vector<double> sums = Sum(FitVectors(edge), encoding);
    EXPECT_OK(CheckFitSum(sums, kParameters, kClip, kSites, /*noised=*/false)) << edge;
    EXPECT_OK(CheckFitSum(sums, kParameters, kClip, kSites, /*noised=*/true)) << edge;
  }
}

TEST(SumChecksTest, TamperedFitSumsAreRefusedNamingTheCheck) {
  const v1::SecAggEncoding encoding = secagg::FitEncoding(kParameters, kClip, kSites);
  for (Tamper t : {Tamper::kShift, Tamper::kRandom}) {
    const std::vector<double> sums = Sum(FitVectors(false), encoding, t);
    EXPECT_THAT(CheckFitSum(sums, kParameters, kClip, kSites, false),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr("sum refused (fit."), HasSubstr("hides which site"))));
  }
  // More rows than pooled: the summed shares above 1.
  std::vector<double> sums = Sum(FitVectors(false), encoding);
  sums[0] = 1.5;
  EXPECT_THAT(CheckFitSum(sums, kParameters, kClip, kSites, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fit.weight_share")));
  // An averaged update beyond the clip (without noise); within survivors * clip with it.
  sums = Sum(FitVectors(false), encoding);
  sums[1] = 2 * kClip * sums[0];
  EXPECT_THAT(CheckFitSum(sums, kParameters, kClip, kSites, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fit.clip")));
  EXPECT_OK(CheckFitSum(sums, kParameters, kClip, kSites, true));
  sums[1] = (kSites + 1) * kClip;
  EXPECT_THAT(CheckFitSum(sums, kParameters, kClip, kSites, true),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fit.clip")));
  EXPECT_THAT(CheckFitSum(sums, kParameters + 1, kClip, kSites, false),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Five sites' statistics of 3 columns: a constant one (x^2 sums equal the squared sum over
// rows: the Cauchy-Schwarz edge), a large one and a signed one.
std::vector<std::vector<double>> StatisticsVectors() {
  std::vector<std::vector<double>> out;
  std::mt19937 random(5);
  std::normal_distribution<double> noise(0, 1);
  for (uint32_t s = 0; s < kSites; ++s) {
    const uint64_t n = 20 + 7 * s;
    std::vector<double> sums(3, 0), squares(3, 0);
    for (uint64_t r = 0; r < n; ++r) {
      const double x[3] = {0.1, 1e4 + 50 * noise(random), noise(random)};
      for (int j = 0; j < 3; ++j) {
        sums[j] += x[j];
        squares[j] += x[j] * x[j];
      }
    }
    out.push_back(proto::EncodeStatistics(n, sums, squares));
  }
  return out;
}

TEST(SumChecksTest, HonestStatisticsPassTamperedAreRefused) {
  const v1::SecAggEncoding encoding = secagg::StatisticsEncoding(3, kSites);
  EXPECT_OK(CheckStatisticsSum(Sum(StatisticsVectors(), encoding), 3, kSites));
  for (Tamper t : {Tamper::kShift, Tamper::kRandom}) {
    EXPECT_THAT(
        CheckStatisticsSum(Sum(StatisticsVectors(), encoding, t), 3, kSites),
        StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("sum refused (statistics.")));
  }
  std::vector<double> sums = Sum(StatisticsVectors(), encoding);
  sums[0] += 0.5;
  EXPECT_THAT(CheckStatisticsSum(sums, 3, kSites),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("statistics.row_count")));
  sums = Sum(StatisticsVectors(), encoding);
  sums[1 + 3 + 2] = -1;
  EXPECT_THAT(
      CheckStatisticsSum(sums, 3, kSites),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("statistics.sum_of_squares")));
  sums = Sum(StatisticsVectors(), encoding);
  sums[1 + 2] = 1e6;  // a squared sum no sum of squares of that size allows
  EXPECT_THAT(CheckStatisticsSum(sums, 3, kSites),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("statistics.spread")));
}

v1::ModelSpec Binary() {
  v1::ModelSpec m;
  m.set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  return m;
}

std::vector<std::vector<double>> EvaluationVectors(const proto::EvaluationLayout& layout) {
  std::vector<std::vector<double>> out;
  const double scores[] = {0.9, 0.2, 0.6, 0.4, 0.99999, 1e-9};
  const double labels[] = {1, 0, 0, 1, 1, 0};
  // Site 0 holds no test rows: it sends zeros, as a site does.
  out.emplace_back(layout.length, 0.0);
  for (uint32_t s = 1; s < kSites; ++s) {
    proto::EvaluationInput input;
    input.predictions = scores;
    input.labels = labels;
    auto v = proto::EncodeEvaluation(layout, input);
    EXPECT_OK(v.status());
    out.push_back(*v);
  }
  return out;
}

TEST(SumChecksTest, HonestEvaluationPassesTamperedIsRefused) {
  ASSERT_OK_AND_ASSIGN(const proto::EvaluationLayout layout, proto::MakeEvaluationLayout(Binary()));
  const v1::SecAggEncoding encoding = secagg::EvaluateEncoding(layout, /*noised=*/false, kSites);
  EXPECT_OK(CheckEvaluationSum(Binary(), Sum(EvaluationVectors(layout), encoding), kSites, false));
  for (Tamper t : {Tamper::kShift, Tamper::kRandom}) {
    const std::vector<double> sums = Sum(EvaluationVectors(layout), encoding, t);
    EXPECT_THAT(CheckEvaluationSum(Binary(), sums, kSites, false),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("evaluation.count")));
    // Noised sums are only checked for finiteness.
    EXPECT_OK(CheckEvaluationSum(Binary(), sums, kSites, true));
  }
  std::vector<double> sums = Sum(EvaluationVectors(layout), encoding);
  sums[2] = sums[0] + 1;  // more correct than rows
  EXPECT_THAT(CheckEvaluationSum(Binary(), sums, kSites, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("evaluation.count")));
}

TEST(SumChecksTest, AnalyticsCountsMustBeConsistent) {
  v1::AnalyticsSpec spec;
  v1::AnalyticsSpec::Query* q = spec.add_queries();
  q->set_column("x");
  q->add_histogram_edges(0);
  q->add_histogram_edges(1);
  // Main cell of 30 rows, cells [0, 1): 20, below: 4, above: 6.
  std::vector<double> sums(proto::AnalyticsLength(spec), 0.0);
  ASSERT_EQ(sums.size(), 10u + 2 * 3);
  sums[0] = 30;
  sums[10] = 20;
  sums[12] = 4;
  sums[14] = 6;
  EXPECT_OK(CheckAnalyticsSum(spec, sums, kSites, false));
  sums[12] = 5;  // cells beyond the count
  EXPECT_THAT(CheckAnalyticsSum(spec, sums, kSites, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("analytics.count")));
  EXPECT_OK(CheckAnalyticsSum(spec, sums, kSites, true));
  sums[12] = 4;
  sums[1] = kSites + 1;  // more withheld marks than sites
  EXPECT_THAT(CheckAnalyticsSum(spec, sums, kSites, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("analytics.count")));
}

}  // namespace
}  // namespace tessera::coordinator
