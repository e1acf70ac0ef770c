// Centralised sanity checks against the reference baselines of deploy/data/README.md:
// every dataset on its reference split, features standardised with the training rows'
// statistics, trained here with our own models and trainer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "client/model.h"
#include "client/trainer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using test_util::AllRows;
using test_util::LoadReferenceSplit;
using test_util::ReferenceSplit;

double Accuracy(const Model& model, const std::vector<float>& params, const Dataset& data) {
  const EvaluationSums sums = model.Evaluate(params, data);
  return static_cast<double>(sums.num_correct) / static_cast<double>(sums.num_examples);
}

double RSquared(const Model& model, const std::vector<float>& params, const Dataset& data) {
  std::vector<double> predictions(data.num_rows);
  model.Predict(params, data, predictions);
  double mean = 0;
  for (double y : data.y) mean += y / static_cast<double>(data.num_rows);
  double residual = 0, total = 0;
  for (size_t r = 0; r < data.num_rows; ++r) {
    residual += (data.y[r] - predictions[r]) * (data.y[r] - predictions[r]);
    total += (data.y[r] - mean) * (data.y[r] - mean);
  }
  return 1 - residual / total;
}

TEST(BaselineTest, DigitsSoftmaxRegression) {
  // sklearn LogisticRegression(C=1): test accuracy 0.9694 (349/360), log-loss 0.1243.
  ASSERT_OK_AND_ASSIGN(ReferenceSplit split, LoadReferenceSplit("digits"));
  ASSERT_EQ(split.train.num_rows, 1437u);
  auto model = MakeSoftmaxRegression(64, 10);
  std::vector<float> params(model->num_parameters());
  model->Initialize(0, params);
  TrainingOptions options;  // full-batch gradient descent with momentum
  options.optimizer = Optimizer::kMomentum;
  options.batch_size = static_cast<uint32_t>(split.train.num_rows);
  options.epochs = 600;
  options.learning_rate = 0.5;
  options.l2 = 1.0 / (1.0 * static_cast<double>(split.train.num_rows));  // 1 / (C n)
  ASSERT_OK(Train(*model, split.train, options, params));
  const EvaluationSums test = model->Evaluate(params, split.test);
  const double accuracy = Accuracy(*model, params, split.test);
  std::printf("digits softmax: test accuracy %.4f, log-loss %.4f (sklearn 0.9694, 0.1243)\n",
              accuracy, test.loss_sum / static_cast<double>(test.num_examples));
  EXPECT_GE(accuracy, 0.96);
  EXPECT_NEAR(test.loss_sum / static_cast<double>(test.num_examples), 0.1243, 0.01);
}

TEST(BaselineTest, DigitsMlp) {
  // sklearn MLPClassifier((32,), Adam lr 1e-3, batch 200, alpha 1e-4): accuracy 0.9778.
  // sklearn adds 0.5 * alpha * ||W||^2 / batch_size to the mean batch loss: l2 = alpha / 200.
  ASSERT_OK_AND_ASSIGN(ReferenceSplit split, LoadReferenceSplit("digits"));
  const uint32_t hidden[] = {32};
  auto model = MakeMlp(64, hidden, 10);
  std::vector<float> params(model->num_parameters());
  model->Initialize(0, params);
  TrainingOptions options;
  options.optimizer = Optimizer::kAdam;
  options.learning_rate = 1e-3;
  options.batch_size = 200;
  options.epochs = 200;
  options.l2 = 1e-4 / 200;
  ASSERT_OK(Train(*model, split.train, options, params));
  const double accuracy = Accuracy(*model, params, split.test);
  std::printf("digits MLP(32): test accuracy %.4f (sklearn 0.9778)\n", accuracy);
  EXPECT_GE(accuracy, 0.96);
}

// Ridge by its normal equations, on the training rows: minimises
// ||y - X w - b||^2 + alpha ||w||^2 (intercept not penalised). Gaussian elimination on the
// centred system, small and well conditioned here.
std::vector<double> RidgeClosedForm(const Dataset& data, double alpha) {
  const size_t d = data.num_features, n = data.num_rows;
  std::vector<double> mean_x(d, 0.0);
  double mean_y = 0;
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < d; ++j) mean_x[j] += data.x[r * d + j] / n;
    mean_y += data.y[r] / n;
  }
  std::vector<std::vector<double>> a(d, std::vector<double>(d + 1, 0.0));
  for (size_t r = 0; r < n; ++r) {
    for (size_t i = 0; i < d; ++i) {
      const double xi = data.x[r * d + i] - mean_x[i];
      for (size_t j = 0; j < d; ++j) a[i][j] += xi * (data.x[r * d + j] - mean_x[j]);
      a[i][d] += xi * (data.y[r] - mean_y);
    }
  }
  for (size_t i = 0; i < d; ++i) a[i][i] += alpha;
  for (size_t c = 0; c < d; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < d; ++r) {
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    }
    std::swap(a[c], a[pivot]);
    for (size_t r = 0; r < d; ++r) {
      if (r == c) continue;
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k <= d; ++k) a[r][k] -= f * a[c][k];
    }
  }
  std::vector<double> w(d + 1);
  double b = mean_y;
  for (size_t i = 0; i < d; ++i) {
    w[i] = a[i][d] / a[i][i];
    b -= w[i] * mean_x[i];
  }
  w[d] = b;
  return w;
}

std::vector<float> TrainLinear(const Dataset& train, double l2) {
  auto model = MakeLinearRegression(train.num_features);
  std::vector<float> params(model->num_parameters());
  model->Initialize(0, params);
  TrainingOptions options;  // full-batch gradient descent with momentum
  options.optimizer = Optimizer::kMomentum;
  options.batch_size = static_cast<uint32_t>(train.num_rows);
  options.epochs = 4000;
  options.learning_rate = 0.1;
  options.l2 = l2;
  EXPECT_OK(Train(*model, train, options, params));
  return params;
}

TEST(BaselineTest, DiabetesLinearRegressionAndRidge) {
  ASSERT_OK_AND_ASSIGN(ReferenceSplit split, LoadReferenceSplit("diabetes_progression"));
  ASSERT_EQ(split.train.num_rows, 353u);
  auto model = MakeLinearRegression(10);
  const double n = static_cast<double>(split.train.num_rows);

  // LinearRegression(): R^2 0.3322.
  const std::vector<float> ols = TrainLinear(split.train, 0);
  const double r2 = RSquared(*model, ols, split.test);
  std::printf("diabetes linear: test R^2 %.4f (sklearn 0.3322)\n", r2);
  EXPECT_NEAR(r2, 0.3322, 0.02);
  const std::vector<double> exact_ols = RidgeClosedForm(split.train, 0);
  for (size_t j = 0; j <= 10; ++j)
    EXPECT_NEAR(ols[j], exact_ols[j], 1e-3 * (1 + std::abs(exact_ols[j])));

  // Ridge(alpha=1) is l2 = alpha / n for our 0.5 * mean squared error (client/model.h):
  // the trained parameters are Ridge's closed form, and its R^2 is sklearn's 0.3311.
  const std::vector<float> ridge = TrainLinear(split.train, 1.0 / n);
  const std::vector<double> exact_ridge = RidgeClosedForm(split.train, 1.0);
  for (size_t j = 0; j <= 10; ++j) {
    EXPECT_NEAR(ridge[j], exact_ridge[j], 1e-4 * (1 + std::abs(exact_ridge[j]))) << j;
  }
  const double ridge_r2 = RSquared(*model, ridge, split.test);
  std::printf("diabetes ridge(alpha=1) as l2 = alpha/n: test R^2 %.4f (sklearn 0.3311)\n",
              ridge_r2);
  EXPECT_NEAR(ridge_r2, 0.3311, 1e-4);
  // The other convention, l2 = 2 alpha / n, is Ridge(alpha=2): a different model.
  const std::vector<double> ridge2 = RidgeClosedForm(split.train, 2.0);
  const std::vector<float> doubled = TrainLinear(split.train, 2.0 / n);
  for (size_t j = 0; j <= 10; ++j) {
    EXPECT_NEAR(doubled[j], ridge2[j], 1e-4 * (1 + std::abs(ridge2[j]))) << j;
  }
}

TEST(BaselineTest, RotterdamCoxMatchesReferenceFit) {
  ASSERT_OK_AND_ASSIGN(ReferenceSplit split, LoadReferenceSplit("rotterdam_survival", true));
  ASSERT_EQ(split.train.num_rows, 2385u);
  auto model = MakeCoxPh(11);
  ASSERT_OK(model->CheckData(split.train, "rotterdam"));
  std::vector<float> params(11);
  model->Initialize(0, params);
  EXPECT_NEAR(-model->Evaluate(params, split.train).loss_sum, -7378.2041, 1e-3);

  // Full-batch gradient descent with momentum: the whole training split is one stratum.
  TrainingOptions options;
  options.optimizer = Optimizer::kMomentum;
  options.batch_size = static_cast<uint32_t>(split.train.num_rows);
  options.epochs = 1500;
  options.learning_rate = 1.0;
  ASSERT_OK(Train(*model, split.train, options, params));
  const double log_likelihood = -model->Evaluate(params, split.train).loss_sum;
  std::printf("rotterdam Cox: training log partial likelihood %.4f (reference -7174.9723)\n",
              log_likelihood);
  EXPECT_NEAR(log_likelihood, -7174.9723, 1e-3);
  const double expected[] = {-0.083655, 0.168958,  0.017856, 0.193198, 0.235221, 0.138088,
                             0.322279,  -0.099292, 0.001588, 0.007026, 0.021525};
  double worst = 0;
  for (size_t j = 0; j < 11; ++j) {
    EXPECT_NEAR(params[j], expected[j], 1e-3) << split.features[j];
    worst = std::max(worst, std::abs(params[j] - expected[j]));
  }
  std::printf("rotterdam Cox: largest coefficient difference %.2g\n", worst);
  // The gradient vanishes there.
  std::vector<double> grad(11, 0.0);
  model->LossAndGradient(params, split.train, AllRows(split.train), 0, grad);
  for (double g : grad) EXPECT_LT(std::abs(g), 1e-6);
}

}  // namespace
}  // namespace tessera::client
