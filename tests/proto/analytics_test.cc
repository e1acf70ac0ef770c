// Analytics through the public API (proto/analytics.h): the sites' vectors, summed as
// secure aggregation sums them, released by the coordinator's rule; released values equal
// the pooled statistics computed here directly (counts exactly, means and variances to
// 1e-9), and the suppressed cells are those the rule, computed here independently from
// every site's rows, names. Also the spec's validation and min_cell_size defaults. The
// rule's corner cases, withholding, skipped rows and saturation are in
// analytics_release_test.cc.
#include "proto/analytics.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Table {
  std::vector<std::string> header;
  std::vector<double> values;  // row-major
  size_t num_rows = 0;
  double at(size_t r, size_t c) const { return values[r * header.size() + c]; }
};

Table ReadCsv(const std::string& name) {
  Table t;
  std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/deploy/data/" + name + ".csv");
  EXPECT_TRUE(in.good()) << name;
  std::string line;
  std::getline(in, line);
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) t.header.push_back(cell);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ls(line);
    for (std::string cell; std::getline(ls, cell, ',');) t.values.push_back(std::stod(cell));
    ++t.num_rows;
  }
  return t;
}

// Rows dealt to `k` sites by a fixed hash (uneven sizes).
std::vector<Table> Split(const Table& t, size_t k) {
  std::vector<Table> sites(k);
  for (auto& s : sites) s.header = t.header;
  for (size_t r = 0; r < t.num_rows; ++r) {
    Table& s = sites[(r * 2654435761u + r / 5) % 89 % k];
    for (size_t c = 0; c < t.header.size(); ++c) s.values.push_back(t.at(r, c));
    ++s.num_rows;
  }
  return sites;
}

std::vector<double> Encode(const v1::AnalyticsSpec& spec, const Table& t) {
  auto v = EncodeAnalytics(spec, MinCellSize(spec), t.header, t.values, t.num_rows);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::vector<double>{};
}

// Sums the sites' vectors; `quantize` rounds every value to the analytics stage's fixed
// point (40 fractional bits) first, as secure aggregation does.
std::vector<double> SumSites(const v1::AnalyticsSpec& spec, const std::vector<Table>& sites,
                             bool quantize = false) {
  std::vector<double> summed(AnalyticsLength(spec), 0.0);
  for (const Table& s : sites) {
    const std::vector<double> v = Encode(spec, s);
    EXPECT_EQ(v.size(), summed.size());
    if (v.size() != summed.size()) return {};
    for (size_t i = 0; i < summed.size(); ++i) {
      summed[i] += quantize ? std::ldexp(std::round(std::ldexp(v[i], 40)), -40) : v[i];
    }
  }
  return summed;
}

std::vector<QueryRelease> Released(const v1::AnalyticsSpec& spec, const std::vector<Table>& sites,
                                   bool quantize = false) {
  auto results = ReleaseAnalytics(spec, SumSites(spec, sites, quantize));
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? *results : std::vector<QueryRelease>{};
}

// Histogram cell of x: bins [e_i, e_i+1) (the last closed), then below, then above.
size_t CellOf(double x, const std::vector<double>& edges) {
  const size_t bins = edges.size() - 1;
  if (x < edges.front()) return bins;
  if (x > edges.back()) return bins + 1;
  size_t b = 0;
  while (b + 1 < bins && x >= edges[b + 1]) ++b;
  return b;
}

using KeepRow = std::function<bool(const Table&, size_t)>;

// Direct pooled statistics of one column over the kept rows.
struct Direct {
  double count = 0, sum = 0, mean = 0, variance = 0;
  std::vector<double> cells;  // bins, below, above
  bool integral = true;
};

Direct Compute(const std::vector<Table>& sites, size_t column, const std::vector<double>& edges,
               const KeepRow& keep) {
  Direct d;
  if (edges.size() >= 2) d.cells.assign(edges.size() + 1, 0.0);
  long double sum = 0;
  for (const Table& t : sites) {
    for (size_t r = 0; r < t.num_rows; ++r) {
      if (!keep(t, r)) continue;
      const double x = t.at(r, column);
      d.count += 1;
      sum += x;
      d.integral = d.integral && x == std::floor(x);
      if (!d.cells.empty()) d.cells[CellOf(x, edges)] += 1;
    }
  }
  d.sum = static_cast<double>(sum);
  d.mean = static_cast<double>(sum / d.count);
  long double m2 = 0;
  for (const Table& t : sites) {
    for (size_t r = 0; r < t.num_rows; ++r) {
      if (!keep(t, r)) continue;
      const long double dev = t.at(r, column) - static_cast<long double>(d.mean);
      m2 += dev * dev;
    }
  }
  d.variance = static_cast<double>(m2 / d.count);
  return d;
}

// The release rule, computed independently from every site's rows: which cells of a query
// are released.
struct Expectation {
  bool main = false;
  std::vector<bool> released;  // histogram cells
};

Expectation ExpectedRelease(const std::vector<Table>& sites, size_t column,
                            const std::vector<double>& edges, const KeepRow& keep, double k) {
  const size_t cells = edges.size() >= 2 ? edges.size() + 1 : 0;
  Expectation e;
  e.released.assign(cells, false);
  bool withheld_main = false;
  double total = 0;
  std::vector<bool> withheld(cells, false);
  std::vector<double> totals(cells, 0.0);
  for (const Table& t : sites) {
    double n = 0;
    std::vector<double> counts(cells, 0.0);
    for (size_t r = 0; r < t.num_rows; ++r) {
      if (!keep(t, r)) continue;
      n += 1;
      if (cells > 0) counts[CellOf(t.at(r, column), edges)] += 1;
    }
    withheld_main = withheld_main || (n >= 1 && n < k);
    total += n;
    for (size_t i = 0; i < cells; ++i) {
      withheld[i] = withheld[i] || (counts[i] >= 1 && counts[i] < k);
      totals[i] += counts[i];
    }
  }
  e.main = !withheld_main && total >= k;
  if (!e.main) return e;
  double hidden = 0;
  bool any_hidden = false;
  for (size_t i = 0; i < cells; ++i) {
    e.released[i] = !withheld[i] && totals[i] >= k;
    if (!e.released[i]) {
      hidden += totals[i];
      any_hidden = true;
    }
  }
  while (any_hidden && hidden < k) {
    std::optional<size_t> smallest;
    for (size_t i = 0; i < cells; ++i) {
      if (e.released[i] && (!smallest || totals[i] < totals[*smallest])) smallest = i;
    }
    if (!smallest) break;
    e.released[*smallest] = false;
    hidden += totals[*smallest];
  }
  return e;
}

// `got` against the pooled values for the released cells and the expected suppression.
void ExpectRelease(const QueryRelease& got, const Direct& want, const Expectation& e) {
  const size_t cells = want.cells.size();
  ASSERT_EQ(got.bins.size(), cells == 0 ? 0 : cells - 2);
  std::vector<std::optional<double>> got_cells = got.bins;
  if (cells > 0) {
    got_cells.push_back(got.below);
    got_cells.push_back(got.above);
  }
  if (!e.main) {
    EXPECT_FALSE(got.main.has_value());
    for (const auto& c : got_cells) EXPECT_FALSE(c.has_value());
    EXPECT_EQ(got.suppressed_cells, 1 + cells);
    return;
  }
  ASSERT_TRUE(got.main.has_value());
  EXPECT_EQ(got.main->count, want.count);
  if (want.integral) {
    EXPECT_EQ(got.main->sum, want.sum);
  } else {
    EXPECT_NEAR(got.main->sum, want.sum, 1e-12 * std::fabs(want.sum));
  }
  EXPECT_NEAR(got.main->mean, want.mean, 1e-9 * std::fabs(want.mean));
  EXPECT_NEAR(got.main->variance, want.variance, 1e-9 * want.variance);
  uint32_t suppressed = 0;
  for (size_t i = 0; i < cells; ++i) {
    SCOPED_TRACE(::testing::Message() << "cell " << i);
    if (e.released[i]) {
      ASSERT_TRUE(got_cells[i].has_value());
      EXPECT_EQ(*got_cells[i], want.cells[i]);
    } else {
      EXPECT_FALSE(got_cells[i].has_value());
      ++suppressed;
    }
  }
  EXPECT_EQ(got.suppressed_cells, suppressed);
}

// Every column of a real dataset, histograms on every other column (edges around the
// mean, so that some rows fall below and above), with and without a filter, k = 1 (only
// empty cells suppressed) and k = 10: released cells equal the pooled values, and exactly
// the cells the rule names are suppressed.
class AnalyticsDataTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AnalyticsDataTest, SitesSumToPooledStatistics) {
  const Table t = ReadCsv(GetParam());
  const size_t width = t.header.size();
  int suppressed_at_10 = 0;
  for (bool filtered : {false, true}) {
    v1::AnalyticsSpec spec;
    std::vector<std::vector<double>> edges(width);
    const KeepRow all = [](const Table&, size_t) { return true; };
    for (size_t c = 0; c < width; ++c) {
      auto* q = spec.add_queries();
      q->set_column(t.header[c]);
      if (c % 2 == 0) {
        const Direct d = Compute({t}, c, {}, all);
        const double sd = std::sqrt(d.variance);
        for (int i = 0; i <= 8; ++i) {
          // Some edges equal data values (integers), to check the bins' closed sides.
          double e = d.mean + (i - 4) * 0.4 * sd;
          if (d.integral) e = std::round(e) + i;
          edges[c].push_back(e);
          q->add_histogram_edges(e);
        }
      }
    }
    KeepRow keep = all;
    if (filtered) {
      // Keep rows whose first column is at least its median-ish value.
      auto* f = spec.mutable_filter();
      f->set_column(t.header[0]);
      f->set_op(v1::AnalyticsSpec::Filter::GE);
      f->set_value(t.at(t.num_rows / 2, 0));
      keep = [v = f->value()](const Table& s, size_t r) { return s.at(r, 0) >= v; };
    }
    ASSERT_THAT(ValidateAnalyticsSpec(spec, "analytics"), IsEmpty());
    for (uint32_t k : {1u, 10u}) {
      spec.set_min_cell_size(k);
      for (size_t n : {1, 3, 4}) {
        const std::vector<Table> sites = Split(t, n);
        for (bool quantize : {false, true}) {
          SCOPED_TRACE(::testing::Message() << GetParam() << " filtered=" << filtered << " k=" << k
                                            << " sites=" << n << " quantize=" << quantize);
          const auto results = Released(spec, sites, quantize);
          ASSERT_EQ(results.size(), width);
          for (size_t c = 0; c < width; ++c) {
            SCOPED_TRACE(t.header[c]);
            EXPECT_EQ(results[c].column, t.header[c]);
            EXPECT_EQ(results[c].edges, edges[c]);
            const Expectation e = ExpectedRelease(sites, c, edges[c], keep, k);
            if (k == 1) {
              EXPECT_TRUE(e.main);
            }
            if (k == 10) suppressed_at_10 += static_cast<int>(results[c].suppressed_cells);
            ExpectRelease(results[c], Compute(sites, c, edges[c], keep), e);
          }
        }
      }
    }
  }
  EXPECT_GT(suppressed_at_10, 0) << "k = 10 suppresses some cells of these histograms";
}

INSTANTIATE_TEST_SUITE_P(RealData, AnalyticsDataTest,
                         ::testing::Values("diabetes_progression", "rotterdam_survival",
                                           "breast_cancer_wisconsin", "smoking_nhis"));

TEST(AnalyticsTest, LargeOffsetsKeepTheVariance) {
  // Columns whose mean dwarfs their spread: a naive sum of squares in double would lose
  // every digit of the variance.
  Table t;
  t.header = {"timestamp", "offset", "tiny"};
  for (int i = 0; i < 2000; ++i) {
    t.values.push_back(1.7e9 + (i * 7919 % 1000));           // sd ~290 around 1.7e9
    t.values.push_back(1e7 + 0.001 * (i * 104729 % 997));    // sd ~0.29 around 1e7
    t.values.push_back(1e-6 * (1 + 1e-3 * (i * 31 % 101)));  // sd ~3e-11 around 1e-6
    ++t.num_rows;
  }
  v1::AnalyticsSpec spec;
  for (const auto& name : t.header) spec.add_queries()->set_column(name);
  const KeepRow all = [](const Table&, size_t) { return true; };
  for (size_t n : {1, 5}) {
    const std::vector<Table> sites = Split(t, n);
    for (bool quantize : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "sites=" << n << " quantize=" << quantize);
      const auto results = Released(spec, sites, quantize);
      ASSERT_EQ(results.size(), 3u);
      for (size_t c = 0; c < 3; ++c) {
        SCOPED_TRACE(t.header[c]);
        ExpectRelease(results[c], Compute(sites, c, {}, all), {.main = true, .released = {}});
      }
    }
  }
}

TEST(AnalyticsTest, FilterOps) {
  Table t;
  t.header = {"f", "x"};
  for (double f : {1, 2, 3, 3, 4, 5}) {
    t.values.push_back(f);
    t.values.push_back(10 * f);
    ++t.num_rows;
  }
  struct Case {
    v1::AnalyticsSpec::Filter::Op op;
    double count, sum;
  };
  const Case cases[] = {
      {v1::AnalyticsSpec::Filter::EQ, 2, 60}, {v1::AnalyticsSpec::Filter::NE, 4, 120},
      {v1::AnalyticsSpec::Filter::LT, 2, 30}, {v1::AnalyticsSpec::Filter::LE, 4, 90},
      {v1::AnalyticsSpec::Filter::GT, 2, 90}, {v1::AnalyticsSpec::Filter::GE, 4, 150},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(v1::AnalyticsSpec::Filter::Op_Name(c.op));
    v1::AnalyticsSpec spec;
    spec.add_queries()->set_column("x");
    spec.mutable_filter()->set_column("f");
    spec.mutable_filter()->set_op(c.op);
    spec.mutable_filter()->set_value(3);
    spec.set_min_cell_size(1);  // these cells are tiny
    ASSERT_THAT(ValidateAnalyticsSpec(spec, ""), IsEmpty());
    const auto results = Released(spec, Split(t, 2));
    ASSERT_EQ(results.size(), 1u);
    ASSERT_TRUE(results[0].main.has_value());
    EXPECT_EQ(results[0].main->count, c.count);
    EXPECT_EQ(results[0].main->sum, c.sum);
  }
  // A filter that keeps nothing: an empty main cell, suppressed (even with k = 1).
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("x");
  spec.mutable_filter()->set_column("f");
  spec.mutable_filter()->set_op(v1::AnalyticsSpec::Filter::GT);
  spec.mutable_filter()->set_value(100);
  spec.set_min_cell_size(1);
  const auto results = Released(spec, Split(t, 2));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].main.has_value());
  EXPECT_EQ(results[0].suppressed_cells, 1u);
}

TEST(AnalyticsTest, HistogramEdgesAndOutliers) {
  Table t;
  t.header = {"x"};
  for (double x : {-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.5}) {
    t.values.push_back(x);
    ++t.num_rows;
  }
  v1::AnalyticsSpec spec;
  spec.set_min_cell_size(1);
  auto* q = spec.add_queries();
  q->set_column("x");
  for (double e : {0.0, 1.0, 2.0}) q->add_histogram_edges(e);
  EXPECT_EQ(AnalyticsLength(spec), 10u + 2u * 4u);
  const auto results = Released(spec, Split(t, 3));
  ASSERT_EQ(results.size(), 1u);
  // [0, 1) holds 0 and 0.5; [1, 2] (closed) holds 1, 1.5, 2, 2.
  EXPECT_THAT(results[0].bins, ElementsAre(2, 4));
  EXPECT_EQ(results[0].below, 1);
  EXPECT_EQ(results[0].above, 1);
  EXPECT_EQ(results[0].suppressed_cells, 0u);
  EXPECT_THAT(results[0].edges, ElementsAre(0.0, 1.0, 2.0));
}

TEST(AnalyticsTest, OnlyTheSchemaIsAnError) {
  Table t;
  t.header = {"a", "b"};
  t.values = {1, 2, 3, 4};
  t.num_rows = 2;
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("a");
  spec.add_queries()->set_column("blood_pressure");
  EXPECT_THAT(EncodeAnalytics(spec, 10, t.header, t.values, t.num_rows),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'blood_pressure'")));
  spec.mutable_queries(1)->set_column("b");
  spec.mutable_filter()->set_column("site_code");
  spec.mutable_filter()->set_op(v1::AnalyticsSpec::Filter::EQ);
  EXPECT_THAT(EncodeAnalytics(spec, 10, t.header, t.values, t.num_rows),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'site_code'")));
  spec.clear_filter();
  EXPECT_OK(EncodeAnalytics(spec, 10, t.header, t.values, t.num_rows));
  EXPECT_THAT(EncodeAnalytics(spec, 10, t.header, t.values, 3),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A value is never an error, whatever it is.
  for (double bad : {double{NAN}, double{INFINITY}, -double{INFINITY}, 1e308, -1e308}) {
    const std::vector<double> values = {1, 2, bad, 4};
    EXPECT_OK(EncodeAnalytics(spec, 10, t.header, values, 2)) << bad;
  }
}

std::vector<std::string> Paths(const std::vector<common::FieldError>& errors) {
  std::vector<std::string> paths;
  paths.reserve(errors.size());
  for (const auto& e : errors) paths.push_back(e.path);
  return paths;
}

TEST(AnalyticsValidationTest, ErrorsNameTheFieldPath) {
  v1::AnalyticsSpec spec;
  EXPECT_THAT(Paths(ValidateAnalyticsSpec(spec, "analytics")), ElementsAre("analytics.queries"));

  auto* q0 = spec.add_queries();
  q0->set_column("age");
  for (double e : {0.0, 10.0, 10.0, 20.0}) q0->add_histogram_edges(e);  // not increasing
  spec.add_queries();                                                   // no column
  auto* q2 = spec.add_queries();
  q2->set_column("bmi");
  q2->add_histogram_edges(1.0);  // a single edge
  auto* q3 = spec.add_queries();
  q3->set_column("bad,name");
  q3->add_histogram_edges(0);
  q3->add_histogram_edges(NAN);
  auto* q4 = spec.add_queries();
  q4->set_column("many");
  for (int i = 0; i < 102; ++i) q4->add_histogram_edges(i);  // 101 bins
  spec.mutable_filter()->set_value(INFINITY);
  spec.set_min_cohort(20000);
  spec.set_min_cell_size(1000001);
  EXPECT_THAT(
      Paths(ValidateAnalyticsSpec(spec, "analytics")),
      ElementsAre("analytics.queries[0].histogram_edges[2]", "analytics.queries[1].column",
                  "analytics.queries[2].histogram_edges", "analytics.queries[3].column",
                  "analytics.queries[3].histogram_edges[1]", "analytics.queries[4].histogram_edges",
                  "analytics.filter.column", "analytics.filter.op", "analytics.filter.value",
                  "analytics.min_cohort", "analytics.min_cell_size"));
  // Without a prefix the paths start at the message.
  EXPECT_EQ(ValidateAnalyticsSpec(spec, "").front().path, "queries[0].histogram_edges[2]");

  v1::AnalyticsSpec hundred_bins;
  auto* q = hundred_bins.add_queries();
  q->set_column("x");
  for (int i = 0; i < 101; ++i) q->add_histogram_edges(i);
  hundred_bins.set_min_cell_size(1000000);
  EXPECT_THAT(ValidateAnalyticsSpec(hundred_bins, "analytics"), IsEmpty());

  v1::AnalyticsSpec too_many;
  for (int i = 0; i < 1001; ++i) too_many.add_queries()->set_column("x");
  EXPECT_THAT(Paths(ValidateAnalyticsSpec(too_many, "analytics")),
              ElementsAre("analytics.queries"));
  too_many.mutable_queries()->RemoveLast();
  EXPECT_THAT(ValidateAnalyticsSpec(too_many, "analytics"), IsEmpty());

  v1::AnalyticsSpec unknown_op;
  unknown_op.add_queries()->set_column("x");
  unknown_op.mutable_filter()->set_column("x");
  unknown_op.mutable_filter()->set_op(static_cast<v1::AnalyticsSpec::Filter::Op>(42));
  EXPECT_THAT(Paths(ValidateAnalyticsSpec(unknown_op, "analytics")),
              ElementsAre("analytics.filter.op"));
}

TEST(AnalyticsValidationTest, MinCellSizeDefaultsToTenForTasksAndSites) {
  v1::TaskSpec task;
  task.set_name("q");
  task.mutable_dataset()->set_id("d");
  task.mutable_analytics()->add_queries()->set_column("x");
  EXPECT_EQ(MinCellSize(task.analytics()), 10u) << "unset means the default";
  ApplyTaskDefaults(&task);
  EXPECT_EQ(task.analytics().min_cell_size(), 10u);
  EXPECT_THAT(ValidateTaskSpec(task), IsEmpty());
  task.mutable_analytics()->set_min_cell_size(25);
  ApplyTaskDefaults(&task);
  EXPECT_EQ(task.analytics().min_cell_size(), 25u);
  EXPECT_EQ(MinCellSize(task.analytics()), 25u);
  task.mutable_analytics()->set_min_cell_size(2000000);
  EXPECT_THAT(Paths(ValidateTaskSpec(task)), ElementsAre("analytics.min_cell_size"));

  v1::ClientConfig config;
  ApplyClientDefaults(&config);
  EXPECT_EQ(config.policy().min_cell_size(), 10u);
  config.mutable_policy()->set_min_cell_size(3);
  ApplyClientDefaults(&config);
  EXPECT_EQ(config.policy().min_cell_size(), 3u);
  config.mutable_policy()->set_min_cell_size(1000001);
  EXPECT_THAT(Paths(ValidateClientConfig(config)), Contains("policy.min_cell_size"));
}

}  // namespace
}  // namespace tessera::proto
