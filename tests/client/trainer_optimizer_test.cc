// The optimisers (SGD, momentum, Adam) and the proximal term of local training: each
// step checked by hand on a quadratic, convex losses decrease, runs are deterministic,
// and the spec's coefficients are validated with their documented defaults.
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "client/dataset.h"
#include "client/model.h"
#include "client/trainer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/client/test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::client::test_util::Separable;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// ---------------------------------------------------------------------------------------
// Optimisers and the proximal term.

// loss = 0.5 * sum_i a_i * w_i^2 whatever the rows: gradient a_i * w_i.
class QuadraticModel final : public Model {
 public:
  explicit QuadraticModel(std::vector<double> a) : a_(std::move(a)) {}
  size_t num_features() const override { return 1; }
  size_t num_parameters() const override { return a_.size(); }
  size_t num_outputs() const override { return 1; }
  void Initialize(uint64_t, std::span<float> params) const override {
    std::fill(params.begin(), params.end(), 1.0f);
  }
  double LossAndGradient(std::span<const float> params, const Dataset&, std::span<const size_t>,
                         double, std::span<double> grad) const override {
    double loss = 0;
    for (size_t i = 0; i < a_.size(); ++i) {
      loss += 0.5 * a_[i] * params[i] * params[i];
      grad[i] += a_[i] * params[i];
    }
    return loss;
  }
  EvaluationSums Evaluate(std::span<const float>, const Dataset&) const override { return {}; }
  void Predict(std::span<const float>, const Dataset&, std::span<double>) const override {}

 private:
  std::vector<double> a_;
};

// One row of one feature: each epoch is one step with batch_size >= 1.
Dataset OneRow() {
  Dataset data;
  data.num_rows = 1;
  data.num_features = 1;
  data.x = {0.0};
  data.y = {0.0};
  return data;
}

// y = 1 + 2 x1 - 3 x2 plus noise: a convex (least-squares) problem.
Dataset Linear(size_t rows) {
  Dataset data;
  data.num_rows = rows;
  data.num_features = 2;
  internal::SplitMix64 rng(5);
  for (size_t r = 0; r < rows; ++r) {
    const double x1 = 2 * rng.NextUnit() - 1, x2 = 2 * rng.NextUnit() - 1;
    data.x.insert(data.x.end(), {x1, x2});
    data.y.push_back(1 + 2 * x1 - 3 * x2 + 0.1 * (rng.NextUnit() - 0.5));
  }
  return data;
}

double FullLoss(const Model& model, const Dataset& data, const std::vector<float>& params) {
  std::vector<size_t> rows(data.num_rows);
  std::iota(rows.begin(), rows.end(), size_t{0});
  std::vector<double> grad(params.size(), 0.0);
  return model.LossAndGradient(params, data, rows, 0, grad);
}

TrainingOptions WithOptimizer(Optimizer optimizer) {
  TrainingOptions options;
  options.optimizer = optimizer;
  options.epochs = 20;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.seed = 3;
  return options;
}

TEST(OptimizerTest, EveryOptimizerDecreasesAConvexLoss) {
  const Dataset data = Linear(400);
  auto model = MakeLinearRegression(2);
  for (Optimizer optimizer : {Optimizer::kSgd, Optimizer::kMomentum, Optimizer::kAdam}) {
    SCOPED_TRACE(static_cast<int>(optimizer));
    std::vector<float> params(3, 0.0f);
    const double before = FullLoss(*model, data, params);  // about 0.5 * (1 + 4/3 + 3)
    ASSERT_OK_AND_ASSIGN(TrainingReport report,
                         Train(*model, data, WithOptimizer(optimizer), params));
    EXPECT_EQ(report.steps, 20u * 25);
    const double after = FullLoss(*model, data, params);
    EXPECT_LT(after, 0.01 * before);
    // The noise floor: 0.5 * var(uniform(-0.05, 0.05)) = 0.5 * 0.01 / 12.
    EXPECT_LT(after, 0.01);
    EXPECT_NEAR(params[0], 2, 0.05);
    EXPECT_NEAR(params[1], -3, 0.05);
    EXPECT_NEAR(params[2], 1, 0.05);
  }
}

TEST(OptimizerTest, AdamFirstStepIsLearningRateTimesSignOfGradient) {
  // With bias correction m_hat = g and s_hat = g^2 after one step, so the step is
  // lr * g / (|g| + eps): lr * sign(g) whatever the gradient's scale (0 stays put).
  QuadraticModel model({1e-3, -2.0, 5e3, 1.0});
  std::vector<float> params = {1.0f, 1.0f, 1.0f, 0.0f};  // g = (1e-3, -2, 5e3, 0)
  TrainingOptions options;
  options.optimizer = Optimizer::kAdam;
  options.learning_rate = 0.125;
  ASSERT_OK(Train(model, OneRow(), options, params));
  EXPECT_NEAR(params[0], 1 - 0.125 * (1e-3 / (1e-3 + 1e-8)), 1e-7);
  EXPECT_FLOAT_EQ(params[1], 1.125f);
  EXPECT_FLOAT_EQ(params[2], 0.875f);
  EXPECT_EQ(params[3], 0.0f);
}

TEST(OptimizerTest, AdamSecondStepByHand) {
  QuadraticModel model({0.5});
  std::vector<float> params = {1.0f};
  TrainingOptions options;
  options.optimizer = Optimizer::kAdam;
  options.learning_rate = 0.25;
  options.epochs = 2;
  options.adam_beta1 = 0.5;
  options.adam_beta2 = 0.75;
  options.adam_epsilon = 1e-3;
  ASSERT_OK(Train(model, OneRow(), options, params));
  // Step 1: g = 0.5, m = 0.25, s = 0.0625; m_hat = 0.5, s_hat = 0.25; w = 1 - 0.25 * 0.5 /
  // (0.5 + 1e-3). Step 2 at that w: g = 0.5 w.
  double w = 1 - 0.25 * 0.5 / (0.5 + 1e-3);
  const double g = 0.5 * static_cast<double>(static_cast<float>(w));
  const double m = 0.5 * 0.25 + 0.5 * g, s = 0.75 * 0.0625 + 0.25 * g * g;
  w -= 0.25 * (m / 0.75) / (std::sqrt(s / (1 - 0.5625)) + 1e-3);
  EXPECT_FLOAT_EQ(params[0], static_cast<float>(w));
}

TEST(OptimizerTest, MomentumMatchesTwoStepsByHand) {
  // a = 0.5, w0 = 1, lr = 0.5, momentum 0.9 (all exact in binary):
  //   g0 = 0.5, v1 = 0.5, w1 = 0.75; g1 = 0.375, v2 = 0.9 * 0.5 + 0.375 = 0.825,
  //   w2 = 0.75 - 0.5 * 0.825 = 0.3375.
  QuadraticModel model({0.5});
  std::vector<float> params = {1.0f};
  TrainingOptions options;
  options.optimizer = Optimizer::kMomentum;
  options.learning_rate = 0.5;
  options.momentum = 0.9;
  options.epochs = 1;
  ASSERT_OK(Train(model, OneRow(), options, params));
  EXPECT_EQ(params[0], 0.75f);
  params = {1.0f};
  options.epochs = 2;
  ASSERT_OK(Train(model, OneRow(), options, params));
  EXPECT_FLOAT_EQ(params[0], 0.3375f);
  // Plain SGD from the same start: 1 -> 0.75 -> 0.5625.
  params = {1.0f};
  options.optimizer = Optimizer::kSgd;
  ASSERT_OK(Train(model, OneRow(), options, params));
  EXPECT_EQ(params[0], 0.5625f);
}

TEST(OptimizerTest, ProximalTermByHand) {
  // loss 0.5 * 0.5 * w^2 + 0.5 * mu * (w - 1)^2 from w_global = 1, lr = 0.5, mu = 2:
  //   step 1 at w = 1: g = 0.5 + 0 -> w = 0.75;  step 2: g = 0.375 + 2 * (-0.25) = -0.125
  //   -> w = 0.8125.
  QuadraticModel model({0.5});
  std::vector<float> params = {1.0f};
  TrainingOptions options;
  options.learning_rate = 0.5;
  options.proximal_mu = 2;
  options.epochs = 2;
  ASSERT_OK_AND_ASSIGN(TrainingReport report, Train(model, OneRow(), options, params));
  EXPECT_EQ(params[0], 0.8125f);
  // The reported objective includes the proximal term: epoch 2's is
  // 0.25 * 0.75^2 + 0.5 * 2 * 0.25^2.
  EXPECT_DOUBLE_EQ(report.final_epoch_loss, 0.25 * 0.5625 + 0.0625);
}

TEST(OptimizerTest, ProximalTermPullsTowardTheGlobalModel) {
  const Dataset data = Linear(200);
  auto model = MakeLinearRegression(2);
  const std::vector<float> global = {0.5f, -0.5f, 0.25f};
  auto distance = [&](double mu) {
    std::vector<float> params = global;
    TrainingOptions options = WithOptimizer(Optimizer::kSgd);
    options.learning_rate = 0.01;
    options.proximal_mu = mu;
    EXPECT_OK(Train(*model, data, options, params));
    double d = 0;
    for (size_t i = 0; i < 3; ++i) d += (params[i] - global[i]) * (params[i] - global[i]);
    return std::sqrt(d);
  };
  const double free = distance(0), weak = distance(1), strong = distance(10);
  // With lr * mu = 1 every step starts from w_global again: the parameters end one plain
  // gradient step away from it, lr * |g| <= 0.01 * 4.
  const double pinned = distance(100);
  EXPECT_GT(free, 1.0);
  EXPECT_LT(weak, free);
  EXPECT_LT(strong, weak);
  EXPECT_LT(pinned, 0.04);
  EXPECT_LT(pinned, 0.02 * free);
}

TEST(OptimizerTest, EveryOptimizerIsDeterministic) {
  const Dataset data = Separable(101);
  const uint32_t hidden[] = {8};
  auto model = MakeMlp(2, hidden, 2);
  for (Optimizer optimizer : {Optimizer::kSgd, Optimizer::kMomentum, Optimizer::kAdam}) {
    SCOPED_TRACE(static_cast<int>(optimizer));
    auto train = [&](uint64_t seed) {
      std::vector<float> params(model->num_parameters());
      model->Initialize(7, params);
      TrainingOptions options = WithOptimizer(optimizer);
      options.epochs = 3;
      options.proximal_mu = 0.1;
      options.seed = seed;
      EXPECT_OK(Train(*model, data, options, params));
      return params;
    };
    const std::vector<float> a = train(1), b = train(1), c = train(2);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    EXPECT_NE(a, c);
  }
}

TEST(OptimizerTest, RejectsCoefficientsOutOfRange) {
  const Dataset data = Separable(10);
  auto model = MakeLogisticRegression(2);
  std::vector<float> params(3, 0.0f);
  auto with = [](Optimizer optimizer, auto set) {
    TrainingOptions options;
    options.optimizer = optimizer;
    set(options);
    return options;
  };
  struct Case {
    TrainingOptions options;
    const char* field;
  };
  const std::vector<Case> cases = {
      {with(Optimizer::kMomentum, [](TrainingOptions& o) { o.momentum = 1; }), "momentum"},
      {with(Optimizer::kMomentum, [](TrainingOptions& o) { o.momentum = -0.1; }), "momentum"},
      {with(Optimizer::kAdam, [](TrainingOptions& o) { o.adam_beta1 = 1; }), "adam_beta1"},
      {with(Optimizer::kAdam, [](TrainingOptions& o) { o.adam_beta2 = NAN; }), "adam_beta2"},
      {with(Optimizer::kAdam, [](TrainingOptions& o) { o.adam_epsilon = 0; }), "adam_epsilon"},
      {with(Optimizer::kSgd, [](TrainingOptions& o) { o.proximal_mu = -1; }), "proximal_mu"},
      {with(Optimizer::kSgd, [](TrainingOptions& o) { o.proximal_mu = INFINITY; }), "proximal_mu"},
      {with(static_cast<Optimizer>(9), [](TrainingOptions&) {}), "optimizer"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Train(*model, data, c.options, params), StatusIs(kInvalid, HasSubstr(c.field)));
  }
  // Momentum is only checked when it is used.
  EXPECT_OK(Train(*model, data, with(Optimizer::kSgd, [](TrainingOptions& o) { o.momentum = 7; }),
                  params));
}

TEST(OptimizerTest, OptionsFromSpecApplyTheDocumentedDefaults) {
  v1::TrainingSpec spec;
  spec.set_learning_rate(0.01);
  ASSERT_OK_AND_ASSIGN(TrainingOptions options, TrainingOptionsFromSpec(spec));
  EXPECT_EQ(options.epochs, 1u);
  EXPECT_EQ(options.batch_size, 32u);
  EXPECT_EQ(options.learning_rate, 0.01);
  EXPECT_EQ(options.optimizer, Optimizer::kSgd);
  EXPECT_EQ(options.momentum, 0.9);
  EXPECT_EQ(options.adam_beta1, 0.9);
  EXPECT_EQ(options.adam_beta2, 0.999);
  EXPECT_EQ(options.adam_epsilon, 1e-8);
  EXPECT_EQ(options.proximal_mu, 0);

  spec.set_local_epochs(3);
  spec.set_batch_size(64);
  spec.set_optimizer(v1::TrainingSpec::ADAM);
  spec.set_adam_beta1(0.8);
  spec.set_adam_beta2(0.99);
  spec.set_adam_epsilon(1e-6);
  spec.set_proximal_mu(0.01);
  ASSERT_OK_AND_ASSIGN(options, TrainingOptionsFromSpec(spec));
  EXPECT_EQ(options.epochs, 3u);
  EXPECT_EQ(options.batch_size, 64u);
  EXPECT_EQ(options.optimizer, Optimizer::kAdam);
  EXPECT_EQ(options.adam_beta1, 0.8);
  EXPECT_EQ(options.adam_beta2, 0.99);
  EXPECT_EQ(options.adam_epsilon, 1e-6);
  EXPECT_EQ(options.proximal_mu, 0.01);
  spec.set_optimizer(v1::TrainingSpec::MOMENTUM);
  spec.set_momentum(0.5);
  ASSERT_OK_AND_ASSIGN(options, TrainingOptionsFromSpec(spec));
  EXPECT_EQ(options.optimizer, Optimizer::kMomentum);
  EXPECT_EQ(options.momentum, 0.5);
  spec.set_optimizer(static_cast<v1::TrainingSpec::Optimizer>(42));
  EXPECT_THAT(TrainingOptionsFromSpec(spec), StatusIs(kInvalid, HasSubstr("training.optimizer")));
}

}  // namespace
}  // namespace tessera::client
