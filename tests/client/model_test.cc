#include "client/model.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::Each;
using ::testing::Eq;
using ::testing::HasSubstr;

// Features uniform in [-2, 2), labels 0/1 at random.
Dataset RandomDataset(size_t rows, size_t features, uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto uniform = [&gen] { return static_cast<double>(gen() >> 11) * 0x1.0p-53; };
  Dataset data;
  data.num_rows = rows;
  data.num_features = features;
  data.x.resize(rows * features);
  for (double& v : data.x) v = 4 * uniform() - 2;
  data.y.resize(rows);
  for (double& v : data.y) v = uniform() < 0.4 ? 1 : 0;
  return data;
}

std::vector<float> RandomParams(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<float> params(n);
  for (float& v : params)
    v = static_cast<float>(static_cast<double>(gen() >> 11) * 0x1.0p-53 - 0.5);
  return params;
}

std::vector<size_t> AllRows(const Dataset& data) {
  std::vector<size_t> rows(data.num_rows);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  return rows;
}

// The textbook formulas, written independently of the model: mean BCE plus
// 0.5 * l2 * ||w||^2 over `rows`, and its gradient.
double ReferenceLoss(const std::vector<float>& params, const Dataset& data,
                     const std::vector<size_t>& rows, double l2, std::vector<double>* grad) {
  const size_t d = data.num_features;
  grad->assign(d + 1, 0.0);
  double loss = 0;
  for (size_t r : rows) {
    double z = params[d];
    for (size_t j = 0; j < d; ++j) z += params[j] * data.x[r * d + j];
    const double p = 1 / (1 + std::exp(-z));
    const double y = data.y[r];
    loss += -(y * std::log(p) + (1 - y) * std::log(1 - p));
    for (size_t j = 0; j < d; ++j) (*grad)[j] += (p - y) * data.x[r * d + j] / rows.size();
    (*grad)[d] += (p - y) / rows.size();
  }
  loss /= rows.size();
  for (size_t j = 0; j < d; ++j) {
    loss += 0.5 * l2 * params[j] * params[j];
    (*grad)[j] += l2 * params[j];
  }
  return loss;
}

double Norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

TEST(MakeModelTest, LogisticRegressionFromSpec) {
  v1::ModelSpec spec;
  spec.set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> model, MakeModel(spec, 30));
  EXPECT_EQ(model->num_features(), 30u);
  EXPECT_EQ(model->num_parameters(), 31u);
}

TEST(MakeModelTest, UnknownKindIsInvalidArgument) {
  v1::ModelSpec spec;
  EXPECT_THAT(MakeModel(spec, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("KIND_UNSPECIFIED")));
  spec.set_kind(static_cast<v1::ModelSpec::Kind>(77));
  EXPECT_THAT(MakeModel(spec, 3), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(77)")));
}

TEST(LogisticRegressionTest, PredictGivesProbabilityOfPositiveClass) {
  Dataset data;
  data.num_rows = 3;
  data.num_features = 1;
  data.x = {2, -2, 0};
  data.y = {1, 0, 1};
  auto model = MakeLogisticRegression(1);
  EXPECT_EQ(model->num_outputs(), 1u);
  const std::vector<float> params = {1.0f, 0.5f};  // z = x + 0.5
  std::vector<double> p(3);
  model->Predict(params, data, p);
  EXPECT_NEAR(p[0], 1 / (1 + std::exp(-2.5)), 1e-15);
  EXPECT_NEAR(p[1], 1 / (1 + std::exp(1.5)), 1e-15);
  EXPECT_NEAR(p[2], 1 / (1 + std::exp(-0.5)), 1e-15);
}

TEST(LogisticRegressionTest, CheckDataWantsBinaryLabels) {
  Dataset data = RandomDataset(5, 2, 1);
  auto model = MakeLogisticRegression(2);
  EXPECT_OK(model->CheckData(data, "a.csv"));
  data.y[4] = 2;
  EXPECT_THAT(model->CheckData(data, "a.csv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a.csv: data row 4 ")));
}

TEST(LogisticRegressionTest, InitializesToZeros) {
  auto model = MakeLogisticRegression(4);
  std::vector<float> params(5, 3.0f);
  model->Initialize(123, params);
  EXPECT_THAT(params, Each(Eq(0.0f)));
}

TEST(LogisticRegressionTest, LossAtZeroIsLogTwo) {
  const Dataset data = RandomDataset(50, 3, 1);
  auto model = MakeLogisticRegression(3);
  const std::vector<float> params(4, 0.0f);
  std::vector<double> grad(4, 0.0);
  const double loss = model->LossAndGradient(params, data, AllRows(data), 0.5, grad);
  EXPECT_NEAR(loss, std::log(2.0), 1e-15);
  // At zero every p is 1/2: d/db = mean(1/2 - y).
  double mean_residual = 0;
  for (double y : data.y) mean_residual += (0.5 - y) / 50;
  EXPECT_NEAR(grad[3], mean_residual, 1e-15);

  const EvaluationSums sums = model->Evaluate(params, data);
  EXPECT_EQ(sums.num_examples, 50u);
  EXPECT_NEAR(sums.loss_sum, 50 * std::log(2.0), 1e-12);
}

TEST(LogisticRegressionTest, GradientMatchesCentralDifferences) {
  for (double l2 : {0.0, 0.3}) {
    for (uint64_t seed : {1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << "l2=" << l2 << " seed=" << seed);
      const size_t d = 6;
      const Dataset data = RandomDataset(40, d, seed);
      const std::vector<size_t> rows = AllRows(data);
      auto model = MakeLogisticRegression(d);
      const std::vector<float> params = RandomParams(d + 1, seed + 100);
      std::vector<double> grad(d + 1, 0.0);
      model->LossAndGradient(params, data, rows, l2, grad);

      std::vector<double> numeric(d + 1);
      std::vector<double> ignored(d + 1);
      for (size_t k = 0; k <= d; ++k) {
        std::vector<float> plus = params, minus = params;
        plus[k] += 1e-4f;
        minus[k] -= 1e-4f;
        // The step actually taken in float, exactly representable as a double.
        const double step = static_cast<double>(plus[k]) - static_cast<double>(minus[k]);
        const double up = model->LossAndGradient(plus, data, rows, l2, ignored);
        const double down = model->LossAndGradient(minus, data, rows, l2, ignored);
        numeric[k] = (up - down) / step;
      }
      std::vector<double> diff(d + 1);
      for (size_t k = 0; k <= d; ++k) diff[k] = numeric[k] - grad[k];
      EXPECT_LT(Norm(diff) / Norm(grad), 1e-6);
    }
  }
}

TEST(LogisticRegressionTest, MatchesReferenceOnPickedRows) {
  // More rows than one gather buffer, in shuffled order with repeats.
  const size_t d = 5;
  const Dataset data = RandomDataset(700, d, 9);
  std::vector<size_t> rows;
  for (size_t i = 0; i < 600; ++i) rows.push_back((i * 389 + 17) % 700);
  rows.push_back(3);
  rows.push_back(3);
  const std::vector<float> params = RandomParams(d + 1, 10);
  auto model = MakeLogisticRegression(d);
  std::vector<double> grad(d + 1, 0.0);
  const double loss = model->LossAndGradient(params, data, rows, 0.25, grad);
  std::vector<double> expected_grad;
  const double expected = ReferenceLoss(params, data, rows, 0.25, &expected_grad);
  EXPECT_NEAR(loss, expected, 1e-12);
  for (size_t k = 0; k <= d; ++k) EXPECT_NEAR(grad[k], expected_grad[k], 1e-12) << k;
}

TEST(LogisticRegressionTest, AddsIntoGradient) {
  const Dataset data = RandomDataset(10, 2, 4);
  auto model = MakeLogisticRegression(2);
  const std::vector<float> params = RandomParams(3, 5);
  std::vector<double> once(3, 0.0), twice(3, 0.0);
  model->LossAndGradient(params, data, AllRows(data), 0.1, once);
  model->LossAndGradient(params, data, AllRows(data), 0.1, twice);
  model->LossAndGradient(params, data, AllRows(data), 0.1, twice);
  for (size_t k = 0; k < 3; ++k) EXPECT_DOUBLE_EQ(twice[k], 2 * once[k]);
}

TEST(LogisticRegressionTest, L2PenalisesWeightsNotBias) {
  const Dataset data = RandomDataset(10, 2, 6);
  auto model = MakeLogisticRegression(2);
  const std::vector<float> params = {0.5f, -0.25f, 2.0f};
  std::vector<double> g0(3, 0.0), g1(3, 0.0);
  const double l0 = model->LossAndGradient(params, data, AllRows(data), 0.0, g0);
  const double l1 = model->LossAndGradient(params, data, AllRows(data), 2.0, g1);
  EXPECT_NEAR(l1 - l0, 0.5 * 2.0 * (0.25 + 0.0625), 1e-15);
  EXPECT_NEAR(g1[0] - g0[0], 2.0 * 0.5, 1e-15);
  EXPECT_NEAR(g1[1] - g0[1], 2.0 * -0.25, 1e-15);
  EXPECT_EQ(g1[2], g0[2]);
}

TEST(LogisticRegressionTest, ExtremeLogitsStayFinite) {
  Dataset data;
  data.num_rows = 2;
  data.num_features = 1;
  data.x = {1, -1};
  data.y = {0, 0};
  auto model = MakeLogisticRegression(1);
  // z = +-1000: one hopelessly wrong example, one confidently right.
  const std::vector<float> params = {1000.0f, 0.0f};
  std::vector<double> grad(2, 0.0);
  const double loss = model->LossAndGradient(params, data, AllRows(data), 0, grad);
  EXPECT_NEAR(loss, 1000.0 / 2, 1e-9);
  EXPECT_TRUE(std::isfinite(grad[0]) && std::isfinite(grad[1]));
  EXPECT_NEAR(grad[0], 0.5, 1e-12);  // (1 - 0) * 1 / 2 + (0 - 0) * -1 / 2
  // Confidently right examples (z = 30 with y = 1, z = -30 with y = 0) keep their tiny
  // loss to full relative precision, not the rounding error of 30 - 30.
  data.y = {1, 0};
  const std::vector<float> confident = {30.0f, 0.0f};
  const EvaluationSums sums = model->Evaluate(confident, data);
  const double expected = 2 * std::log1p(std::exp(-30.0));
  EXPECT_NEAR(sums.loss_sum, expected, expected * 1e-12);
  EXPECT_EQ(sums.num_correct, 2u);
}

TEST(LogisticRegressionTest, EvaluateCountsCorrectPredictions) {
  Dataset data;
  data.num_rows = 4;
  data.num_features = 1;
  data.x = {2, -2, 0, 1};
  data.y = {1, 1, 1, 0};
  auto model = MakeLogisticRegression(1);
  const std::vector<float> params = {1.0f, 0.0f};  // z = x
  const EvaluationSums sums = model->Evaluate(params, data);
  EXPECT_EQ(sums.num_examples, 4u);
  // Predictions: 1 (right), 0 (wrong), 1 at p = 0.5 exactly (right), 1 (wrong).
  EXPECT_EQ(sums.num_correct, 2u);
  const double expected = std::log1p(std::exp(-2.0)) + std::log1p(std::exp(2.0)) + std::log(2.0) +
                          std::log1p(std::exp(1.0));
  EXPECT_NEAR(sums.loss_sum, expected, 1e-12);

  // loss_sum is the unregularised sum: n times the mean loss with l2 = 0.
  std::vector<double> grad(2, 0.0);
  EXPECT_NEAR(model->LossAndGradient(params, data, AllRows(data), 0, grad) * 4, sums.loss_sum,
              1e-12);
}

}  // namespace
}  // namespace tessera::client
