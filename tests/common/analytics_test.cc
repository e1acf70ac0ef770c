#include "proto/analytics.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto {
namespace {

using ::tessera::testing::StatusIs;
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

// Sums the sites' vectors; `quantize` rounds every value to the analytics stage's fixed
// point (40 fractional bits) first, as secure aggregation does.
std::vector<double> SumSites(const v1::AnalyticsSpec& spec, const std::vector<Table>& sites,
                             bool quantize = false) {
  std::vector<double> summed(AnalyticsLength(spec), 0.0);
  for (const Table& s : sites) {
    auto v = EncodeAnalytics(spec, s.header, s.values, s.num_rows);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    EXPECT_EQ(v->size(), summed.size());
    for (size_t i = 0; i < summed.size(); ++i) {
      summed[i] += quantize ? std::ldexp(std::round(std::ldexp((*v)[i], 40)), -40) : (*v)[i];
    }
  }
  return summed;
}

std::vector<QueryResult> Federated(const v1::AnalyticsSpec& spec, const std::vector<Table>& sites,
                                   bool quantize = false) {
  auto results = DecodeAnalytics(spec, SumSites(spec, sites, quantize));
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? *results : std::vector<QueryResult>{};
}

// Direct pooled statistics of one column over the kept rows.
struct Direct {
  double count = 0, sum = 0, mean = 0, variance = 0, below = 0, above = 0;
  std::vector<double> histogram;
  bool integral = true;
};

Direct Compute(const Table& t, size_t column, const std::vector<double>& edges,
               const std::vector<bool>& keep) {
  Direct d;
  long double sum = 0;
  for (size_t r = 0; r < t.num_rows; ++r) {
    if (!keep[r]) continue;
    const double x = t.at(r, column);
    d.count += 1;
    sum += x;
    d.integral = d.integral && x == std::floor(x);
  }
  d.sum = static_cast<double>(sum);
  d.mean = static_cast<double>(sum / d.count);
  long double m2 = 0;
  for (size_t r = 0; r < t.num_rows; ++r) {
    if (!keep[r]) continue;
    const long double dev = t.at(r, column) - static_cast<long double>(d.mean);
    m2 += dev * dev;
  }
  d.variance = static_cast<double>(m2 / d.count);
  if (edges.size() >= 2) {
    d.histogram.assign(edges.size() - 1, 0.0);
    for (size_t r = 0; r < t.num_rows; ++r) {
      if (!keep[r]) continue;
      const double x = t.at(r, column);
      if (x < edges.front()) {
        d.below += 1;
      } else if (x > edges.back()) {
        d.above += 1;
      } else {
        size_t b = 0;
        while (b + 2 < edges.size() && x >= edges[b + 1]) ++b;
        d.histogram[b] += 1;
      }
    }
  }
  return d;
}

void ExpectMatches(const QueryResult& got, const Direct& want) {
  EXPECT_EQ(got.count, want.count);
  if (want.integral) {
    EXPECT_EQ(got.sum, want.sum);
  } else {
    EXPECT_NEAR(got.sum, want.sum, 1e-12 * std::fabs(want.sum));
  }
  EXPECT_NEAR(got.mean, want.mean, 1e-9 * std::fabs(want.mean));
  EXPECT_NEAR(got.variance, want.variance, 1e-9 * want.variance);
  EXPECT_EQ(got.histogram, want.histogram);
  EXPECT_EQ(got.below, want.below);
  EXPECT_EQ(got.above, want.above);
}

// Every column of a real dataset, histograms on every other column (edges around the
// mean, so that some rows fall below and above), with and without a filter.
class AnalyticsDataTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AnalyticsDataTest, SitesSumToPooledStatistics) {
  const Table t = ReadCsv(GetParam());
  const size_t width = t.header.size();
  for (bool filtered : {false, true}) {
    v1::AnalyticsSpec spec;
    std::vector<std::vector<double>> edges(width);
    for (size_t c = 0; c < width; ++c) {
      auto* q = spec.add_queries();
      q->set_column(t.header[c]);
      if (c % 2 == 0) {
        const Direct d = Compute(t, c, {}, std::vector<bool>(t.num_rows, true));
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
    std::vector<bool> keep(t.num_rows, true);
    if (filtered) {
      // Keep rows whose first column is at least its median-ish value.
      auto* f = spec.mutable_filter();
      f->set_column(t.header[0]);
      f->set_op(v1::AnalyticsSpec::Filter::GE);
      f->set_value(t.at(t.num_rows / 2, 0));
      for (size_t r = 0; r < t.num_rows; ++r) keep[r] = t.at(r, 0) >= f->value();
    }
    ASSERT_THAT(ValidateAnalyticsSpec(spec, "analytics"), IsEmpty());
    for (size_t k : {1, 3, 4}) {
      for (bool quantize : {false, true}) {
        SCOPED_TRACE(::testing::Message() << GetParam() << " filtered=" << filtered
                                          << " sites=" << k << " quantize=" << quantize);
        const auto results = Federated(spec, Split(t, k), quantize);
        ASSERT_EQ(results.size(), width);
        for (size_t c = 0; c < width; ++c) {
          SCOPED_TRACE(t.header[c]);
          EXPECT_EQ(results[c].column, t.header[c]);
          EXPECT_EQ(results[c].edges, edges[c]);
          ExpectMatches(results[c], Compute(t, c, edges[c], keep));
        }
      }
    }
  }
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
  const std::vector<bool> keep(t.num_rows, true);
  for (size_t k : {1, 5}) {
    for (bool quantize : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "sites=" << k << " quantize=" << quantize);
      const auto results = Federated(spec, Split(t, k), quantize);
      ASSERT_EQ(results.size(), 3u);
      for (size_t c = 0; c < 3; ++c) {
        SCOPED_TRACE(t.header[c]);
        ExpectMatches(results[c], Compute(t, c, {}, keep));
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
    ASSERT_THAT(ValidateAnalyticsSpec(spec, ""), IsEmpty());
    const auto results = Federated(spec, Split(t, 2));
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].count, c.count);
    EXPECT_EQ(results[0].sum, c.sum);
  }
  // A filter that keeps nothing: count 0, no mean or variance.
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("x");
  spec.mutable_filter()->set_column("f");
  spec.mutable_filter()->set_op(v1::AnalyticsSpec::Filter::GT);
  spec.mutable_filter()->set_value(100);
  const auto results = Federated(spec, Split(t, 2));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].count, 0);
  EXPECT_EQ(results[0].sum, 0);
  EXPECT_TRUE(std::isnan(results[0].mean));
  EXPECT_TRUE(std::isnan(results[0].variance));
}

TEST(AnalyticsTest, HistogramEdgesAndOutliers) {
  Table t;
  t.header = {"x"};
  for (double x : {-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.5}) {
    t.values.push_back(x);
    ++t.num_rows;
  }
  v1::AnalyticsSpec spec;
  auto* q = spec.add_queries();
  q->set_column("x");
  for (double e : {0.0, 1.0, 2.0}) q->add_histogram_edges(e);
  EXPECT_EQ(AnalyticsLength(spec), 9u + 4u);
  const auto results = Federated(spec, Split(t, 3));
  ASSERT_EQ(results.size(), 1u);
  // [0, 1) holds 0 and 0.5; [1, 2] (closed) holds 1, 1.5, 2, 2.
  EXPECT_THAT(results[0].histogram, ElementsAre(2, 4));
  EXPECT_EQ(results[0].below, 1);
  EXPECT_EQ(results[0].above, 1);
  EXPECT_THAT(results[0].edges, ElementsAre(0.0, 1.0, 2.0));
}

TEST(AnalyticsTest, MissingColumnIsNamed) {
  Table t;
  t.header = {"a", "b"};
  t.values = {1, 2, 3, 4};
  t.num_rows = 2;
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("a");
  spec.add_queries()->set_column("blood_pressure");
  EXPECT_THAT(EncodeAnalytics(spec, t.header, t.values, t.num_rows),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'blood_pressure'")));
  spec.mutable_queries(1)->set_column("b");
  spec.mutable_filter()->set_column("site_code");
  spec.mutable_filter()->set_op(v1::AnalyticsSpec::Filter::EQ);
  EXPECT_THAT(EncodeAnalytics(spec, t.header, t.values, t.num_rows),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'site_code'")));
  spec.clear_filter();
  EXPECT_OK(EncodeAnalytics(spec, t.header, t.values, t.num_rows));
  EXPECT_THAT(EncodeAnalytics(spec, t.header, t.values, 3),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::vector<double> bad = {1, 2, NAN, 4};
  EXPECT_THAT(EncodeAnalytics(spec, t.header, bad, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 1 of column 'a'")));
}

std::vector<std::string> Paths(const std::vector<common::FieldError>& errors) {
  std::vector<std::string> paths;
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
  for (int i = 0; i < 1002; ++i) q4->add_histogram_edges(i);
  spec.mutable_filter()->set_value(INFINITY);
  spec.set_min_cohort(20000);
  EXPECT_THAT(Paths(ValidateAnalyticsSpec(spec, "analytics")),
              ElementsAre("analytics.queries[0].histogram_edges[2]", "analytics.queries[1].column",
                          "analytics.queries[2].histogram_edges", "analytics.queries[3].column",
                          "analytics.queries[3].histogram_edges[1]",
                          "analytics.queries[4].histogram_edges", "analytics.filter.column",
                          "analytics.filter.op", "analytics.filter.value", "analytics.min_cohort"));
  // Without a prefix the paths start at the message.
  EXPECT_EQ(ValidateAnalyticsSpec(spec, "").front().path, "queries[0].histogram_edges[2]");

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

TEST(AnalyticsDecodeTest, RejectsBadSums) {
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("x");
  EXPECT_THAT(DecodeAnalytics(spec, std::vector<double>(8, 0.0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 9")));
  std::vector<double> v(9, 0.0);
  v[0] = 2.5;
  EXPECT_THAT(DecodeAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count")));
  v[0] = 2;
  v[3] = NAN;
  EXPECT_THAT(DecodeAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  v[3] = 0;
  v[1] = 1e300;
  EXPECT_THAT(DecodeAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
}

}  // namespace
}  // namespace tessera::proto
