// The coordinator core driven by in-process fake sites (no gRPC): the round driver's
// cohorts, stages, FedAvg, dropouts, failures and cancellation, and the privacy charge of
// a noised analytics answer, checked against what the store committed (after a restart:
// coordinator_restart_test.cc).
#include "coordinator/coordinator.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/status.h"
#include "coordinator/privacy_accountant.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "secagg/client.h"
#include "secagg/vector_codec.h"
#include "tests/coordinator/fake_site.h"
#include "tests/coordinator/fault_injecting_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::coordinator {
namespace {

using fake::Eventually;
using fake::FakeSite;
using fake::FastOptions;
using fake::Finished;
using fake::kEvalLogLoss;
using fake::SiteBehavior;
using fake::StateOf;
using fake::ToySpec;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = tessera::testing::TestPki::Create(dir_.path());
    ASSERT_OK(pki.status());
    pki_ = std::move(*pki);
    auto c = Coordinator::Create(NewMemoryStore(), common::Clock::Real(), FastOptions(*pki_));
    ASSERT_OK(c.status());
    coordinator_ = std::move(*c);
  }
  // Sites stop (in the test body's destructors) before the coordinator goes.
  TempDir dir_;
  std::unique_ptr<tessera::testing::TestPki> pki_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, ThreeSitesTrainEveryRoundWithExampleWeightedFedAvg) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 5});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = -1});
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted,
                       coordinator_->SubmitTask("op", ToySpec(3, 3)));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));

  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED);
  EXPECT_EQ(got.task().last_committed_round(), 3);
  EXPECT_EQ(got.task().submitted_by(), "op");
  // Round 0: pooled statistics from the sites' sums; l2 from C = 1 and 50 pooled rows.
  EXPECT_THAT(got.task().standardization().mean(), ElementsAre(1.0, 1.0));
  EXPECT_THAT(got.task().standardization().stddev(), ElementsAre(1.0, 1.0));
  EXPECT_EQ(got.task().standardization().num_train_rows(), 50u);
  EXPECT_DOUBLE_EQ(got.task().l2(), 1.0 / 50);
  ASSERT_EQ(got.rounds_size(), 4);
  for (uint32_t r = 1; r <= 3; ++r) {
    const v1::RoundRecord& round = got.rounds(static_cast<int>(r));
    EXPECT_EQ(round.round(), r);
    EXPECT_THAT(round.fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
    EXPECT_THAT(round.eval_participants(), ElementsAre("site-a", "site-b", "site-c"));
    EXPECT_EQ(round.attempts(), 1u);
    // Weighted mean delta: (30*1 + 10*5 + 10*-1) / 50 = 1.4 per round.
    ASSERT_OK_AND_ASSIGN(std::vector<float> model,
                         coordinator_->store()->GetCheckpoint(submitted.task_id(), r));
    EXPECT_THAT(model, Each(FloatNear(1.4f * static_cast<float>(r), 1e-5)));
    std::map<std::string, double> metrics;
    for (const auto& m : round.metrics()) metrics[m.name()] = m.value();
    EXPECT_NEAR(metrics["accuracy"], 0.9, 1e-9);
    EXPECT_NEAR(metrics["auc"], 1.0, 1e-9);
    EXPECT_NEAR(metrics["log_loss"], kEvalLogLoss, 1e-4);
    EXPECT_NEAR(metrics["num_examples"], 30, 1e-9);
    EXPECT_DOUBLE_EQ(metrics["train_examples"], 50);
  }
}

// `spec` with noised model updates (clip_norm 0.1, noise multiplier 1.5, delta 1e-5) and
// `budget` as its epsilon budget.
v1::TaskSpec WithUpdateNoise(v1::TaskSpec spec, double budget) {
  v1::PrivacySpec* privacy = spec.mutable_privacy();
  privacy->set_clip_norm(0.1);
  privacy->set_noise_multiplier(1.5);
  privacy->set_epsilon_budget(budget);
  privacy->set_delta(1e-5);
  return spec;
}

// One session per round: round r's FIT_EVALUATE session carries the evaluation of round
// r - 1's model, which is added to round r - 1's record when round r commits; round 1 is a
// plain FIT and the last round's model gets an EVALUATE session of its own. Every round
// still ends with its own model's metrics.
TEST_F(CoordinatorTest, OneSessionPerRoundCarriesThePreviousRoundsEvaluation) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 5});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = -1});
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted,
                       coordinator_->SubmitTask("op", ToySpec(3, 3)));
  const std::string& id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, id); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(id));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  for (const FakeSite* site : {&a, &b, &c}) {
    EXPECT_THAT(site->sessions_seen(),
                ::testing::UnorderedElementsAre(
                    id + "/r0/statistics/a1", id + "/r1/fit/a1", id + "/r2/fit_evaluate/a1",
                    id + "/r3/fit_evaluate/a1", id + "/r3/evaluate/a1"));
  }
  ASSERT_EQ(got.rounds_size(), 4);
  EXPECT_EQ(got.rounds(1).evaluated_in_round(), 2u);
  EXPECT_EQ(got.rounds(2).evaluated_in_round(), 3u);
  EXPECT_EQ(got.rounds(3).evaluated_in_round(), 0u) << "its own evaluate session";
  for (int r = 1; r <= 3; ++r) {
    std::vector<std::string> names;
    for (const v1::Metric& m : got.rounds(r).metrics()) names.push_back(m.name());
    // The fit's metric first, then the evaluation's, as a round's own evaluation puts them.
    EXPECT_THAT(
        names, ElementsAre("train_examples", "num_examples", "loss", "log_loss", "accuracy", "auc"))
        << "round " << r;
    EXPECT_THAT(got.rounds(r).eval_participants(), ElementsAre("site-a", "site-b", "site-c"));
  }
}

// Noised evaluations are releases of their own: FIT and EVALUATE stay two sessions a round.
TEST_F(CoordinatorTest, NoisedEvaluationsKeepTwoSessionsPerRound) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 0.01f});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 30, .delta = 0.01f});
  v1::TaskSpec spec = WithUpdateNoise(ToySpec(2, 2), 100);
  spec.mutable_privacy()->set_evaluation_noise_multiplier(1.5);
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted, coordinator_->SubmitTask("op", spec));
  const std::string& id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, id); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(id));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  EXPECT_THAT(a.sessions_seen(),
              ::testing::UnorderedElementsAre(id + "/r0/statistics/a1", id + "/r1/fit/a1",
                                              id + "/r1/evaluate/a1", id + "/r2/fit/a1",
                                              id + "/r2/evaluate/a1"));
}

// With privacy, the last round the budget pays for is the last: its model is evaluated in a
// session of its own, so the task ends with that round's metrics.
TEST_F(CoordinatorTest, TheLastRoundTheBudgetPaysForEvaluatesItsOwnModel) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 0.01f});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 30, .delta = 0.01f});
  // A budget between what two and three model-update releases cost.
  ASSERT_OK_AND_ASSIGN(double two, coordinator::GaussianEpsilon(1.5, 1.0, 2, 1e-5));
  ASSERT_OK_AND_ASSIGN(double three, coordinator::GaussianEpsilon(1.5, 1.0, 3, 1e-5));
  const v1::TaskSpec spec = WithUpdateNoise(ToySpec(5, 2), (two + three) / 2);
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted, coordinator_->SubmitTask("op", spec));
  const std::string& id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, id); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(id));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED);
  EXPECT_THAT(got.task().state_reason(), HasSubstr("privacy budget spent"));
  ASSERT_EQ(got.rounds_size(), 3);
  EXPECT_THAT(a.sessions_seen(),
              ::testing::UnorderedElementsAre(id + "/r0/statistics/a1", id + "/r1/fit/a1",
                                              id + "/r2/fit_evaluate/a1", id + "/r2/evaluate/a1"));
  for (int r = 1; r <= 2; ++r) {
    bool accuracy = false;
    for (const v1::Metric& m : got.rounds(r).metrics()) accuracy |= m.name() == "accuracy";
    EXPECT_TRUE(accuracy) << "round " << r;
  }
}

// An adaptive strategy keeps two floats per parameter in the last committed round's record
// (a restart resumes from it; a round's commit drops the previous round's, rewriting that
// record with its evaluation); the task's view (what `tasks show` and the dashboard poll)
// leaves them out.
TEST_F(CoordinatorTest, TheTaskViewLeavesOutTheStrategysState) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 5});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = -1});
  v1::TaskSpec spec = ToySpec(2, 3);
  spec.mutable_strategy()->set_kind(v1::StrategySpec::FEDADAM);
  ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));

  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> stored,
                       coordinator_->store()->ListRounds(submitted.task_id()));
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_FALSE(stored.back().strategy_state().empty());
  EXPECT_EQ(stored[1].evaluated_in_round(), 2u);
  EXPECT_TRUE(stored[1].strategy_state().empty()) << "round 1 kept the moments";
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED);
  ASSERT_EQ(got.rounds_size(), 3);
  for (const v1::RoundRecord& round : got.rounds()) {
    EXPECT_TRUE(round.strategy_state().empty()) << "round " << round.round();
  }
}

TEST_F(CoordinatorTest, SilentSiteIsDroppedAtTheDeadlineAndTheRoundGoesOn) {
  // Four sites: the threshold is floor(2*4/3)+1 = 3, so losing one is tolerated.
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 5});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 5});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d", {.train_rows = 10, .silent_in_fit = true});
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", ToySpec(1, 2)));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED);
  const v1::RoundRecord& round = got.rounds(1);
  EXPECT_THAT(round.fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_THAT(round.drops(), Contains(HasSubstr("site-d: advertise_keys: SECAGG_DROP_NO_ANSWER")));
  ASSERT_OK_AND_ASSIGN(std::vector<float> model,
                       coordinator_->store()->GetCheckpoint(submitted.task_id(), 1));
  // (30*1 + 10*5 + 10*5) / 50 = 2.6: the silent site's rows do not count.
  EXPECT_THAT(model, Each(FloatNear(2.6f, 1e-5)));
}

TEST_F(CoordinatorTest, SiteWithAForgedAdvertisementIsDroppedWithAReason) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 3});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 2});
  FakeSite bad(coordinator_.get(), pki_.get(), "site-bad",
               {.train_rows = 10, .delta = 100, .forges_advertisement = true});
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", ToySpec(1, 2)));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED);
  EXPECT_THAT(got.rounds(1).fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_THAT(got.rounds(1).drops(),
              Contains(HasSubstr("site-bad: advertise_keys: SECAGG_DROP_BAD_SIGNATURE")));
  EXPECT_GE(bad.refused(), 1);
  ASSERT_OK_AND_ASSIGN(std::vector<float> model,
                       coordinator_->store()->GetCheckpoint(submitted.task_id(), 1));
  EXPECT_THAT(model, Each(FloatNear(2.0f, 1e-5)));
}

TEST_F(CoordinatorTest, TooFewSitesFailsTheTaskAfterMaxAttempts) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .silent_in_fit = true});
  // Two sites: the threshold is 2, so one silent site aborts every FIT session.
  v1::TaskSpec spec = ToySpec(2, 2);
  spec.set_max_round_attempts(2);
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  // The reason names the site and what it did, from the sessions' answers.
  EXPECT_THAT(got.task().state_reason(),
              HasSubstr("round 1 failed after 2 attempts: site-b did not answer in time "
                        "(every attempt); last session: SECAGG_SERVER_TOO_FEW_CLIENTS"));
  EXPECT_EQ(got.task().last_committed_round(), 0) << "the statistics round did commit";
  EXPECT_EQ(got.rounds_size(), 1);
  // Each attempt with each site's answer, on the task record of the failed task.
  ASSERT_EQ(got.task().failed_round_attempts_size(), 2);
  for (const v1::StageAttempt& a : got.task().failed_round_attempts()) {
    EXPECT_EQ(a.stage(), v1::STAGE_FIT);
    EXPECT_FALSE(a.completed());
    ASSERT_EQ(a.sites_size(), 2);
    EXPECT_EQ(a.sites(0).client_id(), "site-a");
    EXPECT_EQ(a.sites(0).kind(), v1::SITE_ANSWER_NO_SUM);
    EXPECT_EQ(a.sites(1).kind(), v1::SITE_ANSWER_NO_ANSWER);
  }
  EXPECT_EQ(got.task().failed_round_attempts(1).attempt(), 2);
  // The statistics round's one session, committed with it: both sites contributed.
  ASSERT_EQ(got.rounds(0).stage_attempts_size(), 1);
  EXPECT_TRUE(got.rounds(0).stage_attempts(0).completed());
  for (const v1::SiteAnswer& s : got.rounds(0).stage_attempts(0).sites()) {
    EXPECT_EQ(s.kind(), v1::SITE_ANSWER_CONTRIBUTED) << s.client_id();
  }
  EXPECT_FALSE(got.has_in_flight()) << "a finished task has no round in flight";
}

// A FIT session that aborts after three sites sent their masked inputs: under the sites'
// once-only rule those three cannot contribute to this round's FIT again, so the retry
// invites only the two that never sent theirs, and completes with them.
TEST_F(CoordinatorTest, RetryInvitesOnlySitesThatHaveNotContributed) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d",
             {.train_rows = 10, .delta = 3, .silent_from_masked_input_in_fit_attempt = 1});
  FakeSite e(coordinator_.get(), pki_.get(), "site-e",
             {.train_rows = 10, .delta = 3, .silent_from_masked_input_in_fit_attempt = 1});
  v1::TaskSpec spec = ToySpec(1, 2);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(1);
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  const v1::RoundRecord& r1 = got.rounds(1);
  EXPECT_EQ(r1.attempts(), 2u);
  EXPECT_THAT(r1.fit_participants(), ElementsAre("site-d", "site-e"));
  // The model moved by d's and e's delta only.
  ASSERT_OK_AND_ASSIGN(std::vector<float> model,
                       coordinator_->store()->GetCheckpoint(submitted.task_id(), 1));
  EXPECT_THAT(model, Each(FloatNear(3.0f, 1e-5)));
  const std::string retry = submitted.task_id() + "/r1/fit/a2";
  for (const FakeSite* site : {&a, &b, &c}) EXPECT_FALSE(site->sessions_seen().contains(retry));
  EXPECT_TRUE(d.sessions_seen().contains(retry));
}

// The same failure with min_clients 3: the two sites left cannot reach it, and the task ends
// at once, naming the reason, instead of burning its attempts.
TEST_F(CoordinatorTest, StageThatCanNoLongerReachItsMinimumEndsWithTheReason) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 1});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 1});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d",
             {.train_rows = 10, .silent_from_masked_input_in_fit_attempt = 1});
  FakeSite e(coordinator_.get(), pki_.get(), "site-e",
             {.train_rows = 10, .silent_from_masked_input_in_fit_attempt = 1});
  v1::TaskSpec spec = ToySpec(1, 3);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(1);
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_THAT(got.task().state_reason(), HasSubstr("ALREADY_CONTRIBUTED"));
  EXPECT_THAT(got.task().state_reason(), HasSubstr("only 2 known sites"));
  EXPECT_EQ(got.task().last_committed_round(), 0);
}

// An explicit threshold below floor(2n/3) + 1 for the cohort is refused by the coordinator
// with the rule named (the sites would refuse it too).
TEST_F(CoordinatorTest, UnsafeExplicitThresholdFailsTheTaskNamingTheRule) {
  std::vector<std::unique_ptr<FakeSite>> sites;
  for (const char* id : {"site-a", "site-b", "site-c", "site-d", "site-e"}) {
    sites.push_back(std::make_unique<FakeSite>(coordinator_.get(), pki_.get(), id,
                                               SiteBehavior{.train_rows = 10}));
  }
  v1::TaskSpec spec = ToySpec(1, 2);
  spec.mutable_secure_aggregation()->set_threshold(3);
  ASSERT_TRUE(Eventually([&] { return coordinator_->ListClients().size() == 5; }));
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_THAT(got.task().state_reason(), HasSubstr("secure_aggregation.threshold 3 is below 4"));
  EXPECT_THAT(got.task().state_reason(), HasSubstr("floor(2n/3) + 1"));
}

// Pooled statistics are computed once per dataset and columns: a second task over the same
// columns (another seed, so another model) reuses them from the store — the sites would not
// send their statistics for those columns again — and asks the sites nothing for round 0.
TEST_F(CoordinatorTest, SecondTaskOverTheSameColumnsReusesThePooledStatistics) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 10, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 30, .delta = 1});
  ASSERT_OK_AND_ASSIGN(auto first, coordinator_->SubmitTask("op", ToySpec(1, 2)));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, first.task_id()); }));
  v1::TaskSpec again = ToySpec(1, 2);
  again.set_seed(7);
  ASSERT_OK_AND_ASSIGN(auto second, coordinator_->SubmitTask("op", again));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, second.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse one, coordinator_->GetTask(first.task_id()));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse two, coordinator_->GetTask(second.task_id()));
  ASSERT_EQ(two.task().state(), v1::TASK_COMPLETED) << two.task().state_reason();
  EXPECT_EQ(one.rounds(0).statistics_from(), "");
  EXPECT_EQ(two.rounds(0).statistics_from(), first.task_id());
  EXPECT_THAT(two.rounds(0).fit_participants(), ElementsAre("site-a", "site-b"));
  EXPECT_EQ(two.task().standardization().SerializeAsString(),
            one.task().standardization().SerializeAsString());
  EXPECT_EQ(two.task().standardization().num_train_rows(), 40u);
  const std::string statistics = second.task_id() + "/r0/statistics/a1";
  EXPECT_FALSE(a.sessions_seen().contains(statistics));
  EXPECT_FALSE(b.sessions_seen().contains(statistics));
}

// A model-update sum charged to the budget stays charged when the task ends before its round
// commits: cancelled while the round's evaluation waits (the last round's model is
// evaluated in a session of its own), the task's record keeps the release (with the
// committed rounds', everything the coordinator could have unmasked).
TEST_F(CoordinatorTest, ReleaseOfARoundThatNeverCommitsStaysOnTheTaskRecord) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a",
             {.train_rows = 10, .delta = 0.01f, .silent_in_evaluate = true});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b",
             {.train_rows = 10, .delta = 0.01f, .silent_in_evaluate = true});
  v1::TaskSpec spec = WithUpdateNoise(ToySpec(1, 2), 10);
  spec.set_round_deadline_seconds(30);
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  const std::string& id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] {
    auto in_flight = coordinator_->store()->GetInFlight(id);
    return in_flight.ok() && in_flight->round() == 1 && in_flight->fit_done();
  }));
  ASSERT_OK(coordinator_->CancelTask("op", id, "enough"));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, id); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(id));
  EXPECT_EQ(got.task().state(), v1::TASK_CANCELLED);
  EXPECT_EQ(got.task().last_committed_round(), 0);
  ASSERT_EQ(got.task().uncommitted_releases_size(), 1);
  EXPECT_EQ(got.task().uncommitted_releases(0).stage(), v1::STAGE_FIT);
  EXPECT_EQ(got.task().uncommitted_releases(0).session(), id + "/r1/fit/a1");
  EXPECT_EQ(got.task().uncommitted_releases(0).noise_multiplier(), 1.5);
  EXPECT_THAT(coordinator_->store()->GetInFlight(id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CoordinatorTest, CancelEndsAWaitingTask) {
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", ToySpec(2, 2)));
  // No site holds the dataset: the task says so while it waits.
  ASSERT_TRUE(Eventually([&] {
    auto t = coordinator_->GetTask(submitted.task_id());
    return t.ok() && t->task().has_waiting();
  }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse waiting, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(waiting.task().waiting().message(),
            "waiting for 2 sites holding dataset toy (have 0); no known site announces "
            "dataset toy");
  EXPECT_EQ(waiting.task().waiting().needed(), 2u);
  ASSERT_OK(coordinator_->CancelTask("op", submitted.task_id(), "wrong dataset"));
  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, submitted.task_id()); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(submitted.task_id()));
  EXPECT_EQ(got.task().state(), v1::TASK_CANCELLED);
  EXPECT_EQ(got.task().state_reason(), "cancelled by op: wrong dataset");
  EXPECT_FALSE(got.task().has_waiting()) << "an ended task waits for nothing";
  EXPECT_THAT(got.rounds(), IsEmpty());
  EXPECT_THAT(coordinator_->CancelTask("op", submitted.task_id(), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(coordinator_->CancelTask("op", "task-99", ""), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CoordinatorTest, InvalidTaskIsRefusedAndNothingIsStored) {
  v1::TaskSpec spec = ToySpec(2, 2);
  spec.mutable_training()->set_learning_rate(-1);
  EXPECT_THAT(coordinator_->SubmitTask("op", spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("training.learning_rate")));
  ASSERT_OK_AND_ASSIGN(auto tasks, coordinator_->ListTasks());
  EXPECT_THAT(tasks, IsEmpty());
}

TEST_F(CoordinatorTest, WorkIsOnlyForSitesThatSaidHello) {
  EXPECT_THAT(coordinator_->PullWork("stranger", absl::Now()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  v1::PushResultRequest r;
  r.set_work_id("task-1/r1/fit/a1");
  EXPECT_THAT(coordinator_->PushResult("stranger", r),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// A noised analytics task whose budget pays for one release, not two, and whose ledger
// already holds one (an earlier attempt's sum was charged, then the attempt failed): the
// task runs its session and is stopped by the charge before the unmasking step — the
// charge of RunDurableStage, not the check before the stage — and ends without an answer.
TEST(CoordinatorPrivacyTest, AnalyticsReleaseTheBudgetCannotPayIsNeverUnmasked) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  v1::TaskSpec spec;
  spec.set_name("toy-query-dp");
  spec.mutable_dataset()->set_id("toy");
  auto* q = spec.mutable_analytics()->add_queries();
  q->set_column("x");
  q->add_value_range(0);
  q->add_value_range(1);
  spec.set_min_clients(2);
  spec.set_round_deadline_seconds(5);
  ASSERT_OK_AND_ASSIGN(double one, GaussianEpsilon(1.0, 1.0, 1, 1e-5));
  ASSERT_OK_AND_ASSIGN(double two, GaussianEpsilon(1.0, 1.0, 2, 1e-5));
  spec.mutable_privacy()->set_noise_multiplier(1);
  spec.mutable_privacy()->set_epsilon_budget((one + two) / 2);
  spec.mutable_privacy()->set_delta(1e-5);
  std::string task_id;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(dir.File("db")));
    ASSERT_OK_AND_ASSIGN(
        auto c, Coordinator::Create(std::move(store), common::Clock::Real(), FastOptions(*pki)));
    // No site yet: the task passes the budget check (one release fits) and waits.
    ASSERT_OK_AND_ASSIGN(auto submitted, c->SubmitTask("op", spec));
    task_id = submitted.task_id();
    ASSERT_TRUE(Eventually([&] { return StateOf(*c, task_id) == v1::TASK_RUNNING; }));
    c->Shutdown();
    v1::InFlightRound in_flight;
    in_flight.set_task_id(task_id);
    in_flight.set_round(1);
    in_flight.set_attempt(2);
    in_flight.add_drops("attempt 1 failed: (made up) a site dropped after the unmasking step");
    v1::PrivacyRelease* charged = in_flight.add_releases();
    charged->set_stage(v1::STAGE_ANALYTICS);
    charged->set_attempt(1);
    charged->set_session(task_id + "/r1/analytics/a1");
    charged->set_noise_multiplier(1);
    ASSERT_OK(c->store()->PutInFlight(in_flight));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(dir.File("db")));
  ASSERT_OK_AND_ASSIGN(
      auto c, Coordinator::Create(std::move(store), common::Clock::Real(), FastOptions(*pki)));
  ASSERT_OK(c->ResumeTasks());
  FakeSite a(c.get(), pki.get(), "site-a", {});
  FakeSite b(c.get(), pki.get(), "site-b", {});
  ASSERT_TRUE(Eventually([&] { return Finished(*c, task_id); }));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, c->GetTask(task_id));
  EXPECT_EQ(got.task().state(), v1::TASK_FAILED);
  EXPECT_THAT(got.task().state_reason(),
              ::testing::StartsWith("privacy budget spent: unmasking this analytics sum would "
                                    "reach epsilon"));
  EXPECT_THAT(got.task().state_reason(), HasSubstr("no answer released"));
  EXPECT_THAT(got.rounds(), IsEmpty());
  // The task's end and the in-flight record's removal are two synced writes, in that order
  // (TaskRunner::Finish): the task may read as failed a moment before the record is gone.
  EXPECT_TRUE(Eventually([&] {
    return c->store()->GetInFlight(task_id).status().code() == absl::StatusCode::kNotFound;
  }));
  // The session ran up to its unmasking step: the sites were asked.
  EXPECT_THAT(a.sessions_seen(), Contains(HasSubstr("/analytics/a2")));
}

}  // namespace
}  // namespace tessera::coordinator
