// Attack 6 of the privacy issue: sites did not check the spec they received. The session
// set-up did not bind the spec, N, or the standardisation, and sites never re-validated the
// spec, so a coordinator could make one site train 5000 epochs (memorising its rows) or send
// different sites different specs within one session.
//
// The fix: every site re-validates the spec with the coordinator's own validator, and the
// signed set-up binds the spec hash, N and the standardisation, which the site checks
// against its work item; a site shown something else never contributes to that session.
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

using ::testing::HasSubstr;

class SpecAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(4));
    ASSERT_OK_AND_ASSIGN(spec_, AttackFederation::ExampleSpec());
    ASSERT_OK_AND_ASSIGN(standardization_, federation_->PooledStandardization(spec_));
    ASSERT_OK_AND_ASSIGN(model_, proto::InitialParameters(spec_.model(), 30, spec_.seed()));
  }

  StagePlan Plan(uint32_t attempt) {
    StagePlan plan;
    plan.stage = v1::STAGE_FIT;
    plan.attempt = attempt;
    plan.cohort = federation_->ids();
    plan.spec = spec_;
    plan.model = model_;
    plan.standardization = standardization_;
    return plan;
  }

  // Gives site-1 a first item whose spec is `spec` (with a matching spec hash).
  static std::function<void(const std::string&, v1::WorkItem&)> OtherSpecFor(
      const v1::TaskSpec& spec) {
    return [spec](const std::string& site, v1::WorkItem& item) {
      if (site != "site-1") return;
      *item.mutable_spec() = spec;
      item.set_spec_hash(crypto::HashTaskSpec(spec));
    };
  }

  // The session's sum, if any, holds no input of site-1.
  static void ExpectSite1NotSummed(const StageOutcome& outcome) {
    if (!outcome.completed) return;
    EXPECT_THAT(outcome.survivors, ::testing::Not(::testing::Contains("site-1")))
        << "site-1's input, computed under another spec than its peers', is in the sum";
  }

  std::unique_ptr<AttackFederation> federation_;
  v1::TaskSpec spec_;
  v1::Standardization standardization_;
  std::vector<float> model_;
};

// A spec the coordinator's own validator refuses (5000 local epochs; at most 1000) is
// refused by the site, naming the field, before any training.
TEST_F(SpecAttack, InvalidSpecIsRefusedNamingTheField) {
  v1::TaskSpec greedy = spec_;
  greedy.mutable_training()->set_local_epochs(5000);
  StagePlan plan = Plan(1);
  plan.spec = greedy;
  const v1::PushResultRequest answer = AskFirstStep(*federation_, plan, "site-1");
  ASSERT_TRUE(answer.has_decline()) << "the site trained on a spec the validator refuses";
  EXPECT_EQ(answer.decline().reason(), v1::Decline::BAD_WORK_ITEM);
  EXPECT_THAT(answer.decline().detail(), HasSubstr("training.local_epochs"));
}

// One site is sent another (valid) spec than its peers in the same session: it must not
// end up in a sum next to sites that trained under the spec the session is about.
TEST_F(SpecAttack, AnotherSpecForOneSiteNeverMakesASum) {
  v1::TaskSpec other = spec_;
  other.mutable_training()->set_local_epochs(50);
  StagePlan plan = Plan(1);
  plan.tamper_first_item = OtherSpecFor(other);
  const StageOutcome outcome = RunStage(*federation_, plan);
  ExpectSite1NotSummed(outcome);
  ASSERT_TRUE(outcome.declines.contains("site-1"));
  EXPECT_EQ(outcome.declines.at("site-1").reason(), v1::Decline::SECURE_AGGREGATION_ABORTED)
      << outcome.declines.at("site-1").ShortDebugString();
}

// Another N for one site (its weight n / N would differ from its peers').
TEST_F(SpecAttack, AnotherPooledRowCountForOneSiteNeverMakesASum) {
  StagePlan plan = Plan(2);
  plan.tamper_first_item = [](const std::string& site, v1::WorkItem& item) {
    if (site == "site-1") item.mutable_standardization()->set_num_train_rows(7);
  };
  const StageOutcome outcome = RunStage(*federation_, plan);
  ExpectSite1NotSummed(outcome);
  ASSERT_TRUE(outcome.declines.contains("site-1"));
}

// Another standardisation for one site.
TEST_F(SpecAttack, AnotherStandardizationForOneSiteNeverMakesASum) {
  StagePlan plan = Plan(3);
  plan.tamper_first_item = [](const std::string& site, v1::WorkItem& item) {
    if (site == "site-1") item.mutable_standardization()->set_mean(0, 1e6);
  };
  const StageOutcome outcome = RunStage(*federation_, plan);
  ExpectSite1NotSummed(outcome);
  ASSERT_TRUE(outcome.declines.contains("site-1"));
}

// An L2 penalty other than the one the spec and N give.
TEST_F(SpecAttack, AnotherL2PenaltyIsRefused) {
  StagePlan plan = Plan(4);
  plan.tamper_first_item = [](const std::string& site, v1::WorkItem& item) { item.set_l2(100); };
  const v1::PushResultRequest answer = AskFirstStep(*federation_, plan, "site-1");
  ASSERT_TRUE(answer.has_decline());
  EXPECT_EQ(answer.decline().reason(), v1::Decline::BAD_WORK_ITEM);
}

}  // namespace
}  // namespace tessera::attack
