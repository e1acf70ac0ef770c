// Issue 11, "One cohort per round", the site's side: a site whose rows could not train
// (a label the model cannot take) or evaluate (the same in its held-out file) declines the
// statistics stage, so it is never counted in the pooled standardisation it would not train
// on. Before the fix it contributed its statistics and then declined every FIT.
#include "client/work_processor.h"

#include <string>

#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::testing::HasSubstr;

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

    v1::WorkItem item;
    item.set_task_id("task-1");
    item.set_round(0);
    item.set_stage(v1::STAGE_STATISTICS);
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
    spec.set_rounds(1);
    spec.set_min_clients(3);
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

}  // namespace
}  // namespace tessera::client
