// Cox proportional hazards: the gradient against central differences, the loss against
// Breslow's partial likelihood by its definition (ties included), finite values for large
// predictors, and the data it needs.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "client/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/client/test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::client::test_util::AllRows;
using ::tessera::client::test_util::ExpectGradientsMatch;
using ::tessera::client::test_util::RandomFeatures;
using ::tessera::client::test_util::RandomParams;
using ::tessera::client::test_util::RandomRows;
using ::tessera::client::test_util::Spec;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// Integer times 1..10 (many ties), about 60% events.
Dataset SurvivalData(size_t rows, size_t features, uint64_t seed) {
  Dataset data = RandomFeatures(rows, features, seed);
  internal::SplitMix64 rng(seed + 3000);
  data.event.resize(rows);
  for (size_t r = 0; r < rows; ++r) {
    data.y[r] = static_cast<double>(1 + rng.Below(10));
    data.event[r] = rng.NextUnit() < 0.6 ? 1 : 0;
  }
  return data;
}

// ---------------------------------------------------------------------------------------
// Cox proportional hazards.

// Breslow's negative log partial likelihood by its definition, O(n^2).
double ReferenceCoxLoss(const std::vector<float>& w, const Dataset& data,
                        const std::vector<size_t>& rows) {
  const size_t d = data.num_features;
  auto eta = [&](size_t r) {
    double z = 0;
    for (size_t j = 0; j < d; ++j) z += w[j] * data.x[r * d + j];
    return z;
  };
  double log_likelihood = 0;
  for (size_t i : rows) {
    if (data.event[i] == 0) continue;
    double risk = 0;
    for (size_t j : rows) {
      if (data.y[j] >= data.y[i]) risk += std::exp(eta(j));
    }
    log_likelihood += eta(i) - std::log(risk);
  }
  return -log_likelihood / static_cast<double>(rows.size());
}

TEST(CoxPhTest, GradientMatchesCentralDifferences) {
  auto model = MakeCoxPh(4);
  ExpectGradientsMatch(
      *model, [](uint64_t seed) { return SurvivalData(60, 4, seed); }, 1e-7);
}

TEST(CoxPhTest, LossMatchesDefinitionWithTies) {
  const Dataset data = SurvivalData(300, 3, 6);  // ties galore, more than one gather block
  auto model = MakeCoxPh(3);
  const std::vector<float> params = RandomParams(3, 7, 1.0);
  for (const std::vector<size_t>& rows : {AllRows(data), RandomRows(300, 280, 8)}) {
    std::vector<double> grad(3, 0.0);
    EXPECT_NEAR(model->LossAndGradient(params, data, rows, 0, grad),
                ReferenceCoxLoss(params, data, rows), 1e-12);
  }
  const EvaluationSums sums = model->Evaluate(params, data);
  EXPECT_NEAR(sums.loss_sum, 300 * ReferenceCoxLoss(params, data, AllRows(data)), 1e-9);
  EXPECT_EQ(sums.num_correct, 0u);
  std::vector<double> eta(300);
  model->Predict(params, data, eta);
  EXPECT_NEAR(eta[5], params[0] * data.x[15] + params[1] * data.x[16] + params[2] * data.x[17],
              1e-12);
}

TEST(CoxPhTest, AtZeroIsMinusSumOfLogRiskSetSizes) {
  Dataset data = SurvivalData(4, 1, 1);
  data.y = {5, 3, 3, 1};
  data.event = {1, 1, 0, 1};
  // Risk sets: t=5 {5}: 1; t=3 {5,3,3}: 3; t=1 all: 4. Loss = (log 1 + log 3 + log 4) / 4.
  auto model = MakeCoxPh(1);
  std::vector<double> grad(1, 0.0);
  const std::vector<float> zero = {0.0f};
  EXPECT_NEAR(model->LossAndGradient(zero, data, AllRows(data), 0, grad),
              (std::log(3.0) + std::log(4.0)) / 4, 1e-15);
}

TEST(CoxPhTest, LargeAndUnequalPredictorsStayFinite) {
  // eta spans +-700: a risk-set sum of plain exponentials would overflow or, after
  // shifting by the largest eta, underflow to zero for the late rows.
  Dataset data = SurvivalData(4, 1, 1);
  data.x = {700, 1, -700, 0.5};
  data.y = {1, 2, 3, 4};
  data.event = {1, 1, 1, 1};
  auto model = MakeCoxPh(1);
  const std::vector<float> one = {1.0f};
  std::vector<double> grad(1, 0.0);
  const double loss = model->LossAndGradient(one, data, AllRows(data), 0, grad);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_TRUE(std::isfinite(grad[0]));
  // Only the t=3 group is hopeless: eta = -700 against the risk set {-700, 0.5}.
  EXPECT_NEAR(loss, (0 + std::log1p(std::exp(-0.5)) + 700.5 + 0) / 4, 1e-9);
}

TEST(CoxPhTest, NoEventsMeansNoLoss) {
  Dataset data = SurvivalData(5, 2, 2);
  data.event.assign(5, 0);
  auto model = MakeCoxPh(2);
  const std::vector<float> params = {0.5f, -0.5f};
  std::vector<double> grad(2, 0.0);
  EXPECT_EQ(model->LossAndGradient(params, data, AllRows(data), 0, grad), 0.0);
  EXPECT_EQ(grad[0], 0.0);
  EXPECT_EQ(grad[1], 0.0);
}

TEST(CoxPhTest, CheckDataWantsEventsAndNonNegativeTimes) {
  Dataset data = SurvivalData(5, 2, 2);
  auto model = MakeCoxPh(2);
  EXPECT_OK(model->CheckData(data, "s.csv"));
  data.event[2] = 2;
  EXPECT_THAT(model->CheckData(data, "s.csv"),
              StatusIs(kInvalid, HasSubstr("s.csv: data row 2 (0-based, header not counted) "
                                           "has event 2")));
  data.event[2] = 1;
  data.y[4] = -1;
  EXPECT_THAT(model->CheckData(data, "s.csv"), StatusIs(kInvalid, HasSubstr("row 4")));
  data.event.clear();
  EXPECT_THAT(model->CheckData(data, "s.csv"), StatusIs(kInvalid, HasSubstr("event")));
}

}  // namespace
}  // namespace tessera::client
