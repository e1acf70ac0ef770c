// Analytics cells (proto/analytics.h): what a site withholds, what it skips, how it
// saturates, and the coordinator's release rule (primary and complementary suppression).
// tests/common/analytics_test.cc checks the precision of released values on real data.
#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The layout of proto/analytics.h: a query's main cell [count, withheld, S x4, Q x4], then
// its histogram cells (bins, below, above), each [count, withheld].
constexpr size_t kMain = 10;
size_t CountAt(size_t cell) { return kMain + 2 * cell; }
size_t WithheldAt(size_t cell) { return kMain + 2 * cell + 1; }

// A site's table of columns f (filter) and x (value), row-major.
struct Site {
  std::vector<std::string> header = {"f", "x"};
  std::vector<double> values;
  size_t num_rows = 0;
  void Add(double f, double x) {
    values.push_back(f);
    values.push_back(x);
    ++num_rows;
  }
};

// Queries x with edges [0, 10, 20, 30] (3 bins, below, above: 5 cells), rows with f == 1.
v1::AnalyticsSpec HistogramSpec(uint32_t k) {
  v1::AnalyticsSpec spec;
  auto* q = spec.add_queries();
  q->set_column("x");
  for (double e : {0.0, 10.0, 20.0, 30.0}) q->add_histogram_edges(e);
  spec.add_queries()->set_column("x");  // a second query, no histogram
  spec.mutable_filter()->set_column("f");
  spec.mutable_filter()->set_op(v1::AnalyticsSpec::Filter::EQ);
  spec.mutable_filter()->set_value(1);
  spec.set_min_cell_size(k);
  return spec;
}

std::vector<double> Encode(const v1::AnalyticsSpec& spec, const Site& s,
                           AnalyticsSkips* skips = nullptr) {
  auto v = EncodeAnalytics(spec, MinCellSize(spec), s.header, s.values, s.num_rows, skips);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::vector<double>{};
}

std::vector<double> Sum(const std::vector<std::vector<double>>& vectors) {
  std::vector<double> out(vectors.front().size(), 0.0);
  for (const auto& v : vectors) {
    for (size_t i = 0; i < out.size(); ++i) out[i] += v[i];
  }
  return out;
}

// ---- Local withholding ----

TEST(AnalyticsWithholdingTest, SiteWithOneToKMinusOneRowsWithholdsEveryQueryWhole) {
  const v1::AnalyticsSpec spec = HistogramSpec(10);
  for (int kept = 1; kept <= 9; ++kept) {
    SCOPED_TRACE(kept);
    Site s;
    for (int i = 0; i < 40; ++i) s.Add(0, 100 + i);     // filtered out
    for (int i = 0; i < kept; ++i) s.Add(1, 12.5 + i);  // kept
    const std::vector<double> v = Encode(spec, s);
    ASSERT_EQ(v.size(), AnalyticsLength(spec));
    std::vector<double> want(v.size(), 0.0);
    want[1] = 1;                                             // query 0: main cell withheld
    for (size_t c = 0; c < 5; ++c) want[WithheldAt(c)] = 1;  // and every histogram cell
    want[kMain + 10 + 1] = 1;                                // query 1: main cell withheld
    EXPECT_EQ(v, want);
  }
}

TEST(AnalyticsWithholdingTest, EmptyCellsAreZerosNotWithheld) {
  const v1::AnalyticsSpec spec = HistogramSpec(10);
  Site s;
  for (int i = 0; i < 40; ++i) s.Add(0, i);  // nothing kept
  EXPECT_EQ(Encode(spec, s), std::vector<double>(AnalyticsLength(spec), 0.0));
}

TEST(AnalyticsWithholdingTest, SmallHistogramCellsAreWithheldTheRestSent) {
  const v1::AnalyticsSpec spec = HistogramSpec(10);
  Site s;
  for (int i = 0; i < 12; ++i) s.Add(1, 5);   // bin [0, 10): 12
  for (int i = 0; i < 3; ++i) s.Add(1, 15);   // bin [10, 20): 3, withheld
  for (int i = 0; i < 10; ++i) s.Add(1, -1);  // below: 10
  const std::vector<double> v = Encode(spec, s);
  EXPECT_EQ(v[0], 25);  // the main cell has every kept row, the withheld bin's too
  EXPECT_EQ(v[1], 0);
  const std::vector<double> counts = {v[CountAt(0)], v[CountAt(1)], v[CountAt(2)], v[CountAt(3)],
                                      v[CountAt(4)]};
  const std::vector<double> withheld = {v[WithheldAt(0)], v[WithheldAt(1)], v[WithheldAt(2)],
                                        v[WithheldAt(3)], v[WithheldAt(4)]};
  EXPECT_THAT(counts, ElementsAre(12, 0, 0, 10, 0));
  EXPECT_THAT(withheld, ElementsAre(0, 1, 0, 0, 0));

  // Released: the main cell; bin 1 (withheld), bin 2 and above (empty) are suppressed,
  // leaving 3 rows derivable from count - released: below (the smallest) goes too.
  auto released = ReleaseAnalytics(spec, v);
  ASSERT_OK(released.status());
  const QueryRelease& q = (*released)[0];
  ASSERT_TRUE(q.main.has_value());
  EXPECT_EQ(q.main->count, 25);
  EXPECT_EQ(q.main->sum, 12 * 5 + 3 * 15 - 10);
  EXPECT_THAT(q.bins, ElementsAre(12, std::nullopt, std::nullopt));
  EXPECT_EQ(q.below, std::nullopt);
  EXPECT_EQ(q.above, std::nullopt);
  EXPECT_EQ(q.suppressed_cells, 4u);
  EXPECT_EQ((*released)[1].suppressed_cells, 0u);
}

TEST(AnalyticsWithholdingTest, KOfOneWithholdsNothing) {
  const v1::AnalyticsSpec spec = HistogramSpec(1);
  Site s;
  s.Add(1, 15);
  const std::vector<double> v = Encode(spec, s);
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v[1], 0);
  EXPECT_EQ(v[CountAt(1)], 1);
  for (size_t c = 0; c < 5; ++c) EXPECT_EQ(v[WithheldAt(c)], 0);
}

// ---- Values never fail: skipped rows, saturation ----

TEST(AnalyticsSkipTest, NonFiniteRowsAreSkippedIdenticallyWhateverTheirValue) {
  v1::AnalyticsSpec spec = HistogramSpec(10);
  spec.mutable_queries(1)->set_column("y");
  Site base;
  base.header = {"f", "x", "unread", "y"};
  auto add = [](Site* s, double f, double x, double unread, double y) {
    s->values.insert(s->values.end(), {f, x, unread, y});
    ++s->num_rows;
  };
  for (int i = 0; i < 10; ++i) add(&base, 1, 3 + i, 0, 7);  // exactly k kept rows
  for (int i = 0; i < 5; ++i) add(&base, 0, 50, 0, 7);
  const std::vector<double> want = Encode(spec, base);
  ASSERT_EQ(want[0], 10);

  struct Where {
    const char* column;
    size_t index;
  };
  for (const Where& where : {Where{"f", 0}, Where{"x", 1}, Where{"y", 3}}) {
    for (double bad : {NAN, -NAN, INFINITY, -INFINITY}) {
      SCOPED_TRACE(::testing::Message() << where.column << " = " << bad);
      Site s;
      s.header = base.header;
      // The bad row would be kept (f == 1) and fall in a bin, were it usable.
      for (size_t r = 0; r < base.num_rows; ++r) {
        if (r == 4) {
          std::vector<double> row = {1, 15, 0, 7};
          row[where.index] = bad;
          add(&s, row[0], row[1], row[2], row[3]);
        }
        add(&s, base.values[4 * r], base.values[4 * r + 1], base.values[4 * r + 2],
            base.values[4 * r + 3]);
      }
      AnalyticsSkips skips;
      const std::vector<double> got = Encode(spec, s, &skips);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(std::bit_cast<uint64_t>(got[i]), std::bit_cast<uint64_t>(want[i])) << i;
      }
      EXPECT_EQ(skips.rows, 1u);
      ASSERT_EQ(skips.columns.size(), 1u);
      EXPECT_EQ(skips.columns[0].first, where.column);
      EXPECT_EQ(skips.columns[0].second, 1u);
    }
  }
  // A column the spec does not read may hold anything: the row counts.
  Site s = base;
  add(&s, 1, 15, NAN, 7);
  AnalyticsSkips skips;
  EXPECT_EQ(Encode(spec, s, &skips)[0], 11);
  EXPECT_EQ(skips.rows, 0u);
}

TEST(AnalyticsSaturationTest, HugeSumsSaturateInsteadOfFailing) {
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("x");
  struct Case {
    double x, sum;
  };
  for (const Case& c : {Case{1e300, 0x1p76}, Case{-1e300, -0x1p76}, Case{1e308, 0x1p76},
                        Case{-1e308, -0x1p76}, Case{1e20, 1.2e21}}) {
    SCOPED_TRACE(c.x);
    Site s;
    for (int i = 0; i < 12; ++i) s.Add(0, c.x);
    const std::vector<double> v = Encode(spec, s);
    for (double part : v) EXPECT_TRUE(std::isfinite(part));
    auto released = ReleaseAnalytics(spec, v);
    ASSERT_OK(released.status());
    ASSERT_TRUE((*released)[0].main.has_value());
    EXPECT_EQ((*released)[0].main->count, 12);
    EXPECT_EQ((*released)[0].main->sum, c.sum);
    EXPECT_TRUE(std::isfinite((*released)[0].main->variance));
  }
}

// ---- The release rule on summed vectors ----

struct Cell {
  double count, withheld = 0;
};

// One query with edges [0, 10, 20, 30]: cells bin0, bin1, bin2, below, above. S = Q = 0.
std::vector<double> Summed(double count, double withheld, const std::vector<Cell>& cells) {
  std::vector<double> v(kMain + 2 * cells.size(), 0.0);
  v[0] = count;
  v[1] = withheld;
  for (size_t i = 0; i < cells.size(); ++i) {
    v[CountAt(i)] = cells[i].count;
    v[WithheldAt(i)] = cells[i].withheld;
  }
  return v;
}

// The released histogram cells (bins, below, above), nullopt where suppressed.
std::vector<std::optional<double>> Cells(const QueryRelease& q) {
  std::vector<std::optional<double>> out = q.bins;
  out.push_back(q.below);
  out.push_back(q.above);
  return out;
}

QueryRelease ReleaseOne(const std::vector<double>& summed, uint32_t k = 10) {
  v1::AnalyticsSpec spec = HistogramSpec(k);
  spec.mutable_queries()->RemoveLast();
  auto released = ReleaseAnalytics(spec, summed);
  EXPECT_TRUE(released.ok()) << released.status();
  return released.ok() ? (*released)[0] : QueryRelease{};
}

constexpr std::nullopt_t kNone = std::nullopt;

TEST(AnalyticsReleaseTest, EveryCellOfKRowsIsReleased) {
  const QueryRelease q = ReleaseOne(Summed(88, 0, {{20}, {30}, {15}, {12}, {11}}));
  ASSERT_TRUE(q.main.has_value());
  EXPECT_EQ(q.main->count, 88);
  EXPECT_THAT(Cells(q), ElementsAre(20, 30, 15, 12, 11));
  EXPECT_EQ(q.suppressed_cells, 0u);
}

TEST(AnalyticsReleaseTest, ASmallCellTakesTheSmallestReleasedCellWithIt) {
  // bin1 (5) alone would be count - the others: `above` (11, the smallest) hides it.
  const QueryRelease q = ReleaseOne(Summed(118, 0, {{50}, {5}, {40}, {12}, {11}}));
  EXPECT_THAT(Cells(q), ElementsAre(50, kNone, 40, 12, kNone));
  EXPECT_EQ(q.suppressed_cells, 2u);
}

TEST(AnalyticsReleaseTest, TiesGoToTheLowestIndex) {
  const QueryRelease q = ReleaseOne(Summed(109, 0, {{50}, {5}, {12}, {12}, {30}}));
  EXPECT_THAT(Cells(q), ElementsAre(50, kNone, kNone, 12, 30));
}

TEST(AnalyticsReleaseTest, EmptyCellsAreSuppressedAndTheirDerivableZeroToo) {
  // Three empty cells: count - released = 0 would say so; bin2 (40) joins them.
  const QueryRelease q = ReleaseOne(Summed(90, 0, {{50}, {0}, {40}, {0}, {0}}));
  ASSERT_TRUE(q.main.has_value());
  EXPECT_THAT(Cells(q), ElementsAre(50, kNone, kNone, kNone, kNone));
  EXPECT_EQ(q.suppressed_cells, 4u);
}

TEST(AnalyticsReleaseTest, AWithheldCellIsSuppressedWhateverItsCount) {
  // bin1: 8 rows from sites that sent them, 7 withheld (in the main count only): the
  // suppressed total, 15, is already >= k.
  const QueryRelease q = ReleaseOne(Summed(128, 0, {{50}, {8, 1}, {40}, {12}, {11}}));
  EXPECT_THAT(Cells(q), ElementsAre(50, kNone, 40, 12, 11));
  EXPECT_EQ(q.suppressed_cells, 1u);
  // 20 rows sent and one site withholding: still suppressed.
  EXPECT_THAT(Cells(ReleaseOne(Summed(140, 0, {{50}, {20, 1}, {40}, {12}, {11}}))),
              ElementsAre(50, kNone, 40, 12, 11));
}

TEST(AnalyticsReleaseTest, ComplementarySuppressionMayTakeEveryCell) {
  const QueryRelease q = ReleaseOne(Summed(18, 0, {{15}, {3}, {0}, {0}, {0}}));
  ASSERT_TRUE(q.main.has_value());
  EXPECT_EQ(q.main->count, 18);
  EXPECT_THAT(Cells(q), ElementsAre(kNone, kNone, kNone, kNone, kNone));
  EXPECT_EQ(q.suppressed_cells, 5u);
}

TEST(AnalyticsReleaseTest, ASuppressedMainCellSuppressesTheWholeQuery) {
  const std::vector<Cell> cells = {{20}, {10}, {10}, {0}, {0}};
  for (const std::vector<double>& summed :
       {Summed(40, 1, cells), Summed(9, 0, cells), Summed(0, 0, {{0}, {0}, {0}, {0}, {0}})}) {
    const QueryRelease q = ReleaseOne(summed);
    EXPECT_EQ(q.column, "x");
    EXPECT_FALSE(q.main.has_value());
    EXPECT_THAT(Cells(q), ElementsAre(kNone, kNone, kNone, kNone, kNone));
    EXPECT_EQ(q.suppressed_cells, 6u);
  }
}

TEST(AnalyticsReleaseTest, NoSuppressedTotalIsEverDerivableBelowK) {
  // Random cells: whatever is suppressed, the released cells leave a suppressed total of
  // at least k (or nothing is released), and every released cell has k rows, none withheld.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const uint32_t k = 1 + rng() % 12;
    std::vector<Cell> cells(5);
    double count = 0;
    for (Cell& c : cells) {
      c.count = rng() % 4 == 0 ? 0 : rng() % (3 * k);
      c.withheld = rng() % 6 == 0 ? 1 : 0;
      count += c.count + (c.withheld > 0 ? 1 + rng() % k : 0);
    }
    if (count < k) continue;
    SCOPED_TRACE(::testing::Message() << "trial " << trial);
    const QueryRelease q = ReleaseOne(Summed(count, 0, cells), k);
    const std::vector<std::optional<double>> got = Cells(q);
    double released = 0;
    int released_cells = 0;
    for (size_t i = 0; i < 5; ++i) {
      if (!got[i]) continue;
      EXPECT_GE(*got[i], k);
      EXPECT_EQ(cells[i].withheld, 0);
      released += *got[i];
      ++released_cells;
    }
    if (released_cells < 5 && released_cells > 0) {
      EXPECT_GE(count - released, k);
    }
    EXPECT_EQ(q.suppressed_cells, static_cast<uint32_t>(5 - released_cells));
  }
}

TEST(AnalyticsReleaseTest, RejectsMalformedSums) {
  v1::AnalyticsSpec spec;
  spec.add_queries()->set_column("x");
  EXPECT_THAT(ReleaseAnalytics(spec, std::vector<double>(9, 0.0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 10")));
  std::vector<double> v(10, 0.0);
  v[0] = 20.5;
  EXPECT_THAT(ReleaseAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count")));
  v[0] = 20;
  v[1] = -1;
  EXPECT_THAT(ReleaseAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count")));
  v[1] = 0;
  v[3] = NAN;
  EXPECT_THAT(ReleaseAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  v[3] = 0;
  v[2] = 1e300;
  EXPECT_THAT(ReleaseAnalytics(spec, v),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  // A suppressed cell's sums are never decoded.
  v[0] = 5;
  EXPECT_OK(ReleaseAnalytics(spec, v));
}

// ---- The attack: a coordinator that ignores the release rule ----

TEST(AnalyticsAttack, CheatingCoordinatorGetsNothingOfASmallSiteCell) {
  // Site A holds 3 rows the filter keeps (one patient's distinctive values among them);
  // B and C hold 40 each. Whatever the coordinator does with the summed vector, A's part
  // of it is its withheld flags: the sum with A and the sum without A differ only there.
  const v1::AnalyticsSpec spec = HistogramSpec(10);
  Site a, b, c;
  for (double x : {123.456, 7.89, 42.0}) a.Add(1, x);
  for (int i = 0; i < 30; ++i) a.Add(0, 1000 + i);
  for (int i = 0; i < 40; ++i) b.Add(1, i % 25);
  for (int i = 0; i < 40; ++i) c.Add(1, 10 + i % 15);
  const std::vector<double> va = Encode(spec, a), vb = Encode(spec, b), vc = Encode(spec, c);
  const std::vector<double> with_a = Sum({va, vb, vc}), without_a = Sum({vb, vc});
  std::vector<size_t> differ;
  for (size_t i = 0; i < with_a.size(); ++i) {
    if (with_a[i] != without_a[i]) differ.push_back(i);
  }
  EXPECT_THAT(differ, ElementsAre(1, WithheldAt(0), WithheldAt(1), WithheldAt(2), WithheldAt(3),
                                  WithheldAt(4), kMain + 10 + 1));
  // The honest release says nothing at all of that query.
  auto released = ReleaseAnalytics(spec, with_a);
  ASSERT_OK(released.status());
  EXPECT_FALSE((*released)[0].main.has_value());
  EXPECT_FALSE((*released)[1].main.has_value());

  // With 30 kept rows at A, 2 of them in bin [20, 30): A's bin count never leaves A.
  Site a2;
  for (int i = 0; i < 28; ++i) a2.Add(1, 5);
  for (double x : {23.75, 29.5}) a2.Add(1, x);
  const std::vector<double> v2 = Encode(spec, a2);
  EXPECT_EQ(v2[CountAt(2)], 0);
  EXPECT_EQ(v2[WithheldAt(2)], 1);
}

}  // namespace
}  // namespace tessera::proto
