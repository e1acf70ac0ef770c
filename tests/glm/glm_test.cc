// The federated GLM core (glm/glm.h) against R: the training rows of the public datasets
// dealt round-robin to 3 and to 5 sites, each site's sums computed on its own rows only,
// the coordinator's Newton steps on their totals until R's convergence rule holds — and
// the coefficients, standard errors, Wald statistics, p-values, confidence intervals,
// deviance, null deviance and AIC equal R's glm() on the pooled rows
// (tests/research/reference/glm_coefficients.csv and glm_models.csv, glm_reference.R) to
// 1e-6 relative, within 10 Newton steps; also with one intercept per site (site fixed
// effects (Cox: cox_test.cc). And the refusals: a label outside the family's range,
// collinear columns, labels that leave no finite intercept, sizes that do not match.
#include "glm/glm.h"

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/secagg.pb.h"
#include "secagg/vector_codec.h"
#include "tests/glm/glm_data.h"
#include "tests/testing/status_matchers.h"

namespace tessera::glm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace test_data;  // NOLINT(google-build-using-namespace): the tests' data

// Every site's sums at `beta`, added.
SiteSums Total(Family family, const Split& split, const Eigen::VectorXd& beta) {
  SiteSums total;
  for (const SiteData& site : split.sites) {
    auto sums = SiteContribution(family, site.x, site.y, site.offset, Eigen::VectorXd(), beta);
    EXPECT_TRUE(sums.ok()) << sums.status();
    if (sums.ok()) {
      EXPECT_TRUE(Add(total, *sums).ok());
    }
  }
  return total;
}

struct Fit {
  Report report;
  int newton_steps = 0;
};

// The coordinator's loop: start, step until R's rule holds, report at the estimate.
Fit FitFederated(Family family, const Split& split, double epsilon) {
  Fit fit;
  const int p = static_cast<int>(split.names.size());
  const SiteSums first = Total(family, split, Eigen::VectorXd::Zero(p));
  auto start = StartingCoefficients(family, first, p, split.intercepts);
  EXPECT_TRUE(start.ok()) << start.status();
  Eigen::VectorXd beta = *start;
  SiteSums at = Total(family, split, beta);
  const double null_deviance = at.deviance;
  double previous = std::numeric_limits<double>::infinity();
  while (!Converged(at.deviance, previous, epsilon) && fit.newton_steps < 50) {
    auto next = NewtonStep(at);
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok()) break;
    beta = *next;
    ++fit.newton_steps;
    previous = at.deviance;
    at = Total(family, split, beta);
  }
  auto report = MakeReport(family, at, beta, split.names);
  EXPECT_TRUE(report.ok()) << report.status();
  if (report.ok()) fit.report = *report;
  fit.report.null_deviance = null_deviance;
  return fit;
}

class GlmAgainstR : public ::testing::TestWithParam<int> {
 protected:
  // Fits `model` over GetParam() sites (with site fixed effects or not) and compares it
  // with R's fit named `reference`; `*compared` is how many of R's coefficients were
  // compared (0 if the reference has none of that name).
  void ExpectAsR(const Model& model, bool fixed_effects, const std::string& reference,
                 int* compared);
};

TEST_P(GlmAgainstR, EveryModelEqualsRsGlmOnThePooledRows) {
  for (const Model& model : Models()) {
    int compared = 0;
    ExpectAsR(model, /*fixed_effects=*/false, model.name, &compared);
    EXPECT_GT(compared, 1) << model.name << ": R's reference has no coefficients to compare";
  }
}

TEST_P(GlmAgainstR, SiteFixedEffectsEqualRsGlmWithOneInterceptPerSite) {
  const std::string k = std::to_string(GetParam());
  int compared = 0;
  ExpectAsR(Models()[0], /*fixed_effects=*/true, "smoking_nhis_binomial_site_fe_" + k, &compared);
  EXPECT_EQ(compared, GetParam() + 9) << "one intercept per site and the 9 features";
  ExpectAsR(Models()[1], /*fixed_effects=*/true, "diabetes_gaussian_site_fe_" + k, &compared);
  EXPECT_EQ(compared, GetParam() + 10) << "one intercept per site and the 10 features";
}

void GlmAgainstR::ExpectAsR(const Model& model, bool fixed_effects, const std::string& reference,
                            int* compared) {
  *compared = 0;
  const int sites = GetParam();
  SCOPED_TRACE(reference + ", " + std::to_string(sites) + " sites");
  const Table coefficients = ReadCsv(Source("tests/research/reference/glm_coefficients.csv"));
  const Table models = ReadCsv(Source("tests/research/reference/glm_models.csv"));
  const Split split = Deal(model, sites, fixed_effects);
  ASSERT_EQ(split.sites.size(), static_cast<size_t>(sites));
  const Fit fit = FitFederated(model.family, split, 1e-10);
  EXPECT_LE(fit.newton_steps, 10);

  int matched = 0;
  for (const std::vector<std::string>& row : coefficients.rows) {
    if (row[0] != reference) continue;
    const std::string& term = row[1];
    const Coefficient* got = nullptr;
    for (const Coefficient& c : fit.report.coefficients) {
      if (c.name == term) got = &c;
    }
    ASSERT_NE(got, nullptr) << "no coefficient " << term;
    ++matched;
    const auto want = [&](const char* column) { return Number(row[coefficients.Column(column)]); };
    ExpectRelative(got->estimate, want("estimate"), 1e-6, term + " estimate");
    ExpectRelative(got->std_error, want("std_error"), 1e-6, term + " std_error");
    ExpectRelative(got->statistic, want("statistic"), 1e-6, term + " statistic");
    ExpectRelative(got->p_value, want("p_value"), 1e-5, term + " p_value");
    ExpectRelative(got->ci_low, want("ci_low"), 1e-6, term + " ci_low");
    ExpectRelative(got->ci_high, want("ci_high"), 1e-6, term + " ci_high");
  }
  EXPECT_EQ(matched, static_cast<int>(fit.report.coefficients.size()));
  *compared = matched;
  for (const std::vector<std::string>& row : models.rows) {
    if (row[0] != reference) continue;
    const auto want = [&](const char* column) { return Number(row[models.Column(column)]); };
    ExpectRelative(fit.report.deviance, want("deviance"), 1e-6, "deviance");
    // R's null model has the intercept; without one (fixed effects) it is the zero model.
    if (!fixed_effects) {
      ExpectRelative(fit.report.null_deviance, want("null_deviance"), 1e-6, "null deviance");
    }
    ExpectRelative(fit.report.aic, want("aic"), 1e-6, "AIC");
    ExpectRelative(fit.report.dispersion, want("dispersion"), 1e-6, "dispersion");
    EXPECT_EQ(fit.report.rows, static_cast<int64_t>(want("rows")));
    EXPECT_EQ(fit.report.df_residual, static_cast<int64_t>(want("df_residual")));
  }
}

INSTANTIATE_TEST_SUITE_P(Sites, GlmAgainstR, ::testing::Values(3, 5),
                         [](const auto& info) { return std::to_string(info.param) + "Sites"; });

// ---- Through secure aggregation ----

// Each site's sums, flattened and encoded as secure aggregation encodes them (one WIDE
// segment: 4 limbs, 2^-40 resolution), added as 32-bit words wrap, decoded: the fit is still
// R's to 1e-6. (The masks cancel exactly, so the words' sum is what a session yields.)
TEST(GlmThroughSecureAggregationTest, WideFixedPointSumsKeepTheFitExact) {
  const int sites = 5;
  for (const Model& model : {Models()[0], Models()[2]}) {
    SCOPED_TRACE(model.name);
    const Split split = Deal(model, sites);
    const int p = static_cast<int>(split.names.size());
    v1::SecAggEncoding encoding;
    v1::SecAggSegment* wide = encoding.add_segments();
    wide->set_kind(v1::SecAggSegment::WIDE);
    wide->set_length(static_cast<uint32_t>(FlatSize(p)));
    wide->set_bits(29);  // 32 - ceil(log2 5)
    wide->set_limbs(4);
    wide->set_fraction_bits(40);
    ASSERT_TRUE(secagg::ValidateEncoding(encoding, sites).ok());
    const auto secure_total = [&](const Eigen::VectorXd& beta) {
      std::vector<uint32_t> words(secagg::EncodedWords(encoding), 0);
      for (const SiteData& site : split.sites) {
        auto sums = SiteContribution(model.family, site.x, site.y, site.offset, {}, beta);
        EXPECT_TRUE(sums.ok()) << sums.status();
        auto encoded = secagg::EncodeVector(Flatten(*sums), encoding);
        EXPECT_TRUE(encoded.ok()) << encoded.status();
        for (size_t i = 0; i < words.size(); ++i) words[i] += (*encoded)[i];
      }
      auto decoded = secagg::DecodeSum(words, encoding);
      EXPECT_TRUE(decoded.ok()) << decoded.status();
      auto total = Unflatten(*decoded, p);
      EXPECT_TRUE(total.ok()) << total.status();
      return *total;
    };
    SiteSums at = secure_total(Eigen::VectorXd::Zero(p));
    ASSERT_OK_AND_ASSIGN(Eigen::VectorXd beta,
                         StartingCoefficients(model.family, at, p, split.intercepts));
    at = secure_total(beta);
    double previous = std::numeric_limits<double>::infinity();
    int steps = 0;
    while (!Converged(at.deviance, previous, 1e-10) && steps < 50) {
      ASSERT_OK_AND_ASSIGN(beta, NewtonStep(at));
      previous = at.deviance;
      at = secure_total(beta);
      ++steps;
    }
    EXPECT_LE(steps, 10);
    ASSERT_OK_AND_ASSIGN(Report report, MakeReport(model.family, at, beta, split.names));
    const Table coefficients = ReadCsv(Source("tests/research/reference/glm_coefficients.csv"));
    int matched = 0;
    for (const std::vector<std::string>& row : coefficients.rows) {
      if (row[0] != model.name) continue;
      for (const Coefficient& c : report.coefficients) {
        if (c.name != row[1]) continue;
        ++matched;
        ExpectRelative(c.estimate, Number(row[coefficients.Column("estimate")]), 1e-6,
                       c.name + " estimate");
        ExpectRelative(c.std_error, Number(row[coefficients.Column("std_error")]), 1e-6,
                       c.name + " std_error");
      }
    }
    EXPECT_EQ(matched, p);
  }
}

TEST(GlmTest, FlattenAndUnflattenAreInverse) {
  const Model& model = Models()[0];
  const Split split = Deal(model, 1);
  const SiteData& site = split.sites[0];
  const int p = static_cast<int>(split.names.size());
  ASSERT_OK_AND_ASSIGN(SiteSums sums, SiteContribution(model.family, site.x, site.y, {}, {},
                                                       Eigen::VectorXd::Constant(p, 0.01)));
  const std::vector<double> flat = Flatten(sums);
  ASSERT_EQ(flat.size(), FlatSize(p));
  ASSERT_OK_AND_ASSIGN(SiteSums back, Unflatten(flat, p));
  EXPECT_EQ(back.xtwx, sums.xtwx);
  EXPECT_EQ(back.xtwz, sums.xtwz);
  EXPECT_EQ(back.deviance, sums.deviance);
  EXPECT_EQ(back.rows, sums.rows);
  EXPECT_EQ(Unflatten(flat, p + 1).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<double> bad_rows = flat;
  bad_rows.back() = 2.5;
  EXPECT_THAT(Unflatten(bad_rows, p).status().message(), HasSubstr("row count"));
}

TEST(GlmTest, TheSumsDoNotDependOnHowTheRowsAreDealt) {
  const Model& model = Models()[0];
  const Split one = Deal(model, 1), five = Deal(model, 5);
  Eigen::VectorXd beta =
      Eigen::VectorXd::Constant(static_cast<Eigen::Index>(one.names.size()), 0.01);
  const SiteSums a = Total(model.family, one, beta), b = Total(model.family, five, beta);
  EXPECT_LE((a.xtwx - b.xtwx).cwiseAbs().maxCoeff(), 1e-9 * a.xtwx.cwiseAbs().maxCoeff());
  EXPECT_LE((a.xtwz - b.xtwz).cwiseAbs().maxCoeff(), 1e-9 * a.xtwz.cwiseAbs().maxCoeff());
  EXPECT_NEAR(a.deviance, b.deviance, 1e-9 * a.deviance);
  EXPECT_EQ(a.rows, b.rows);
}

TEST(GlmTest, ALabelOutsideTheFamilysRangeIsRefusedWithoutItsValue) {
  Eigen::MatrixXd x(3, 2);
  x << 1, 0.5, 1, 1.5, 1, 2.5;
  Eigen::VectorXd y(3);
  y << 0, 1, 7.25;
  auto binomial = SiteContribution(Family::kBinomial, x, y, {}, {}, Eigen::VectorXd::Zero(2));
  EXPECT_EQ(binomial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(binomial.status().message(), HasSubstr("outside [0, 1]"));
  EXPECT_THAT(binomial.status().message(), Not(HasSubstr("7.25")));
  y(2) = -1;
  auto poisson = SiteContribution(Family::kPoisson, x, y, {}, {}, Eigen::VectorXd::Zero(2));
  EXPECT_EQ(poisson.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(poisson.status().message(), HasSubstr("negative"));
  y(2) = std::nan("");
  auto gaussian = SiteContribution(Family::kGaussian, x, y, {}, {}, Eigen::VectorXd::Zero(2));
  EXPECT_THAT(gaussian.status().message(), HasSubstr("not a finite number"));
}

TEST(GlmTest, CollinearColumnsAreFailedPrecondition) {
  Eigen::MatrixXd x(4, 3);
  x << 1, 1, 2, 1, 2, 4, 1, 3, 6, 1, 4, 8;  // the third column is twice the second
  Eigen::VectorXd y(4);
  y << 1, 2, 2, 3;
  auto sums = SiteContribution(Family::kGaussian, x, y, {}, {}, Eigen::VectorXd::Zero(3));
  ASSERT_TRUE(sums.ok()) << sums.status();
  auto step = NewtonStep(*sums);
  EXPECT_EQ(step.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(step.status().message(), HasSubstr("collinear"));
}

TEST(GlmTest, LabelsThatLeaveNoFiniteInterceptAreRefused) {
  Eigen::MatrixXd x = Eigen::MatrixXd::Ones(3, 1);
  const Eigen::VectorXd zeros = Eigen::VectorXd::Zero(3);
  const Eigen::VectorXd ones = Eigen::VectorXd::Ones(3);
  for (const auto& [family, y] : std::vector<std::pair<Family, Eigen::VectorXd>>{
           {Family::kBinomial, zeros}, {Family::kBinomial, ones}, {Family::kPoisson, zeros}}) {
    auto sums = SiteContribution(family, x, y, {}, {}, Eigen::VectorXd::Zero(1));
    ASSERT_TRUE(sums.ok()) << sums.status();
    auto start = StartingCoefficients(family, *sums, 1, {0});
    EXPECT_EQ(start.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(start.status().message(), HasSubstr("no finite estimate"));
  }
}

TEST(GlmTest, SizesThatDoNotMatchAreRefused) {
  Eigen::MatrixXd x = Eigen::MatrixXd::Ones(3, 2);
  Eigen::VectorXd y = Eigen::VectorXd::Zero(3);
  EXPECT_EQ(
      SiteContribution(Family::kGaussian, x, y, {}, {}, Eigen::VectorXd::Zero(3)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SiteContribution(Family::kGaussian, x, y, Eigen::VectorXd::Zero(2), {},
                             Eigen::VectorXd::Zero(2))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  SiteSums total = *SiteContribution(Family::kGaussian, x, y, {}, {}, Eigen::VectorXd::Zero(2));
  Eigen::MatrixXd wider = Eigen::MatrixXd::Ones(3, 3);
  SiteSums other = *SiteContribution(Family::kGaussian, wider, y, {}, {}, Eigen::VectorXd::Zero(3));
  EXPECT_EQ(Add(total, other).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::glm
