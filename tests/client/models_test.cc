// The models beyond binary logistic regression: softmax, linear and MLP (Cox:
// models_cox_test.cc). Every
// analytic gradient is checked against central differences (in double arithmetic, with
// and without l2, at random parameters on random rows with repeats); losses and outputs
// against independent textbook formulas.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "client/internal/mlp_dispatch.h"
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
using ::tessera::client::test_util::ExpectGradientsMatch;
using ::tessera::client::test_util::GradientCheck;
using ::tessera::client::test_util::RandomFeatures;
using ::tessera::client::test_util::RandomParams;
using ::tessera::client::test_util::RandomRows;
using ::tessera::client::test_util::Spec;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// Labels 0..k-1 at random.
Dataset ClassData(size_t rows, size_t features, uint32_t k, uint64_t seed) {
  Dataset data = RandomFeatures(rows, features, seed);
  internal::SplitMix64 rng(seed + 1000);
  for (double& y : data.y) y = static_cast<double>(rng.Below(k));
  return data;
}

// y = a linear function of x plus noise, scale ~ 1.
Dataset RegressionData(size_t rows, size_t features, uint64_t seed) {
  Dataset data = RandomFeatures(rows, features, seed);
  internal::SplitMix64 rng(seed + 2000);
  for (size_t r = 0; r < rows; ++r) {
    double y = 0.3;
    for (size_t j = 0; j < features; ++j) y += (j % 2 ? -0.5 : 0.25) * data.x[r * features + j];
    data.y[r] = y + test_util::Uniform(rng, -0.5, 0.5);
  }
  return data;
}

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

// ---------------------------------------------------------------------------------------
// MLP.

TEST(MlpTest, GradientMatchesCentralDifferencesInDouble) {
  // One, two and three hidden layers; softmax heads (2 and 4 classes) and linear heads.
  struct Case {
    std::vector<uint32_t> hidden;
    uint32_t classes;
  };
  const std::vector<Case> cases = {{{7}, 4}, {{6, 5}, 2}, {{5, 4, 3}, 3}, {{8}, 0}, {{6, 3}, 1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << c.hidden.size() << " hidden layers, " << c.classes << " classes");
    auto model = MakeMlp(5, c.hidden, c.classes, Precision::kDouble);
    ExpectGradientsMatch(
        *model,
        [&](uint64_t seed) {
          return c.classes >= 2 ? ClassData(60, 5, c.classes, seed) : RegressionData(60, 5, seed);
        },
        2e-6);
  }
}

TEST(MlpTest, FloatArithmeticMatchesDouble) {
  const std::vector<uint32_t> hidden = {32, 16};
  auto fast = MakeMlp(20, hidden, 5);
  auto exact = MakeMlp(20, hidden, 5, Precision::kDouble);
  const Dataset data = ClassData(600, 20, 5, 3);  // three blocks of rows
  std::vector<float> params(fast->num_parameters());
  fast->Initialize(11, params);
  for (double l2 : {0.0, 0.01}) {
    const std::vector<size_t> rows = RandomRows(data.num_rows, 555, 4);
    std::vector<double> g_fast(params.size(), 0.0), g_exact(params.size(), 0.0);
    const double l_fast = fast->LossAndGradient(params, data, rows, l2, g_fast);
    const double l_exact = exact->LossAndGradient(params, data, rows, l2, g_exact);
    EXPECT_NEAR(l_fast, l_exact, 1e-5 * l_exact);
    std::vector<double> diff(params.size());
    for (size_t k = 0; k < diff.size(); ++k) diff[k] = g_fast[k] - g_exact[k];
    EXPECT_LT(test_util::Norm(diff) / test_util::Norm(g_exact), 1e-5);
  }
  const EvaluationSums a = fast->Evaluate(params, data);
  const EvaluationSums b = exact->Evaluate(params, data);
  EXPECT_NEAR(a.loss_sum, b.loss_sum, 1e-5 * b.loss_sum);
  EXPECT_NEAR(static_cast<double>(a.num_correct), static_cast<double>(b.num_correct), 2);
}

// A one-hidden-layer network written out by hand, to pin the layout (W row-major, then b,
// layer by layer) and the forward pass.
TEST(MlpTest, LayoutAndForwardMatchHandComputation) {
  const uint32_t hidden[] = {2};
  auto model = MakeMlp(2, hidden, 0, Precision::kDouble);
  ASSERT_EQ(model->num_parameters(), 2u * 3 + 3);
  // W1 = [[1, 2], [-1, 1]], b1 = [0.5, -3], W2 = [[2, -1]], b2 = [0.25].
  const std::vector<float> params = {1, 2, -1, 1, 0.5f, -3, 2, -1, 0.25f};
  Dataset data = RegressionData(2, 2, 1);
  data.x = {1, 1, 3, -2};
  data.y = {0, 0};
  // Row 1: a = (3.5, -3) -> h = (3.5, 0) -> y = 7.25. Row 2: a = (-0.5, -8) -> h = 0 -> 0.25.
  std::vector<double> out(2);
  model->Predict(params, data, out);
  EXPECT_THAT(out, ::testing::ElementsAre(7.25, 0.25));
  auto fast = MakeMlp(2, hidden, 0);
  fast->Predict(params, data, out);
  EXPECT_THAT(out, ::testing::ElementsAre(7.25, 0.25));
  EXPECT_NEAR(model->Evaluate(params, data).loss_sum, 0.5 * (7.25 * 7.25 + 0.25 * 0.25), 1e-12);
}

TEST(MlpTest, ClassifierOutputsProbabilitiesAndCountsCorrect) {
  const uint32_t hidden[] = {16};
  auto model = MakeMlp(6, hidden, 3);
  const Dataset data = ClassData(700, 6, 3, 5);
  std::vector<float> params(model->num_parameters());
  model->Initialize(3, params);
  std::vector<double> probs(data.num_rows * 3);
  model->Predict(params, data, probs);
  uint64_t correct = 0;
  double loss_sum = 0;
  for (size_t r = 0; r < data.num_rows; ++r) {
    const double* p = &probs[r * 3];
    EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
    const size_t y = static_cast<size_t>(data.y[r]);
    if (std::max_element(p, p + 3) - p == static_cast<long>(y)) ++correct;
    loss_sum -= std::log(p[y]);
  }
  const EvaluationSums sums = model->Evaluate(params, data);
  EXPECT_EQ(sums.num_examples, 700u);
  EXPECT_EQ(sums.num_correct, correct);
  EXPECT_NEAR(sums.loss_sum, loss_sum, 1e-4);
}

TEST(MlpTest, L2PenalisesWeightsNotBiases) {
  const uint32_t hidden[] = {3};
  auto model = MakeMlp(2, hidden, 2, Precision::kDouble);
  const Dataset data = ClassData(10, 2, 2, 1);
  std::vector<float> params = RandomParams(model->num_parameters(), 2);
  std::vector<double> g0(params.size(), 0.0), g1(params.size(), 0.0);
  const double l0 = model->LossAndGradient(params, data, AllRows(data), 0, g0);
  const double l1 = model->LossAndGradient(params, data, AllRows(data), 0.5, g1);
  // Layout: W1 [0, 6), b1 [6, 9), W2 [9, 15), b2 [15, 17).
  double squares = 0;
  for (size_t k = 0; k < 17; ++k) {
    const bool bias = (k >= 6 && k < 9) || k >= 15;
    if (bias) {
      EXPECT_EQ(g1[k], g0[k]) << k;
    } else {
      squares += static_cast<double>(params[k]) * params[k];
      EXPECT_NEAR(g1[k] - g0[k], 0.5 * params[k], 1e-12) << k;
    }
  }
  EXPECT_NEAR(l1 - l0, 0.25 * squares, 1e-12);
}

TEST(MlpTest, AddsIntoGradientAndHandlesNoRows) {
  const uint32_t hidden[] = {4};
  auto model = MakeMlp(3, hidden, 2);
  const Dataset data = ClassData(10, 3, 2, 1);
  const std::vector<float> params = RandomParams(model->num_parameters(), 2);
  std::vector<double> once(params.size(), 0.0), twice(params.size(), 0.0);
  model->LossAndGradient(params, data, AllRows(data), 0.1, once);
  model->LossAndGradient(params, data, AllRows(data), 0.1, twice);
  model->LossAndGradient(params, data, AllRows(data), 0.1, twice);
  for (size_t k = 0; k < once.size(); ++k) EXPECT_DOUBLE_EQ(twice[k], 2 * once[k]);
  std::vector<double> none(params.size(), 0.0);
  EXPECT_EQ(model->LossAndGradient(params, data, {}, 0, none), 0.0);
  EXPECT_THAT(none, ::testing::Each(0.0));
}

// The trainer's plain SGD step (SgdStep, dispatched with the MLP kernels) gives the same
// bits in every variant, and the same bits as the step written out: w - lr * g rounded
// once, then to float. A non-finite result is reported; the gradient is zeroed.
TEST(MlpTest, SgdStepIsBitIdenticalInEveryVariant) {
  std::mt19937 random(17);
  std::uniform_real_distribution<double> value(-3, 3);
  const size_t n = 1037;  // not a multiple of any vector width
  std::vector<double> w0(n), g0(n);
  for (size_t i = 0; i < n; ++i) {
    w0[i] = value(random);
    g0[i] = value(random) * 1e-3;
  }
  const double lr = 0.0137;
  std::vector<const internal::MlpFloatKernels*> variants = {&internal::BaselineMlpKernels()};
#if defined(__x86_64__)
  if (internal::Avx2MlpKernels() != nullptr && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma")) {
    variants.push_back(internal::Avx2MlpKernels());
  }
#endif
  for (const internal::MlpFloatKernels* kernels : variants) {
    SCOPED_TRACE(kernels->name);
    std::vector<double> w = w0, g = g0;
    std::vector<float> out(n);
    ASSERT_TRUE(kernels->sgd_step(lr, w.data(), g.data(), out.data(), n));
    for (size_t i = 0; i < n; ++i) {
      const double step = lr * g0[i];
      const double want = w0[i] - step;
      ASSERT_EQ(w[i], want) << i;
      ASSERT_EQ(out[i], static_cast<float>(want)) << i;
      ASSERT_EQ(g[i], 0.0) << i;
    }
    g = g0;
    g[n - 2] = 1e300;  // w - lr * g overflows float
    EXPECT_FALSE(kernels->sgd_step(lr, w.data(), g.data(), out.data(), n));
  }
}

// The float kernels exist once per instruction set (client/mlp_avx2.cc); the process
// uses one. They must compute the same thing, up to float rounding.
TEST(MlpTest, Avx2KernelAgreesWithBaseline) {
  const internal::MlpFloatKernels& selected = internal::SelectedMlpKernels();
  std::printf("MLP float kernel in use: %s\n", selected.name);
  const internal::MlpFloatKernels* avx2 = internal::Avx2MlpKernels();
#if defined(__x86_64__)
  if (avx2 == nullptr || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    GTEST_SKIP() << "no AVX2 + FMA here";
  }
#else
  GTEST_SKIP() << "AVX2 kernels exist on x86-64 only";
#endif
  const internal::MlpFloatKernels& baseline = internal::BaselineMlpKernels();

  // 50-64-10 on 300 rows (two blocks), with repeats.
  internal::MlpDims dims;
  dims.num_layers = 2;
  const size_t widths[] = {50, 64, 10};
  std::copy(std::begin(widths), std::end(widths), dims.widths);
  dims.offsets[0] = 0;
  dims.offsets[1] = 64 * 51;
  dims.num_parameters = 64 * 51 + 10 * 65;
  dims.softmax = true;
  const Dataset data = ClassData(400, 50, 10, 12);
  const std::vector<size_t> rows = RandomRows(400, 300, 13);
  std::vector<float> params(dims.num_parameters);
  const uint32_t hidden[] = {64};
  MakeMlp(50, hidden, 10)->Initialize(5, params);
  const size_t b = internal::kMlpBlockRows;
  auto run = [&](const internal::MlpFloatKernels& kernels, std::vector<float>* grad,
                 std::vector<float>* logits) {
    std::vector<float> x(b * 50), act(b * 64), delta0(b * 64), delta1(b * 64);
    logits->assign(b * 10, 0.0f);
    grad->assign(dims.num_parameters, 0.0f);
    const internal::MlpWorkspace<float> ws = {
        x.data(), act.data(), logits->data(), {delta0.data(), delta1.data()}, grad->data()};
    const internal::MlpRows call = {data.x.data(), data.y.data(), rows.data(), rows.size()};
    const double loss = kernels.loss_and_gradient(dims, params.data(), call, 0.01, ws);
    kernels.forward(dims, params.data(), call, 0, 100, ws);
    return loss;
  };
  std::vector<float> g_base, g_avx2, z_base, z_avx2;
  const double l_base = run(baseline, &g_base, &z_base);
  const double l_avx2 = run(*avx2, &g_avx2, &z_avx2);
  EXPECT_NEAR(l_avx2, l_base, 1e-6 * l_base);
  double diff = 0, norm = 0;
  for (size_t k = 0; k < g_base.size(); ++k) {
    diff += (g_avx2[k] - g_base[k]) * (g_avx2[k] - g_base[k]);
    norm += g_base[k] * g_base[k];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
  for (size_t k = 0; k < 100 * 10; ++k) EXPECT_NEAR(z_avx2[k], z_base[k], 1e-4) << k;
}

}  // namespace
}  // namespace tessera::client

namespace tessera::client {
namespace {

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
