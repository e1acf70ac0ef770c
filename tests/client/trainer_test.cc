#include "client/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/internal/random.h"
#include "client/model.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/client/test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::client::test_util::Separable;
using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// A fake model that records the rows of every batch and returns a loss of 1 and a
// gradient of ones, or NaN from call number `nan_at_call` (1-based) on.
class RecordingModel final : public Model {
 public:
  explicit RecordingModel(size_t features, int nan_at_call = 0)
      : features_(features), nan_at_call_(nan_at_call) {}
  size_t num_features() const override { return features_; }
  size_t num_parameters() const override { return features_ + 1; }
  size_t num_outputs() const override { return 1; }
  void Initialize(uint64_t, std::span<float> params) const override {
    std::fill(params.begin(), params.end(), 0.0f);
  }
  double LossAndGradient(std::span<const float>, const Dataset&, std::span<const size_t> rows,
                         double, std::span<double> grad) const override {
    batches_.emplace_back(rows.begin(), rows.end());
    for (double& g : grad) g += 1;
    if (nan_at_call_ > 0 && static_cast<int>(batches_.size()) >= nan_at_call_) return NAN;
    return 1.0;
  }
  EvaluationSums Evaluate(std::span<const float>, const Dataset&) const override { return {}; }
  void Predict(std::span<const float>, const Dataset&, std::span<double>) const override {}

  const std::vector<std::vector<size_t>>& batches() const { return batches_; }

 private:
  size_t features_;
  int nan_at_call_;
  mutable std::vector<std::vector<size_t>> batches_;
};

TEST(SplitMix64Test, MatchesReferenceOutput) {
  // Vigna's splitmix64.c seeded with 0.
  internal::SplitMix64 rng(0);
  EXPECT_EQ(rng.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.Next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.Next(), 0x06c45d188009454fULL);
}

TEST(SplitMix64Test, ShuffleIsPinned) {
  // The permutation for a seed is part of the determinism promise across builds and
  // platforms: changing it changes every federated model. Update only on purpose.
  internal::SplitMix64 rng(42);
  std::vector<size_t> items(10);
  std::iota(items.begin(), items.end(), size_t{0});
  internal::Shuffle(rng, items);
  EXPECT_THAT(items, ElementsAre(8, 3, 6, 5, 4, 0, 9, 2, 1, 7));
}

TEST(SplitMix64Test, BelowStaysInRange) {
  internal::SplitMix64 rng(7);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 3000; ++i) {
    const uint64_t v = rng.Below(3);
    ASSERT_LT(v, 3u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_GT(c, 850);
}

TEST(TrainSgdTest, EveryEpochVisitsEveryRowOnceInShuffledBatches) {
  const Dataset data = Separable(10);
  RecordingModel model(2);
  std::vector<float> params(3, 0.0f);
  TrainingOptions options;
  options.epochs = 3;
  options.batch_size = 4;
  options.learning_rate = 0.5;
  ASSERT_OK_AND_ASSIGN(TrainingReport report, TrainSgd(model, data, options, params));
  EXPECT_EQ(report.num_examples, 10u);
  EXPECT_EQ(report.steps, 9u);  // 4 + 4 + 2 per epoch
  EXPECT_DOUBLE_EQ(report.final_epoch_loss, 1.0);
  ASSERT_EQ(model.batches().size(), 9u);
  std::vector<std::vector<size_t>> epochs(3);
  for (size_t b = 0; b < 9; ++b) {
    EXPECT_EQ(model.batches()[b].size(), b % 3 == 2 ? 2u : 4u);
    for (size_t row : model.batches()[b]) epochs[b / 3].push_back(row);
  }
  std::vector<size_t> identity(10);
  std::iota(identity.begin(), identity.end(), size_t{0});
  for (const std::vector<size_t>& order : epochs) {
    std::vector<size_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, identity);
  }
  EXPECT_NE(epochs[0], identity);
  EXPECT_NE(epochs[0], epochs[1]);
  // params -= lr * grad with a gradient of ones, 9 times.
  for (float p : params) EXPECT_FLOAT_EQ(p, -4.5f);
}

TEST(TrainSgdTest, SameSeedSameParamsDifferentSeedDifferentParams) {
  const Dataset data = Separable(101);
  auto model = MakeLogisticRegression(2);
  TrainingOptions options;
  options.epochs = 3;
  options.batch_size = 8;
  options.learning_rate = 0.3;
  options.l2 = 0.01;
  options.seed = 1234;
  auto train = [&](uint64_t seed) {
    std::vector<float> params(3, 0.0f);
    TrainingOptions o = options;
    o.seed = seed;
    EXPECT_OK(TrainSgd(*model, data, o, params));
    return params;
  };
  const std::vector<float> a = train(1234);
  const std::vector<float> b = train(1234);
  const std::vector<float> c = train(1235);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_NE(a, c);
}

TEST(TrainSgdTest, LearnsSeparableData) {
  const Dataset data = Separable(200);
  auto model = MakeLogisticRegression(2);
  std::vector<float> params(3, 0.0f);
  TrainingOptions options;
  options.epochs = 5;
  options.batch_size = 16;
  options.learning_rate = 0.5;
  ASSERT_OK_AND_ASSIGN(TrainingReport report, TrainSgd(*model, data, options, params));
  EXPECT_LT(report.final_epoch_loss, 0.2);
  EXPECT_EQ(model->Evaluate(params, data).num_correct, 200u);
}

TEST(TrainSgdTest, RejectsBadArguments) {
  const Dataset data = Separable(10);
  auto model = MakeLogisticRegression(2);
  std::vector<float> params(3, 0.0f);
  TrainingOptions options;
  EXPECT_THAT(TrainSgd(*model, Dataset{}, options, params),
              StatusIs(kInvalid, HasSubstr("no rows")));
  std::vector<float> wrong(2, 0.0f);
  EXPECT_THAT(TrainSgd(*model, data, options, wrong), StatusIs(kInvalid, HasSubstr("parameters")));
  auto other = MakeLogisticRegression(3);
  std::vector<float> four(4, 0.0f);
  EXPECT_THAT(TrainSgd(*other, data, options, four), StatusIs(kInvalid, HasSubstr("features")));
  TrainingOptions bad = options;
  bad.batch_size = 0;
  EXPECT_THAT(TrainSgd(*model, data, bad, params), StatusIs(kInvalid, HasSubstr("batch_size")));
  for (double lr : {0.0, -0.1, double{NAN}, double{INFINITY}}) {
    bad = options;
    bad.learning_rate = lr;
    EXPECT_THAT(TrainSgd(*model, data, bad, params),
                StatusIs(kInvalid, HasSubstr("learning_rate")));
  }
  bad = options;
  bad.l2 = -1;
  EXPECT_THAT(TrainSgd(*model, data, bad, params), StatusIs(kInvalid, HasSubstr("l2")));
}

TEST(TrainSgdTest, NonFiniteLossRestoresParams) {
  const Dataset data = Separable(10);
  RecordingModel model(2, /*nan_at_call=*/3);
  std::vector<float> params = {0.25f, -1.5f, 3.0f};
  const std::vector<float> before = params;
  TrainingOptions options;
  options.epochs = 2;
  options.batch_size = 4;
  EXPECT_THAT(TrainSgd(model, data, options, params),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("non-finite")));
  EXPECT_EQ(params, before);
}

TEST(TrainSgdTest, DivergenceRestoresParams) {
  // With l2 * learning_rate = 3 each step multiplies the weights by about -2, so they
  // overflow float after some hundred steps.
  const Dataset data = Separable(50);
  auto model = MakeLogisticRegression(2);
  std::vector<float> params = {0.5f, 0.5f, 0.0f};
  const std::vector<float> before = params;
  TrainingOptions options;
  options.epochs = 200;
  options.learning_rate = 3;
  options.l2 = 1;
  EXPECT_THAT(TrainSgd(*model, data, options, params),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("non-finite")));
  EXPECT_EQ(params, before);
}

TEST(TrainSgdTest, RejectsDataTheModelCannotUse) {
  Dataset data = Separable(10);
  data.y[7] = 2;
  auto model = MakeLogisticRegression(2);
  std::vector<float> params(3, 0.0f);
  EXPECT_THAT(TrainSgd(*model, data, TrainingOptions(), params),
              StatusIs(kInvalid, HasSubstr("training data: data row 7")));
}

// The demo task: breast cancer, reference split, standardised with training statistics,
// logistic regression with sklearn's default C = 1.
class BreastCancerTest : public ::testing::Test {
 protected:
  static Dataset Rows(const Dataset& all, const std::vector<size_t>& rows) {
    Dataset out;
    out.num_rows = rows.size();
    out.num_features = all.num_features;
    for (size_t r : rows) {
      out.x.insert(out.x.end(), all.x.begin() + r * all.num_features,
                   all.x.begin() + (r + 1) * all.num_features);
      out.y.push_back(all.y[r]);
    }
    return out;
  }

  void SetUp() override {
    const std::string dir = std::string(TESSERA_SOURCE_DIR) + "/deploy/data/";
    ASSERT_OK_AND_ASSIGN(CsvTable table, LoadCsv(dir + "breast_cancer_wisconsin.csv"));
    std::vector<std::string> features(table.header.begin(), table.header.end() - 1);
    ASSERT_OK_AND_ASSIGN(Dataset all,
                         SelectColumns(table, features, table.header.back(), "breast_cancer"));
    ASSERT_OK(CheckBinaryLabels(all, "breast_cancer"));

    ASSERT_OK_AND_ASSIGN(std::string test_text,
                         common::ReadFile(dir + "splits/breast_cancer_wisconsin.test_rows.txt"));
    std::vector<bool> is_test(all.num_rows, false);
    for (absl::string_view line : absl::StrSplit(test_text, '\n', absl::SkipEmpty())) {
      size_t row;
      ASSERT_TRUE(absl::SimpleAtoi(line, &row)) << line;
      ASSERT_LT(row, all.num_rows);
      is_test[row] = true;
    }
    std::vector<size_t> train_rows, test_rows;
    for (size_t r = 0; r < all.num_rows; ++r) (is_test[r] ? test_rows : train_rows).push_back(r);
    ASSERT_EQ(train_rows.size(), 455u);
    ASSERT_EQ(test_rows.size(), 114u);
    train_ = Rows(all, train_rows);
    test_ = Rows(all, test_rows);

    // Training statistics only; population std; a constant column gets std 1.
    const LocalStatistics stats = ComputeStatistics(train_);
    const double n = static_cast<double>(stats.num_rows);
    std::vector<double> mean(train_.num_features), stddev(train_.num_features);
    for (size_t j = 0; j < train_.num_features; ++j) {
      mean[j] = stats.sums[j] / n;
      const double var = std::max(0.0, stats.sums_of_squares[j] / n - mean[j] * mean[j]);
      stddev[j] = var > 0 ? std::sqrt(var) : 1.0;
    }
    ASSERT_OK(Standardize(mean, stddev, &train_));
    ASSERT_OK(Standardize(mean, stddev, &test_));
  }

  // sklearn's LogisticRegression() minimises C * sum(loss) + 0.5 * ||w||^2; as a mean
  // loss that is l2 = 1 / (C * n_train).
  double SklearnL2() const { return 1.0 / (1.0 * static_cast<double>(train_.num_rows)); }

  struct Result {
    double accuracy;
    double log_loss;
  };
  Result Train(const TrainingOptions& options) {
    auto model = MakeLogisticRegression(train_.num_features);
    std::vector<float> params(model->num_parameters());
    model->Initialize(0, params);
    absl::StatusOr<TrainingReport> report = TrainSgd(*model, train_, options, params);
    EXPECT_OK(report);
    const EvaluationSums test = model->Evaluate(params, test_);
    const Result result = {static_cast<double>(test.num_correct) / test.num_examples,
                           test.loss_sum / test.num_examples};
    std::printf("lr %g, batch %u, epochs %u: test accuracy %.4f (%lu/%lu), log-loss %.4f\n",
                options.learning_rate, options.batch_size, options.epochs, result.accuracy,
                static_cast<unsigned long>(test.num_correct),
                static_cast<unsigned long>(test.num_examples), result.log_loss);
    return result;
  }

  Dataset train_;
  Dataset test_;
};

TEST_F(BreastCancerTest, FullBatchGradientDescentFindsSklearnOptimum) {
  // With the whole training split as one batch, SGD is gradient descent on a strongly
  // convex objective and must land on sklearn's solution: accuracy 0.9737, log-loss 0.0922.
  TrainingOptions options;
  options.epochs = 2000;
  options.batch_size = static_cast<uint32_t>(train_.num_rows);
  options.learning_rate = 1.0;
  options.l2 = SklearnL2();
  const Result result = Train(options);
  EXPECT_NEAR(result.accuracy, 111.0 / 114.0, 1e-9);
  EXPECT_NEAR(result.log_loss, 0.0922, 0.0006);
}

TEST_F(BreastCancerTest, SgdReachesCentralisedAccuracy) {
  // Centralised sklearn scores 0.9737. Over 100 seeds these settings give 111/114 in 86
  // runs, 110 in 12, 109 (0.956) in one; seed 0 gives 111.
  TrainingOptions options;
  options.epochs = 30;
  options.batch_size = 32;
  options.learning_rate = 0.1;
  options.l2 = SklearnL2();
  options.seed = 0;
  const Result result = Train(options);
  EXPECT_GE(result.accuracy, 0.956);
  EXPECT_LT(result.log_loss, 0.12);
}

}  // namespace
}  // namespace tessera::client
