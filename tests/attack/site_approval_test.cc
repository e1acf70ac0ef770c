// The approval queue in the site's real agent (client::SiteAgent over a real RocksDB site
// store, real certificates and data): with policy.require_approval, a task is declined
// AWAITING_APPROVAL at its session's first step, sending nothing else, until the site's
// staff decide; an approval takes effect at the task's next attempt without a restart (and
// survives one); a rejection is declined REJECTED_BY_SITE carrying the staff's reason; a
// changed spec under the same task id is pending again; a task the policy refuses is never
// queued. The queue's rules alone: tests/client/approvals_test.cc.

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "client/approvals.h"
#include "common/proto_text.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/validation.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class SiteApprovalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(4));
    ASSERT_OK_AND_ASSIGN(spec_, AttackFederation::ExampleSpec());
    ASSERT_OK_AND_ASSIGN(standardization_, federation_->PooledStandardization(spec_));
    ASSERT_OK_AND_ASSIGN(model_, proto::InitialParameters(spec_.model(), 30, spec_.seed()));
    v1::LocalPolicy policy;
    ASSERT_OK(common::ParseTextProto("require_approval: true", "policy", &policy, nullptr));
    ASSERT_OK(federation_->SetPolicy("site-1", policy));
  }

  StagePlan Plan(const v1::TaskSpec& spec, uint32_t attempt = 1) {
    StagePlan plan;
    plan.task_id = "task-1";
    plan.attempt = attempt;
    plan.cohort = federation_->ids();
    plan.spec = spec;
    plan.model = model_;
    plan.standardization = standardization_;
    return plan;
  }

  // site-1's answer to the plan's first step: a decline with `reason` and nothing else.
  v1::Decline ExpectDeclined(const StagePlan& plan, v1::Decline::Reason reason) {
    const v1::PushResultRequest answer = AskFirstStep(*federation_, plan, "site-1");
    EXPECT_FALSE(answer.has_secagg()) << "something besides the decline left the site";
    EXPECT_EQ(answer.decline().reason(), reason) << answer.ShortDebugString();
    return answer.decline();
  }

  absl::Status Decide(v1::TaskDecision::Kind kind, const std::string& reason = "") {
    v1::TaskDecision decision;
    decision.set_kind(kind);
    decision.set_by("staff (uid 0)");
    decision.set_reason(reason);
    return federation_->approvals("site-1")
        ->Decide("task-1", "", std::move(decision), absl::Now())
        .status();
  }

  std::unique_ptr<AttackFederation> federation_;
  v1::TaskSpec spec_;
  v1::Standardization standardization_;
  std::vector<float> model_;
};

TEST_F(SiteApprovalTest, PendingTaskRunsAtItsNextAttemptOnceApprovedWithoutRestart) {
  const v1::Decline waiting = ExpectDeclined(Plan(spec_, 1), v1::Decline::AWAITING_APPROVAL);
  EXPECT_THAT(waiting.detail(), HasSubstr(crypto::ToHex(crypto::HashTaskSpec(spec_))));
  ASSERT_OK_AND_ASSIGN(auto pending, federation_->approvals("site-1")->Pending());
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_EQ(pending[0].spec_hash(), crypto::HashTaskSpec(spec_));
  ASSERT_OK(Decide(v1::TaskDecision::APPROVED));
  EXPECT_TRUE(AskFirstStep(*federation_, Plan(spec_, 2), "site-1").has_secagg());
  // The approval is in the store: a restarted site runs the task too.
  ASSERT_OK(federation_->Restart("site-1"));
  EXPECT_TRUE(AskFirstStep(*federation_, Plan(spec_, 3), "site-1").has_secagg());
}

TEST_F(SiteApprovalTest, RejectedTaskIsDeclinedWithTheStaffsReason) {
  ExpectDeclined(Plan(spec_, 1), v1::Decline::AWAITING_APPROVAL);
  ASSERT_OK(Decide(v1::TaskDecision::REJECTED, "outside our ethics approval"));
  const v1::Decline rejected = ExpectDeclined(Plan(spec_, 2), v1::Decline::REJECTED_BY_SITE);
  EXPECT_EQ(rejected.detail(), "outside our ethics approval");
}

TEST_F(SiteApprovalTest, ChangedSpecUnderTheSameTaskIdIsPendingAgain) {
  ExpectDeclined(Plan(spec_, 1), v1::Decline::AWAITING_APPROVAL);
  ASSERT_OK(Decide(v1::TaskDecision::APPROVED));
  v1::TaskSpec changed = spec_;
  changed.set_rounds(spec_.rounds() + 1);
  ExpectDeclined(Plan(changed, 2), v1::Decline::AWAITING_APPROVAL);
  ASSERT_OK_AND_ASSIGN(auto pending, federation_->approvals("site-1")->Pending());
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_EQ(pending[0].spec_hash(), crypto::HashTaskSpec(changed));
}

TEST_F(SiteApprovalTest, TaskThePolicyRefusesIsNeverQueued) {
  v1::LocalPolicy policy;
  ASSERT_OK(
      common::ParseTextProto("require_approval: true max_rounds: 1", "policy", &policy, nullptr));
  ASSERT_OK(federation_->SetPolicy("site-1", policy));
  ExpectDeclined(Plan(spec_), v1::Decline::POLICY_REFUSED);
  EXPECT_THAT(federation_->approvals("site-1")->Pending(),
              ::tessera::testing::IsOkAndHolds(IsEmpty()));
}

}  // namespace
}  // namespace tessera::attack
