// The site's own privacy budget against its real agent (client::SiteAgent over a real
// RocksDB site store): two tasks on the same dataset, the second refused with
// SITE_BUDGET_EXHAUSTED when the first spent the budget, before anything leaves; the same
// after a restart (the account is in the store); and a budget spent while a session is
// open stops its masked input and charges nothing. The account itself:
// tests/client/site_budget_test.cc.
#include <memory>
#include <string>
#include <vector>

#include "common/proto_text.h"
#include "dp/rdp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/validation.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

using ::testing::Contains;
using ::testing::Not;
using ::testing::StartsWith;

v1::LocalPolicy Budget(double epsilon) {
  v1::LocalPolicy policy;
  v1::LocalPolicy::SiteBudget* budget = policy.add_site_budgets();
  budget->set_dataset("breast_cancer");
  budget->set_epsilon(epsilon);
  budget->set_delta(1e-5);
  return policy;
}

class SiteBudgetFederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(4));
    ASSERT_OK_AND_ASSIGN(spec_, AttackFederation::ExampleSpec());
    spec_.mutable_privacy()->set_clip_norm(0.1);
    spec_.mutable_privacy()->set_noise_multiplier(1.5);
    spec_.mutable_privacy()->set_epsilon_budget(10);
    spec_.mutable_privacy()->set_delta(1e-5);
    ASSERT_THAT(proto::ValidateTaskSpec(spec_), ::testing::IsEmpty());
    proto::ApplyTaskDefaults(&spec_);
    ASSERT_OK_AND_ASSIGN(standardization_, federation_->PooledStandardization(spec_));
    // One FIT release at σ = 1.5 costs ε ≈ 3.4 at δ = 1e-5; two ≈ 5.0: a budget of 4 pays
    // for one.
    ASSERT_OK_AND_ASSIGN(double one, dp::EpsilonOfReleases(std::vector<double>{1.5}, 1e-5));
    ASSERT_OK_AND_ASSIGN(double two, dp::EpsilonOfReleases(std::vector<double>{1.5, 1.5}, 1e-5));
    ASSERT_LT(one, 4);
    ASSERT_GT(two, 4);
  }

  // A FIT of a task with its own seed (hence its own initial model and contribution).
  StagePlan Task(const std::string& task_id, uint64_t seed, uint32_t attempt = 1) {
    StagePlan plan;
    plan.task_id = task_id;
    plan.stage = v1::STAGE_FIT;
    plan.attempt = attempt;
    plan.cohort = federation_->ids();
    plan.spec = spec_;
    plan.spec.set_seed(seed);
    plan.standardization = standardization_;
    auto model = proto::InitialParameters(plan.spec.model(), 30, seed);
    EXPECT_OK(model.status());
    plan.model = model.value_or(std::vector<float>());
    return plan;
  }

  static void ExpectExhausted(const v1::PushResultRequest& answer) {
    ASSERT_TRUE(answer.has_decline()) << "the site took part: " << answer.ShortDebugString();
    EXPECT_FALSE(answer.has_secagg());
    EXPECT_EQ(answer.decline().reason(), v1::Decline::SITE_BUDGET_EXHAUSTED);
    EXPECT_THAT(answer.decline().detail(), StartsWith("policy.site_budgets: "));
    EXPECT_THAT(answer.decline().detail(), Not(::testing::HasSubstr("3.")))
        << "the decline carries a number from the account";
  }

  std::unique_ptr<AttackFederation> federation_;
  v1::TaskSpec spec_;
  v1::Standardization standardization_;
};

TEST_F(SiteBudgetFederationTest, SecondTaskIsRefusedWhenTheFirstSpentTheBudget) {
  ASSERT_OK(federation_->SetPolicy("site-1", Budget(4)));
  const StageOutcome first = RunStage(*federation_, Task("task-1", 1));
  ASSERT_TRUE(first.completed) << first.abort;
  EXPECT_THAT(first.survivors, Contains("site-1"));

  const StagePlan second = Task("task-2", 2);
  ExpectExhausted(AskFirstStep(*federation_, second, "site-1"));
  // Sites without a budget take part.
  EXPECT_TRUE(AskFirstStep(*federation_, second, "site-2").has_secagg());
  // The refusal holds across a restart: the account is in the site store.
  ASSERT_OK(federation_->Restart("site-1"));
  ExpectExhausted(AskFirstStep(*federation_, Task("task-2", 2, 2), "site-1"));
  // The whole session goes on without site-1.
  const StageOutcome without = RunStage(*federation_, Task("task-2", 2, 3));
  ASSERT_TRUE(without.completed) << without.abort;
  EXPECT_THAT(without.survivors, Not(Contains("site-1")));
  EXPECT_EQ(without.declines.at("site-1").reason(), v1::Decline::SITE_BUDGET_EXHAUSTED);
  // A larger budget pays for it.
  ASSERT_OK(federation_->SetPolicy("site-1", Budget(6)));
  EXPECT_TRUE(AskFirstStep(*federation_, Task("task-2", 2, 4), "site-1").has_secagg());
}

TEST_F(SiteBudgetFederationTest, BudgetSpentDuringASessionStopsItsMaskedInputAndChargesNothing) {
  // The budget pays for one release when the session starts; before the masked input is
  // due, the site's budget shrinks (its staff's new policy, a restart) below one release.
  ASSERT_OK(federation_->SetPolicy("site-1", Budget(4)));
  StagePlan plan = Task("task-1", 1);
  plan.tamper_first_item = [this](const std::string& site, v1::WorkItem&) {
    if (site == "site-2") {
      ASSERT_OK(federation_->SetPolicy("site-1", Budget(1)));
    }
  };
  const StageOutcome outcome = RunStage(*federation_, plan);
  ASSERT_TRUE(outcome.declines.contains("site-1"));
  EXPECT_EQ(outcome.declines.at("site-1").reason(), v1::Decline::SITE_BUDGET_EXHAUSTED);
  EXPECT_THAT(outcome.survivors, Not(Contains("site-1")));
  // Nothing was charged: with the old budget the site still pays for one release (a
  // charge of ε ≈ 3.4 would leave too little), and then for no more.
  ASSERT_OK(federation_->SetPolicy("site-1", Budget(4)));
  const StageOutcome next = RunStage(*federation_, Task("task-2", 2));
  ASSERT_TRUE(next.completed) << next.abort;
  EXPECT_THAT(next.survivors, Contains("site-1"));
  ExpectExhausted(AskFirstStep(*federation_, Task("task-3", 3), "site-1"));
}

}  // namespace
}  // namespace tessera::attack
