// A site's part of an exact regression (client/glm_work.h): the design it builds, what it
// refuses (and that a refusal never quotes a cell), the policy rule for site fixed effects
// and the contribution key of a Newton round.
#include "client/glm_work.h"

#include <cmath>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "client/contribution_key.h"
#include "client/csv.h"
#include "client/policy.h"
#include "client/task_egress.h"
#include "glm/glm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/site_control.pb.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

v1::TaskSpec Spec(bool fixed_effects = false) {
  v1::TaskSpec spec;
  spec.set_name("glm");
  spec.mutable_dataset()->set_id("d");
  spec.mutable_dataset()->add_features("x");
  spec.mutable_dataset()->set_label("y");
  spec.mutable_model()->mutable_glm()->set_family(v1::GlmSpec::POISSON);
  spec.mutable_model()->mutable_glm()->set_site_fixed_effects(fixed_effects);
  spec.set_min_clients(2);
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

CsvTable Table(const std::string& text) {
  absl::StatusOr<CsvTable> table = ParseCsv(text, "site.csv", CellPolicy::kMarkNonNumeric);
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

const char kRows[] = "x,y,t,note\n1.5,2,10,a\n-0.5,0,20,b\n2.25,3,5,c\n";

TEST(GlmWorkTest, TheSumsAreThoseOfTheDesignWithTheInterceptFirst) {
  const std::vector<double> beta = {0.1, 0.2};
  ASSERT_OK_AND_ASSIGN(std::vector<double> flat,
                       GlmContribution(Spec(), Table(kRows), "site.csv", beta, {}));
  Eigen::MatrixXd x(3, 2);
  x << 1, 1.5, 1, -0.5, 1, 2.25;
  Eigen::VectorXd y(3);
  y << 2, 0, 3;
  ASSERT_OK_AND_ASSIGN(glm::SiteSums want,
                       glm::SiteContribution(glm::Family::kPoisson, x, y, Eigen::VectorXd(),
                                             Eigen::VectorXd(), Eigen::Vector2d(0.1, 0.2)));
  EXPECT_EQ(flat, glm::Flatten(want));
}

TEST(GlmWorkTest, AnOffsetsLogIsAddedAndANonPositiveOneIsRefusedWithoutItsValue) {
  v1::TaskSpec spec = Spec();
  spec.mutable_model()->mutable_glm()->set_offset("t");
  spec.mutable_model()->mutable_glm()->set_log_offset(true);
  const std::vector<double> beta = {0.0, 0.0};
  ASSERT_OK_AND_ASSIGN(std::vector<double> flat,
                       GlmContribution(spec, Table(kRows), "site.csv", beta, {}));
  // At β = 0 the Poisson mean is the exposure: Σ weight·e^offset = 10 + 20 + 5.
  ASSERT_OK_AND_ASSIGN(glm::SiteSums sums, glm::Unflatten(flat, 2));
  EXPECT_DOUBLE_EQ(sums.weighted_exposure, 35.0);
  EXPECT_DOUBLE_EQ(sums.weighted_offset, std::log(10.0) + std::log(20.0) + std::log(5.0));

  const absl::Status refused =
      GlmContribution(spec, Table("x,y,t\n1,2,10\n2,1,-7.25\n"), "site.csv", beta, {}).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("column 't'")));
  EXPECT_THAT(std::string(refused.message()), Not(HasSubstr("7.25")));
}

TEST(GlmWorkTest, ALabelOutsideTheFamilysRangeIsRefusedForTheStatisticsRound) {
  const absl::Status refused = CheckGlmRows(Spec(), Table("x,y\n1,2\n2,-3.5\n"), "site.csv");
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site.csv")));
  EXPECT_THAT(std::string(refused.message()), Not(HasSubstr("3.5")));
  EXPECT_OK(CheckGlmRows(Spec(), Table(kRows), "site.csv"));
  // A column the task does not use may hold text; one it uses may not.
  EXPECT_THAT(CheckGlmRows(Spec(), Table("x,y\n1,NA\n2,1\n"), "site.csv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("column 'y'")));
}

TEST(GlmWorkTest, FixedEffectsPutOnesInThisSitesInterceptOnly) {
  const std::vector<double> beta = {0.0, 0.0, 0.0, 0.0};
  GlmSitePlace place{{"site-a", "site-b", "site-c"}, "site-b", {}};
  ASSERT_OK_AND_ASSIGN(std::vector<double> flat,
                       GlmContribution(Spec(true), Table(kRows), "site.csv", beta, place));
  ASSERT_OK_AND_ASSIGN(glm::SiteSums sums, glm::Unflatten(flat, 4));
  // Poisson at β = 0: W = 1. Only site-b's intercept row of X'WX is non-zero.
  EXPECT_EQ(sums.xtwx(0, 0), 0);
  EXPECT_EQ(sums.xtwx(1, 1), 3);
  EXPECT_EQ(sums.xtwx(2, 2), 0);
  EXPECT_DOUBLE_EQ(sums.xtwx(1, 3), 1.5 - 0.5 + 2.25);
}

TEST(GlmWorkTest, AnItemThatDoesNotPlaceThisSiteOrDoesNotFitIsAFailedPrecondition) {
  const std::vector<double> four(4, 0.0);
  for (const GlmSitePlace& place : {GlmSitePlace{{"site-a", "site-c", "site-d"}, "site-b", {}},
                                    GlmSitePlace{{"site-c", "site-b", "site-a"}, "site-b", {}},
                                    GlmSitePlace{{"site-a", "site-b", "site-b"}, "site-b", {}}}) {
    EXPECT_THAT(GlmContribution(Spec(true), Table(kRows), "site.csv", four, place).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  const std::vector<double> not_finite = {0.0, std::nan("")};
  EXPECT_THAT(GlmContribution(Spec(), Table(kRows), "site.csv", not_finite, {}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("finite")));
  const std::vector<double> three(3, 0.0);
  EXPECT_THAT(GlmContribution(Spec(), Table(kRows), "site.csv", three, {}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("coefficients")));
}

TEST(GlmWorkTest, SitesRefuseFixedEffectsUnlessTheirPolicyAllowsThem) {
  v1::LocalPolicy policy;
  EXPECT_OK(CheckTaskPolicy(policy, Spec()));
  EXPECT_THAT(CheckTaskPolicy(policy, Spec(true)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("allow_site_fixed_effects")));
  policy.set_allow_site_fixed_effects(true);
  EXPECT_OK(CheckTaskPolicy(policy, Spec(true)));
}

TEST(GlmWorkTest, ARoundsKeyIsItsCoefficientsAndDesignNotTheTolerance) {
  const v1::TaskSpec spec = Spec();
  const std::string key = ContributionKey(spec, v1::STAGE_GLM, "coefficients-a");
  EXPECT_NE(key, ContributionKey(spec, v1::STAGE_GLM, "coefficients-b"));
  v1::TaskSpec looser = spec;
  looser.mutable_model()->mutable_glm()->set_epsilon(1e-4);
  looser.set_rounds(50);
  EXPECT_EQ(key, ContributionKey(looser, v1::STAGE_GLM, "coefficients-a"));
  v1::TaskSpec offset = spec;
  offset.mutable_model()->mutable_glm()->set_offset("t");
  EXPECT_NE(key, ContributionKey(offset, v1::STAGE_GLM, "coefficients-a"));
  // Not a FIT key of the same model either.
  EXPECT_NE(key, ContributionKey(spec, v1::STAGE_FIT, "coefficients-a"));
}

TEST(GlmWorkTest, TheSitesTaskViewSaysWhatEachRoundSendsAndWhatFixedEffectsReveal) {
  v1::ClientConfig config;
  v1::LocalDataset* d = config.add_datasets();
  d->set_id("d");
  d->set_train_csv("train.csv");
  v1::ShowTaskResponse shown;
  DescribeTask(Spec(true), config, &shown);
  ASSERT_EQ(shown.stages_size(), 2);  // statistics, glm
  EXPECT_EQ(shown.stages(1).stage(), "glm");
  EXPECT_THAT(shown.stages(1).holds(), HasSubstr("X'WX"));
  EXPECT_THAT(shown.stages(1).holds(), HasSubstr("this site's rows alone"));
  EXPECT_GT(shown.stages(1).values(), 0u);
  EXPECT_THAT(shown.policy(), HasSubstr("allow_site_fixed_effects"));
}

}  // namespace
}  // namespace tessera::client
