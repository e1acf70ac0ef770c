// Federated analytics against the pooled truth: the example queries in deploy/examples
// run through RunSimulation (secure aggregation of every sum), and their answers must
// equal what the test computes directly from the CSV file: counts, histogram bins and
// sums of integer columns exactly, sums of decimal columns to 1e-12 relative, means and
// (population) variances to 1e-9 relative. In a simulation every site holds its share of
// the training rows and of the test rows, and an analytics task reads both, so the
// pooled set is the whole file.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/simulation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

// The file read independently of the product's CSV reader: header, then rows of numbers.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  size_t Column(const std::string& name) const {
    for (size_t j = 0; j < header.size(); ++j) {
      if (header[j] == name) return j;
    }
    ADD_FAILURE() << "no column " << name;
    return 0;
  }
};

Table ReadTable(const std::string& path) {
  Table t;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::string line;
  std::getline(in, line);
  std::stringstream head(line);
  for (std::string cell; std::getline(head, cell, ',');) t.header.push_back(cell);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) {
      row.push_back(std::strtod(cell.c_str(), nullptr));
    }
    EXPECT_EQ(row.size(), t.header.size()) << line;
    t.rows.push_back(std::move(row));
  }
  return t;
}

bool Keeps(const v1::AnalyticsSpec::Filter& f, double x) {
  switch (f.op()) {
    case v1::AnalyticsSpec::Filter::EQ:
      return x == f.value();
    case v1::AnalyticsSpec::Filter::NE:
      return x != f.value();
    case v1::AnalyticsSpec::Filter::LT:
      return x < f.value();
    case v1::AnalyticsSpec::Filter::LE:
      return x <= f.value();
    case v1::AnalyticsSpec::Filter::GT:
      return x > f.value();
    case v1::AnalyticsSpec::Filter::GE:
      return x >= f.value();
    default:
      ADD_FAILURE() << "unknown op";
      return false;
  }
}

void ExpectRelativeNear(double actual, long double expected, double tolerance,
                        const std::string& what) {
  const long double scale = std::max<long double>(std::fabs(expected), 1e-300L);
  EXPECT_LE(std::fabs(static_cast<long double>(actual) - expected) / scale, tolerance)
      << what << ": got " << actual << ", pooled " << static_cast<double>(expected);
}

// Checks every metric of every query of `spec` in `metrics` against `table`. Returns how
// many values were checked.
int ExpectPooledAnswers(const v1::AnalyticsSpec& spec, const Table& table,
                        const std::map<std::string, double>& metrics) {
  int checked = 0;
  auto metric = [&](const std::string& name) {
    auto it = metrics.find(name);
    EXPECT_NE(it, metrics.end()) << "no metric " << name;
    ++checked;
    return it == metrics.end() ? std::nan("") : it->second;
  };
  std::vector<const std::vector<double>*> kept;
  const size_t filter_column = spec.has_filter() ? table.Column(spec.filter().column()) : 0;
  for (const std::vector<double>& row : table.rows) {
    if (!spec.has_filter() || Keeps(spec.filter(), row[filter_column])) kept.push_back(&row);
  }
  EXPECT_GT(kept.size(), 0u);
  EXPECT_LT(kept.size(), table.rows.size()) << "the filter keeps every row";
  for (const v1::AnalyticsSpec::Query& q : spec.queries()) {
    const std::string& c = q.column();
    const size_t j = table.Column(c);
    // Two-pass mean and variance in long double; an exact integer sum when every value is
    // an integer.
    long double sum = 0;
    bool integers = true;
    for (const auto* row : kept) {
      sum += (*row)[j];
      integers = integers && (*row)[j] == std::floor((*row)[j]);
    }
    const long double n = static_cast<long double>(kept.size());
    const long double mean = sum / n;
    long double squares = 0;
    for (const auto* row : kept) squares += ((*row)[j] - mean) * ((*row)[j] - mean);
    const long double variance = squares / n;

    EXPECT_EQ(metric(c + ".count"), static_cast<double>(kept.size())) << c;
    if (integers) {
      int64_t exact = 0;
      for (const auto* row : kept) exact += static_cast<int64_t>((*row)[j]);
      EXPECT_EQ(metric(c + ".sum"), static_cast<double>(exact)) << c << " (integer column)";
    } else {
      ExpectRelativeNear(metric(c + ".sum"), sum, 1e-12, c + ".sum (decimal column)");
    }
    ExpectRelativeNear(metric(c + ".mean"), mean, 1e-9, c + ".mean");
    ExpectRelativeNear(metric(c + ".variance"), variance, 1e-9, c + ".variance");

    const int edges = q.histogram_edges_size();
    if (edges < 2) continue;
    std::vector<int64_t> bins(edges - 1, 0);
    int64_t below = 0, above = 0;
    for (const auto* row : kept) {
      const double x = (*row)[j];
      if (x < q.histogram_edges(0)) {
        ++below;
      } else if (x > q.histogram_edges(edges - 1)) {
        ++above;
      } else {
        int b = 0;
        while (b + 1 < edges - 1 && x >= q.histogram_edges(b + 1)) ++b;  // last bin closed
        ++bins[b];
      }
    }
    for (int b = 0; b + 1 < edges; ++b) {
      const std::string name = absl::StrCat(c, ".bin[", q.histogram_edges(b), ",",
                                            q.histogram_edges(b + 1), b + 2 == edges ? "]" : ")");
      EXPECT_EQ(metric(name), static_cast<double>(bins[b])) << name;
    }
    EXPECT_EQ(metric(c + ".below"), static_cast<double>(below)) << c;
    EXPECT_EQ(metric(c + ".above"), static_cast<double>(above)) << c;
  }
  return checked;
}

class AnalyticsTest : public ::testing::Test {
 protected:
  void ExpectExampleAnswersPooledValues(const std::string& example, const std::string& dataset) {
    ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample(example));
    ASSERT_TRUE(spec.has_analytics());
    const Table table = ReadTable(DataPath(dataset));
    // As the example's comment runs it: 5 sites, no test-row file (a seeded 80/20 split,
    // which an analytics task reads whole anyway).
    ASSERT_OK_AND_ASSIGN(coordinator::SimulationResult result,
                         Simulate(spec, dataset, 5, "iid", temp_.path(),
                                  /*reference_split=*/false));
    Report(example, result);
    ASSERT_EQ(result.task.state(), v1::TASK_COMPLETED) << result.task.state_reason();
    const size_t held =
        std::accumulate(result.site_train_rows.begin(), result.site_train_rows.end(), size_t{0}) +
        std::accumulate(result.site_test_rows.begin(), result.site_test_rows.end(), size_t{0});
    EXPECT_EQ(held, table.rows.size()) << "the sites together hold the whole file";
    // One round (no statistics round precedes a query), all five sites in the sums.
    ASSERT_EQ(result.rounds.size(), 1u);
    EXPECT_EQ(result.rounds.back().round(), 1u);
    EXPECT_EQ(result.rounds.back().fit_participants_size(), 5);
    const int checked = ExpectPooledAnswers(spec.analytics(), table, result.final_metrics);
    EXPECT_EQ(static_cast<size_t>(checked), result.final_metrics.size())
        << "every released value was checked";
  }

  testing::TempDir temp_;
};

TEST_F(AnalyticsTest, RotterdamQueryEqualsPooledValues) {
  ExpectExampleAnswersPooledValues("rotterdam_query", "rotterdam_survival");
}

TEST_F(AnalyticsTest, DiabetesQueryWithFilterAndHistogramsEqualsPooledValues) {
  ExpectExampleAnswersPooledValues("diabetes_query", "diabetes_progression");
}

}  // namespace
}  // namespace tessera::research
