// The simulator's partitions of training rows over sites (simulation/partition.h).
#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simulation/partition.h"
#include "tests/testing/status_matchers.h"

namespace tessera::simulation {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::vector<size_t> Iota(size_t n) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), size_t{0});
  return v;
}

// Every training row lands at exactly one site, and nothing else does.
void ExpectExactCover(const std::vector<std::vector<size_t>>& sites,
                      const std::vector<size_t>& rows) {
  std::multiset<size_t> seen;
  for (const auto& s : sites) seen.insert(s.begin(), s.end());
  EXPECT_EQ(seen, std::multiset<size_t>(rows.begin(), rows.end()));
}

TEST(ParsePartitionTest, AcceptsTheFourFormsAndNamesThemOnError) {
  ASSERT_OK_AND_ASSIGN(Partition iid, ParsePartition("iid"));
  EXPECT_EQ(iid.kind, Partition::Kind::kIid);
  ASSERT_OK_AND_ASSIGN(Partition dir, ParsePartition("dirichlet:0.3"));
  EXPECT_EQ(dir.kind, Partition::Kind::kDirichlet);
  EXPECT_DOUBLE_EQ(dir.alpha, 0.3);
  ASSERT_OK_AND_ASSIGN(Partition col, ParsePartition("by-column:hospital"));
  EXPECT_EQ(col.kind, Partition::Kind::kByColumn);
  EXPECT_EQ(col.column, "hospital");
  EXPECT_THAT(ParsePartition("dirichlet:-1"), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(Partition quantile, ParsePartition("by-quantile:age:5"));
  EXPECT_EQ(quantile.kind, Partition::Kind::kByQuantile);
  EXPECT_EQ(quantile.column, "age");
  EXPECT_EQ(quantile.bins, 5u);
  for (const char* bad : {"by-quantile:age", "by-quantile:age:1", "by-quantile:age:1001",
                          "by-quantile::4", "by-quantile:age:x"}) {
    EXPECT_THAT(ParsePartition(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NAME:K")))
        << bad;
  }
  EXPECT_THAT(ParsePartition("random"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("by-column:NAME"), HasSubstr("by-quantile:NAME:K"))));
}

TEST(PartitionRowsTest, IidDealsEvenlyAndIsSeeded) {
  const std::vector<size_t> rows = Iota(103);
  const std::vector<double> labels(103, 0.0);
  ASSERT_OK_AND_ASSIGN(auto sites, PartitionRows(rows, labels, {}, Partition(), 5, 7));
  ASSERT_EQ(sites.size(), 5u);
  ExpectExactCover(sites, rows);
  for (const auto& s : sites) EXPECT_TRUE(s.size() == 20 || s.size() == 21);
  ASSERT_OK_AND_ASSIGN(auto again, PartitionRows(rows, labels, {}, Partition(), 5, 7));
  EXPECT_EQ(sites, again) << "same seed, same split";
  ASSERT_OK_AND_ASSIGN(auto other, PartitionRows(rows, labels, {}, Partition(), 5, 8));
  EXPECT_NE(sites, other);
  EXPECT_THAT(PartitionRows(rows, labels, {}, Partition(), 200, 7),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PartitionRowsTest, ByColumnMakesOneSitePerValue) {
  const std::vector<size_t> rows = {0, 1, 2, 3, 4, 5};
  const std::vector<double> labels(6, 0.0);
  const std::vector<double> hospital = {3, 1, 3, 2, 1, 3};
  Partition p;
  p.kind = Partition::Kind::kByColumn;
  p.column = "hospital";
  ASSERT_OK_AND_ASSIGN(auto sites, PartitionRows(rows, labels, hospital, p, 0, 1));
  ASSERT_EQ(sites.size(), 3u);
  EXPECT_EQ(sites[0], (std::vector<size_t>{1, 4}));     // value 1
  EXPECT_EQ(sites[1], (std::vector<size_t>{3}));        // value 2
  EXPECT_EQ(sites[2], (std::vector<size_t>{0, 2, 5}));  // value 3
  EXPECT_THAT(PartitionRows(rows, labels, hospital, p, 4, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 values, not 4")));
}

TEST(PartitionRowsTest, ByColumnRefusesAContinuousColumnNamingItAndTheWayOut) {
  // 46 distinct ages: 46 one-row sites before this refusal.
  const std::vector<size_t> rows = Iota(46);
  const std::vector<double> labels(46, 0.0);
  std::vector<double> age(46);
  for (size_t i = 0; i < age.size(); ++i) age[i] = 30 + 0.5 * static_cast<double>(i);
  Partition p;
  p.kind = Partition::Kind::kByColumn;
  p.column = "age";
  p.max_sites = 20;
  EXPECT_THAT(PartitionRows(rows, labels, age, p, 0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("column 'age' has 46 distinct values"),
                             HasSubstr("by-quantile:age:K"), HasSubstr("--max-sites"))));
  p.max_sites = 46;
  ASSERT_OK_AND_ASSIGN(auto sites, PartitionRows(rows, labels, age, p, 0, 1));
  EXPECT_EQ(sites.size(), 46u);
}

TEST(PartitionRowsTest, ByQuantileBinsAContinuousColumnKeepingEqualValuesTogether) {
  // 100 rows: ages 0..99, with rows 100..109 repeating age 50.
  const std::vector<size_t> rows = Iota(110);
  const std::vector<double> labels(110, 0.0);
  std::vector<double> age(110);
  for (size_t i = 0; i < 100; ++i) age[i] = static_cast<double>(i);
  for (size_t i = 100; i < 110; ++i) age[i] = 50;
  ASSERT_OK_AND_ASSIGN(Partition p, ParsePartition("by-quantile:age:4"));
  ASSERT_OK_AND_ASSIGN(auto sites, PartitionRows(rows, labels, age, p, 0, 1));
  ASSERT_EQ(sites.size(), 4u);
  size_t total = 0;
  double previous_max = -1;
  for (const auto& site : sites) {
    ASSERT_FALSE(site.empty());
    total += site.size();
    EXPECT_GE(site.size(), 20u);
    EXPECT_LE(site.size(), 40u);
    double lo = 1e9, hi = -1;
    for (size_t r : site) {
      lo = std::min(lo, age[r]);
      hi = std::max(hi, age[r]);
    }
    EXPECT_GT(lo, previous_max) << "bins are ordered ranges of the column";
    previous_max = hi;
  }
  EXPECT_EQ(total, rows.size());
  // Every row of age 50 is in one site.
  std::set<size_t> holding;
  for (size_t s = 0; s < sites.size(); ++s) {
    for (size_t r : sites[s]) {
      if (age[r] == 50) holding.insert(s);
    }
  }
  EXPECT_EQ(holding.size(), 1u);
  // --clients must agree; too many equal values for the bins is refused.
  EXPECT_THAT(PartitionRows(rows, labels, age, p, 3, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("makes 4 sites, not 3")));
  const std::vector<double> mostly_equal = [] {
    std::vector<double> v(110, 1.0);
    v[0] = 0;
    return v;
  }();
  EXPECT_THAT(PartitionRows(rows, labels, mostly_equal, p, 0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ask for fewer bins")));
  const std::vector<size_t> three = {0, 1, 2};
  EXPECT_THAT(PartitionRows(three, labels, age, p, 0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("cannot cut 3 training rows into 4 quantile bins")));
}

TEST(PartitionRowsTest, DirichletSkewsLabelsAndNeedsClasses) {
  // 1000 rows of 10 classes, 100 each.
  const std::vector<size_t> rows = Iota(1000);
  std::vector<double> labels(1000);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<double>(i % 10);
  Partition skewed;
  skewed.kind = Partition::Kind::kDirichlet;
  skewed.alpha = 0.1;
  ASSERT_OK_AND_ASSIGN(auto sites, PartitionRows(rows, labels, {}, skewed, 5, 3));
  ExpectExactCover(sites, rows);
  // With alpha 0.1 a site holds far from 10% of some class; with alpha 1000 every site is
  // close to the pooled mix.
  auto max_share_gap = [&](const std::vector<std::vector<size_t>>& split) {
    double worst = 0;
    for (const auto& s : split) {
      std::map<int, double> count;
      for (size_t r : s) count[static_cast<int>(labels[r])] += 1;
      for (int c = 0; c < 10; ++c) {
        worst = std::max(worst, std::abs(count[c] / static_cast<double>(s.size()) - 0.1));
      }
    }
    return worst;
  };
  Partition mild = skewed;
  mild.alpha = 1000;
  ASSERT_OK_AND_ASSIGN(auto even, PartitionRows(rows, labels, {}, mild, 5, 3));
  EXPECT_GT(max_share_gap(sites), 0.2);
  EXPECT_LT(max_share_gap(even), 0.08);
  std::vector<double> real = labels;
  real[5] = 0.5;
  EXPECT_THAT(PartitionRows(rows, real, {}, skewed, 5, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("class labels")));
}

TEST(SeededTestRowsTest, AFifthOfTheRowsSortedDistinctAndSeeded) {
  const std::vector<size_t> rows = SeededTestRows(1003, 42);
  ASSERT_EQ(rows.size(), 200u);  // a fifth, rounded down
  EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
  EXPECT_EQ(std::set<size_t>(rows.begin(), rows.end()).size(), rows.size());
  EXPECT_LT(rows.back(), 1003u);
  EXPECT_EQ(SeededTestRows(1003, 42), rows);
  EXPECT_NE(SeededTestRows(1003, 43), rows);
  // Drawn over the whole file, not its first rows.
  EXPECT_GT(rows.back(), 800u);
  EXPECT_TRUE(SeededTestRows(4, 1).empty());
}

}  // namespace
}  // namespace tessera::simulation
