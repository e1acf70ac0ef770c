// Issue 11, "One cohort per round", the site's side: a site whose rows could not train
// (a label the model cannot take) or evaluate (the same in its held-out file) declines the
// statistics stage, so it is never counted in the pooled standardisation it would not train
// on. Before the fix it contributed its statistics and then declined every FIT.
#include "client/work_processor.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "proto/validation_split.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::testing::HasSubstr;

// A work item of task-1 over dataset "clinic" (age, bmi -> outcome), a logistic regression
// of `rounds` rounds for a cohort of 3; the spec without its defaults applied yet.
v1::WorkItem ClinicItem(v1::Stage stage, uint32_t round, uint32_t rounds) {
  v1::WorkItem item;
  item.set_task_id("task-1");
  item.set_round(round);
  item.set_stage(stage);
  item.set_cohort_size(3);
  item.mutable_secagg()->mutable_setup()->set_threshold(3);
  v1::TaskSpec& spec = *item.mutable_spec();
  spec.set_name("clinic-logistic");
  spec.mutable_dataset()->set_id("clinic");
  spec.mutable_dataset()->add_features("age");
  spec.mutable_dataset()->add_features("bmi");
  spec.mutable_dataset()->set_label("outcome");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_training()->set_learning_rate(0.1);
  spec.set_rounds(rounds);
  spec.set_min_clients(3);
  return item;
}

class StatisticsStageChecksTest : public ::testing::Test {
 protected:
  // A site with `train` (and `test`, if not empty) as its CSV files of dataset "clinic".
  WorkOutcome Statistics(const std::string& train, const std::string& test = "") {
    v1::ClientConfig config;
    config.set_coordinator_address("localhost:1");
    v1::LocalDataset* local = config.add_datasets();
    local->set_id("clinic");
    local->set_train_csv(temp_.File("train.csv"));
    tessera::testing::WriteTestFile(local->train_csv(), train);
    if (!test.empty()) {
      local->set_test_csv(temp_.File("test.csv"));
      tessera::testing::WriteTestFile(local->test_csv(), test);
    }
    proto::ApplyClientDefaults(&config);
    WorkProcessor site("site-a", config);

    v1::WorkItem item = ClinicItem(v1::STAGE_STATISTICS, 0, 1);
    v1::TaskSpec& spec = *item.mutable_spec();
    proto::ApplyTaskDefaults(&spec);
    item.set_spec_hash(crypto::HashTaskSpec(spec));
    return site.Process(item);
  }

  tessera::testing::TempDir temp_;
};

constexpr char kGood[] = "age,bmi,outcome\n50,22.5,1\n61,30.1,0\n45,27.0,1\n";
// A label a logistic regression cannot take (it needs 0/1).
constexpr char kBadLabel[] = "age,bmi,outcome\n50,22.5,1\n61,30.1,2\n45,27.0,1\n";

TEST_F(StatisticsStageChecksTest, GoodRowsContribute) {
  const WorkOutcome out = Statistics(kGood, kGood);
  ASSERT_TRUE(out.contribution.has_value()) << out.decline.detail();
  EXPECT_EQ(out.contribution->at(0), 3) << "the row count";
}

TEST_F(StatisticsStageChecksTest, BadTrainingLabelDeclinesTheStatistics) {
  const WorkOutcome out = Statistics(kBadLabel);
  EXPECT_FALSE(out.contribution.has_value()) << "counted although it could not train";
  EXPECT_EQ(out.decline.reason(), v1::Decline::DATA_ERROR);
  // A fixed text: no row, no value.
  EXPECT_THAT(out.decline.detail(), HasSubstr("details in the site's log"));
  EXPECT_THAT(out.decline.detail(), ::testing::Not(HasSubstr("2")));
}

TEST_F(StatisticsStageChecksTest, BadHeldOutLabelDeclinesTheStatistics) {
  const WorkOutcome out = Statistics(kGood, kBadLabel);
  EXPECT_FALSE(out.contribution.has_value()) << "counted although it could not evaluate";
  EXPECT_EQ(out.decline.reason(), v1::Decline::DATA_ERROR);
}

TEST_F(StatisticsStageChecksTest, MissingColumnDeclinesNamingTheColumn) {
  const WorkOutcome out = Statistics("bmi,outcome\n22.5,1\n30.1,0\n27.0,1\n");
  EXPECT_FALSE(out.contribution.has_value());
  EXPECT_EQ(out.decline.reason(), v1::Decline::DATA_ERROR);
  EXPECT_THAT(out.decline.detail(), HasSubstr("column 'age'"));
}

// Columns the task does not use may hold anything (a text column, NA, empty cells): the
// site contributes as if they were not there. A task that uses such a column is declined,
// naming the column and never a cell.
constexpr char kWithNotes[] =
    "age,bmi,notes,smoker,outcome\n50,22.5,seen twice,NA,1\n61,30.1,,1,0\n45,27.0,ok,0,1\n";

TEST_F(StatisticsStageChecksTest, TextAndMissingCellsInUnusedColumnsAreIgnored) {
  const WorkOutcome with_notes = Statistics(kWithNotes, kWithNotes);
  ASSERT_TRUE(with_notes.contribution.has_value()) << with_notes.decline.detail();
  const WorkOutcome plain = Statistics(kGood, kGood);
  ASSERT_TRUE(plain.contribution.has_value());
  EXPECT_EQ(*with_notes.contribution, *plain.contribution);
}

TEST_F(StatisticsStageChecksTest, AUsedColumnWithMissingCellsDeclinesNamingOnlyTheColumn) {
  const WorkOutcome out = Statistics("age,bmi,outcome\n50,22.5,1\n61,NA,0\n45,seven,1\n");
  EXPECT_FALSE(out.contribution.has_value());
  EXPECT_EQ(out.decline.reason(), v1::Decline::DATA_ERROR);
  EXPECT_THAT(out.decline.detail(), HasSubstr("column 'bmi'"));
  EXPECT_THAT(out.decline.detail(), HasSubstr("not numbers"));
  EXPECT_THAT(out.decline.detail(), ::testing::Not(HasSubstr("seven")));
  EXPECT_THAT(out.decline.detail(), ::testing::Not(HasSubstr("line")));
}

// One session per round: a FIT_EVALUATE vector is exactly the FIT vector followed by the
// EVALUATE vector of the same model, each as the site computes it alone.
class FitEvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.set_coordinator_address("localhost:1");
    v1::LocalDataset* local = config_.add_datasets();
    local->set_id("clinic");
    local->set_train_csv(temp_.File("train.csv"));
    local->set_test_csv(temp_.File("test.csv"));
    tessera::testing::WriteTestFile(local->train_csv(), kGood);
    tessera::testing::WriteTestFile(local->test_csv(), "age,bmi,outcome\n58,24.0,0\n40,31.5,1\n");
    proto::ApplyClientDefaults(&config_);
  }

  v1::WorkItem Item(v1::Stage stage, double evaluation_noise = 0) const {
    v1::WorkItem item = ClinicItem(stage, 2, 3);
    v1::TaskSpec& spec = *item.mutable_spec();
    if (evaluation_noise > 0) {
      v1::PrivacySpec& privacy = *spec.mutable_privacy();
      privacy.set_noise_multiplier(1.0);
      privacy.set_clip_norm(1.0);
      privacy.set_epsilon_budget(100);
      privacy.set_delta(1e-5);
      privacy.set_evaluation_noise_multiplier(evaluation_noise);
    }
    proto::ApplyTaskDefaults(&spec);
    item.set_spec_hash(crypto::HashTaskSpec(spec));
    const std::vector<float> model = {0.1f, -0.2f, 0.05f};
    item.mutable_model()->mutable_values()->Assign(model.begin(), model.end());
    item.set_model_hash(crypto::HashModel(model));
    v1::Standardization& s = *item.mutable_standardization();
    s.add_mean(52);
    s.add_mean(27);
    s.add_stddev(7);
    s.add_stddev(3);
    s.set_num_train_rows(9);
    item.set_l2(proto::ResolvedL2(spec.model(), 9));
    return item;
  }

  tessera::testing::TempDir temp_;
  v1::ClientConfig config_;
};

TEST_F(FitEvaluateTest, TheVectorIsTheFitVectorThenTheEvaluateVector) {
  WorkProcessor site("site-a", config_);
  const WorkOutcome fit = site.Process(Item(v1::STAGE_FIT));
  const WorkOutcome evaluate = site.Process(Item(v1::STAGE_EVALUATE));
  const WorkOutcome both = site.Process(Item(v1::STAGE_FIT_EVALUATE));
  ASSERT_TRUE(fit.contribution.has_value()) << fit.decline.detail();
  ASSERT_TRUE(evaluate.contribution.has_value()) << evaluate.decline.detail();
  ASSERT_TRUE(both.contribution.has_value()) << both.decline.detail();
  std::vector<double> expected = *fit.contribution;
  expected.insert(expected.end(), evaluate.contribution->begin(), evaluate.contribution->end());
  EXPECT_EQ(*both.contribution, expected);
}

TEST_F(FitEvaluateTest, WithoutHeldOutRowsTheEvaluationPartIsZeros) {
  config_.mutable_datasets(0)->clear_test_csv();
  WorkProcessor site("site-a", config_);
  const WorkOutcome fit = site.Process(Item(v1::STAGE_FIT));
  const WorkOutcome both = site.Process(Item(v1::STAGE_FIT_EVALUATE));
  ASSERT_TRUE(both.contribution.has_value()) << both.decline.detail();
  ASSERT_TRUE(fit.contribution.has_value());
  ASSERT_GT(both.contribution->size(), fit.contribution->size());
  EXPECT_TRUE(
      std::equal(fit.contribution->begin(), fit.contribution->end(), both.contribution->begin()));
  for (size_t i = fit.contribution->size(); i < both.contribution->size(); ++i) {
    EXPECT_EQ(both.contribution->at(i), 0.0) << i;
  }
}

TEST_F(FitEvaluateTest, NoisedEvaluationsAreRefusedInACombinedSession) {
  WorkProcessor site("site-a", config_);
  const WorkOutcome out = site.Process(Item(v1::STAGE_FIT_EVALUATE, /*evaluation_noise=*/2.0));
  EXPECT_FALSE(out.contribution.has_value());
  EXPECT_EQ(out.decline.reason(), v1::Decline::BAD_WORK_ITEM);
  EXPECT_THAT(out.decline.detail(), HasSubstr("evaluation_noise_multiplier"));
}

// A model announced apart that the daemon could not fetch (client/model_download.h left it
// out) is declined naming that, not trained on.
TEST_F(FitEvaluateTest, AModelApartThatDidNotArriveIsDeclinedNamingIt) {
  WorkProcessor site("site-a", config_);
  v1::WorkItem item = Item(v1::STAGE_FIT_EVALUATE);
  item.clear_model();
  item.set_model_size(1 << 21);
  const WorkOutcome out = site.Process(item);
  EXPECT_FALSE(out.contribution.has_value());
  EXPECT_EQ(out.decline.reason(), v1::Decline::BAD_WORK_ITEM);
  EXPECT_THAT(out.decline.detail(),
              HasSubstr("the model sent apart (2097152 bytes) did not add up"));
}

// Class weights (TrainingSpec.class_weights) weigh the training loss only: weights of 1 are
// no weights, others change the FIT vector, and evaluation is unweighted.
TEST_F(FitEvaluateTest, ClassWeightsWeighTheTrainingRowsOnly) {
  WorkProcessor site("site-a", config_);
  auto weighted = [&](v1::Stage stage, double w0, double w1) {
    v1::WorkItem item = Item(stage);
    item.mutable_spec()->mutable_training()->add_class_weights(w0);
    item.mutable_spec()->mutable_training()->add_class_weights(w1);
    item.set_spec_hash(crypto::HashTaskSpec(item.spec()));
    return site.Process(item);
  };
  const WorkOutcome plain = site.Process(Item(v1::STAGE_FIT));
  const WorkOutcome ones = weighted(v1::STAGE_FIT, 1, 1);
  const WorkOutcome skewed = weighted(v1::STAGE_FIT, 1, 3);
  for (const WorkOutcome* out : {&plain, &ones, &skewed}) {
    ASSERT_TRUE(out->contribution.has_value()) << out->decline.detail();
  }
  EXPECT_EQ(*ones.contribution, *plain.contribution);
  EXPECT_NE(*skewed.contribution, *plain.contribution);
  EXPECT_EQ(skewed.contribution->at(0), plain.contribution->at(0)) << "the example weight";
  const WorkOutcome evaluation = site.Process(Item(v1::STAGE_EVALUATE));
  const WorkOutcome weighted_evaluation = weighted(v1::STAGE_EVALUATE, 1, 3);
  ASSERT_TRUE(weighted_evaluation.contribution.has_value());
  EXPECT_EQ(*weighted_evaluation.contribution, *evaluation.contribution);
}

// A validation split (TrainingSpec.validation_fraction): FIT trains on the training file's
// rows outside the split, EVALUATE (and FIT_EVALUATE's evaluation) reads the rows inside
// it, and TEST reads the test file — each exactly the vector a task without a split sends
// on those rows alone.
class ValidationSplitTest : public FitEvaluateTest {
 protected:
  static constexpr double kFraction = 0.3;
  static constexpr char kTrain[] =
      "age,bmi,outcome\n50,22.5,1\n61,30.1,0\n45,27.0,1\n38,21.0,0\n70,33.3,1\n"
      "55,25.5,0\n47,29.9,1\n66,24.4,0\n59,28.8,1\n42,23.1,0\n";
  static constexpr char kTest[] = "age,bmi,outcome\n58,24.0,0\n40,31.5,1\n";

  void SetUp() override {
    FitEvaluateTest::SetUp();
    tessera::testing::WriteTestFile(config_.datasets(0).train_csv(), kTrain);
    tessera::testing::WriteTestFile(config_.datasets(0).test_csv(), kTest);
  }

  v1::WorkItem SplitItem(v1::Stage stage) const {
    v1::WorkItem item = Item(stage);
    item.mutable_spec()->mutable_training()->set_validation_fraction(kFraction);
    item.set_spec_hash(crypto::HashTaskSpec(item.spec()));
    return item;
  }

  // The lines of kTrain inside (or outside) the split, as a file of their own.
  std::string Part(bool validation) const {
    const std::vector<std::string> lines = absl::StrSplit(kTrain, '\n', absl::SkipEmpty());
    const std::vector<bool> mask =
        proto::ValidationMask(lines.size() - 1, kFraction, Item(v1::STAGE_FIT).spec().seed());
    std::string out = lines[0] + "\n";
    for (size_t r = 0; r + 1 < lines.size(); ++r) {
      if (mask[r] == validation) out += lines[r + 1] + "\n";
    }
    return out;
  }

  // A site whose dataset holds `train` and `test` as its files.
  WorkProcessor SiteWith(const std::string& train, const std::string& test) {
    v1::ClientConfig config = config_;
    v1::LocalDataset* local = config.mutable_datasets(0);
    local->set_train_csv(temp_.File("part-train.csv"));
    local->set_test_csv(temp_.File("part-test.csv"));
    tessera::testing::WriteTestFile(local->train_csv(), train);
    tessera::testing::WriteTestFile(local->test_csv(), test);
    return WorkProcessor("site-a", config);
  }
};

TEST_F(ValidationSplitTest, EachStageReadsItsOwnRows) {
  ASSERT_EQ(proto::ValidationRowCount(10, kFraction), 3u);
  WorkProcessor site("site-a", config_);
  const WorkOutcome fit = site.Process(SplitItem(v1::STAGE_FIT));
  const WorkOutcome validation = site.Process(SplitItem(v1::STAGE_EVALUATE));
  const WorkOutcome test = site.Process(SplitItem(v1::STAGE_TEST));
  const WorkOutcome both = site.Process(SplitItem(v1::STAGE_FIT_EVALUATE));
  for (const WorkOutcome* out : {&fit, &validation, &test, &both}) {
    ASSERT_TRUE(out->contribution.has_value()) << out->decline.detail();
  }
  // The same vectors from files holding only those rows, without a split.
  WorkProcessor training_rows = SiteWith(Part(false), Part(true));
  const WorkOutcome plain_fit = training_rows.Process(Item(v1::STAGE_FIT));
  const WorkOutcome plain_validation = training_rows.Process(Item(v1::STAGE_EVALUATE));
  ASSERT_TRUE(plain_fit.contribution.has_value()) << plain_fit.decline.detail();
  ASSERT_TRUE(plain_validation.contribution.has_value());
  EXPECT_EQ(*fit.contribution, *plain_fit.contribution);
  EXPECT_EQ(*validation.contribution, *plain_validation.contribution);
  EXPECT_EQ(validation.contribution->at(0), 3) << "the validation rows' count";
  WorkProcessor whole = SiteWith(kTrain, kTest);
  const WorkOutcome plain_test = whole.Process(Item(v1::STAGE_EVALUATE));
  ASSERT_TRUE(plain_test.contribution.has_value());
  EXPECT_EQ(*test.contribution, *plain_test.contribution);
  EXPECT_NE(*test.contribution, *validation.contribution);
  std::vector<double> expected = *fit.contribution;
  expected.insert(expected.end(), validation.contribution->begin(), validation.contribution->end());
  EXPECT_EQ(*both.contribution, expected);
}

TEST_F(ValidationSplitTest, ATestSessionWithoutASplitAndASiteTooSmallToSplitAreDeclined) {
  WorkProcessor site("site-a", config_);
  const WorkOutcome no_split = site.Process(Item(v1::STAGE_TEST));
  EXPECT_FALSE(no_split.contribution.has_value());
  EXPECT_EQ(no_split.decline.reason(), v1::Decline::BAD_WORK_ITEM);
  EXPECT_THAT(no_split.decline.detail(), HasSubstr("validation split"));

  // One row: 30% of it rounds to none held out.
  WorkProcessor tiny = SiteWith("age,bmi,outcome\n50,22.5,1\n", kTest);
  const WorkOutcome out = tiny.Process(SplitItem(v1::STAGE_FIT));
  EXPECT_FALSE(out.contribution.has_value());
  EXPECT_EQ(out.decline.reason(), v1::Decline::DATA_ERROR);
}

}  // namespace
}  // namespace tessera::client
