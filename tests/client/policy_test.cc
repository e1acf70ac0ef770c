// The site's local policy as pure functions (client/policy.h): one test per rule, each
// refusing a task that breaks only that rule and naming it, the task that keeps to it
// accepted; deny-by-default; automatic approval; and the validation of the policy file
// naming the field. The same rules against the real site agent (nothing sent) are in
// tests/attack/site_policy_test.cc.
#include "client/policy.h"

#include <string>
#include <vector>

#include "common/proto_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::StatusIs;

v1::TaskSpec Example(const std::string& name) {
  v1::TaskSpec spec;
  const std::string path = std::string(TESSERA_SOURCE_DIR) + "/deploy/examples/" + name;
  EXPECT_OK(common::LoadProtoFile(path, &spec));
  proto::ApplyTaskDefaults(&spec);
  EXPECT_THAT(proto::ValidateTaskSpec(spec), IsEmpty()) << name;
  return spec;
}

v1::LocalPolicy Policy(const std::string& text) {
  v1::LocalPolicy policy;
  EXPECT_OK(common::ParseTextProto(text, "policy", &policy, nullptr));
  return policy;
}

// The refusal's rule and reason, after checking that Evaluate and CheckTaskPolicy agree.
PolicyRefusal Refusal(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  const PolicyDecision decision = Evaluate(policy, spec);
  EXPECT_EQ(decision.verdict, PolicyDecision::kRefuse);
  EXPECT_THAT(CheckTaskPolicy(policy, spec),
              StatusIs(absl::StatusCode::kPermissionDenied, decision.refusal.reason));
  EXPECT_THAT(decision.refusal.reason, ::testing::StartsWith("policy." + decision.refusal.rule));
  return decision.refusal;
}

class PolicyTest : public ::testing::Test {
 protected:
  v1::TaskSpec logistic_ = Example("breast_cancer_logistic.textproto");
  v1::TaskSpec dp_ = Example("breast_cancer_dp.textproto");
  v1::TaskSpec query_ = Example("diabetes_query_dp.textproto");
};

TEST_F(PolicyTest, ColumnOutsideTheAllowListIsRefused) {
  v1::LocalPolicy policy = Policy(R"pb(
    allowed_columns {
      dataset: "breast_cancer"
      columns: [ "mean_radius", "malignant" ]
    }
  )pb");
  const PolicyRefusal refusal = Refusal(policy, logistic_);
  EXPECT_EQ(refusal.rule, "allowed_columns");
  EXPECT_THAT(refusal.reason, HasSubstr("column 'area_error' of dataset 'breast_cancer'"));
  // Only the listed columns: allowed.
  v1::TaskSpec narrow = logistic_;
  narrow.mutable_dataset()->clear_features();
  narrow.mutable_dataset()->add_features("mean_radius");
  EXPECT_OK(CheckTaskPolicy(policy, narrow));
  // An analytics task's filter column counts too.
  policy = Policy(R"pb(
    allowed_columns {
      dataset: "diabetes"
      columns: [ "progression", "bmi", "s5" ]
    }
  )pb");
  EXPECT_THAT(Refusal(policy, query_).reason,
              HasSubstr("policy.allowed_columns: column 'age' of dataset 'diabetes'"));
}

TEST_F(PolicyTest, ModelKindOutsideTheAllowListIsRefused) {
  const v1::LocalPolicy policy = Policy("allowed_model_kinds: LINEAR_REGRESSION");
  const PolicyRefusal refusal = Refusal(policy, logistic_);
  EXPECT_EQ(refusal.rule, "allowed_model_kinds");
  EXPECT_THAT(refusal.reason, HasSubstr("LOGISTIC_REGRESSION"));
  EXPECT_OK(CheckTaskPolicy(Policy("allowed_model_kinds: LOGISTIC_REGRESSION"), logistic_));
  // Analytics tasks have no model: the list does not apply to them.
  EXPECT_OK(CheckTaskPolicy(policy, query_));
}

TEST_F(PolicyTest, TaskKindAndDatasetOutsideTheAllowListsAreRefused) {
  EXPECT_EQ(Refusal(Policy("allowed_task_kinds: TRAINING"), query_).rule, "allowed_task_kinds");
  EXPECT_OK(CheckTaskPolicy(Policy("allowed_task_kinds: TRAINING"), logistic_));
  const PolicyRefusal refusal = Refusal(Policy("allowed_datasets: 'diabetes'"), logistic_);
  EXPECT_EQ(refusal.rule, "allowed_datasets");
  EXPECT_THAT(refusal.reason, HasSubstr("dataset 'breast_cancer'"));
}

TEST_F(PolicyTest, TrainingWithoutDpIsRefusedWhenDpIsRequired) {
  const v1::LocalPolicy policy = Policy("require_dp_for_training: true");
  EXPECT_EQ(Refusal(policy, logistic_).rule, "require_dp_for_training");
  EXPECT_OK(CheckTaskPolicy(policy, dp_));
  v1::TaskSpec exact_query = query_;
  exact_query.clear_privacy();
  EXPECT_OK(CheckTaskPolicy(policy, exact_query)) << "the rule is about training";
}

TEST_F(PolicyTest, EpsilonAboveTheCapIsRefused) {
  const PolicyRefusal refusal = Refusal(Policy("max_epsilon: 4"), dp_);
  EXPECT_EQ(refusal.rule, "max_epsilon");
  EXPECT_THAT(refusal.reason, HasSubstr("privacy.epsilon_budget 10 is above this site's cap 4"));
  EXPECT_OK(CheckTaskPolicy(Policy("max_epsilon: 10"), dp_));
}

TEST_F(PolicyTest, ClipNormNoiseAndDeltaOutsideTheLimitsAreRefused) {
  EXPECT_EQ(Refusal(Policy("max_clip_norm: 0.05"), dp_).rule, "max_clip_norm");
  EXPECT_EQ(Refusal(Policy("min_noise_multiplier: 2"), dp_).rule, "min_noise_multiplier");
  EXPECT_EQ(Refusal(Policy("max_delta: 1e-6"), dp_).rule, "max_delta");
  EXPECT_OK(
      CheckTaskPolicy(Policy("max_clip_norm: 0.1 min_noise_multiplier: 1.5 max_delta: 1e-5"), dp_));
}

TEST_F(PolicyTest, ThresholdBelowTheFractionIsRefused) {
  const v1::LocalPolicy policy = Policy("min_cohort: 2 min_threshold_fraction: 0.9");
  // 10 invited: at least 9.
  EXPECT_EQ(PolicyMinThreshold(policy, 10), 9u);
  EXPECT_THAT(CheckThreshold(policy, 8, 10),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("policy.min_threshold_fraction: the session's threshold 8 for "
                                 "10 invited sites")));
  EXPECT_OK(CheckThreshold(policy, 9, 10));
  // 0.7 of 10 is 7, not 8 (floating point).
  EXPECT_EQ(PolicyMinThreshold(Policy("min_threshold_fraction: 0.7"), 10), 7u);
  // min_cohort bounds it from below.
  EXPECT_EQ(PolicyMinThreshold(Policy("min_cohort: 3 min_threshold_fraction: 0.1"), 4), 3u);
}

TEST_F(PolicyTest, CellSizeBelowTheMinimumIsRefused) {
  const PolicyRefusal refusal = Refusal(Policy("min_cell_size: 20"), query_);
  EXPECT_EQ(refusal.rule, "min_cell_size");
  EXPECT_THAT(refusal.reason, HasSubstr("analytics.min_cell_size 10 is below this site's"));
  EXPECT_OK(CheckTaskPolicy(Policy("min_cell_size: 10"), query_));
}

TEST_F(PolicyTest, RoundsAndLocalEpochsAboveTheCapsAreRefused) {
  const PolicyRefusal refusal = Refusal(Policy("max_rounds: 20"), logistic_);
  EXPECT_EQ(refusal.rule, "max_rounds");
  EXPECT_THAT(refusal.reason, HasSubstr("rounds 30 is above this site's cap 20"));
  EXPECT_OK(CheckTaskPolicy(Policy("max_rounds: 30"), logistic_));
  EXPECT_EQ(Refusal(Policy("max_local_epochs: 1"), logistic_).rule, "max_local_epochs");
  EXPECT_OK(CheckTaskPolicy(Policy("max_local_epochs: 2"), logistic_));
}

TEST_F(PolicyTest, CohortBelowTheMinimumIsRefused) {
  EXPECT_EQ(Refusal(Policy("min_cohort: 4"), logistic_).rule, "min_cohort");
  EXPECT_THAT(CheckCohort(Policy("min_cohort: 4"), 3),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("policy.min_cohort")));
  EXPECT_OK(CheckCohort(Policy("min_cohort: 3"), 3));
}

TEST_F(PolicyTest, TaskNamesAndSpecHashesOutsideTheAllowListsAreRefused) {
  EXPECT_EQ(Refusal(Policy("allowed_task_names: 'other'"), logistic_).rule, "allowed_task_names");
  const std::string hash(64, 'a');
  EXPECT_EQ(Refusal(Policy("allowed_spec_hashes: '" + hash + "'"), logistic_).rule,
            "allowed_spec_hashes");
}

TEST_F(PolicyTest, DenyByDefaultAllowsOnlyWhatIsListed) {
  const v1::LocalPolicy empty = Policy("deny_by_default: true");
  EXPECT_EQ(Refusal(empty, logistic_).rule, "allowed_task_kinds");
  v1::LocalPolicy listed = Policy(R"pb(
    deny_by_default: true
    allowed_task_kinds: TRAINING
    allowed_datasets: "breast_cancer"
  )pb");
  EXPECT_EQ(Refusal(listed, logistic_).rule, "allowed_columns") << "no column list: no column";
  for (const std::string& column : TaskColumns(logistic_)) {
    if (listed.allowed_columns().empty())
      listed.add_allowed_columns()->set_dataset("breast_cancer");
    listed.mutable_allowed_columns(0)->add_columns(column);
  }
  EXPECT_EQ(Refusal(listed, logistic_).rule, "allowed_model_kinds");
  listed.add_allowed_model_kinds(v1::ModelSpec::LOGISTIC_REGRESSION);
  EXPECT_OK(CheckTaskPolicy(listed, logistic_));
  // Without deny_by_default the empty lists allow anything.
  EXPECT_OK(CheckTaskPolicy(v1::LocalPolicy(), logistic_));
}

TEST_F(PolicyTest, AutoApprovalRulesApproveWhatMatchesAndNeverWhatIsRefused) {
  v1::LocalPolicy policy = Policy(R"pb(
    auto_approve { name: "small-dp" task_kinds: TRAINING max_epsilon: 10 max_rounds: 30 }
    auto_approve { name: "queries" task_kinds: ANALYTICS require_dp: true }
  )pb");
  PolicyDecision decision = Evaluate(policy, dp_);
  EXPECT_EQ(decision.verdict, PolicyDecision::kAutoApprove);
  EXPECT_EQ(decision.auto_approval_rule, "small-dp");
  EXPECT_EQ(Evaluate(policy, query_).auto_approval_rule, "queries");
  // Without DP no rule matches: the staff decide.
  EXPECT_EQ(Evaluate(policy, logistic_).verdict, PolicyDecision::kNeedsApproval);
  v1::TaskSpec longer = dp_;
  longer.set_rounds(31);
  EXPECT_EQ(Evaluate(policy, longer).verdict, PolicyDecision::kNeedsApproval);
  // A rule never overrides a refusal.
  policy.set_max_epsilon(5);
  decision = Evaluate(policy, dp_);
  EXPECT_EQ(decision.verdict, PolicyDecision::kRefuse);
  EXPECT_EQ(decision.refusal.rule, "max_epsilon");
}

// The policy file's errors name the field.
v1::ClientConfig Config(const std::string& policy) {
  v1::ClientConfig config;
  EXPECT_OK(common::ParseTextProto(R"pb(
                                     coordinator_address: "127.0.0.1:1"
                                     tls { cert: "c" key: "k" ca_cert: "ca" }
                                     data_dir: "/tmp/x"
                                     datasets { id: "heart" train_csv: "h.csv" }
                                   )pb",
                                   "config", &config, nullptr));
  EXPECT_OK(common::ParseTextProto(policy, "policy", config.mutable_policy(), nullptr));
  return config;
}

std::vector<std::string> ErrorPaths(const v1::ClientConfig& config) {
  std::vector<std::string> paths;
  for (const common::FieldError& e : proto::ValidateClientConfig(config)) paths.push_back(e.path);
  return paths;
}

TEST(PolicyValidationTest, BadValuesAreNamedByTheirField) {
  EXPECT_THAT(ErrorPaths(Config("")), IsEmpty());
  EXPECT_THAT(ErrorPaths(Config(R"pb(
                allowed_datasets: "hearts"
                allowed_columns { dataset: "heart" }
                allowed_model_kinds: KIND_UNSPECIFIED
                min_threshold_fraction: 1.5
                max_epsilon: -1
                max_delta: 1
                auto_approve { name: "everything" }
                auto_approve { name: "bad name!" max_rounds: 3 }
                site_budgets { dataset: "heart" epsilon: 0 delta: 1e-5 }
                default_site_budget { dataset: "heart" epsilon: 1 delta: 2 }
              )pb")),
              ::testing::UnorderedElementsAre(
                  "policy.allowed_datasets[0]", "policy.allowed_columns[0].columns",
                  "policy.allowed_model_kinds[0]", "policy.min_threshold_fraction",
                  "policy.max_epsilon", "policy.max_delta", "policy.auto_approve[0]",
                  "policy.auto_approve[1].name", "policy.site_budgets[0].epsilon",
                  "policy.default_site_budget.dataset", "policy.default_site_budget.delta"));
  EXPECT_THAT(ErrorPaths(Config(R"pb(
                deny_by_default: true allowed_datasets: "heart"
              )pb")),
              ::testing::ElementsAre("policy.allowed_datasets[0]"));
}

TEST(PolicyValidationTest, RequireSecureAggregationIsAKnownField) {
  EXPECT_THAT(ErrorPaths(Config("require_secure_aggregation: true")), IsEmpty());
}

}  // namespace
}  // namespace tessera::client
