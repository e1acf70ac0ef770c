#include "coordinator/strategy.h"

#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/contribution_layout.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::FloatEq;
using ::testing::FloatNear;

std::vector<double> Add(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + b[i];
  return out;
}

// FedAvg weights each site's model by its example count: the new model is
// sum_k n_k * w_k / sum_k n_k. Built from the same sums the sites send.
TEST(FedAvgTest, NewModelIsTheExampleWeightedMeanOfSiteModels) {
  const std::vector<float> global = {1.0f, -2.0f, 0.5f};
  // Site models after local training, and their example counts.
  const std::vector<float> site_a = {2.0f, -1.0f, 0.5f};   // 300 examples
  const std::vector<float> site_b = {-1.0f, 0.0f, 1.5f};   // 100 examples
  const std::vector<float> site_c = {1.0f, -2.0f, -0.5f};  // 100 examples
  auto delta = [&](const std::vector<float>& w) {
    std::vector<float> d(w.size());
    for (size_t i = 0; i < w.size(); ++i) d[i] = w[i] - global[i];
    return d;
  };
  std::vector<double> sum =
      Add(Add(proto::EncodeFit(300, delta(site_a)), proto::EncodeFit(100, delta(site_b))),
          proto::EncodeFit(100, delta(site_c)));
  ASSERT_OK_AND_ASSIGN(proto::AveragedUpdate update, proto::DecodeFit(sum, 3));
  EXPECT_EQ(update.total_examples, 500);

  auto fedavg = MakeFedAvg(1.0);
  ASSERT_OK_AND_ASSIGN(std::vector<float> next, fedavg->AggregateFit(1, global, update));
  // (300*2 + 100*-1 + 100*1)/500 = 1.2; (300*-1 + 0 + 100*-2)/500 = -1; (150+150-50)/500 = 0.5
  EXPECT_THAT(next,
              ElementsAre(FloatNear(1.2f, 1e-6), FloatNear(-1.0f, 1e-6), FloatNear(0.5f, 1e-6)));

  // Unweighted averaging would give (2-1+1)/3 = 0.667 for the first parameter: the test
  // tells the two apart.
  EXPECT_GT(std::abs(next[0] - 2.0f / 3.0f), 0.5f);
}

TEST(FedAvgTest, ServerLearningRateScalesTheStep) {
  proto::AveragedUpdate update;
  update.total_examples = 10;
  update.mean_delta = {1.0, -4.0};
  auto half = MakeFedAvg(0.5);
  ASSERT_OK_AND_ASSIGN(std::vector<float> next,
                       half->AggregateFit(1, std::vector<float>{0, 0}, update));
  EXPECT_THAT(next, ElementsAre(0.5f, -2.0f));
}

TEST(FedAvgTest, RefusesMismatchedOrNonFiniteUpdates) {
  auto fedavg = MakeFedAvg(1.0);
  proto::AveragedUpdate update;
  update.total_examples = 1;
  update.mean_delta = {1.0};
  EXPECT_THAT(fedavg->AggregateFit(1, std::vector<float>{0, 0}, update),
              StatusIs(absl::StatusCode::kInvalidArgument));
  update.mean_delta = {1e300};
  EXPECT_THAT(fedavg->AggregateFit(1, std::vector<float>{3.4e38f}, update),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(fedavg->RestoreState(""));
  EXPECT_THAT(fedavg->RestoreState("x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StrategyTest, MakeStrategyDefaultsToFedAvg) {
  v1::StrategySpec spec;
  ASSERT_OK_AND_ASSIGN(auto s, MakeStrategy(spec));
  spec.set_kind(static_cast<v1::StrategySpec::Kind>(99));
  EXPECT_THAT(MakeStrategy(spec), StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------------------------------
// Server optimisers. Expected values are worked out by hand in the comments (Δ is the
// averaged delta of the round, x the global model); numbers with more than a few digits
// come from closed forms such as √7 written next to them.

proto::AveragedUpdate Update(std::vector<double> delta) {
  proto::AveragedUpdate update;
  update.total_examples = 10;
  update.mean_delta = std::move(delta);
  return update;
}

// Feeds `deltas` to `strategy` round after round from `global`, rounds first_round, ...;
// returns the model after each round.
absl::StatusOr<std::vector<std::vector<float>>> RunRounds(
    Strategy& strategy, std::vector<float> global, const std::vector<std::vector<double>>& deltas,
    uint32_t first_round = 1) {
  std::vector<std::vector<float>> models;
  uint32_t round = first_round;
  for (const std::vector<double>& delta : deltas) {
    absl::StatusOr<std::vector<float>> next = strategy.AggregateFit(round++, global, Update(delta));
    if (!next.ok()) return next.status();
    global = *next;
    models.push_back(std::move(*next));
  }
  return models;
}

std::unique_ptr<Strategy> Must(absl::StatusOr<std::unique_ptr<Strategy>> s) {
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

AdaptiveOptions Options(double lr, double beta1, double beta2, double tau) {
  AdaptiveOptions o;
  o.server_learning_rate = lr;
  o.beta1 = beta1;
  o.beta2 = beta2;
  o.tau = tau;
  return o;
}

TEST(FedAvgMTest, HandComputedThreeRounds) {
  // η = 2, μ = 0.5, v_{-1} = 0; x_0 = (1, 2).
  auto s = Must(MakeFedAvgM(2.0, 0.5));
  ASSERT_OK_AND_ASSIGN(auto models,
                       RunRounds(*s, {1.0f, 2.0f}, {{0.5, -1.0}, {0.25, 0.0}, {-1.0, 0.5}}));
  // Round 1: v = (0.5, -1);                          x = (1 + 2·0.5, 2 + 2·-1) = (2, 0)
  EXPECT_THAT(models[0], ElementsAre(2.0f, 0.0f));
  // Round 2: v = 0.5·(0.5, -1) + (0.25, 0) = (0.5, -0.5); x = (2 + 1, 0 - 1) = (3, -1)
  EXPECT_THAT(models[1], ElementsAre(3.0f, -1.0f));
  // Round 3: v = 0.5·(0.5, -0.5) + (-1, 0.5) = (-0.75, 0.25); x = (3 - 1.5, -1 + 0.5)
  EXPECT_THAT(models[2], ElementsAre(1.5f, -0.5f));
}

TEST(FedAvgMTest, ZeroMomentumIsFedAvg) {
  const std::vector<std::vector<double>> deltas = {
      {0.123, -4.5, 1e-3}, {-0.7, 2.25, 3.3}, {0.01, 0.02, -0.03}, {5.0, -5.0, 0.0}};
  const std::vector<float> start = {0.3f, -1.7f, 42.0f};
  auto fedavgm = Must(MakeFedAvgM(0.7, 0.0));
  auto fedavg = MakeFedAvg(0.7);
  ASSERT_OK_AND_ASSIGN(auto with_m, RunRounds(*fedavgm, start, deltas));
  ASSERT_OK_AND_ASSIGN(auto plain, RunRounds(*fedavg, start, deltas));
  EXPECT_EQ(with_m, plain);  // exactly, not approximately
}

TEST(FedAdamTest, HandComputedThreeRounds) {
  // η = 1.2, β1 = 0.5, β2 = 0.5, τ = 1, so m_{-1} = 0, v_{-1} = τ² = 1; x_0 = (0, 1).
  auto s = Must(MakeFedAdam(Options(1.2, 0.5, 0.5, 1.0)));
  ASSERT_OK_AND_ASSIGN(auto models, RunRounds(*s, {0.0f, 1.0f}, {{7, 1}, {-5, 1}, {1, -1}}));
  // Round 1, Δ = (7, 1):
  //   m = 0.5·0 + 0.5·(7, 1) = (3.5, 0.5)
  //   v = 0.5·1 + 0.5·(49, 1) = (25, 1);  √v + τ = (6, 2)
  //   x = (0 + 1.2·3.5/6, 1 + 1.2·0.5/2) = (0.7, 1.3)
  EXPECT_THAT(models[0], ElementsAre(FloatNear(0.7f, 1e-6), FloatNear(1.3f, 1e-6)));
  // Round 2, Δ = (-5, 1):
  //   m = (1.75 - 2.5, 0.25 + 0.5) = (-0.75, 0.75)
  //   v = (12.5 + 12.5, 0.5 + 0.5) = (25, 1);  √v + τ = (6, 2)
  //   x = (0.7 - 1.2·0.75/6, 1.3 + 1.2·0.75/2) = (0.7 - 0.15, 1.3 + 0.45) = (0.55, 1.75)
  EXPECT_THAT(models[1], ElementsAre(FloatNear(0.55f, 1e-6), FloatNear(1.75f, 1e-6)));
  // Round 3, Δ = (1, -1):
  //   m = (-0.375 + 0.5, 0.375 - 0.5) = (0.125, -0.125)
  //   v = (12.5 + 0.5, 0.5 + 0.5) = (13, 1);  √v + τ = (1 + √13, 2) = (4.6055512755, 2)
  //   x = (0.55 + 0.15/4.6055512755, 1.75 - 0.15/2) = (0.5825693909, 1.675)
  EXPECT_THAT(models[2], ElementsAre(FloatNear(0.5825693909f, 1e-6), FloatNear(1.675f, 1e-6)));
}

TEST(FedAdagradTest, HandComputedTwoRounds) {
  // η = 1, β1 = 0.5, τ = 0.5, so v_{-1} = 0.25; x_0 = (1, -1). β2 plays no part.
  for (double beta2 : {0.0, 0.99}) {
    auto s = Must(MakeFedAdagrad(Options(1.0, 0.5, beta2, 0.5)));
    ASSERT_OK_AND_ASSIGN(auto models, RunRounds(*s, {1.0f, -1.0f}, {{1.2, -2}, {3.12, 0}}));
    // Round 1, Δ = (1.2, -2):
    //   m = (0.6, -1)
    //   v = 0.25 + (1.44, 4) = (1.69, 4.25);  √v + τ = (1.3 + 0.5, √4.25 + 0.5)
    //                                                = (1.8, 2.5615528128)
    //   x = (1 + 0.6/1.8, -1 - 1/2.5615528128) = (1.3333333333, -1.3903882032)
    EXPECT_THAT(models[0],
                ElementsAre(FloatNear(1.3333333333f, 1e-6), FloatNear(-1.3903882032f, 1e-6)));
    // Round 2, Δ = (3.12, 0) — Adagrad's v never shrinks, even when Δ = 0:
    //   m = (0.3 + 1.56, -0.5 + 0) = (1.86, -0.5)
    //   v = (1.69 + 9.7344, 4.25 + 0) = (11.4244, 4.25);  √11.4244 = 3.38 (5-12-13 triangle
    //       scaled by 0.26: 1.3² + 3.12² = 3.38²), so √v + τ = (3.88, 2.5615528128)
    //   x = (1.3333333333 + 1.86/3.88, -1.3903882032 - 0.5/2.5615528128)
    //     = (1.3333333333 + 0.4793814433, -1.3903882032 - 0.1951941016)
    //     = (1.8127147766, -1.5855823048)
    EXPECT_THAT(models[1],
                ElementsAre(FloatNear(1.8127147766f, 1e-6), FloatNear(-1.5855823048f, 1e-6)));
  }
}

TEST(FedYogiTest, HandComputedThreeRounds) {
  // η = 1, β1 = 0.5, β2 = 0.5, τ = 1, so v_{-1} = 1; x_0 = (0, 0).
  auto s = Must(MakeFedYogi(Options(1.0, 0.5, 0.5, 1.0)));
  ASSERT_OK_AND_ASSIGN(auto models, RunRounds(*s, {0.0f, 0.0f}, {{4, 1}, {2, 1}, {0, 1}}));
  // Round 1, Δ = (4, 1):
  //   m = (2, 0.5)
  //   v: sign(1 - 16) = -1 → 1 + 0.5·16 = 9;  sign(1 - 1) = 0 → 1 (unchanged)
  //   √v + τ = (4, 2);  x = (2/4, 0.5/2) = (0.5, 0.25)
  EXPECT_THAT(models[0], ElementsAre(FloatNear(0.5f, 1e-6), FloatNear(0.25f, 1e-6)));
  // Round 2, Δ = (2, 1):
  //   m = (1 + 1, 0.25 + 0.5) = (2, 0.75)
  //   v: sign(9 - 4) = +1 → 9 - 0.5·4 = 7 (Adam would give 0.5·9 + 0.5·4 = 6.5); 1
  //   √v + τ = (1 + √7, 2) = (3.6457513111, 2)
  //   x = (0.5 + 2/3.6457513111, 0.25 + 0.75/2) = (1.0485837704, 0.625)
  EXPECT_THAT(models[1], ElementsAre(FloatNear(1.0485837704f, 1e-6), FloatNear(0.625f, 1e-6)));
  // Round 3, Δ = (0, 1):
  //   m = (1, 0.875);  v: sign(7 - 0) = +1 → 7 - 0 = 7; 1
  //   x = (1.0485837704 + 1/(1 + √7), 0.625 + 0.875/2)
  //     = (0.5 + 3/(1 + √7) = √7/2 = 1.3228756555, 1.0625)
  EXPECT_THAT(models[2], ElementsAre(FloatNear(1.3228756555f, 1e-6), FloatNear(1.0625f, 1e-6)));
}

TEST(StrategyTest, MakeStrategyAppliesTheDocumentedDefaults) {
  // One round from x_0 = 0 with Δ = 1; each kind's defaults give a different first step.
  auto first_step = [](v1::StrategySpec::Kind kind) -> float {
    v1::StrategySpec spec;
    spec.set_kind(kind);
    auto s = MakeStrategy(spec);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return NAN;
    auto next = (*s)->AggregateFit(1, std::vector<float>{0.0f}, Update({1.0}));
    EXPECT_TRUE(next.ok()) << next.status();
    return next.ok() ? (*next)[0] : NAN;
  };
  // FedAvg, FedProx, FedAvgM (v = Δ on the first round): η = 1 → x = 1.
  EXPECT_EQ(first_step(v1::StrategySpec::KIND_UNSPECIFIED), 1.0f);
  EXPECT_EQ(first_step(v1::StrategySpec::FEDAVG), 1.0f);
  EXPECT_EQ(first_step(v1::StrategySpec::FEDPROX), 1.0f);
  EXPECT_EQ(first_step(v1::StrategySpec::FEDAVGM), 1.0f);
  // Adaptive: η = 0.01, β1 = 0.9 → m = 0.1; τ = 1e-3 → v_{-1} = 1e-6.
  //   Adam:    v = 0.99·1e-6 + 0.01·1 = 0.01000099;  √v = 0.10000494988
  //            x = 0.01·0.1/(0.10000494988 + 0.001) = 0.0099005049
  EXPECT_THAT(first_step(v1::StrategySpec::FEDADAM), FloatNear(0.0099005049f, 1e-9));
  //   Yogi:    v = 1e-6 + 0.01·1·1 = 0.010001 (sign(1e-6 - 1) = -1);  √v = 0.10000499988
  //            x = 0.001/0.10100499988 = 0.0099005000
  EXPECT_THAT(first_step(v1::StrategySpec::FEDYOGI), FloatNear(0.0099005000f, 1e-9));
  //   Adagrad: v = 1e-6 + 1 = 1.000001;  √v = 1.0000005
  //            x = 0.001/1.0010005 = 0.00099900050
  EXPECT_THAT(first_step(v1::StrategySpec::FEDADAGRAD), FloatNear(0.00099900050f, 1e-10));

  // FedAvgM's default momentum 0.9: round 2 with Δ = 1 again gives v = 1.9, x = 2.9.
  v1::StrategySpec spec;
  spec.set_kind(v1::StrategySpec::FEDAVGM);
  ASSERT_OK_AND_ASSIGN(auto fedavgm, MakeStrategy(spec));
  ASSERT_OK_AND_ASSIGN(auto models, RunRounds(*fedavgm, {0.0f}, {{1.0}, {1.0}}));
  EXPECT_THAT(models[1], ElementsAre(FloatNear(2.9f, 1e-6)));
}

TEST(StrategyTest, MakeStrategyUsesTheSpecsValues) {
  // The FedAdam example above, configured through a spec.
  v1::StrategySpec spec;
  spec.set_kind(v1::StrategySpec::FEDADAM);
  spec.set_server_learning_rate(1.2);
  spec.set_beta1(0.5);
  spec.set_beta2(0.5);
  spec.set_tau(1.0);
  ASSERT_OK_AND_ASSIGN(auto adam, MakeStrategy(spec));
  ASSERT_OK_AND_ASSIGN(auto models, RunRounds(*adam, {0.0f, 1.0f}, {{7, 1}}));
  EXPECT_THAT(models[0], ElementsAre(FloatNear(0.7f, 1e-6), FloatNear(1.3f, 1e-6)));

  spec.Clear();
  spec.set_kind(v1::StrategySpec::FEDAVGM);
  spec.set_server_learning_rate(2.0);
  spec.set_server_momentum(0.5);
  ASSERT_OK_AND_ASSIGN(auto fedavgm, MakeStrategy(spec));
  ASSERT_OK_AND_ASSIGN(models, RunRounds(*fedavgm, {1.0f, 2.0f}, {{0.5, -1.0}, {0.25, 0.0}}));
  EXPECT_THAT(models[1], ElementsAre(3.0f, -1.0f));  // FedAvgMTest.HandComputedThreeRounds

  spec.Clear();
  spec.set_kind(v1::StrategySpec::FEDPROX);
  spec.set_server_learning_rate(0.5);
  ASSERT_OK_AND_ASSIGN(auto fedprox, MakeStrategy(spec));
  ASSERT_OK_AND_ASSIGN(models, RunRounds(*fedprox, {0.0f, 0.0f}, {{1.0, -4.0}}));
  EXPECT_THAT(models[0], ElementsAre(0.5f, -2.0f));
}

TEST(StrategyTest, MakeStrategyRefusesOutOfRangeValues) {
  auto refused = [](v1::StrategySpec::Kind kind, auto set) {
    v1::StrategySpec spec;
    spec.set_kind(kind);
    set(spec);
    return MakeStrategy(spec).status().code() == absl::StatusCode::kInvalidArgument;
  };
  using S = v1::StrategySpec;
  for (S::Kind kind : {S::FEDAVG, S::FEDPROX, S::FEDAVGM, S::FEDADAGRAD, S::FEDADAM, S::FEDYOGI}) {
    SCOPED_TRACE(S::Kind_Name(kind));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_server_learning_rate(-1); }));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_server_learning_rate(NAN); }));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_server_learning_rate(INFINITY); }));
  }
  EXPECT_TRUE(refused(S::FEDAVGM, [](S& s) { s.set_server_momentum(1.0); }));
  EXPECT_TRUE(refused(S::FEDAVGM, [](S& s) { s.set_server_momentum(-0.1); }));
  for (S::Kind kind : {S::FEDADAGRAD, S::FEDADAM, S::FEDYOGI}) {
    SCOPED_TRACE(S::Kind_Name(kind));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_beta1(1.0); }));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_beta1(-0.5); }));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_beta2(1.5); }));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_tau(-1e-3); }));
    EXPECT_TRUE(refused(kind, [](S& s) { s.set_tau(NAN); }));
  }
  EXPECT_THAT(MakeFedAvgM(1.0, 1.0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeFedAdam(Options(0.0, 0.9, 0.99, 1e-3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeFedYogi(Options(0.01, 0.9, 0.99, 0.0)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---- State: save, restore, refuse ----

struct StatefulCase {
  const char* name;
  v1::StrategySpec::Kind kind;
};

class StatefulStrategyTest : public ::testing::TestWithParam<StatefulCase> {
 protected:
  // Non-default values so that a restore into a default-configured instance would show.
  std::unique_ptr<Strategy> Make(size_t num_parameters = 0) const {
    v1::StrategySpec spec;
    spec.set_kind(GetParam().kind);
    spec.set_server_learning_rate(0.3);
    spec.set_server_momentum(0.8);
    spec.set_beta1(0.7);
    spec.set_beta2(0.95);
    spec.set_tau(0.05);
    return Must(MakeStrategy(spec, num_parameters));
  }

  const std::vector<float> start_ = {0.25f, -1.5f, 3.0f};
  const std::vector<std::vector<double>> deltas_ = {
      {0.1, -0.2, 0.3}, {-0.05, 0.4, 0.0}, {0.2, 0.2, -0.7}, {0.01, -0.3, 0.15}, {1.0, 0.0, -0.1}};
};

TEST_P(StatefulStrategyTest, RestoredInstanceContinuesExactlyLikeAnUninterruptedOne) {
  auto whole = Make();
  ASSERT_OK_AND_ASSIGN(auto uninterrupted, RunRounds(*whole, start_, deltas_));

  for (size_t cut = 0; cut <= deltas_.size(); ++cut) {
    SCOPED_TRACE(cut);
    auto before = Make();
    std::vector<std::vector<double>> head(deltas_.begin(), deltas_.begin() + cut);
    std::vector<std::vector<double>> tail(deltas_.begin() + cut, deltas_.end());
    ASSERT_OK_AND_ASSIGN(auto first, RunRounds(*before, start_, head));
    const std::string state = before->SaveState();
    EXPECT_FALSE(state.empty());

    auto after = Make(start_.size());  // a restarted coordinator
    ASSERT_OK(after->RestoreState(state));
    EXPECT_EQ(after->SaveState(), state);  // bit-exact round trip
    const std::vector<float> resume = cut == 0 ? start_ : first.back();
    ASSERT_OK_AND_ASSIGN(auto second,
                         RunRounds(*after, resume, tail, static_cast<uint32_t>(cut + 1)));
    first.insert(first.end(), second.begin(), second.end());
    EXPECT_EQ(first, uninterrupted);  // exactly equal, every round
    EXPECT_EQ(after->SaveState(), whole->SaveState());
  }
}

TEST_P(StatefulStrategyTest, EmptyStateIsTheInitialState) {
  auto fresh = Make();
  ASSERT_OK_AND_ASSIGN(auto expected, RunRounds(*fresh, start_, deltas_));
  auto used = Make();
  ASSERT_OK(RunRounds(*used, start_, {deltas_[0], deltas_[1]}).status());
  ASSERT_OK(used->RestoreState(""));
  ASSERT_OK_AND_ASSIGN(auto again, RunRounds(*used, start_, deltas_));
  EXPECT_EQ(again, expected);
}

TEST_P(StatefulStrategyTest, RefusesBadStateAndKeepsItsOwn) {
  auto s = Make(start_.size());
  ASSERT_OK(RunRounds(*s, start_, {deltas_[0]}).status());
  const std::string good = s->SaveState();
  // The reference: the same strategy continuing without any restore attempt.
  auto reference = Make();
  ASSERT_OK(reference->RestoreState(good));

  std::vector<std::string> bad;
  for (size_t n = 1; n < good.size(); ++n) bad.push_back(good.substr(0, n));  // truncated
  bad.push_back(good + std::string(1, '\0'));                                 // trailing byte
  bad.push_back(good + std::string(8, '\0'));                                 // trailing value
  std::string flipped = good;
  flipped[0] ^= 1;  // magic
  bad.push_back(flipped);
  flipped = good;
  flipped[4] = 2;  // version
  bad.push_back(flipped);
  // Another strategy's state, of the same size.
  for (v1::StrategySpec::Kind other : {v1::StrategySpec::FEDAVGM, v1::StrategySpec::FEDADAGRAD,
                                       v1::StrategySpec::FEDADAM, v1::StrategySpec::FEDYOGI}) {
    if (other == GetParam().kind) continue;
    v1::StrategySpec spec;
    spec.set_kind(other);
    auto o = Must(MakeStrategy(spec));
    ASSERT_OK(RunRounds(*o, start_, {deltas_[0]}).status());
    bad.push_back(o->SaveState());
    flipped = good;
    flipped[5] = static_cast<char>(other);  // only the kind byte changed
    bad.push_back(flipped);
  }
  // State for a model of another size.
  {
    auto wider = Make();
    ASSERT_OK(RunRounds(*wider, {0.0f, 0.0f, 0.0f, 0.0f}, {{0.1, 0.2, 0.3, 0.4}}).status());
    bad.push_back(wider->SaveState());
  }
  // Non-finite values, and a negative second moment where there is one.
  // Header: "TSST", version, kind, u64 P = 14 bytes; then little-endian doubles.
  constexpr size_t kHeader = 14;
  const size_t values = (good.size() - kHeader) / 8;
  ASSERT_EQ(good.size(), kHeader + 8 * values);
  auto with_value = [&](size_t index, double value) {
    std::string st = good;
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    for (int b = 0; b < 8; ++b) {
      st[kHeader + 8 * index + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
    }
    return st;
  };
  bad.push_back(with_value(0, NAN));
  bad.push_back(with_value(1, INFINITY));
  bad.push_back(with_value(values - 1, -INFINITY));
  if (GetParam().kind != v1::StrategySpec::FEDAVGM) bad.push_back(with_value(values - 1, -1.0));

  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_THAT(s->RestoreState(bad[i]), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  // Nothing was half-applied: s still continues like the reference.
  ASSERT_OK_AND_ASSIGN(auto got, RunRounds(*s, start_, {deltas_[1], deltas_[2]}, 2));
  ASSERT_OK_AND_ASSIGN(auto want, RunRounds(*reference, start_, {deltas_[1], deltas_[2]}, 2));
  EXPECT_EQ(got, want);

  // A stateless strategy refuses all of it too.
  EXPECT_THAT(MakeFedAvg(1.0)->RestoreState(good), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StatefulStrategyTest, FailedRoundLeavesTheStateUnchanged) {
  auto s = Make();
  ASSERT_OK(RunRounds(*s, start_, {deltas_[0]}).status());
  const std::string before = s->SaveState();
  // Wrong size, and a step that leaves the float range.
  EXPECT_THAT(s->AggregateFit(2, start_, Update({0.1, 0.2})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(s->AggregateFit(2, std::vector<float>{3.4e38f, 0.0f, 0.0f}, Update({1e300, 0, 0})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(s->SaveState(), before);
}

TEST_P(StatefulStrategyTest, FixedSizeRefusesOtherModels) {
  auto s = Make(4);
  EXPECT_THAT(s->AggregateFit(1, start_, Update(deltas_[0])),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto unfixed = Make();
  ASSERT_OK(RunRounds(*unfixed, start_, {deltas_[0]}).status());
  EXPECT_THAT(s->RestoreState(unfixed->SaveState()), StatusIs(absl::StatusCode::kInvalidArgument));
  // Once it holds state, an unfixed strategy refuses a model of another size too.
  EXPECT_THAT(unfixed->AggregateFit(2, std::vector<float>{0, 0}, Update({0.1, 0.1})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(AllStateful, StatefulStrategyTest,
                         ::testing::Values(StatefulCase{"FedAvgM", v1::StrategySpec::FEDAVGM},
                                           StatefulCase{"FedAdagrad", v1::StrategySpec::FEDADAGRAD},
                                           StatefulCase{"FedAdam", v1::StrategySpec::FEDADAM},
                                           StatefulCase{"FedYogi", v1::StrategySpec::FEDYOGI}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(StrategyTest, StatelessStrategiesSaveNothing) {
  for (v1::StrategySpec::Kind kind : {v1::StrategySpec::FEDAVG, v1::StrategySpec::FEDPROX}) {
    v1::StrategySpec spec;
    spec.set_kind(kind);
    ASSERT_OK_AND_ASSIGN(auto s, MakeStrategy(spec));
    EXPECT_EQ(s->SaveState(), "");
    EXPECT_OK(s->RestoreState(""));
  }
}

}  // namespace
}  // namespace tessera::coordinator
