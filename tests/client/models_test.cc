// The models beyond binary logistic regression: softmax and linear, the shared layout and
// the class weights of every classifier (the MLP's own tests: mlp_test.cc; Cox:
// models_cox_test.cc). Every analytic gradient is checked against central differences (in
// double arithmetic, with and without l2, at random parameters on random rows with
// repeats); losses and outputs against independent textbook formulas.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "client/internal/mlp_types.h"
#include "client/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"
#include "tests/client/test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::client::test_util::AllRows;
using ::tessera::client::test_util::CheckGradient;
using ::tessera::client::test_util::ClassData;
using ::tessera::client::test_util::ExpectGradientsMatch;
using ::tessera::client::test_util::GradientCheck;
using ::tessera::client::test_util::RandomParams;
using ::tessera::client::test_util::RandomRows;
using ::tessera::client::test_util::RegressionData;
using ::tessera::client::test_util::Spec;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// ---------------------------------------------------------------------------------------
// MakeModel and the shared layout.

TEST(MakeModelTest, BuildsEveryKind) {
  struct Case {
    v1::ModelSpec spec;
    size_t parameters;
    size_t outputs;
  };
  const std::vector<Case> cases = {
      {Spec(v1::ModelSpec::LOGISTIC_REGRESSION), 31, 1},
      {Spec(v1::ModelSpec::SOFTMAX_REGRESSION, 10), 310, 10},
      {Spec(v1::ModelSpec::LINEAR_REGRESSION), 31, 1},
      {Spec(v1::ModelSpec::COX_PH), 30, 1},
      {Spec(v1::ModelSpec::MLP, 10, {16}), 16 * 31 + 10 * 17, 10},
      {Spec(v1::ModelSpec::MLP, 0, {16, 8}), 16 * 31 + 8 * 17 + 9, 1},
      {Spec(v1::ModelSpec::MLP, 1, {4, 4, 4}), 4 * 31 + 20 + 20 + 5, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec.ShortDebugString());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> model, MakeModel(c.spec, 30));
    EXPECT_EQ(model->num_features(), 30u);
    EXPECT_EQ(model->num_parameters(), c.parameters);
    EXPECT_EQ(model->num_outputs(), c.outputs);
    ASSERT_OK_AND_ASSIGN(size_t layout, proto::NumParameters(c.spec, 30));
    EXPECT_EQ(layout, c.parameters);
  }
}

TEST(MakeModelTest, RejectsBadCombinationsNamingTheField) {
  struct Case {
    v1::ModelSpec spec;
    const char* message;
  };
  const std::vector<Case> cases = {
      {Spec(v1::ModelSpec::MLP, 10), "model.hidden_layers: an MLP needs 1..3 hidden layers, got 0"},
      {Spec(v1::ModelSpec::MLP, 10, {8, 8, 8, 8}), "got 4"},
      {Spec(v1::ModelSpec::MLP, 10, {8, 0}), "model.hidden_layers[1]: width must be 1..4096"},
      {Spec(v1::ModelSpec::MLP, 10, {5000}), "model.hidden_layers[0]"},
      {Spec(v1::ModelSpec::SOFTMAX_REGRESSION), "model.num_classes"},
      {Spec(v1::ModelSpec::SOFTMAX_REGRESSION, 1), "at least 2 classes"},
      {Spec(v1::ModelSpec::LOGISTIC_REGRESSION, 2), "model.num_classes"},
      {Spec(v1::ModelSpec::LINEAR_REGRESSION, 1), "model.num_classes"},
      {Spec(v1::ModelSpec::COX_PH, 2), "model.num_classes: COX_PH needs no num_classes (0)"},
      {Spec(v1::ModelSpec::MLP, 10001, {8}), "at most 10000 classes"},
      {Spec(v1::ModelSpec::SOFTMAX_REGRESSION, 3, {8}), "only MLP has hidden layers"},
      {Spec(v1::ModelSpec::KIND_UNSPECIFIED), "KIND_UNSPECIFIED"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec.ShortDebugString());
    EXPECT_THAT(MakeModel(c.spec, 5), StatusIs(kInvalid, HasSubstr(c.message)));
    EXPECT_THAT(proto::NumParameters(c.spec, 5), StatusIs(kInvalid, HasSubstr(c.message)));
    EXPECT_THAT(proto::InitialParameters(c.spec, 5, 0), StatusIs(kInvalid));
  }
  EXPECT_THAT(MakeModel(Spec(v1::ModelSpec::COX_PH), 0),
              StatusIs(kInvalid, HasSubstr("at least one feature")));
}

TEST(MakeModelTest, RejectsModelsTooLargeToHold) {
  // 3 layers of 4096 on 100,000 features is fine (~4.4e8); a 10,000-class softmax on
  // 200,000 features is not (2e9 > 2^30 parameters).
  EXPECT_OK(proto::NumParameters(Spec(v1::ModelSpec::MLP, 10, {4096, 4096, 4096}), 100000));
  EXPECT_THAT(proto::NumParameters(Spec(v1::ModelSpec::SOFTMAX_REGRESSION, 10000), 200000),
              StatusIs(kInvalid, HasSubstr("more than 1073741824 parameters")));
}

TEST(ModelLayoutTest, MlpLayerWidths) {
  ASSERT_OK_AND_ASSIGN(std::vector<size_t> widths,
                       proto::MlpLayerWidths(Spec(v1::ModelSpec::MLP, 10, {128, 64}), 784));
  EXPECT_EQ(widths, (std::vector<size_t>{784, 128, 64, 10}));
  ASSERT_OK_AND_ASSIGN(widths, proto::MlpLayerWidths(Spec(v1::ModelSpec::MLP, 0, {3}), 2));
  EXPECT_EQ(widths, (std::vector<size_t>{2, 3, 1}));
  EXPECT_THAT(proto::MlpLayerWidths(Spec(v1::ModelSpec::COX_PH), 2),
              StatusIs(kInvalid, HasSubstr("not MLP")));
}

TEST(ModelLayoutTest, MlpInitialisationIsHeThenGlorotWithZeroBiases) {
  const v1::ModelSpec spec = Spec(v1::ModelSpec::MLP, 10, {128, 32});
  ASSERT_OK_AND_ASSIGN(std::vector<float> params, proto::InitialParameters(spec, 784, 7));
  ASSERT_EQ(params.size(), 128u * 785 + 32 * 129 + 10 * 33);
  struct Layer {
    size_t in, out;
    double bound;
  };
  const std::vector<Layer> layers = {{784, 128, std::sqrt(6.0 / 784)},
                                     {128, 32, std::sqrt(6.0 / 128)},
                                     {32, 10, std::sqrt(6.0 / 42)}};
  size_t offset = 0;
  for (const Layer& layer : layers) {
    double sum = 0, sum_sq = 0, max_abs = 0;
    const size_t n = layer.in * layer.out;
    for (size_t i = 0; i < n; ++i) {
      const double w = params[offset + i];
      sum += w;
      sum_sq += w * w;
      max_abs = std::max(max_abs, std::abs(w));
    }
    EXPECT_LE(max_abs, layer.bound);
    EXPECT_GT(max_abs, 0.95 * layer.bound);
    EXPECT_NEAR(sum / n, 0.0, 4 * layer.bound / std::sqrt(3.0 * n));
    // Uniform(-a, a) has variance a^2 / 3.
    EXPECT_NEAR(sum_sq / n, layer.bound * layer.bound / 3, 0.15 * layer.bound * layer.bound / 3);
    for (size_t i = 0; i < layer.out; ++i) EXPECT_EQ(params[offset + n + i], 0.0f);
    offset += n + layer.out;
  }
}

TEST(ModelLayoutTest, MlpInitialisationIsPinned) {
  // The first global model is part of the cross-platform determinism promise (coordinator
  // and sites, any compiler): these values follow from SplitMix64(0) and the formula in
  // proto/model_layout.h alone. Update only on purpose.
  ASSERT_OK_AND_ASSIGN(std::vector<float> params,
                       proto::InitialParameters(Spec(v1::ModelSpec::MLP, 2, {2}), 3, 0));
  // W1 (2 x 3), b1 (2), W2 (2 x 2), b2 (2).
  ASSERT_EQ(params.size(), 14u);
  const double a1 = std::sqrt(6.0 / 3), a2 = std::sqrt(6.0 / 4);
  internal::SplitMix64 rng(0);
  std::vector<float> expected;
  expected.reserve(8);
  for (int i = 0; i < 6; ++i) {
    expected.push_back(static_cast<float>((2.0 * rng.NextUnit() - 1.0) * a1));
  }
  expected.insert(expected.end(), {0.0f, 0.0f});
  for (int i = 0; i < 4; ++i) {
    expected.push_back(static_cast<float>((2.0 * rng.NextUnit() - 1.0) * a2));
  }
  expected.insert(expected.end(), {0.0f, 0.0f});
  EXPECT_EQ(params, expected);
  // The first SplitMix64(0) output 0xe220a8397b1dcdaf gives u = 0.8833108082136426, so
  // w = (2u - 1) * sqrt(2) = 1.0841666871598514, 1.08416665 in float.
  EXPECT_EQ(params[0], 1.0841666460037231f);
}

TEST(ModelLayoutTest, SeedsChangeMlpNotConvexModels) {
  const v1::ModelSpec mlp = Spec(v1::ModelSpec::MLP, 3, {4});
  ASSERT_OK_AND_ASSIGN(std::vector<float> a, proto::InitialParameters(mlp, 5, 1));
  ASSERT_OK_AND_ASSIGN(std::vector<float> b, proto::InitialParameters(mlp, 5, 1));
  ASSERT_OK_AND_ASSIGN(std::vector<float> c, proto::InitialParameters(mlp, 5, 2));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (auto kind : {v1::ModelSpec::LOGISTIC_REGRESSION, v1::ModelSpec::LINEAR_REGRESSION,
                    v1::ModelSpec::COX_PH}) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> zero, proto::InitialParameters(Spec(kind), 5, 9));
    EXPECT_THAT(zero, ::testing::Each(0.0f));
  }
}

TEST(ModelLayoutTest, InitializeAgreesWithCoordinatorBitForBit) {
  const std::vector<v1::ModelSpec> specs = {
      Spec(v1::ModelSpec::LOGISTIC_REGRESSION), Spec(v1::ModelSpec::SOFTMAX_REGRESSION, 4),
      Spec(v1::ModelSpec::LINEAR_REGRESSION),   Spec(v1::ModelSpec::COX_PH),
      Spec(v1::ModelSpec::MLP, 10, {64}),       Spec(v1::ModelSpec::MLP, 0, {32, 16, 8}),
  };
  for (const v1::ModelSpec& spec : specs) {
    for (uint64_t seed : {uint64_t{0}, uint64_t{42}, ~uint64_t{0}}) {
      SCOPED_TRACE(::testing::Message() << spec.ShortDebugString() << " seed " << seed);
      ASSERT_OK_AND_ASSIGN(std::vector<float> coordinator,
                           proto::InitialParameters(spec, 20, seed));
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> model, MakeModel(spec, 20));
      std::vector<float> site(model->num_parameters(), -1.0f);
      model->Initialize(seed, site);
      ASSERT_EQ(site.size(), coordinator.size());
      EXPECT_EQ(std::memcmp(site.data(), coordinator.data(), site.size() * sizeof(float)), 0);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Softmax regression.

TEST(SoftmaxRegressionTest, GradientMatchesCentralDifferences) {
  auto model = MakeSoftmaxRegression(5, 4);
  ExpectGradientsMatch(
      *model, [](uint64_t seed) { return ClassData(60, 5, 4, seed); }, 1e-6);
}

TEST(SoftmaxRegressionTest, LossAtZeroIsLogKAndL2SkipsBiases) {
  const Dataset data = ClassData(30, 3, 5, 4);
  auto model = MakeSoftmaxRegression(3, 5);
  std::vector<float> params(model->num_parameters(), 0.0f);
  std::vector<double> grad(params.size(), 0.0);
  EXPECT_NEAR(model->LossAndGradient(params, data, AllRows(data), 0, grad), std::log(5.0), 1e-15);
  // W = 0.5 everywhere, b = 7: logits are equal per row, the loss is still log 5 and only
  // W is penalised: 0.5 * l2 * 15 * 0.25.
  std::fill(params.begin(), params.begin() + 15, 0.5f);
  std::fill(params.begin() + 15, params.end(), 7.0f);
  std::vector<double> g0(params.size(), 0.0), g1(params.size(), 0.0);
  const double l0 = model->LossAndGradient(params, data, AllRows(data), 0, g0);
  const double l1 = model->LossAndGradient(params, data, AllRows(data), 2, g1);
  EXPECT_NEAR(l1 - l0, 0.5 * 2 * 15 * 0.25, 1e-12);
  for (size_t k = 0; k < 15; ++k) EXPECT_NEAR(g1[k] - g0[k], 2 * 0.5, 1e-12);
  for (size_t k = 15; k < 20; ++k) EXPECT_EQ(g1[k], g0[k]);
}

TEST(SoftmaxRegressionTest, PredictEvaluateAndLossAgree) {
  const size_t d = 4, k = 3;
  const Dataset data = ClassData(300, d, k, 8);  // more rows than one gather block
  auto model = MakeSoftmaxRegression(d, k);
  const std::vector<float> params = RandomParams(model->num_parameters(), 9, 2.0);
  std::vector<double> probs(data.num_rows * k);
  model->Predict(params, data, probs);
  double loss_sum = 0;
  uint64_t correct = 0;
  for (size_t r = 0; r < data.num_rows; ++r) {
    // Textbook softmax, independently.
    std::vector<double> z(k);
    for (size_t c = 0; c < k; ++c) {
      z[c] = params[k * d + c];
      for (size_t j = 0; j < d; ++j) z[c] += params[c * d + j] * data.x[r * d + j];
    }
    double sum = 0;
    for (double v : z) sum += std::exp(v);
    double total = 0;
    for (size_t c = 0; c < k; ++c) {
      EXPECT_NEAR(probs[r * k + c], std::exp(z[c]) / sum, 1e-12);
      total += probs[r * k + c];
    }
    EXPECT_NEAR(total, 1.0, 1e-12);
    const size_t y = static_cast<size_t>(data.y[r]);
    loss_sum += -std::log(std::exp(z[y]) / sum);
    if (std::max_element(z.begin(), z.end()) - z.begin() == static_cast<long>(y)) ++correct;
  }
  const EvaluationSums sums = model->Evaluate(params, data);
  EXPECT_EQ(sums.num_examples, data.num_rows);
  EXPECT_EQ(sums.num_correct, correct);
  EXPECT_NEAR(sums.loss_sum, loss_sum, 1e-9);
  std::vector<double> grad(params.size(), 0.0);
  EXPECT_NEAR(model->LossAndGradient(params, data, AllRows(data), 0, grad) * data.num_rows,
              sums.loss_sum, 1e-9);
}

TEST(SoftmaxRegressionTest, HopelessLogitsStayFinite) {
  Dataset data = ClassData(2, 1, 2, 1);
  data.x = {1, -1};
  data.y = {0, 1};
  auto model = MakeSoftmaxRegression(1, 2);
  // Logits (1000, -1000) and (-1000, 1000): both rows are hopelessly wrong.
  const std::vector<float> params = {-1000, 1000, 0, 0};
  std::vector<double> grad(4, 0.0);
  EXPECT_NEAR(model->LossAndGradient(params, data, AllRows(data), 0, grad), 2000, 1e-9);
  for (double g : grad) EXPECT_TRUE(std::isfinite(g));
}

TEST(SoftmaxRegressionTest, CheckDataNamesTheBadRow) {
  Dataset data = ClassData(5, 2, 3, 1);
  auto model = MakeSoftmaxRegression(2, 3);
  EXPECT_OK(model->CheckData(data, "site.csv"));
  data.y[3] = 3;
  EXPECT_THAT(model->CheckData(data, "site.csv"),
              StatusIs(kInvalid, HasSubstr("site.csv: data row 3 (0-based, header not counted) "
                                           "has label 3; expected a class 0..2")));
  data.y[3] = 1.5;
  EXPECT_THAT(model->CheckData(data, "site.csv"), StatusIs(kInvalid, HasSubstr("row 3")));
  data.y[3] = -1;
  EXPECT_THAT(model->CheckData(data, "site.csv"), StatusIs(kInvalid, HasSubstr("row 3")));
  data.y[3] = 0;
  data.num_features = 3;
  EXPECT_THAT(model->CheckData(data, "site.csv"), StatusIs(kInvalid, HasSubstr("features")));
}

// ---------------------------------------------------------------------------------------
// Linear regression.

TEST(LinearRegressionTest, GradientMatchesCentralDifferences) {
  auto model = MakeLinearRegression(6);
  ExpectGradientsMatch(
      *model, [](uint64_t seed) { return RegressionData(60, 6, seed); }, 1e-7);
}

TEST(LinearRegressionTest, LossIsHalfSquaredErrorAndL2SkipsIntercept) {
  Dataset data = RegressionData(3, 1, 1);
  data.x = {1, 2, 3};
  data.y = {1, 1, 5};
  auto model = MakeLinearRegression(1);
  const std::vector<float> params = {2.0f, -1.0f};  // y hat = 1, 3, 5: residuals 0, 2, 0
  std::vector<double> grad(2, 0.0);
  EXPECT_NEAR(model->LossAndGradient(params, data, AllRows(data), 0, grad), 0.5 * 4 / 3, 1e-15);
  EXPECT_NEAR(grad[0], 2.0 * 2 / 3, 1e-15);  // mean(r * x)
  EXPECT_NEAR(grad[1], 2.0 / 3, 1e-15);      // mean(r)
  std::vector<double> penalised(2, 0.0);
  EXPECT_NEAR(model->LossAndGradient(params, data, AllRows(data), 0.5, penalised),
              0.5 * 4 / 3 + 0.5 * 0.5 * 4, 1e-15);
  EXPECT_NEAR(penalised[0] - grad[0], 0.5 * 2, 1e-15);
  EXPECT_EQ(penalised[1], grad[1]);

  const EvaluationSums sums = model->Evaluate(params, data);
  EXPECT_NEAR(sums.loss_sum, 2.0, 1e-15);
  EXPECT_EQ(sums.num_correct, 0u);
  std::vector<double> predictions(3);
  model->Predict(params, data, predictions);
  EXPECT_THAT(predictions, ::testing::ElementsAre(1, 3, 5));
}

// Class weights (TrainingSpec.class_weights, Dataset.weight): a weighted loss and gradient
// are the mean over the rows of each row's own loss and gradient times its weight — checked
// row by row against the unweighted model on that row alone, for every classification
// model (logistic, softmax, the MLP in double and in float with its dispatched kernels).
void ExpectWeightedIsRowByRowMean(const Model& model, Dataset data, double tolerance) {
  const std::vector<float> params = test_util::RandomParams(model.num_parameters(), 9);
  const std::vector<double> class_weights = {0.5, 3.0, 1.25};
  data.weight.resize(data.num_rows);
  for (size_t r = 0; r < data.num_rows; ++r) {
    data.weight[r] = class_weights[static_cast<size_t>(data.y[r])];
  }
  std::vector<size_t> rows(data.num_rows);
  std::iota(rows.begin(), rows.end(), size_t{0});
  rows.push_back(3);  // a repeat counts twice, with its weight each time
  std::vector<double> grad(model.num_parameters(), 0.0);
  const double loss = model.LossAndGradient(params, data, rows, 0.0, grad);

  Dataset plain = data;
  plain.weight.clear();
  double expected_loss = 0;
  std::vector<double> expected_grad(model.num_parameters(), 0.0);
  for (size_t r : rows) {
    std::vector<double> g(model.num_parameters(), 0.0);
    const size_t one[] = {r};
    const double l = model.LossAndGradient(params, plain, one, 0.0, g);
    expected_loss += data.weight[r] * l / static_cast<double>(rows.size());
    for (size_t j = 0; j < g.size(); ++j) {
      expected_grad[j] += data.weight[r] * g[j] / static_cast<double>(rows.size());
    }
  }
  EXPECT_NEAR(loss, expected_loss, tolerance * std::abs(expected_loss));
  for (size_t j = 0; j < grad.size(); ++j) {
    EXPECT_NEAR(grad[j], expected_grad[j], tolerance * (1 + std::abs(expected_grad[j]))) << j;
  }
  // And weights of 1 are no weights.
  Dataset ones = plain;
  ones.weight.assign(ones.num_rows, 1.0);
  std::vector<double> g1(model.num_parameters(), 0.0), g0(model.num_parameters(), 0.0);
  EXPECT_EQ(model.LossAndGradient(params, ones, rows, 0.2, g1),
            model.LossAndGradient(params, plain, rows, 0.2, g0));
  EXPECT_EQ(g1, g0);
}

TEST(ClassWeightsTest, WeightedLossIsTheMeanOfWeightedRowLosses) {
  {
    SCOPED_TRACE("logistic");
    ExpectWeightedIsRowByRowMean(*MakeLogisticRegression(4), ClassData(30, 4, 2, 5), 1e-12);
  }
  {
    SCOPED_TRACE("softmax");
    ExpectWeightedIsRowByRowMean(*MakeSoftmaxRegression(4, 3), ClassData(30, 4, 3, 6), 1e-12);
  }
  const std::vector<uint32_t> hidden = {6, 5};
  {
    SCOPED_TRACE("mlp double");
    ExpectWeightedIsRowByRowMean(*MakeMlp(4, hidden, 3, Precision::kDouble), ClassData(30, 4, 3, 7),
                                 1e-12);
  }
  {
    SCOPED_TRACE("mlp float");
    ExpectWeightedIsRowByRowMean(*MakeMlp(4, hidden, 3), ClassData(30, 4, 3, 8), 1e-4);
  }
}

}  // namespace
}  // namespace tessera::client
