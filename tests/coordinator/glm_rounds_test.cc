// The coordinator's Newton rounds of an exact regression (coordinator/glm_rounds.h), driven
// here by sums the sites' own code computes (glm::SiteContribution, glm::Flatten) without
// the network: where the rounds start, when they stop, and which sums they refuse.
#include "coordinator/glm_rounds.h"

#include <cmath>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "glm/cox.h"
#include "glm/glm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/glm_layout.h"
#include "proto/validation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

struct Site {
  Eigen::MatrixXd x;  // with the intercept column first (GLM families)
  Eigen::VectorXd y;
  Eigen::VectorXd time;   // COX
  Eigen::VectorXd event;  // COX
};

// Three sites of rows from a fixed recipe: two features, a binary label whose log odds rise
// with the first and fall with the second (deterministic, no random source).
std::vector<Site> Sites(bool intercept, int rows_per_site = 40) {
  std::vector<Site> sites(3);
  int k = 0;
  for (Site& s : sites) {
    const int cols = intercept ? 3 : 2;
    s.x.resize(rows_per_site, cols);
    s.y.resize(rows_per_site);
    s.event.resize(rows_per_site);
    s.time.resize(rows_per_site);
    for (int i = 0; i < rows_per_site; ++i, ++k) {
      const double a = std::sin(0.7 * k) * 2.0;
      const double b = std::cos(1.3 * k) + 0.01 * k;
      if (intercept) s.x(i, 0) = 1.0;
      s.x(i, cols - 2) = a;
      s.x(i, cols - 1) = b;
      const double eta = 0.3 + 0.8 * a - 0.5 * b;
      s.y(i) = std::sin(3.1 * k) * 0.5 + 0.5 < 1.0 / (1.0 + std::exp(-eta)) ? 1.0 : 0.0;
      s.event(i) = (k % 3 == 0) ? 0.0 : 1.0;
      s.time(i) = 1.0 + 10.0 * std::abs(std::sin(2.3 * k)) * std::exp(-0.4 * a + 0.3 * b);
    }
  }
  return sites;
}

v1::TaskSpec Spec(v1::GlmSpec::Family family, uint32_t rounds = 0) {
  v1::TaskSpec spec;
  spec.set_name("glm");
  spec.mutable_dataset()->set_id("d");
  spec.mutable_dataset()->add_features("a");
  spec.mutable_dataset()->add_features("b");
  spec.mutable_dataset()->set_label("y");
  if (family == v1::GlmSpec::COX) spec.mutable_dataset()->set_event("e");
  spec.mutable_model()->mutable_glm()->set_family(family);
  spec.set_rounds(rounds);
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

std::vector<double> Sum(const v1::TaskSpec& spec, const std::vector<Site>& sites,
                        const std::vector<double>& beta) {
  const Eigen::Map<const Eigen::VectorXd> b(beta.data(), static_cast<Eigen::Index>(beta.size()));
  std::vector<double> total;
  for (const Site& s : sites) {
    std::vector<double> flat;
    if (spec.model().glm().family() == v1::GlmSpec::COX) {
      auto sums = glm::CoxStratumContribution(glm::Ties::kEfron, s.x, s.time, s.event, b);
      EXPECT_TRUE(sums.ok()) << sums.status();
      flat = glm::FlattenCox(*sums);
    } else {
      const glm::Family family = spec.model().glm().family() == v1::GlmSpec::GAUSSIAN
                                     ? glm::Family::kGaussian
                                     : glm::Family::kBinomial;
      auto sums = glm::SiteContribution(family, s.x, s.y, Eigen::VectorXd(), Eigen::VectorXd(), b);
      EXPECT_TRUE(sums.ok()) << sums.status();
      flat = glm::Flatten(*sums);
    }
    if (total.empty()) total.assign(flat.size(), 0.0);
    for (size_t i = 0; i < flat.size(); ++i) total[i] += flat[i];
  }
  return total;
}

const std::vector<std::string> kSites = {"site-a", "site-b", "site-c"};

// Runs rounds as the task runner does until a report; the last output.
GlmRoundOutput Drive(const v1::TaskSpec& spec, const std::vector<Site>& sites, uint32_t* rounds) {
  std::vector<double> beta = *GlmFirstCoefficients(spec, kSites.size());
  std::vector<double> history;
  std::optional<double> null_deviance;
  for (uint32_t round = 1; round <= spec.rounds(); ++round) {
    const std::vector<double> sum = Sum(spec, sites, beta);
    GlmRoundInput in;
    in.spec = &spec;
    in.sites = kSites;
    in.round = round;
    in.coefficients = beta;
    in.sum = sum;
    in.history = history;
    in.pooled_rows = 120;
    in.null_deviance = null_deviance;
    absl::StatusOr<GlmRoundOutput> out = GlmRound(in);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    if (out->null_deviance.has_value()) null_deviance = out->null_deviance;
    history.push_back(out->objective);
    *rounds = round;
    if (out->report.has_value()) return *out;
    EXPECT_NE(out->next, beta) << "round " << round << " asks for the same coefficients again";
    beta = out->next;
  }
  ADD_FAILURE() << "no report after " << spec.rounds() << " rounds";
  return {};
}

TEST(GlmRoundsTest, BinomialRoundsReachThePooledFitAndReportIt) {
  const v1::TaskSpec spec = Spec(v1::GlmSpec::BINOMIAL);
  const std::vector<Site> sites = Sites(true);
  uint32_t rounds = 0;
  const GlmRoundOutput out = Drive(spec, sites, &rounds);
  ASSERT_TRUE(out.report.has_value());
  const v1::GlmReport& r = *out.report;
  EXPECT_TRUE(r.converged());
  EXPECT_LE(rounds, 10u);
  EXPECT_EQ(r.rounds(), rounds);
  EXPECT_EQ(r.rows(), 120);
  EXPECT_EQ(r.family(), "binomial");
  EXPECT_EQ(r.statistic(), "z");
  ASSERT_EQ(r.coefficients_size(), 3);
  EXPECT_EQ(r.coefficients(0).name(), "(Intercept)");

  // The same fit on the pooled rows, in process, far past convergence.
  Site pooled;
  pooled.x.resize(120, 3);
  pooled.y.resize(120);
  for (int s = 0; s < 3; ++s) {
    pooled.x.middleRows(40 * s, 40) = sites[static_cast<size_t>(s)].x;
    pooled.y.segment(40 * s, 40) = sites[static_cast<size_t>(s)].y;
  }
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(3);
  glm::SiteSums at;
  for (int i = 0; i < 30; ++i) {
    at = *glm::SiteContribution(glm::Family::kBinomial, pooled.x, pooled.y, Eigen::VectorXd(),
                                Eigen::VectorXd(), beta);
    beta = *glm::NewtonStep(at);
  }
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(r.coefficients(j).estimate(), beta(j), 1e-9 * (1 + std::abs(beta(j)))) << j;
  }
  // The null deviance is the intercept-only model's: -2 Σ [y log ȳ + (1 − y) log(1 − ȳ)].
  const double mean = pooled.y.mean();
  const double null = -2 * 120 * (mean * std::log(mean) + (1 - mean) * std::log(1 - mean));
  EXPECT_NEAR(r.null_deviance(), null, 1e-9 * null);
  EXPECT_NEAR(r.deviance(), at.deviance, 1e-7 * at.deviance);
}

TEST(GlmRoundsTest, GaussianEndsWhenTheStepNoLongerMovesTheCoefficients) {
  const v1::TaskSpec spec = Spec(v1::GlmSpec::GAUSSIAN);
  std::vector<Site> sites = Sites(true);
  for (Site& s : sites)
    s.y = 2.0 + 1.5 * s.x.col(1).array() - 0.25 * s.x.col(2).array() + s.y.array();
  uint32_t rounds = 0;
  const GlmRoundOutput out = Drive(spec, sites, &rounds);
  ASSERT_TRUE(out.report.has_value());
  EXPECT_TRUE(out.report->converged());
  // β = 0, the start, one exact step: its step lands on itself (or R's rule holds next).
  EXPECT_LE(rounds, 4u);
  EXPECT_EQ(out.report->statistic(), "t");
  EXPECT_EQ(out.report->df_residual(), 117);
}

TEST(GlmRoundsTest, TheLastRoundReportsWhereItIsMarkedNotConverged) {
  const v1::TaskSpec spec = Spec(v1::GlmSpec::BINOMIAL, /*rounds=*/3);
  uint32_t rounds = 0;
  const GlmRoundOutput out = Drive(spec, Sites(true), &rounds);
  ASSERT_TRUE(out.report.has_value());
  EXPECT_EQ(rounds, 3u);
  EXPECT_FALSE(out.report->converged());
}

TEST(GlmRoundsTest, AStartThatIsZeroIsNotAskedForAgain) {
  // Labels exactly half ones: logit(0.5) = 0, the start is round 1's β.
  const v1::TaskSpec spec = Spec(v1::GlmSpec::BINOMIAL);
  std::vector<Site> sites = Sites(true);
  int k = 0;
  for (Site& s : sites) {
    for (int i = 0; i < s.y.size(); ++i) s.y(i) = (k++ % 2 == 0) ? 1.0 : 0.0;
  }
  uint32_t rounds = 0;
  const GlmRoundOutput out = Drive(spec, sites, &rounds);  // fails on a repeated β
  ASSERT_TRUE(out.report.has_value());
  EXPECT_NEAR(out.report->null_deviance(), 2 * 120 * std::log(2.0), 1e-9);
}

TEST(GlmRoundsTest, CoxRoundsReportHazardRatiosFromTheStratifiedFit) {
  const v1::TaskSpec spec = Spec(v1::GlmSpec::COX);
  uint32_t rounds = 0;
  const GlmRoundOutput out = Drive(spec, Sites(false), &rounds);
  ASSERT_TRUE(out.report.has_value());
  EXPECT_TRUE(out.report->converged());
  EXPECT_LE(rounds, 10u);
  EXPECT_EQ(out.report->family(), "cox");
  EXPECT_EQ(out.report->events(), 80);
  EXPECT_EQ(out.report->coefficients(0).name(), "a");
}

TEST(GlmRoundsTest, ASumOverOtherRowsOrOfAnotherShapeIsRefused) {
  const v1::TaskSpec spec = Spec(v1::GlmSpec::BINOMIAL);
  const std::vector<double> beta(3, 0.0);
  const std::vector<double> sum = Sum(spec, Sites(true), beta);
  GlmRoundInput in;
  in.spec = &spec;
  in.sites = kSites;
  in.round = 1;
  in.coefficients = beta;
  in.sum = sum;
  in.pooled_rows = 121;  // the statistics counted a row these sums do not hold
  EXPECT_THAT(GlmRound(in).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not the cohort's sum")));
  in.pooled_rows = 120;
  const std::vector<double> short_sum(sum.begin(), sum.end() - 1);
  in.sum = short_sum;
  EXPECT_THAT(GlmRound(in).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  in.sum = sum;
  in.round = 2;  // without round 1's objective
  EXPECT_THAT(GlmRound(in).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GlmRoundsTest, CollinearColumnsFailThePrecondition) {
  const v1::TaskSpec spec = Spec(v1::GlmSpec::GAUSSIAN);
  std::vector<Site> sites = Sites(true);
  for (Site& s : sites) s.x.col(2) = 2.0 * s.x.col(1);
  const std::vector<double> beta(3, 0.0);
  const std::vector<double> sum = Sum(spec, sites, beta);
  GlmRoundInput in;
  in.spec = &spec;
  in.sites = kSites;
  in.round = 2;  // a Newton step (round 1 only takes the start from the totals)
  in.history = {1.0};
  in.coefficients = beta;
  in.sum = sum;
  in.pooled_rows = 120;
  EXPECT_THAT(GlmRound(in).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(GlmRoundsTest, TheLayoutsLengthsAreTheGlmLibrarys) {
  for (int p : {1, 2, 5, 30}) {
    EXPECT_EQ(proto::GlmContributionLength(Spec(v1::GlmSpec::BINOMIAL), static_cast<size_t>(p)),
              glm::FlatSize(p));
    EXPECT_EQ(proto::GlmContributionLength(Spec(v1::GlmSpec::COX), static_cast<size_t>(p)),
              glm::CoxFlatSize(p));
  }
}

}  // namespace
}  // namespace tessera::coordinator
