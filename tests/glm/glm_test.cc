// The federated GLM core (glm/glm.h) against R: the training rows of the public datasets
// dealt round-robin to 3 and to 5 sites, each site's sums computed on its own rows only,
// the coordinator's Newton steps on their totals until R's convergence rule holds — and
// the coefficients, standard errors, Wald statistics, p-values, confidence intervals,
// deviance, null deviance and AIC equal R's glm() on the pooled rows
// (tests/research/reference/glm_coefficients.csv and glm_models.csv, glm_reference.R) to
// 1e-6 relative, within 10 Newton steps; also with one intercept per site (site fixed
// effects). Cox proportional hazards stratified by site (each site its stratum) equals R's
// coxph(... + strata(site)) for 3 and 5 sites, Breslow's and Efron's ties, and with every
// row at one site the unstratified coxph. And the refusals: a label outside the family's
// range, collinear columns, labels that leave no finite intercept, sizes that do not match.
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
#include "glm/cox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/secagg.pb.h"
#include "secagg/vector_codec.h"
#include "tests/testing/status_matchers.h"

namespace tessera::glm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A CSV of numbers with a header (deploy/data's format), or of the references (text in
// the first columns).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int Column(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return static_cast<int>(i);
    }
    ADD_FAILURE() << "no column " << name;
    return -1;
  }
};

Table ReadCsv(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  Table table;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (first) {
      table.header = std::move(cells);
      first = false;
    } else {
      table.rows.push_back(std::move(cells));
    }
  }
  return table;
}

double Number(const std::string& text) {
  double value = 0;
  EXPECT_TRUE(absl::SimpleAtod(text, &value)) << text;
  return value;
}

std::string Source(const std::string& relative) {
  return std::string(TESSERA_SOURCE_DIR) + "/" + relative;
}

// One reference model: which data, which columns, which family.
struct Model {
  std::string name;  // glm_reference.R's
  std::string dataset;
  std::string label;
  std::vector<std::string> excluded;  // besides the label
  std::string log_offset;             // a column whose log is the offset, or ""
  Family family;
};

const std::vector<Model>& Models() {
  static const auto* models = new std::vector<Model>{
      {"smoking_nhis_binomial", "smoking_nhis", "smoker", {}, "", Family::kBinomial},
      {"diabetes_gaussian", "diabetes_progression", "progression", {}, "", Family::kGaussian},
      {"rotterdam_nodes_poisson",
       "rotterdam_survival",
       "nodes",
       {"time", "event"},
       "",
       Family::kPoisson},
      {"rotterdam_rate_poisson", "rotterdam_survival", "event", {"time"}, "time", Family::kPoisson},
  };
  return *models;
}

// A site's rows: X with the intercept first, y, the offset.
struct SiteData {
  Eigen::MatrixXd x;
  Eigen::VectorXd y;
  Eigen::VectorXd offset;
};

struct Split {
  // "(Intercept)", or with site fixed effects "sitesite_1" .. (R's names for the factor's
  // levels); then the features in CSV order.
  std::vector<std::string> names;
  std::vector<int> intercepts;  // their columns
  std::vector<SiteData> sites;
};

// The training rows of `model`'s dataset dealt round-robin to `count` sites (the i-th
// training row, from 0, to site i mod count, as glm_reference.R deals them). With
// `fixed_effects` each site has an intercept of its own (its column is 1 on its rows only).
Split Deal(const Model& model, int count, bool fixed_effects = false) {
  const Table data = ReadCsv(Source("deploy/data/" + model.dataset + ".csv"));
  std::set<int> test;
  {
    std::ifstream in(Source("deploy/data/splits/" + model.dataset + ".test_rows.txt"));
    int row = 0;
    while (in >> row) test.insert(row);
  }
  Split split;
  const int intercepts = fixed_effects ? count : 1;
  for (int s = 0; s < intercepts; ++s) {
    split.names.push_back(fixed_effects ? "sitesite_" + std::to_string(s + 1) : "(Intercept)");
    split.intercepts.push_back(s);
  }
  std::vector<int> features;
  for (size_t c = 0; c < data.header.size(); ++c) {
    const std::string& name = data.header[c];
    bool excluded = name == model.label;
    for (const std::string& e : model.excluded) excluded = excluded || name == e;
    if (excluded) continue;
    features.push_back(static_cast<int>(c));
    split.names.push_back(name);
  }
  const int label = data.Column(model.label);
  const int offset = model.log_offset.empty() ? -1 : data.Column(model.log_offset);
  std::vector<std::vector<int>> rows_of(static_cast<size_t>(count));
  int training = 0;
  for (int r = 0; r < static_cast<int>(data.rows.size()); ++r) {
    if (test.contains(r)) continue;
    rows_of[static_cast<size_t>(training++ % count)].push_back(r);
  }
  const int p = static_cast<int>(features.size()) + intercepts;
  for (size_t s = 0; s < rows_of.size(); ++s) {
    const std::vector<int>& rows = rows_of[s];
    SiteData site;
    const int n = static_cast<int>(rows.size());
    site.x.resize(n, p);
    site.y.resize(n);
    if (offset >= 0) site.offset.resize(n);
    for (int i = 0; i < n; ++i) {
      const std::vector<std::string>& cells = data.rows[static_cast<size_t>(rows[i])];
      for (int c = 0; c < intercepts; ++c) {
        site.x(i, c) = (!fixed_effects || c == static_cast<int>(s)) ? 1 : 0;
      }
      for (int j = 0; j < static_cast<int>(features.size()); ++j) {
        site.x(i, j + intercepts) = Number(cells[static_cast<size_t>(features[j])]);
      }
      site.y(i) = Number(cells[static_cast<size_t>(label)]);
      if (offset >= 0) site.offset(i) = std::log(Number(cells[static_cast<size_t>(offset)]));
    }
    split.sites.push_back(std::move(site));
  }
  return split;
}

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

void ExpectRelative(double got, double want, double tolerance, const std::string& what) {
  EXPECT_LE(std::abs(got - want), tolerance * std::max(std::abs(want), 1e-300))
      << what << ": got " << got << ", R gives " << want;
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

// ---- Cox ----

// Rotterdam's training rows dealt to `count` sites: covariates (every column but time and
// event), times and events.
struct CoxSite {
  Eigen::MatrixXd x;
  Eigen::VectorXd time;
  Eigen::VectorXd event;
};

std::vector<CoxSite> DealSurvival(int count, std::vector<std::string>* names) {
  const Model covariates{"", "rotterdam_survival", "time", {"event"}, "", Family::kGaussian};
  // Deal as for a GLM with the time as its label; the event column read apart.
  const Split split = Deal(covariates, count);
  const Table data = ReadCsv(Source("deploy/data/rotterdam_survival.csv"));
  std::set<int> test;
  {
    std::ifstream in(Source("deploy/data/splits/rotterdam_survival.test_rows.txt"));
    int row = 0;
    while (in >> row) test.insert(row);
  }
  std::vector<std::vector<double>> events(static_cast<size_t>(count));
  int training = 0;
  const int event = data.Column("event");
  for (int r = 0; r < static_cast<int>(data.rows.size()); ++r) {
    if (test.contains(r)) continue;
    events[static_cast<size_t>(training++ % count)].push_back(
        Number(data.rows[static_cast<size_t>(r)][static_cast<size_t>(event)]));
  }
  names->assign(split.names.begin() + 1, split.names.end());  // no intercept
  std::vector<CoxSite> sites;
  for (size_t s = 0; s < split.sites.size(); ++s) {
    CoxSite site;
    const SiteData& d = split.sites[s];
    site.x = d.x.rightCols(d.x.cols() - 1);
    site.time = d.y;
    site.event = Eigen::Map<const Eigen::VectorXd>(events[s].data(),
                                                   static_cast<Eigen::Index>(events[s].size()));
    sites.push_back(std::move(site));
  }
  return sites;
}

CoxSums CoxTotal(Ties ties, const std::vector<CoxSite>& sites, const Eigen::VectorXd& beta) {
  CoxSums total;
  for (const CoxSite& site : sites) {
    auto sums = CoxStratumContribution(ties, site.x, site.time, site.event, beta);
    EXPECT_TRUE(sums.ok()) << sums.status();
    if (sums.ok()) {
      EXPECT_TRUE(Add(total, *sums).ok());
    }
  }
  return total;
}

class CoxAgainstR : public ::testing::TestWithParam<std::tuple<int, Ties>> {};

TEST_P(CoxAgainstR, StratifiedBySiteEqualsRsCoxph) {
  const auto [sites, ties] = GetParam();
  const std::string ties_name = ties == Ties::kBreslow ? "breslow" : "efron";
  // One site: one stratum, R's unstratified model.
  const std::string reference =
      sites == 1 ? "rotterdam_cox_" + ties_name
                 : "rotterdam_cox_" + ties_name + "_site_strata_" + std::to_string(sites);
  SCOPED_TRACE(reference);
  std::vector<std::string> names;
  const std::vector<CoxSite> dealt = DealSurvival(sites, &names);
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(names.size()));
  CoxSums at = CoxTotal(ties, dealt, beta);
  double previous = at.log_likelihood;
  int steps = 0;
  do {
    previous = at.log_likelihood;
    auto next = CoxNewtonStep(at, beta);
    ASSERT_TRUE(next.ok()) << next.status();
    beta = *next;
    at = CoxTotal(ties, dealt, beta);
    ++steps;
  } while (!CoxConverged(at.log_likelihood, previous, 1e-12) && steps < 50);
  EXPECT_LE(steps, 10);
  auto report = MakeCoxReport(at, beta, names);
  ASSERT_TRUE(report.ok()) << report.status();

  const Table coefficients = ReadCsv(Source("tests/research/reference/glm_coefficients.csv"));
  int matched = 0;
  for (const std::vector<std::string>& row : coefficients.rows) {
    if (row[0] != reference) continue;
    const auto want = [&](const char* column) { return Number(row[coefficients.Column(column)]); };
    for (size_t j = 0; j < report->coefficients.size(); ++j) {
      const Coefficient& got = report->coefficients[j];
      if (got.name != row[1]) continue;
      ++matched;
      ExpectRelative(got.estimate, want("estimate"), 1e-6, got.name + " estimate");
      ExpectRelative(got.std_error, want("std_error"), 1e-6, got.name + " std_error");
      ExpectRelative(got.statistic, want("statistic"), 1e-6, got.name + " statistic");
      ExpectRelative(got.p_value, want("p_value"), 1e-5, got.name + " p_value");
      ExpectRelative(got.ci_low, want("ci_low"), 1e-6, got.name + " ci_low");
      ExpectRelative(got.ci_high, want("ci_high"), 1e-6, got.name + " ci_high");
      ExpectRelative(report->hazard_ratios[j], std::exp(want("estimate")), 1e-6, "hazard ratio");
    }
  }
  EXPECT_EQ(matched, static_cast<int>(names.size()));
  const Table models = ReadCsv(Source("tests/research/reference/glm_models.csv"));
  for (const std::vector<std::string>& row : models.rows) {
    if (row[0] != reference) continue;
    ExpectRelative(report->log_likelihood, Number(row[models.Column("loglik")]), 1e-9,
                   "log partial likelihood");
    EXPECT_EQ(report->rows, static_cast<int64_t>(Number(row[models.Column("rows")])));
  }
}

INSTANTIATE_TEST_SUITE_P(SitesAndTies, CoxAgainstR,
                         ::testing::Combine(::testing::Values(1, 3, 5),
                                            ::testing::Values(Ties::kBreslow, Ties::kEfron)),
                         [](const auto& info) {
                           return std::to_string(std::get<0>(info.param)) + "Sites" +
                                  (std::get<1>(info.param) == Ties::kBreslow ? "Breslow" : "Efron");
                         });

TEST(CoxTest, BadTimesAndEventsAreRefusedWithoutTheirValues) {
  Eigen::MatrixXd x = Eigen::MatrixXd::Ones(2, 1);
  Eigen::VectorXd time(2), event(2);
  time << 10, -3.5;
  event << 1, 0;
  auto negative = CoxStratumContribution(Ties::kEfron, x, time, event, Eigen::VectorXd::Zero(1));
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.status().message(), HasSubstr("positive"));
  EXPECT_THAT(negative.status().message(), Not(HasSubstr("3.5")));
  time(1) = 4;
  event(1) = 2;
  auto indicator = CoxStratumContribution(Ties::kEfron, x, time, event, Eigen::VectorXd::Zero(1));
  EXPECT_THAT(indicator.status().message(), HasSubstr("neither 0 nor 1"));
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
