// The multilayer perceptron (client/model.h MakeMlp, client/internal/mlp_*): its gradient
// against central differences in double, float arithmetic against double, the forward pass
// against a hand computation, L2 on weights only, and every kernel variant (baseline,
// AVX2, the dispatched one) bit-identical in an SGD step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <random>
#include <vector>

#include "client/internal/mlp_dispatch.h"
#include "client/internal/mlp_types.h"
#include "client/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/test_util.h"

namespace tessera::client {
namespace {

using ::tessera::client::test_util::AllRows;
using ::tessera::client::test_util::ClassData;
using ::tessera::client::test_util::ExpectGradientsMatch;
using ::tessera::client::test_util::RandomParams;
using ::tessera::client::test_util::RandomRows;
using ::tessera::client::test_util::RegressionData;

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
