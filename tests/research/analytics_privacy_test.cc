// Differentially private analytics (proto/analytics.h, "Differential privacy"): the
// example deploy/examples/diabetes_query_dp.textproto through RunSimulation (real sites,
// secure aggregation, the coordinator's charge) answers close to the pooled values — within
// 5 standard deviations of the noise, computed here from sigma — and reports the
// accountant's epsilon; a budget below one release's epsilon gets no answer; and the
// error the noise costs, measured over many draws with the sites' own code (the figures of
// docs/research.md).
//
// The noise, from sigma: 5 simulated sites, each adding standard deviation
// sigma sqrt(m) Delta_i / sqrt(t) with t = floor(2 * 5 / 3) + 1 = 4 (the threshold every site
// requires), so the cohort's sum carries sigma sqrt(m) Delta_i sqrt(5 / 4); m = 11 for the
// example (3 + 1 for each of the two queries with a histogram, 3 for s5).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/privacy.h"
#include "coordinator/privacy_accountant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/task.pb.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr double kSites = 5;
constexpr double kThreshold = 4;

// The file's rows, read independently of the product's CSV reader.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;
  size_t Column(const std::string& name) const {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  }
};

Table ReadTable(const std::string& path) {
  Table t;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::stringstream head(line);
  for (std::string cell; std::getline(head, cell, ',');) t.header.push_back(cell);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    t.rows.push_back(std::move(row));
  }
  return t;
}

// The pooled truth of one query over the rows the example's filter (age >= 40) keeps.
struct Pooled {
  double count = 0, sum = 0, mean = 0, variance = 0, sum_of_squares = 0;
  std::vector<double> cells;  // bins, below, above
};

Pooled PoolQuery(const Table& t, const v1::AnalyticsSpec& spec, const v1::AnalyticsSpec::Query& q) {
  Pooled p;
  const size_t j = t.Column(q.column()), f = t.Column(spec.filter().column());
  const int edges = q.histogram_edges_size();
  p.cells.assign(edges >= 2 ? edges + 1 : 0, 0.0);
  for (const auto& row : t.rows) {
    if (!(row[f] >= spec.filter().value())) continue;  // the example's GE filter
    const double x = std::clamp(row[j], q.value_range(0), q.value_range(1));
    p.count += 1;
    p.sum += x;
    p.sum_of_squares += x * x;
    if (edges < 2) continue;
    if (row[j] < q.histogram_edges(0)) {
      p.cells[edges - 1] += 1;
    } else if (row[j] > q.histogram_edges(edges - 1)) {
      p.cells[edges] += 1;
    } else {
      int b = 0;
      while (b + 1 < edges - 1 && row[j] >= q.histogram_edges(b + 1)) ++b;
      p.cells[b] += 1;
    }
  }
  p.mean = p.sum / p.count;
  p.variance = p.sum_of_squares / p.count - p.mean * p.mean;
  return p;
}

// Standard deviations of the released values' errors, to first order, from sigma.
struct Spread {
  double count, sum, mean, variance;
};

Spread SpreadOf(const Pooled& p, const v1::AnalyticsSpec::Query& q, double sigma, double m) {
  const double delta_s = std::max(std::fabs(q.value_range(0)), std::fabs(q.value_range(1)));
  const double per_unit = sigma * std::sqrt(m) * std::sqrt(kSites / kThreshold);
  Spread s;
  s.count = per_unit;
  s.sum = per_unit * delta_s;
  const double n = p.count;
  s.mean = std::hypot(s.sum, p.mean * s.count) / n;
  // variance = Q / n - mean^2: Q's noise, the count's, and the mean's, added in absolute
  // value (they are correlated through the count).
  s.variance = per_unit * delta_s * delta_s / n + p.sum_of_squares / (n * n) * s.count +
               2 * std::fabs(p.mean) * s.mean;
  return s;
}

std::string BinName(const v1::AnalyticsSpec::Query& q, int b) {
  const int edges = q.histogram_edges_size();
  return absl::StrCat(q.column(), ".bin[", q.histogram_edges(b), ",", q.histogram_edges(b + 1),
                      b + 2 == edges ? "]" : ")");
}

TEST(AnalyticsPrivacyTest, NoisedDiabetesQueryIsCloseToThePooledValuesAndReportsEpsilon) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample("diabetes_query_dp"));
  ASSERT_TRUE(spec.has_privacy());
  const double sigma = spec.privacy().noise_multiplier();
  testing::TempDir temp;
  ASSERT_OK_AND_ASSIGN(
      simulation::SimulationResult result,
      Simulate(spec, "diabetes_progression", 5, "iid", temp.path(), /*reference_split=*/false));
  Report("diabetes_query_dp", result);
  ASSERT_EQ(result.task.state(), v1::TASK_COMPLETED) << result.task.state_reason();
  ASSERT_EQ(result.rounds.size(), 1u);
  EXPECT_EQ(result.rounds[0].fit_participants_size(), 5);
  ASSERT_EQ(result.rounds[0].releases_size(), 1);
  EXPECT_EQ(result.rounds[0].releases(0).noise_multiplier(), sigma);
  std::map<std::string, double>& m = result.final_metrics;
  ASSERT_OK_AND_ASSIGN(double epsilon,
                       coordinator::GaussianEpsilon(sigma, 1.0, 1, spec.privacy().delta()));
  EXPECT_NEAR(m["epsilon"], epsilon, 1e-12 * epsilon);
  EXPECT_NEAR(m["epsilon"], 5.30, 0.01) << "sigma 1, delta 1e-5 (docs/research.md)";
  EXPECT_EQ(m["delta"], spec.privacy().delta());

  const Table table = ReadTable(DataPath("diabetes_progression"));
  const double statistics = 11;
  ASSERT_EQ(proto::AnalyticsRecordSensitivity(spec.analytics()).row_statistics, 11u);
  for (const auto& q : spec.analytics().queries()) {
    SCOPED_TRACE(q.column());
    const Pooled p = PoolQuery(table, spec.analytics(), q);
    const Spread s = SpreadOf(p, q, sigma, statistics);
    const std::string& c = q.column();
    // Every cell holds 74 or more patients, k = 10: 17 standard deviations above it.
    EXPECT_EQ(m[c + ".suppressed_cells"], 0);
    // Rounding the count adds at most 1/2.
    EXPECT_NEAR(m[c + ".count"], p.count, 5 * s.count + 0.5);
    EXPECT_NEAR(m[c + ".sum"], p.sum, 5 * s.sum);
    EXPECT_NEAR(m[c + ".mean"], p.mean, 5 * s.mean + std::fabs(p.mean) / p.count);
    EXPECT_NEAR(m[c + ".variance"], p.variance, 5 * s.variance);
    const int edges = q.histogram_edges_size();
    for (int i = 0; edges >= 2 && i <= edges; ++i) {
      const std::string name = i + 1 < edges    ? BinName(q, i)
                               : i + 1 == edges ? c + ".below"
                                                : c + ".above";
      ASSERT_EQ(m.count(name), 1u) << name;
      EXPECT_NEAR(m[name], p.cells[i], 5 * s.count + 0.5) << name;
      EXPECT_EQ(m[name], std::round(m[name])) << name;
    }
  }
}

TEST(AnalyticsPrivacyTest, BudgetBelowOneReleaseGetsNoAnswer) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample("diabetes_query_dp"));
  spec.set_name("diabetes-dp-too-small-budget");
  ASSERT_OK_AND_ASSIGN(double epsilon,
                       coordinator::GaussianEpsilon(spec.privacy().noise_multiplier(), 1.0, 1,
                                                    spec.privacy().delta()));
  spec.mutable_privacy()->set_epsilon_budget(epsilon * 0.9);
  testing::TempDir temp;
  ASSERT_OK_AND_ASSIGN(simulation::SimulationResult result,
                       Simulate(spec, "diabetes_progression", 5, "iid", temp.path(), false));
  Report("diabetes_query_dp, budget below one query", result);
  EXPECT_EQ(result.task.state(), v1::TASK_FAILED);
  EXPECT_THAT(result.task.state_reason(), StartsWith("privacy budget spent"));
  EXPECT_THAT(result.task.state_reason(), HasSubstr("no answer released"));
  EXPECT_THAT(result.rounds, IsEmpty());
  EXPECT_THAT(result.final_metrics, IsEmpty());
}

// ---- What the noise costs: the example's error over many draws ----

// One noised answer of `spec` over `sites` (row-major tables of `header`), as the sites
// and the coordinator compute it, secure aggregation aside (exact in the fixed point).
std::vector<proto::QueryRelease> NoisedAnswer(const v1::TaskSpec& spec, const Table& table,
                                              const std::vector<std::vector<double>>& sites) {
  std::vector<double> sum(proto::AnalyticsLength(spec.analytics()), 0.0);
  for (const std::vector<double>& values : sites) {
    std::vector<double> noise(proto::AnalyticsStatisticsLength(spec.analytics()), 0.0);
    EXPECT_OK(client::AddAnalyticsNoise(spec, static_cast<uint32_t>(kThreshold), &noise));
    auto v = proto::EncodeNoisedAnalytics(spec.analytics(), noise, table.header, values,
                                          values.size() / table.header.size());
    EXPECT_OK(v.status());
    for (size_t i = 0; v.ok() && i < sum.size(); ++i) sum[i] += (*v)[i];
  }
  auto released = proto::ReleaseAnalytics(spec.analytics(), sum, /*noised=*/true);
  EXPECT_OK(released.status());
  return released.ok() ? *released : std::vector<proto::QueryRelease>();
}

TEST(AnalyticsPrivacyTest, ErrorOfTheExampleQueryAtSigmaOneAndTwo) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample("diabetes_query_dp"));
  const Table table = ReadTable(DataPath("diabetes_progression"));
  std::vector<std::vector<double>> sites(5);  // round-robin: the split does not matter
  for (size_t r = 0; r < table.rows.size(); ++r) {
    sites[r % 5].insert(sites[r % 5].end(), table.rows[r].begin(), table.rows[r].end());
  }
  constexpr int kDraws = 300;
  for (double sigma : {1.0, 2.0}) {
    spec.mutable_privacy()->set_noise_multiplier(sigma);
    ASSERT_OK_AND_ASSIGN(double epsilon, coordinator::GaussianEpsilon(sigma, 1.0, 1, 1e-5));
    std::printf(
        "[research] diabetes_query_dp at sigma %.0f: epsilon %.2f (delta 1e-5), rms "
        "error over %d draws (pooled value):\n",
        sigma, epsilon, kDraws);
    for (int qi = 0; qi < spec.analytics().queries_size(); ++qi) {
      const auto& q = spec.analytics().queries(qi);
      const Pooled p = PoolQuery(table, spec.analytics(), q);
      const Spread s = SpreadOf(p, q, sigma, 11);
      double count = 0, mean = 0, variance = 0, cells = 0;
      int cell_draws = 0, suppressed = 0;
      for (int draw = 0; draw < kDraws; ++draw) {
        const proto::QueryRelease r = NoisedAnswer(spec, table, sites)[qi];
        ASSERT_TRUE(r.main.has_value());
        count += std::pow(r.main->count - p.count, 2);
        mean += std::pow(r.main->mean - p.mean, 2);
        variance += std::pow(r.main->variance - p.variance, 2);
        std::vector<std::optional<double>> released = r.bins;
        released.push_back(r.below);
        released.push_back(r.above);
        for (size_t i = 0; i < released.size(); ++i) {
          if (!released[i]) {
            ++suppressed;
            continue;
          }
          cells += std::pow(*released[i] - p.cells[i], 2);
          ++cell_draws;
        }
      }
      const double rms_count = std::sqrt(count / kDraws), rms_mean = std::sqrt(mean / kDraws);
      const double rms_variance = std::sqrt(variance / kDraws);
      std::printf("[research]   %-11s count %.2f (%.0f)  mean %.3g (%.4g)  variance %.3g (%.4g)",
                  q.column().c_str(), rms_count, p.count, rms_mean, p.mean, rms_variance,
                  p.variance);
      if (cell_draws > 0) {
        std::printf("  bins %.2f, %d suppressed", std::sqrt(cells / cell_draws), suppressed);
      }
      std::printf("\n");
      // The rms error of a count is the noise's standard deviation (rounding adds 1/12);
      // 300 draws estimate it within ~4%.
      EXPECT_NEAR(rms_count, std::hypot(s.count, std::sqrt(1.0 / 12)), 0.2 * s.count);
      EXPECT_LE(rms_mean, 1.2 * s.mean);
      if (cell_draws > 0) {
        EXPECT_NEAR(std::sqrt(cells / cell_draws), s.count, 0.2 * s.count);
      }
    }
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace tessera::research
