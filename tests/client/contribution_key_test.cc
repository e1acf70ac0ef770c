// The contribution key names what determines a site's vector: varying anything else must
// give the same key (a coordinator must not buy a second vector with it), varying anything
// the vector depends on must give another.
#include "client/contribution_key.h"

#include <functional>
#include <string>
#include <vector>

#include "common/proto_text.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/task.pb.h"
#include "proto/validation.h"

namespace tessera::client {
namespace {

v1::TaskSpec Spec() {
  v1::TaskSpec spec;
  EXPECT_TRUE(common::ParseTextProto(R"pb(
                                       name: "t"
                                       dataset { id: "d" features: "a" features: "b" label: "y" }
                                       model { kind: LOGISTIC_REGRESSION inverse_regularization: 1 }
                                       training { learning_rate: 0.1 }
                                       rounds: 5
                                       seed: 3
                                     )pb",
                                     "spec", &spec, nullptr)
                  .ok());
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

const std::string kModel(32, 'm');

using Edit = std::function<void(v1::TaskSpec&)>;

// For every stage: the key is unchanged by `edit`.
void ExpectSameKey(const Edit& edit, const char* what) {
  for (v1::Stage stage :
       {v1::STAGE_STATISTICS, v1::STAGE_FIT, v1::STAGE_EVALUATE, v1::STAGE_TEST}) {
    v1::TaskSpec changed = Spec();
    edit(changed);
    EXPECT_EQ(ContributionKey(Spec(), stage, kModel), ContributionKey(changed, stage, kModel))
        << what << " changed the key of stage " << v1::Stage_Name(stage);
  }
}

TEST(ContributionKeyTest, IsThirtyTwoBytesAndDeterministic) {
  EXPECT_EQ(ContributionKey(Spec(), v1::STAGE_FIT, kModel).size(), 32u);
  EXPECT_EQ(ContributionKey(Spec(), v1::STAGE_FIT, kModel),
            ContributionKey(Spec(), v1::STAGE_FIT, kModel));
}

TEST(ContributionKeyTest, WhatDoesNotDetermineTheVectorBuysNoSecondKey) {
  ExpectSameKey([](v1::TaskSpec& s) { s.set_name("another-task"); }, "the name");
  ExpectSameKey([](v1::TaskSpec& s) { s.set_description("x"); }, "the description");
  ExpectSameKey([](v1::TaskSpec& s) { s.set_rounds(99); }, "rounds");
  ExpectSameKey([](v1::TaskSpec& s) { s.set_min_clients(7); }, "min_clients");
  ExpectSameKey([](v1::TaskSpec& s) { s.set_round_deadline_seconds(9); }, "the deadline");
  ExpectSameKey([](v1::TaskSpec& s) { s.set_max_round_attempts(2); }, "attempts");
  ExpectSameKey([](v1::TaskSpec& s) { s.mutable_strategy()->set_kind(v1::StrategySpec::FEDADAM); },
                "the strategy");
  ExpectSameKey([](v1::TaskSpec& s) { s.mutable_secure_aggregation()->set_threshold(9); },
                "the threshold");
  ExpectSameKey([](v1::TaskSpec& s) { s.mutable_secure_aggregation()->set_clip(1); }, "the clip");
  ExpectSameKey([](v1::TaskSpec& s) { s.mutable_privacy()->set_noise_multiplier(2); },
                "the privacy settings");
}

TEST(ContributionKeyTest, WhatDeterminesTheVectorGivesAnotherKey) {
  const std::string fit = ContributionKey(Spec(), v1::STAGE_FIT, kModel);
  auto fit_with = [](const Edit& edit) {
    v1::TaskSpec s = Spec();
    edit(s);
    return ContributionKey(s, v1::STAGE_FIT, kModel);
  };
  EXPECT_NE(fit, ContributionKey(Spec(), v1::STAGE_FIT, std::string(32, 'n')));
  EXPECT_NE(fit, ContributionKey(Spec(), v1::STAGE_EVALUATE, kModel));
  EXPECT_NE(fit, fit_with([](v1::TaskSpec& s) { s.set_seed(4); }));
  EXPECT_NE(fit, fit_with([](v1::TaskSpec& s) { s.mutable_training()->set_learning_rate(0.2); }));
  EXPECT_NE(fit, fit_with([](v1::TaskSpec& s) { s.mutable_training()->set_local_epochs(3); }));
  EXPECT_NE(fit,
            fit_with([](v1::TaskSpec& s) { s.mutable_model()->set_inverse_regularization(2); }));
  EXPECT_NE(fit, fit_with([](v1::TaskSpec& s) { s.mutable_dataset()->set_id("other"); }));
  EXPECT_NE(fit, fit_with([](v1::TaskSpec& s) { s.mutable_dataset()->set_features(1, "c"); }));
}

// The statistics of a dataset's columns do not depend on the model or its training: one
// contribution whatever the task.
TEST(ContributionKeyTest, StatisticsDependOnTheColumnsOnly) {
  const std::string stats = ContributionKey(Spec(), v1::STAGE_STATISTICS, kModel);
  v1::TaskSpec other = Spec();
  other.mutable_training()->set_learning_rate(5);
  other.set_seed(11);
  EXPECT_EQ(stats, ContributionKey(other, v1::STAGE_STATISTICS, std::string(32, 'z')));
  other.mutable_dataset()->add_features("c");
  EXPECT_NE(stats, ContributionKey(other, v1::STAGE_STATISTICS, kModel));
}

// An evaluation does not depend on the penalty the model was trained with.
TEST(ContributionKeyTest, EvaluationIgnoresThePenaltyAndTraining) {
  const std::string eval = ContributionKey(Spec(), v1::STAGE_EVALUATE, kModel);
  v1::TaskSpec other = Spec();
  other.mutable_model()->set_inverse_regularization(5);
  other.mutable_training()->set_learning_rate(5);
  EXPECT_EQ(eval, ContributionKey(other, v1::STAGE_EVALUATE, kModel));
}

// A validation split: the statistics, fit and evaluation vectors sum over other rows, so
// they are other keys; the test session's vector (the test rows) is the one an EVALUATE
// without a split sends, so it is the same key: a model evaluated on the test rows in one
// stage is never evaluated on them again in the other. Patience and the metric change no
// vector and buy nothing.
TEST(ContributionKeyTest, AValidationSplitKeysItsRowsAndTheTestSessionIsTheTestRowsKey) {
  v1::TaskSpec split = Spec();
  split.mutable_training()->set_validation_fraction(0.2);
  for (v1::Stage stage : {v1::STAGE_STATISTICS, v1::STAGE_FIT, v1::STAGE_EVALUATE}) {
    EXPECT_NE(ContributionKey(Spec(), stage, kModel), ContributionKey(split, stage, kModel))
        << v1::Stage_Name(stage);
  }
  v1::TaskSpec other_seed = split;
  other_seed.set_seed(99);
  EXPECT_NE(ContributionKey(split, v1::STAGE_EVALUATE, kModel),
            ContributionKey(other_seed, v1::STAGE_EVALUATE, kModel));
  EXPECT_NE(ContributionKey(split, v1::STAGE_STATISTICS, kModel),
            ContributionKey(other_seed, v1::STAGE_STATISTICS, kModel));

  EXPECT_EQ(ContributionKey(split, v1::STAGE_TEST, kModel),
            ContributionKey(Spec(), v1::STAGE_EVALUATE, kModel));
  EXPECT_NE(ContributionKey(split, v1::STAGE_TEST, kModel),
            ContributionKey(split, v1::STAGE_EVALUATE, kModel));

  v1::TaskSpec stopping = split;
  stopping.mutable_training()->mutable_early_stopping()->set_patience(7);
  stopping.mutable_training()->mutable_early_stopping()->set_metric("auc");
  for (v1::Stage stage :
       {v1::STAGE_STATISTICS, v1::STAGE_FIT, v1::STAGE_EVALUATE, v1::STAGE_TEST}) {
    EXPECT_EQ(ContributionKey(split, stage, kModel), ContributionKey(stopping, stage, kModel))
        << v1::Stage_Name(stage);
  }
}

TEST(ContributionKeyTest, AnalyticsDependsOnQueriesAndFilterNotOnCellSize) {
  v1::TaskSpec spec;
  spec.mutable_dataset()->set_id("d");
  spec.mutable_analytics()->add_queries()->set_column("age");
  const std::string key = ContributionKey(spec, v1::STAGE_ANALYTICS, "");
  v1::TaskSpec other = spec;
  other.mutable_analytics()->set_min_cohort(9);
  EXPECT_EQ(key, ContributionKey(other, v1::STAGE_ANALYTICS, kModel));
  other.mutable_analytics()->mutable_filter()->set_column("sex");
  EXPECT_NE(key, ContributionKey(other, v1::STAGE_ANALYTICS, ""));
}

}  // namespace
}  // namespace tessera::client
