// The site's local policy against its real agent (client::SiteAgent over a real RocksDB
// site store, real certificates and data): for each rule the issue names — a column outside
// the allow-list, a model kind, missing DP, the ε cap, the threshold fraction, the cell size,
// the rounds — a task that breaks only that rule is refused at the session's first step with
// POLICY_REFUSED and a reason naming the rule, and nothing but that decline leaves the site
// (no keys: the session cannot go on with it). The same site answers the task the rule
// allows. The rules as pure functions: tests/client/policy_test.cc.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/model_layout.h"
#include "proto/validation.h"
#include "secagg/neighbourhood.h"
#include "tests/attack/attack_federation.h"
#include "tests/attack/cheating_coordinator.h"
#include "tests/testing/status_matchers.h"

namespace tessera::attack {
namespace {

using ::testing::StartsWith;

v1::LocalPolicy Policy(const std::string& text) {
  v1::LocalPolicy policy;
  EXPECT_OK(common::ParseTextProto(text, "policy", &policy, nullptr));
  return policy;
}

class SitePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(federation_, AttackFederation::Create(4));
    ASSERT_OK_AND_ASSIGN(spec_, AttackFederation::ExampleSpec());
    ASSERT_OK_AND_ASSIGN(standardization_, federation_->PooledStandardization(spec_));
    ASSERT_OK_AND_ASSIGN(model_, proto::InitialParameters(spec_.model(), 30, spec_.seed()));
    dp_spec_ = spec_;
    dp_spec_.mutable_privacy()->set_clip_norm(0.1);
    dp_spec_.mutable_privacy()->set_noise_multiplier(1.5);
    dp_spec_.mutable_privacy()->set_epsilon_budget(10);
    dp_spec_.mutable_privacy()->set_delta(1e-5);
    ASSERT_THAT(proto::ValidateTaskSpec(dp_spec_), ::testing::IsEmpty());
    proto::ApplyTaskDefaults(&dp_spec_);
  }

  StagePlan Plan(const v1::TaskSpec& spec) {
    StagePlan plan;
    plan.task_id = "task-" + std::to_string(++tasks_);
    plan.stage = spec.has_analytics() ? v1::STAGE_ANALYTICS : v1::STAGE_FIT;
    plan.cohort = federation_->ids();
    plan.spec = spec;
    if (!spec.has_analytics()) {
      plan.model = model_;
      plan.standardization = standardization_;
    }
    return plan;
  }

  // site-1 under `policy` refuses `refused` naming `rule`, sending nothing else, and
  // answers `allowed` (when given) with its keys.
  void ExpectRefusal(const std::string& policy, const std::string& rule, const StagePlan& refused,
                     const std::optional<StagePlan>& allowed) {
    ASSERT_OK(federation_->SetPolicy("site-1", Policy(policy)));
    const v1::PushResultRequest answer = AskFirstStep(*federation_, refused, "site-1");
    ASSERT_TRUE(answer.has_decline()) << "the site took part: " << answer.ShortDebugString();
    EXPECT_FALSE(answer.has_secagg()) << "something besides the decline left the site";
    EXPECT_EQ(answer.decline().reason(), v1::Decline::POLICY_REFUSED);
    EXPECT_THAT(answer.decline().detail(), StartsWith("policy." + rule + ": "));
    if (!allowed.has_value()) return;
    const v1::PushResultRequest accepted = AskFirstStep(*federation_, *allowed, "site-1");
    EXPECT_TRUE(accepted.has_secagg()) << accepted.ShortDebugString();
  }

  std::unique_ptr<AttackFederation> federation_;
  v1::TaskSpec spec_;
  v1::TaskSpec dp_spec_;
  v1::Standardization standardization_;
  std::vector<float> model_;
  int tasks_ = 0;
};

TEST_F(SitePolicyTest, ColumnOutsideTheAllowListIsRefusedByTheSite) {
  v1::TaskSpec narrow = spec_;
  narrow.mutable_dataset()->clear_features();
  narrow.mutable_dataset()->add_features("mean_radius");
  narrow.mutable_dataset()->add_features("mean_texture");
  StagePlan allowed = Plan(narrow);
  ASSERT_OK_AND_ASSIGN(allowed.standardization, federation_->PooledStandardization(narrow));
  ASSERT_OK_AND_ASSIGN(allowed.model, proto::InitialParameters(narrow.model(), 2, narrow.seed()));
  ExpectRefusal(R"pb(
                  allowed_columns {
                    dataset: "breast_cancer"
                    columns: [ "mean_radius", "mean_texture", "malignant" ]
                  }
                )pb",
                "allowed_columns", Plan(spec_), allowed);
}

TEST_F(SitePolicyTest, ModelKindOutsideTheAllowListIsRefusedByTheSite) {
  // The allowed task: the same model kind, and a second site under the refusing policy.
  ASSERT_OK(federation_->SetPolicy("site-2", Policy("allowed_model_kinds: LOGISTIC_REGRESSION")));
  EXPECT_TRUE(AskFirstStep(*federation_, Plan(spec_), "site-2").has_secagg());
  ExpectRefusal("allowed_model_kinds: [ LINEAR_REGRESSION, COX_PH ]", "allowed_model_kinds",
                Plan(spec_), std::nullopt);
}

TEST_F(SitePolicyTest, TrainingWithoutDpIsRefusedByTheSite) {
  ExpectRefusal("require_dp_for_training: true", "require_dp_for_training", Plan(spec_),
                Plan(dp_spec_));
}

TEST_F(SitePolicyTest, EpsilonAboveTheCapIsRefusedByTheSite) {
  v1::TaskSpec modest = dp_spec_;
  modest.mutable_privacy()->set_epsilon_budget(4);
  ExpectRefusal("max_epsilon: 5", "max_epsilon", Plan(dp_spec_), Plan(modest));
}

TEST_F(SitePolicyTest, ThresholdBelowTheFractionIsRefusedByTheSite) {
  // 4 invited sites: the coordinator proposes 3; this site asks for all 4.
  StagePlan low = Plan(spec_);
  ASSERT_EQ(DefaultThreshold(4), 3u);
  StagePlan full = Plan(spec_);
  full.threshold = 4;
  ExpectRefusal("min_threshold_fraction: 1", "min_threshold_fraction", low, full);
}

TEST_F(SitePolicyTest, SecAggPlusBelowTheSitesAssumptionsIsRefusedByTheSite) {
  // A session of 300 invited sites (site-1 among them) run as SecAgg+ with the k the real
  // coordinator picks for 5 % colluding and dropping.
  StagePlan plan = Plan(spec_);
  for (int i = 0; i < 296; ++i) plan.cohort.push_back(absl::StrFormat("zz-site-%03d", i));
  std::sort(plan.cohort.begin(), plan.cohort.end());
  ASSERT_OK_AND_ASSIGN(std::optional<v1::SecAggSparse> sparse,
                       secagg::SparseSetup(300, 0.05, 0.05, 40, 30));
  ASSERT_TRUE(sparse.has_value());
  plan.tamper_first_item = [&](const std::string&, v1::WorkItem& item) {
    *item.mutable_secagg()->mutable_setup()->mutable_sparse() = *sparse;
  };
  // The default policy takes part: its keys come with a commitment to its coin.
  const v1::PushResultRequest taken = AskFirstStep(*federation_, plan, "site-1");
  ASSERT_TRUE(taken.has_secagg()) << taken.ShortDebugString();
  EXPECT_EQ(taken.secagg().advertisement().coin_commitment().size(), 32u);
  // A site assuming more colluders than the set-up was chosen for, or none of SecAgg+,
  // declines before any key leaves.
  for (const auto& [policy, says] : std::vector<std::pair<std::string, std::string>>{
           {"min_secagg_plus_colluding_fraction: 0.1", "requires gamma >= 0.1"},
           {"refuse_secagg_plus: true", "no SecAgg+ session"}}) {
    ASSERT_OK(federation_->SetPolicy("site-1", Policy(policy)));
    plan.task_id = "task-" + std::to_string(++tasks_);
    const v1::PushResultRequest answer = AskFirstStep(*federation_, plan, "site-1");
    ASSERT_TRUE(answer.has_decline()) << policy << ": " << answer.ShortDebugString();
    EXPECT_FALSE(answer.has_secagg()) << policy;
    EXPECT_EQ(answer.decline().reason(), v1::Decline::SECURE_AGGREGATION_ABORTED) << policy;
    EXPECT_THAT(answer.decline().detail(), ::testing::HasSubstr("SECAGG_BAD_SETUP")) << policy;
    EXPECT_THAT(answer.decline().detail(), ::testing::HasSubstr(says)) << policy;
  }
}

TEST_F(SitePolicyTest, CellSizeBelowTheMinimumIsRefusedByTheSite) {
  v1::TaskSpec query;
  ASSERT_OK(common::ParseTextProto(R"pb(
                                     name: "radius"
                                     dataset { id: "breast_cancer" }
                                     analytics {
                                       queries { column: "mean_radius" }
                                       min_cell_size: 5
                                     }
                                     min_clients: 2
                                   )pb",
                                   "query", &query, nullptr));
  ASSERT_OK(common::FieldErrorsToStatus(proto::ValidateTaskSpec(query)));
  proto::ApplyTaskDefaults(&query);
  v1::TaskSpec larger = query;
  larger.mutable_analytics()->set_min_cell_size(20);
  ExpectRefusal("min_cell_size: 20", "min_cell_size", Plan(query), Plan(larger));
}

TEST_F(SitePolicyTest, RoundsAboveTheCapAreRefusedByTheSite) {
  v1::TaskSpec shorter = spec_;
  shorter.set_rounds(10);
  ExpectRefusal("max_rounds: 10", "max_rounds", Plan(spec_), Plan(shorter));
}

}  // namespace
}  // namespace tessera::attack
