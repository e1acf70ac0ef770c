// The sites' decisions as the coordinator keeps them (coordinator/site_decisions.h): which
// declines are decisions, how a site's words are cleaned before they reach the operator's
// terminal, how decisions fold into the task record, and who is left out or named.
#include "coordinator/site_decisions.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::Decline MakeDecline(v1::Decline::Reason reason, const std::string& detail) {
  v1::Decline d;
  d.set_reason(reason);
  d.set_detail(detail);
  return d;
}

SiteDecisions Heard(const std::string& id, v1::Decline::Reason reason,
                    const std::string& detail = "") {
  std::optional<v1::SiteDecision> d = DecisionOf(id, MakeDecline(reason, detail));
  EXPECT_TRUE(d.has_value());
  return d.has_value() ? SiteDecisions{{id, *d}} : SiteDecisions{};
}

TEST(SiteDecisionsTest, ApprovalDeclinesAreDecisionsOtherDeclinesAreNot) {
  EXPECT_EQ(DecisionOf("a", MakeDecline(v1::Decline::AWAITING_APPROVAL, ""))->state(),
            v1::SITE_AWAITING_APPROVAL);
  EXPECT_EQ(DecisionOf("a", MakeDecline(v1::Decline::REJECTED_BY_SITE, "no"))->state(),
            v1::SITE_REJECTED);
  EXPECT_EQ(DecisionOf("a", MakeDecline(v1::Decline::SITE_BUDGET_EXHAUSTED, ""))->state(),
            v1::SITE_BUDGET_EXHAUSTED);
  EXPECT_EQ(DecisionOf("a", MakeDecline(v1::Decline::POLICY_REFUSED, ""))->state(),
            v1::SITE_POLICY_REFUSED);
  EXPECT_FALSE(DecisionOf("a", MakeDecline(v1::Decline::ALREADY_CONTRIBUTED, "")).has_value());
  EXPECT_FALSE(DecisionOf("a", MakeDecline(v1::Decline::DATA_ERROR, "")).has_value());
}

TEST(SiteDecisionsTest, RejectionReasonIsCleanedAndCut) {
  EXPECT_EQ(CleanReason("not approved\n\x1b[2Jby the board"), "not approved??[2Jby the board");
  EXPECT_EQ(CleanReason("comité d'éthique"), "comité d'éthique");
  EXPECT_EQ(CleanReason("\xc2\x9b"
                        "31m"),
            "??31m");  // a C1 escape
  EXPECT_EQ(CleanReason(std::string(1000, 'x')).size(), 300u);
}

TEST(SiteDecisionsTest, AwaitingApprovalThenApprovedIsMergedWithItsTimes) {
  v1::TaskRecord task;
  EXPECT_TRUE(
      MergeDecisions(Heard("site-b", v1::Decline::AWAITING_APPROVAL, "pending"), 1000, &task));
  EXPECT_THAT(SitesAwaitingApproval(task), ElementsAre("site-b"));
  // The same decision again only moves updated_unix_ms.
  EXPECT_FALSE(
      MergeDecisions(Heard("site-b", v1::Decline::AWAITING_APPROVAL, "pending"), 2000, &task));
  ASSERT_EQ(task.site_decisions_size(), 1);
  EXPECT_EQ(task.site_decisions(0).since_unix_ms(), 1000);
  EXPECT_EQ(task.site_decisions(0).updated_unix_ms(), 2000);
  v1::SiteDecision approved;
  approved.set_client_id("site-b");
  approved.set_state(v1::SITE_APPROVED);
  EXPECT_TRUE(MergeDecisions({{"site-b", approved}}, 3000, &task));
  EXPECT_THAT(SitesAwaitingApproval(task), IsEmpty());
  EXPECT_EQ(task.site_decisions(0).since_unix_ms(), 3000);
  // Sorted by client id.
  EXPECT_TRUE(MergeDecisions(Heard("site-a", v1::Decline::AWAITING_APPROVAL), 4000, &task));
  EXPECT_EQ(task.site_decisions(0).client_id(), "site-a");
}

TEST(SiteDecisionsTest, RejectionAndSiteBudgetAreNamedAndLeftOut) {
  v1::TaskRecord task;
  MergeDecisions(Heard("site-c", v1::Decline::REJECTED_BY_SITE, "ethics board said no"), 1, &task);
  MergeDecisions(Heard("site-d", v1::Decline::SITE_BUDGET_EXHAUSTED, "spent"), 1, &task);
  MergeDecisions(Heard("site-e", v1::Decline::POLICY_REFUSED, "rule x"), 1, &task);
  EXPECT_EQ(RejectionReason(task), "site-c rejected the task: ethics board said no");
  EXPECT_EQ(ExclusionReasons(task),
            "site-c rejected the task: ethics board said no; site-d refused the task: its "
            "privacy budget is exhausted: spent");
  EXPECT_THAT(ExcludedSites(task), ElementsAre("site-c", "site-d"));
  EXPECT_TRUE(AnyDeciding(Heard("x", v1::Decline::SITE_BUDGET_EXHAUSTED)));
  EXPECT_FALSE(AnyDeciding(Heard("x", v1::Decline::POLICY_REFUSED)));
  EXPECT_TRUE(AnyAwaiting(Heard("x", v1::Decline::AWAITING_APPROVAL)));
  EXPECT_FALSE(AnyAwaiting(Heard("x", v1::Decline::REJECTED_BY_SITE)));
}

}  // namespace
}  // namespace tessera::coordinator
