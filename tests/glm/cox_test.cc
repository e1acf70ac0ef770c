// Exact federated Cox (glm/cox.h) against R: stratified by site (each site its stratum)
// equals R's coxph(... + strata(site)) for 3 and 5 sites, Breslow's and Efron's ties, and
// with every row at one site the unstratified coxph; pooled on a time grid, the sites'
// grid sums give the partial likelihood of the gridded pooled rows; bad times and events
// are refused without their values.
#include "glm/cox.h"

#include <cmath>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/glm/glm_data.h"

namespace tessera::glm {
namespace {

using ::testing::HasSubstr;
using namespace test_data;  // NOLINT(google-build-using-namespace): the tests' data

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

// A pooled Cox model on a time grid (glm/cox.h): the sum of the sites' grid vectors gives
// the partial likelihood, score and information of one stratum holding every row with its
// time put on the grid — the stratified code on the gridded pooled rows, Breslow and Efron —
// though each site centres its covariates by the pooled means and the reference does not.
TEST(PooledCoxTest, SitesGridSumsAreThePooledRowsPartialLikelihood) {
  const CoxGrid grid{30, 200};  // rows past 6000 days are censored there
  for (int count : {1, 3, 5}) {
    std::vector<std::string> names;
    const std::vector<CoxSite> sites = DealSurvival(count, &names);
    const auto p = static_cast<int>(names.size());
    Eigen::Index n = 0;
    for (const CoxSite& s : sites) n += s.x.rows();
    Eigen::MatrixXd x(n, p);
    Eigen::VectorXd time(n), event(n);
    Eigen::Index at = 0;
    int censored_at_end = 0;
    for (const CoxSite& s : sites) {
      for (Eigen::Index i = 0; i < s.x.rows(); ++i, ++at) {
        x.row(at) = s.x.row(i);
        const GridTime g = OnGrid(grid, s.time(i), s.event(i));
        time(at) = g.k * grid.unit;
        event(at) = g.event ? 1 : 0;
        censored_at_end += s.event(i) == 1 && !g.event ? 1 : 0;
      }
    }
    ASSERT_GT(censored_at_end, 0) << "the grid's end censors some events";
    const Eigen::VectorXd mean = x.colwise().mean();
    Eigen::VectorXd beta(p);
    for (int j = 0; j < p; ++j) beta(j) = (j % 2 ? -0.01 : 0.02) / (1 + std::abs(mean(j)) / 50);
    for (Ties ties : {Ties::kBreslow, Ties::kEfron}) {
      SCOPED_TRACE(std::to_string(count) + (ties == Ties::kBreslow ? " breslow" : " efron"));
      std::vector<double> summed(PooledCoxFlatSize(p, grid.points), 0.0);
      for (const CoxSite& s : sites) {
        Eigen::MatrixXd centred = s.x;
        centred.rowwise() -= mean.transpose();
        auto flat = PooledCoxSiteSums(grid, centred, s.time, s.event, beta);
        ASSERT_TRUE(flat.ok()) << flat.status();
        ASSERT_EQ(flat->size(), summed.size());
        for (size_t i = 0; i < summed.size(); ++i) summed[i] += (*flat)[i];
      }
      auto pooled = PooledCoxFromSums(ties, grid, summed, p);
      ASSERT_TRUE(pooled.ok()) << pooled.status();
      auto reference = CoxStratumContribution(ties, x, time, event, beta);
      ASSERT_TRUE(reference.ok()) << reference.status();
      EXPECT_EQ(pooled->rows, reference->rows);
      EXPECT_EQ(pooled->events, reference->events);
      EXPECT_NEAR(pooled->log_likelihood, reference->log_likelihood,
                  1e-9 * std::abs(reference->log_likelihood));
      for (int j = 0; j < p; ++j) {
        EXPECT_NEAR(pooled->score(j), reference->score(j),
                    1e-7 * (1 + std::abs(reference->score(j))));
        for (int k = 0; k < p; ++k) {
          EXPECT_NEAR(pooled->information(j, k), reference->information(j, k),
                      1e-7 * (1 + std::abs(reference->information(j, k))));
        }
      }
    }
  }
}

TEST(PooledCoxTest, AGridVectorOfTheWrongLengthOrWithEventsButNoRiskIsRefused) {
  const CoxGrid grid{10, 3};
  EXPECT_FALSE(PooledCoxFromSums(Ties::kEfron, grid, std::vector<double>(5, 0.0), 1).ok());
  std::vector<double> flat(PooledCoxFlatSize(1, grid.points), 0.0);
  flat[2] = 1;  // rows
  flat[3] = 1;  // events
  flat[4] = 1;  // one event at the first grid time, with S0 = 0
  auto refused = PooledCoxFromSums(Ties::kEfron, grid, flat, 1);
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("grid time 1"));
  const GridTime late = OnGrid(grid, 31, 1);
  EXPECT_EQ(late.k, 3);
  EXPECT_FALSE(late.event) << "beyond the grid: censored at its end";
  const GridTime early = OnGrid(grid, 10, 1);
  EXPECT_EQ(early.k, 1);
  EXPECT_TRUE(early.event);
}

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

}  // namespace
}  // namespace tessera::glm
