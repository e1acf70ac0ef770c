// Issue 11, "One cohort per round", the coordinator's side, with in-process fake sites:
//   - the sites whose statistics are in the pooled standardisation are the only ones that
//     train and evaluate on it (before: a site whose statistics stage failed was invited to
//     every FIT and EVALUATE session, training on rows the standardisation left out);
//   - a site that declines a stage for a cause no retry can fix is out of the round with
//     its name and cause, and when the sites left cannot reach the stage's minimum the stage
//     ends at once naming them (before: 20 attempts 1 s apart, about 20 s).
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "coordinator/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "tests/coordinator/fake_site.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::coordinator {
namespace {

using fake::FakeSite;
using fake::FastOptions;
using fake::RunToEnd;
using fake::SiteBehavior;
using fake::ToySpec;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMissingColumn[] =
    "the task's column 'x1' is not in the local dataset (details in the site's log)";

SiteBehavior Declines(v1::Stage stage, v1::Decline::Reason reason, const std::string& detail,
                      float delta = 1) {
  SiteBehavior b{.train_rows = 10, .delta = delta};
  b.declines_stage = stage;
  b.decline.set_reason(reason);
  b.decline.set_detail(detail);
  return b;
}

bool SawStage(const FakeSite& site, const std::string& stage) {
  for (const std::string& s : site.sessions_seen()) {
    if (s.find("/" + stage + "/") != std::string::npos) return true;
  }
  return false;
}

class CohortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, tessera::testing::TestPki::Create(dir_.path()));
    // The production pause between attempts (1 s), so that the time a hopeless stage takes
    // to fail is the real one.
    CoordinatorOptions options = FastOptions(*pki_);
    options.runner.retry_pause = absl::Seconds(1);
    ASSERT_OK_AND_ASSIGN(coordinator_,
                         Coordinator::Create(NewMemoryStore(), common::Clock::Real(), options));
  }

  tessera::testing::TempDir dir_;
  std::unique_ptr<tessera::testing::TestPki> pki_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CohortTest, SiteOutOfTheStatisticsIsNeverInvitedToTrainOrEvaluate) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
  // Its statistics stage fails; it would train (delta 5) if asked.
  FakeSite d(coordinator_.get(), pki_.get(), "site-d",
             Declines(v1::STAGE_STATISTICS, v1::Decline::DATA_ERROR,
                      "local data cannot be used for this task (details in the site's log)", 5));
  const v1::GetTaskResponse got = RunToEnd(*coordinator_, ToySpec(2, 3));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  EXPECT_THAT(got.task().statistics_cohort(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_EQ(got.task().standardization().num_train_rows(), 30u);
  EXPECT_THAT(got.rounds(0).drops(),
              Contains(HasSubstr("site-d is out of the round: site-d declined DATA_ERROR")));
  for (int r = 1; r <= 2; ++r) {
    EXPECT_THAT(got.rounds(r).fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
    EXPECT_THAT(got.rounds(r).eval_participants(), ElementsAre("site-a", "site-b", "site-c"));
  }
  EXPECT_FALSE(SawStage(d, "fit")) << "invited to train on rows the statistics left out";
  EXPECT_FALSE(SawStage(d, "evaluate"));
  ASSERT_OK_AND_ASSIGN(std::vector<float> model,
                       coordinator_->store()->GetCheckpoint(got.task().task_id(), 2));
  EXPECT_THAT(model, Each(FloatNear(2.0f, 1e-5))) << "site-d's delta is not in the model";
}

// Three sites and min_clients 3: site-c misses a column. No retry can fix that: the task
// ends after the first session (plus one pause), naming the site and the cause.
TEST_F(CohortTest, UnfixableDeclineEndsTheStatisticsAtOnceNamingSiteAndCause) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c",
             Declines(v1::STAGE_STATISTICS, v1::Decline::DATA_ERROR, kMissingColumn));
  v1::TaskSpec spec = ToySpec(1, 3);
  spec.set_max_round_attempts(20);
  const absl::Time start = absl::Now();
  const v1::GetTaskResponse got = RunToEnd(*coordinator_, spec);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_THAT(got.task().state_reason(),
              AllOf(HasSubstr(absl::StrCat("statistics round failed: site-c declined DATA_ERROR: ",
                                           kMissingColumn)),
                    HasSubstr("only 2 known sites holding the dataset can still take part")));
  EXPECT_LT(took, absl::Seconds(5)) << "retried what no retry can fix";
  EXPECT_EQ(got.task().failed_round_attempts_size(), 1);
}

// The same in a training round: a site whose FIT declines DATASET_MISSING with only three
// sites ends the round at once, naming it.
TEST_F(CohortTest, UnfixableFitDeclineEndsTheRoundAtOnceNamingSiteAndCause) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c",
             Declines(v1::STAGE_FIT, v1::Decline::DATASET_MISSING, "no local dataset 'toy'"));
  v1::TaskSpec spec = ToySpec(1, 3);
  spec.set_max_round_attempts(20);
  const v1::GetTaskResponse got = RunToEnd(*coordinator_, spec);
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_THAT(got.task().state_reason(),
              HasSubstr("round 1 failed: site-c declined DATASET_MISSING: no local dataset 'toy'"));
  EXPECT_EQ(got.task().failed_round_attempts_size(), 1);
  EXPECT_EQ(got.task().last_committed_round(), 0);
}

// Four sites: one that cannot train is out of the round (named in its drop lines), is not
// asked to evaluate a model it did not train, and the round commits with the other three.
TEST_F(CohortTest, SiteThatCannotTrainIsOutOfTheRoundWithItsReason) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d",
             Declines(v1::STAGE_FIT, v1::Decline::DATA_ERROR,
                      "local data cannot be used for this task (details in the site's log)"));
  const v1::GetTaskResponse got = RunToEnd(*coordinator_, ToySpec(1, 3));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  const v1::RoundRecord& r1 = got.rounds(1);
  EXPECT_THAT(r1.fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_THAT(r1.drops(),
              Contains(HasSubstr("site-d is out of the round: site-d declined DATA_ERROR")));
  EXPECT_THAT(r1.eval_participants(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_FALSE(SawStage(d, "evaluate"));
  EXPECT_THAT(r1.drops(), Not(Contains(HasSubstr("site-a is out"))));
}

}  // namespace
}  // namespace tessera::coordinator
