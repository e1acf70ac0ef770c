#include "coordinator/strategy.h"

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
  std::vector<double> sum = Add(Add(proto::EncodeFit(300, delta(site_a)),
                                    proto::EncodeFit(100, delta(site_b))),
                                proto::EncodeFit(100, delta(site_c)));
  ASSERT_OK_AND_ASSIGN(proto::AveragedUpdate update, proto::DecodeFit(sum, 3));
  EXPECT_EQ(update.total_examples, 500);

  auto fedavg = MakeFedAvg(1.0);
  ASSERT_OK_AND_ASSIGN(std::vector<float> next, fedavg->AggregateFit(1, global, update));
  // (300*2 + 100*-1 + 100*1)/500 = 1.2; (300*-1 + 0 + 100*-2)/500 = -1; (150+150-50)/500 = 0.5
  EXPECT_THAT(next, ElementsAre(FloatNear(1.2f, 1e-6), FloatNear(-1.0f, 1e-6),
                                FloatNear(0.5f, 1e-6)));

  // Unweighted averaging would give (2-1+1)/3 = 0.667 for the first parameter: the test
  // tells the two apart.
  EXPECT_GT(std::abs(next[0] - 2.0f / 3.0f), 0.5f);
}

TEST(FedAvgTest, ServerLearningRateScalesTheStep) {
  proto::AveragedUpdate update;
  update.total_examples = 10;
  update.mean_delta = {1.0, -4.0};
  auto half = MakeFedAvg(0.5);
  ASSERT_OK_AND_ASSIGN(std::vector<float> next, half->AggregateFit(1, std::vector<float>{0, 0}, update));
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

TEST(StrategyTest, AggregateEvaluateTurnsSumsIntoMetrics) {
  auto fedavg = MakeFedAvg(1.0);
  std::vector<double> sum = Add(proto::EncodeEvaluate(10, 3.0, 9), proto::EncodeEvaluate(30, 5.0, 27));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Metric> metrics, fedavg->AggregateEvaluate(1, sum));
  ASSERT_EQ(metrics.size(), 3u);
  EXPECT_EQ(metrics[0].name(), "loss");
  EXPECT_DOUBLE_EQ(metrics[0].value(), 8.0 / 40);
  EXPECT_EQ(metrics[1].name(), "accuracy");
  EXPECT_DOUBLE_EQ(metrics[1].value(), 36.0 / 40);
  EXPECT_EQ(metrics[2].name(), "num_examples");
  EXPECT_DOUBLE_EQ(metrics[2].value(), 40);
}

TEST(StrategyTest, MakeStrategyDefaultsToFedAvg) {
  v1::StrategySpec spec;
  ASSERT_OK_AND_ASSIGN(auto s, MakeStrategy(spec));
  spec.set_kind(static_cast<v1::StrategySpec::Kind>(99));
  EXPECT_THAT(MakeStrategy(spec), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::coordinator
