// Attack 1 of the privacy issue: the difference of two sessions. A coordinator runs the same
// stage (same task spec, same global model) once with cohort {A, B, C} and once with
// {A, B}; both meet the minimum. If every site sent its vector both times, the first sum
// minus the second is C's vector, exactly. The site's once-only rule stops this: a site
// never sends a masked input for a (dataset, global model, stage, training configuration)
// it already sent in another session, across attempts, tasks and restarts, and declines
// with ALREADY_CONTRIBUTED.
//
// Each test checks both halves: the sites refuse, and nothing the coordinator received lets
// it recover any one site's vector (no released sum, nor the difference of two, is within
// the quantisation error of a single site's true vector).
#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/contribution_layout.h"
#include "proto/model_layout.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

// Far above the quantisation error of any encoding here (< 1e-7), far below what a
// recovered vector's entries weigh.
constexpr double kRecoveryTolerance = 1e-4;

std::string ReasonOf(const v1::Decline& d) { return v1::Decline::Reason_Name(d.reason()); }

// Fails if any released sum, or the difference of any two, is one site's true vector.
void ExpectNoSiteRecoverable(const std::vector<std::vector<double>>& released,
                             const std::map<std::string, std::vector<double>>& truth) {
  for (const auto& [site, vector] : truth) {
    ASSERT_FALSE(vector.empty()) << site;
    for (size_t i = 0; i < released.size(); ++i) {
      const double alone = MaxAbsDifference(released[i], vector);
      EXPECT_GT(alone, kRecoveryTolerance)
          << "released sum " << i << " is " << site << "'s vector (max error " << alone << ")";
      for (size_t j = 0; j < released.size(); ++j) {
        if (i == j) continue;
        const double error = MaxAbsDifference(Difference(released[i], released[j]), vector);
        EXPECT_GT(error, kRecoveryTolerance) << "sum " << i << " minus sum " << j << " is " << site
                                             << "'s vector (max error " << error << ")";
      }
    }
  }
}

// Each of `sites` declined the session with ALREADY_CONTRIBUTED.
void ExpectAlreadyContributed(const StageOutcome& outcome, const std::vector<std::string>& sites) {
  for (const std::string& site : sites) {
    auto it = outcome.declines.find(site);
    if (it == outcome.declines.end()) {
      ADD_FAILURE() << site << " answered the second session";
      continue;
    }
    EXPECT_EQ(ReasonOf(it->second), "ALREADY_CONTRIBUTED")
        << site << ": " << it->second.ShortDebugString();
  }
}

class DifferenceAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(5));
    ASSERT_OK_AND_ASSIGN(spec_, AttackFederation::ExampleSpec());
    ASSERT_OK_AND_ASSIGN(standardization_, federation_->PooledStandardization(spec_));
    ASSERT_OK_AND_ASSIGN(std::vector<float> initial,
                         proto::InitialParameters(spec_.model(), 30, spec_.seed()));
    model_ = initial;
  }

  StagePlan Plan(v1::Stage stage, std::vector<std::string> cohort, uint32_t attempt) {
    StagePlan plan;
    plan.stage = stage;
    plan.round = stage == v1::STAGE_STATISTICS ? 0 : 1;
    plan.attempt = attempt;
    plan.cohort = std::move(cohort);
    plan.spec = spec_;
    plan.model = model_;
    plan.standardization = standardization_;
    return plan;
  }

  // Runs `stage` over {1..k} then {1..k-1} and checks the attack fails on the k-th site.
  void RunTwoCohorts(v1::Stage stage, int k, const std::string& second_task_id = "task-1") {
    std::vector<std::string> big(federation_->ids().begin(), federation_->ids().begin() + k);
    std::vector<std::string> small(big.begin(), big.end() - 1);
    const std::string target = big.back();
    const StagePlan first = Plan(stage, big, 1);
    StagePlan second = Plan(stage, small, 2);
    second.task_id = second_task_id;
    if (second_task_id != "task-1") second.spec.set_name("renamed-for-a-second-task");

    std::map<std::string, std::vector<double>> truth;
    for (const std::string& site : big)
      truth[site] = federation_->TrueVector(site, FirstItem(first));

    const StageOutcome one = RunStage(*federation_, first);
    ASSERT_TRUE(one.completed) << one.abort;  // a normal session works
    const StageOutcome two = RunStage(*federation_, second);

    std::vector<std::vector<double>> released = {one.sums};
    if (two.completed) released.push_back(two.sums);
    ExpectNoSiteRecoverable(released, {{target, truth[target]}});
    // The sites that already contributed refuse, with their own reason.
    EXPECT_FALSE(two.completed) << "the second cohort's sum was released";
    ExpectAlreadyContributed(two, small);
  }

  // One session per round puts a model's FIT and EVALUATE vectors into one FIT_EVALUATE
  // vector. Runs `first` over {1..3} then `second` over {1, 2} on the same model, and
  // checks that `part` of site 3's vector (FIT or EVALUATE) cannot be had from the parts
  // of the released sums: sites 1 and 2 refuse the second session.
  void RunMixedStages(v1::Stage first_stage, v1::Stage second_stage, v1::Stage part) {
    const std::vector<std::string> big = {"site-1", "site-2", "site-3"};
    const StagePlan first = Plan(first_stage, big, 1);
    const StagePlan second = Plan(second_stage, {"site-1", "site-2"}, 2);
    const std::vector<double> target =
        federation_->TrueVector("site-3", FirstItem(Plan(part, big, 1)));
    ASSERT_FALSE(target.empty());

    const StageOutcome one = RunStage(*federation_, first);
    ASSERT_TRUE(one.completed) << one.abort;
    const StageOutcome two = RunStage(*federation_, second);
    std::vector<std::vector<double>> released = {PartOf(one.sums, first_stage, part)};
    if (two.completed) released.push_back(PartOf(two.sums, second_stage, part));
    ExpectNoSiteRecoverable(released, {{"site-3", target}});
    EXPECT_FALSE(two.completed) << "the second cohort's sum was released";
    ExpectAlreadyContributed(two, {"site-1", "site-2"});
  }

  // The `part` (FIT or EVALUATE) of a sum of `stage`: a FIT_EVALUATE sum is the FIT sum
  // followed by the EVALUATE sum.
  std::vector<double> PartOf(const std::vector<double>& sums, v1::Stage stage, v1::Stage part) {
    if (stage != v1::STAGE_FIT_EVALUATE) return sums;
    const size_t fit = proto::FitLength(model_.size());
    if (part == v1::STAGE_FIT) return {sums.begin(), sums.begin() + std::min(fit, sums.size())};
    return {sums.begin() + std::min(fit, sums.size()), sums.end()};
  }

  std::unique_ptr<AttackFederation> federation_;
  v1::TaskSpec spec_;
  v1::Standardization standardization_;
  std::vector<float> model_;
};

TEST_F(DifferenceAttack, FitTwoCohortsDoNotRevealTheThirdSite) { RunTwoCohorts(v1::STAGE_FIT, 3); }

TEST_F(DifferenceAttack, StatisticsTwoCohortsDoNotRevealTheFifthSite) {
  RunTwoCohorts(v1::STAGE_STATISTICS, 5);
}

TEST_F(DifferenceAttack, EvaluateTwoCohortsDoNotRevealTheThirdSite) {
  RunTwoCohorts(v1::STAGE_EVALUATE, 3);
}

// One session per round: a FIT_EVALUATE vector spends both parts of its model, and a part
// sent alone spends that part of a FIT_EVALUATE vector, whichever session comes first.
TEST_F(DifferenceAttack, EvaluateAfterFitEvaluateDoesNotRevealTheThirdSitesEvaluation) {
  RunMixedStages(v1::STAGE_FIT_EVALUATE, v1::STAGE_EVALUATE, v1::STAGE_EVALUATE);
}

TEST_F(DifferenceAttack, FitAfterFitEvaluateDoesNotRevealTheThirdSitesUpdate) {
  RunMixedStages(v1::STAGE_FIT_EVALUATE, v1::STAGE_FIT, v1::STAGE_FIT);
}

TEST_F(DifferenceAttack, FitEvaluateAfterEvaluateDoesNotRevealTheThirdSitesEvaluation) {
  RunMixedStages(v1::STAGE_EVALUATE, v1::STAGE_FIT_EVALUATE, v1::STAGE_EVALUATE);
}

TEST_F(DifferenceAttack, FitEvaluateAfterFitDoesNotRevealTheThirdSitesUpdate) {
  RunMixedStages(v1::STAGE_FIT, v1::STAGE_FIT_EVALUATE, v1::STAGE_FIT);
}

// A validation split's test session (STAGE_TEST) evaluates a model on the test rows: the
// vector an EVALUATE of that model sends in a task without a split. A coordinator that asks
// for both — either order, the second over one site fewer, under a "split" task of another
// name — would difference site 3's test-row sums out; the sites refuse the second.
TEST_F(DifferenceAttack, ATestSessionAfterAnEvaluationOfTheModelDoesNotRevealTheThirdSite) {
  for (const bool test_first : {false, true}) {
    SCOPED_TRACE(test_first ? "test session first" : "evaluation first");
    if (test_first) {  // fresh site stores: the first order spent the keys
      ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(5));
    }
    const std::vector<std::string> big = {"site-1", "site-2", "site-3"};
    StagePlan evaluate = Plan(v1::STAGE_EVALUATE, big, 1);
    StagePlan test = Plan(v1::STAGE_TEST, big, 1);
    test.task_id = "task-2";
    test.spec.set_name("split-task");
    test.spec.mutable_training()->set_validation_fraction(0.2);
    const std::vector<double> target = federation_->TrueVector("site-3", FirstItem(evaluate));
    ASSERT_FALSE(target.empty());
    v1::Decline declined;
    ASSERT_EQ(federation_->TrueVector("site-3", FirstItem(test), &declined), target)
        << "the test session's vector is the evaluation's; " << declined.ShortDebugString();
    StagePlan& first = test_first ? test : evaluate;
    StagePlan& second = test_first ? evaluate : test;
    second.cohort = {"site-1", "site-2"};
    second.attempt = 2;
    const StageOutcome one = RunStage(*federation_, first);
    ASSERT_TRUE(one.completed) << one.abort;
    const StageOutcome two = RunStage(*federation_, second);
    std::vector<std::vector<double>> released = {one.sums};
    if (two.completed) released.push_back(two.sums);
    ExpectNoSiteRecoverable(released, {{"site-3", target}});
    EXPECT_FALSE(two.completed) << "the second cohort's sum was released";
    ExpectAlreadyContributed(two, {"site-1", "site-2"});
  }
}

// A second task (another id and name) with the same spec and initial model is the same
// contribution: it gets nothing either.
TEST_F(DifferenceAttack, SecondTaskWithTheSameSpecAndModelGetsNothing) {
  RunTwoCohorts(v1::STAGE_FIT, 3, "task-2");
}

// The record survives a restart of every site between the two sessions.
TEST_F(DifferenceAttack, SitesRestartedBetweenSessionsStillRefuse) {
  const StagePlan first = Plan(v1::STAGE_FIT, {"site-1", "site-2", "site-3"}, 1);
  const std::vector<double> target = federation_->TrueVector("site-3", FirstItem(first));
  const StageOutcome one = RunStage(*federation_, first);
  ASSERT_TRUE(one.completed) << one.abort;
  for (const std::string& site : federation_->ids()) ASSERT_OK(federation_->Restart(site));
  const StageOutcome two = RunStage(*federation_, Plan(v1::STAGE_FIT, {"site-1", "site-2"}, 2));
  std::vector<std::vector<double>> released = {one.sums};
  if (two.completed) released.push_back(two.sums);
  ExpectNoSiteRecoverable(released, {{"site-3", target}});
  EXPECT_FALSE(two.completed);
  ExpectAlreadyContributed(two, {"site-1", "site-2"});
}

// Sites that have not contributed yet can still make a sum: the rule costs availability
// only where a repeat would leak. The retry over {D, E} completes, and neither it nor its
// difference with the first sum is any one site's vector.
TEST_F(DifferenceAttack, FreshSitesStillContributeAndNothingSingleLeaks) {
  const StagePlan first = Plan(v1::STAGE_FIT, {"site-1", "site-2", "site-3"}, 1);
  const StagePlan second = Plan(v1::STAGE_FIT, {"site-4", "site-5"}, 2);
  std::map<std::string, std::vector<double>> truth;
  for (const std::string& site : federation_->ids()) {
    truth[site] = federation_->TrueVector(site, FirstItem(first));
  }
  const StageOutcome one = RunStage(*federation_, first);
  const StageOutcome two = RunStage(*federation_, second);
  ASSERT_TRUE(one.completed) << one.abort;
  ASSERT_TRUE(two.completed) << two.abort;
  EXPECT_TRUE(two.declines.empty());
  ExpectNoSiteRecoverable({one.sums, two.sums}, truth);
}

}  // namespace
}  // namespace tessera::attack
