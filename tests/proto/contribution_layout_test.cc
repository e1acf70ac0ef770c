#include "proto/contribution_layout.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<double> Add(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + b[i];
  return out;
}

TEST(StatisticsTest, PooledMeanAndPopulationStddevFromSiteSums) {
  // Site 1 holds column values {1, 3}, site 2 holds {5}; column 2 is constant 4.
  auto s1 = EncodeStatistics(2, std::vector<double>{4, 8}, std::vector<double>{10, 32});
  auto s2 = EncodeStatistics(1, std::vector<double>{5, 4}, std::vector<double>{25, 16});
  ASSERT_EQ(s1.size(), StatisticsLength(2));
  ASSERT_OK_AND_ASSIGN(PooledStatistics p, DecodeStatistics(Add(s1, s2), 2));
  EXPECT_EQ(p.num_rows, 3u);
  EXPECT_THAT(p.mean, ElementsAre(DoubleNear(3.0, 1e-12), DoubleNear(4.0, 1e-12)));
  // Population variance of {1,3,5} is 8/3; the constant column gets 1.
  EXPECT_THAT(p.stddev, ElementsAre(DoubleNear(std::sqrt(8.0 / 3.0), 1e-12), 1.0));
}

TEST(StatisticsTest, RejectsBadSums) {
  EXPECT_THAT(DecodeStatistics(std::vector<double>{1, 2}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 5")));
  EXPECT_THAT(DecodeStatistics(std::vector<double>{0.5, 1, 1}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row count")));
  EXPECT_THAT(DecodeStatistics(std::vector<double>{2, NAN, 1}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
}

TEST(FitTest, ExampleWeightedMean) {
  // Site A: 30 examples, delta (1, -1); site B: 10 examples, delta (5, 3).
  auto a = EncodeFit(30, std::vector<float>{1, -1});
  auto b = EncodeFit(10, std::vector<float>{5, 3});
  ASSERT_OK_AND_ASSIGN(AveragedUpdate u, DecodeFit(Add(a, b), 2));
  EXPECT_EQ(u.total_examples, 40);
  EXPECT_THAT(u.mean_delta, ElementsAre(DoubleNear(2.0, 1e-12), DoubleNear(0.0, 1e-12)));
  EXPECT_THAT(DecodeFit(std::vector<double>{0, 0, 0}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeFit(a, 3), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::proto
