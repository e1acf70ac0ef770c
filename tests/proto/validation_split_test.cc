// A training task's validation split and round selection (proto/validation_split.h): which
// rows are held out, the selection rule with min_delta and patience, and the spec checks.
#include "proto/validation_split.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "proto/validation.h"

namespace tessera::proto {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

v1::TaskSpec Spec(v1::ModelSpec::Kind kind = v1::ModelSpec::LOGISTIC_REGRESSION) {
  v1::TaskSpec spec;
  spec.set_name("split");
  spec.set_rounds(10);
  spec.mutable_dataset()->set_id("d");
  spec.mutable_dataset()->add_features("a");
  spec.mutable_dataset()->set_label("y");
  spec.mutable_model()->set_kind(kind);
  if (kind == v1::ModelSpec::COX_PH) spec.mutable_dataset()->set_event("e");
  spec.mutable_training()->set_learning_rate(0.1);
  spec.mutable_training()->set_validation_fraction(0.2);
  return spec;
}

std::vector<std::string> Errors(const v1::TaskSpec& spec) {
  std::vector<std::string> out;
  for (const auto& e : ValidateTaskSpec(spec)) out.push_back(e.path + ": " + e.message);
  return out;
}

size_t Count(const std::vector<bool>& mask) {
  return static_cast<size_t>(std::count(mask.begin(), mask.end(), true));
}

TEST(ValidationSplitTest, HoldsOutTheRoundedShareOfRowsTheSameWayEveryTime) {
  EXPECT_EQ(ValidationRowCount(100, 0.2), 20u);
  EXPECT_EQ(ValidationRowCount(7, 0.25), 2u);   // 1.75
  EXPECT_EQ(ValidationRowCount(10, 0.25), 3u);  // 2.5: halves up
  EXPECT_EQ(ValidationRowCount(1, 0.2), 0u);
  EXPECT_EQ(ValidationRowCount(100, 0), 0u);

  const std::vector<bool> a = ValidationMask(1000, 0.2, 42);
  EXPECT_EQ(a.size(), 1000u);
  EXPECT_EQ(Count(a), 200u);
  EXPECT_EQ(ValidationMask(1000, 0.2, 42), a);  // a function of its arguments only
  const std::vector<bool> other = ValidationMask(1000, 0.2, 43);
  EXPECT_EQ(Count(other), 200u);
  EXPECT_NE(other, a);
  // Spread over the file, not a block: both halves hold some.
  EXPECT_GT(std::count(a.begin(), a.begin() + 500, true), 60);
  EXPECT_GT(std::count(a.begin() + 500, a.end(), true), 60);
  // A larger fraction holds out a superset (the rows with the smallest keys).
  const std::vector<bool> more = ValidationMask(1000, 0.3, 42);
  for (size_t r = 0; r < a.size(); ++r) {
    if (a[r]) {
      EXPECT_TRUE(more[r]) << r;
    }
  }
  EXPECT_EQ(Count(ValidationMask(1000, 0, 42)), 0u);
}

TEST(ValidationSplitTest, SelectsTheLastRoundThatImprovedByMoreThanMinDelta) {
  v1::TaskSpec spec = Spec();
  spec.mutable_training()->mutable_early_stopping()->set_patience(3);
  ApplyTaskDefaults(&spec);
  ASSERT_EQ(SelectionMetric(spec), "loss");
  const std::vector<RoundValue> losses = {{1, 0.9}, {2, 0.7}, {3, 0.6}, {4, 0.65}, {5, 0.61}};
  Selection s = SelectRound(spec, losses);
  EXPECT_EQ(s.round, 3u);
  EXPECT_EQ(s.value, 0.6);
  EXPECT_FALSE(s.stop);  // two rounds after the best, patience 3
  std::vector<RoundValue> longer = losses;
  longer.push_back({6, 0.62});
  s = SelectRound(spec, longer);
  EXPECT_EQ(s.round, 3u);
  EXPECT_TRUE(s.stop);

  // min_delta: 0.595 is not better than 0.6 by more than 0.01.
  spec.mutable_training()->mutable_early_stopping()->set_min_delta(0.01);
  longer[4].value = 0.595;
  s = SelectRound(spec, longer);
  EXPECT_EQ(s.round, 3u);
  EXPECT_TRUE(s.stop);

  // Higher is better for auc; NaN never improves; rounds without a value do not count.
  spec.mutable_training()->mutable_early_stopping()->set_metric("auc");
  spec.mutable_training()->mutable_early_stopping()->set_min_delta(0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s = SelectRound(spec, std::vector<RoundValue>{{1, nan}, {2, 0.7}, {4, 0.8}, {5, nan}, {6, 0.79}});
  EXPECT_EQ(s.round, 4u);
  EXPECT_FALSE(s.stop);
  EXPECT_EQ(SelectRound(spec, std::vector<RoundValue>{}).round, 0u);

  // Without early stopping the selection still runs, but training never stops.
  v1::TaskSpec no_stop = Spec();
  ApplyTaskDefaults(&no_stop);
  s = SelectRound(no_stop,
                  std::vector<RoundValue>{
                      {1, 0.5}, {2, 0.6}, {3, 0.7}, {4, 0.8}, {5, 0.9}, {6, 1.0}, {7, 1.1}});
  EXPECT_EQ(s.round, 1u);
  EXPECT_FALSE(s.stop);
}

TEST(ValidationSplitTest, DefaultsFollowTheModel) {
  v1::TaskSpec spec = Spec();
  spec.mutable_training()->mutable_early_stopping();
  ApplyTaskDefaults(&spec);
  EXPECT_EQ(spec.training().early_stopping().metric(), "loss");
  EXPECT_EQ(spec.training().early_stopping().patience(), kDefaultPatience);
  EXPECT_THAT(Errors(spec), IsEmpty());

  v1::TaskSpec cox = Spec(v1::ModelSpec::COX_PH);
  EXPECT_EQ(SelectionMetric(cox), "c_index");
  cox.mutable_training()->mutable_early_stopping();
  ApplyTaskDefaults(&cox);
  EXPECT_EQ(cox.training().early_stopping().metric(), "c_index");
  EXPECT_FALSE(LowerIsBetter("c_index"));
  EXPECT_TRUE(LowerIsBetter("rmse"));
  EXPECT_THAT(Errors(cox), IsEmpty());
}

TEST(ValidationSplitTest, RefusesWhatCannotSelectARoundNamingTheField) {
  v1::TaskSpec big = Spec();
  big.mutable_training()->set_validation_fraction(0.6);
  EXPECT_THAT(Errors(big),
              Contains(HasSubstr("training.validation_fraction: must be in [0, 0.5]")));
  big.mutable_training()->set_validation_fraction(std::nan(""));
  EXPECT_THAT(Errors(big), Contains(HasSubstr("training.validation_fraction")));

  v1::TaskSpec no_split = Spec();
  no_split.mutable_training()->clear_validation_fraction();
  no_split.mutable_training()->mutable_early_stopping()->set_patience(3);
  EXPECT_THAT(Errors(no_split),
              Contains(HasSubstr("training.early_stopping: needs training.validation_fraction")));

  v1::TaskSpec metric = Spec(v1::ModelSpec::LINEAR_REGRESSION);
  metric.mutable_training()->mutable_early_stopping()->set_metric("auc");
  EXPECT_THAT(Errors(metric),
              Contains(HasSubstr("training.early_stopping.metric: 'auc' is not a metric this "
                                 "model reports (loss, rmse, r2)")));
  metric.mutable_training()->mutable_early_stopping()->set_metric("num_examples");
  EXPECT_THAT(Errors(metric), Contains(HasSubstr("training.early_stopping.metric")));

  v1::TaskSpec patience = Spec();
  patience.mutable_training()->mutable_early_stopping()->set_patience(1001);
  patience.mutable_training()->mutable_early_stopping()->set_min_delta(-1);
  EXPECT_THAT(Errors(patience), Contains(HasSubstr("training.early_stopping.patience")));
  EXPECT_THAT(Errors(patience), Contains(HasSubstr("training.early_stopping.min_delta")));

  v1::TaskSpec noised = Spec();
  noised.mutable_privacy()->set_clip_norm(1);
  noised.mutable_privacy()->set_noise_multiplier(1);
  noised.mutable_privacy()->set_evaluation_noise_multiplier(1);
  EXPECT_THAT(Errors(noised), Contains(HasSubstr("training.validation_fraction: not with "
                                                 "privacy.evaluation_noise_multiplier")));
}

// training.class_weights: one weight per class of a classification model.
TEST(ClassWeightsValidationTest, OneFinitePositiveWeightPerClassOfAClassifier) {
  v1::TaskSpec binary = Spec();
  binary.mutable_training()->clear_validation_fraction();
  binary.mutable_training()->add_class_weights(1);
  binary.mutable_training()->add_class_weights(4);
  EXPECT_THAT(Errors(binary), IsEmpty());
  binary.mutable_training()->add_class_weights(2);
  EXPECT_THAT(
      Errors(binary),
      Contains(HasSubstr("training.class_weights: has 3 entries; the model has 2 classes")));

  v1::TaskSpec softmax = Spec(v1::ModelSpec::SOFTMAX_REGRESSION);
  softmax.mutable_model()->set_num_classes(3);
  for (double w : {1.0, 0.0, std::numeric_limits<double>::infinity()}) {
    softmax.mutable_training()->add_class_weights(w);
  }
  EXPECT_THAT(Errors(softmax), Contains(HasSubstr("training.class_weights[1]: must be a finite")));
  EXPECT_THAT(Errors(softmax), Contains(HasSubstr("training.class_weights[2]: must be a finite")));

  v1::TaskSpec regression = Spec(v1::ModelSpec::LINEAR_REGRESSION);
  regression.mutable_training()->add_class_weights(1);
  EXPECT_THAT(Errors(regression),
              Contains(HasSubstr("training.class_weights: only for a classification model")));
}

}  // namespace
}  // namespace tessera::proto
