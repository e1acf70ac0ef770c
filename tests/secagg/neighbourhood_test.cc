#include "secagg/neighbourhood.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/secagg.pb.h"
#include "secagg/protocol.h"
#include "tests/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

// P[X >= x] by Pascal's triangle, exactly (in double, for small numbers): independent of
// the log-space sum under test.
double TailByCounting(uint32_t population, uint32_t marked, uint32_t draws, uint32_t x) {
  std::vector<std::vector<double>> c(population + 1, std::vector<double>(population + 1, 0));
  for (uint32_t a = 0; a <= population; ++a) {
    c[a][0] = 1;
    for (uint32_t b = 1; b <= a; ++b) c[a][b] = c[a - 1][b - 1] + (b <= a - 1 ? c[a - 1][b] : 0);
  }
  double hits = 0;
  for (uint32_t i = x; i <= std::min(marked, draws); ++i) {
    if (draws - i <= population - marked) hits += c[marked][i] * c[population - marked][draws - i];
  }
  return hits / c[population][draws];
}

TEST(NeighbourhoodTest, HypergeometricTailMatchesCounting) {
  for (uint32_t population : {10U, 25U, 40U}) {
    for (uint32_t marked : {0U, 3U, 8U, 12U}) {
      if (marked > population) continue;
      for (uint32_t draws : {1U, 6U, 9U}) {
        for (uint32_t x = 0; x <= draws + 1; ++x) {
          const double want = TailByCounting(population, marked, draws, x);
          const double got = Log2HypergeometricTail(population, marked, draws, x);
          if (want == 0) {
            EXPECT_EQ(got, -INFINITY) << population << " " << marked << " " << draws << " " << x;
          } else {
            EXPECT_NEAR(std::exp2(got), want, 1e-12 + 1e-9 * want)
                << population << " " << marked << " " << draws << " " << x;
          }
        }
      }
    }
  }
}

TEST(NeighbourhoodTest, ChosenParametersMeetBothConditionsAndTheNextSmallerDoesNot) {
  for (uint32_t n : {30U, 200U, 1000U}) {
    for (double rate : {0.05, 0.1}) {
      ASSERT_OK_AND_ASSIGN(NeighbourhoodParameters p, ChooseNeighbourhood(n, rate, rate, 40, 30));
      SCOPED_TRACE(absl::StrCat("n = ", n, ", gamma = delta = ", rate, ": k = ", p.k));
      EXPECT_EQ(p.t, 2 * p.k / 3 + 1);
      if (p.complete) {
        EXPECT_EQ(p.k, n - 1);
        continue;
      }
      EXPECT_EQ(p.k % 2, 0U);
      EXPECT_LT(p.k, n - 1);
      EXPECT_LE(p.log2_security_failure, -40);
      EXPECT_LE(p.log2_correctness_failure, -30);
      EXPECT_LE(p.log2_isolation_failure, -40);
      // Recomputed here from the definition, at k and at k - 2.
      const auto colluders = static_cast<uint32_t>(std::floor(rate * n));
      const auto lost = static_cast<uint32_t>(std::floor(2 * rate * n));
      auto fails = [&](uint32_t k) {
        const uint32_t t = 2 * k / 3 + 1;
        const double security =
            std::log2(n) + Log2HypergeometricTail(n - 1, colluders, k, (k + 2) / 3);
        const double correctness = std::log2(n) + Log2HypergeometricTail(n - 1, lost, k, k - t + 1);
        return security > -40 || correctness > -30 || Log2IsolationBound(n, lost, k) > -40;
      };
      EXPECT_FALSE(fails(p.k));
      if (p.k > 2) {
        EXPECT_TRUE(fails(p.k - 2)) << "not the smallest";
      }
    }
  }
}

// Condition (3): the bound is above what removing `lost` random sites from the ring graph
// actually does, counted over many draws where falling apart is likely enough to see.
TEST(NeighbourhoodTest, IsolationBoundIsAboveTheMeasuredRate) {
  constexpr uint32_t kSites = 60;
  constexpr uint32_t kLost = 12;
  constexpr int kDraws = 20000;
  for (uint32_t k : {4U, 6U}) {
    SCOPED_TRACE(absl::StrCat("k = ", k));
    const double bound = Log2IsolationBound(kSites, kLost, k);
    std::mt19937 random(k);
    int apart = 0;
    for (int draw = 0; draw < kDraws; ++draw) {
      ASSERT_OK_AND_ASSIGN(auto graph, Neighbourhoods(absl::StrCat("draw ", draw), kSites, k));
      std::vector<uint32_t> order(kSites);
      std::iota(order.begin(), order.end(), 0U);
      std::shuffle(order.begin(), order.end(), random);
      std::vector<bool> gone(kSites, false);
      for (uint32_t i = 0; i < kLost; ++i) gone[order[i]] = true;
      // Breadth-first over the sites left, from the first of them.
      std::vector<bool> seen(kSites, false);
      std::vector<uint32_t> queue = {order[kLost]};
      seen[order[kLost]] = true;
      uint32_t reached = 0;
      while (!queue.empty()) {
        const uint32_t at = queue.back();
        queue.pop_back();
        ++reached;
        for (uint32_t next : graph[at]) {
          if (gone[next] || seen[next]) continue;
          seen[next] = true;
          queue.push_back(next);
        }
      }
      if (reached < kSites - kLost) ++apart;
    }
    const double rate = static_cast<double>(apart) / kDraws;
    std::printf("isolation: n=%u lost=%u k=%u measured %.5f, bound %.5f\n", kSites, kLost, k, rate,
                std::exp2(bound));
    EXPECT_LE(rate, std::exp2(bound));
    if (k == 4) {
      EXPECT_GT(apart, 0) << "a case where falling apart is seen at all";
    }
  }
  EXPECT_EQ(Log2IsolationBound(1000, 10, 40), -std::numeric_limits<double>::infinity())
      << "fewer lost sites than a run";
}

TEST(NeighbourhoodTest, LargeCohortsNeedAFractionOfTheSites) {
  ASSERT_OK_AND_ASSIGN(NeighbourhoodParameters p, ChooseNeighbourhood(1000, 0.05, 0.05, 40, 30));
  EXPECT_FALSE(p.complete);
  EXPECT_LT(p.k, 150U) << "about a tenth of the cohort";
  ASSERT_OK_AND_ASSIGN(NeighbourhoodParameters more, ChooseNeighbourhood(1000, 0.1, 0.1, 40, 30));
  EXPECT_GT(more.k, p.k) << "more colluders and dropouts need larger neighbourhoods";
  // Ten sites, three colluding and three more dropping: no sparse graph will do.
  ASSERT_OK_AND_ASSIGN(NeighbourhoodParameters small, ChooseNeighbourhood(10, 0.3, 0.3, 40, 30));
  EXPECT_TRUE(small.complete);
  EXPECT_EQ(small.k, 9U);
  EXPECT_EQ(small.t, 7U);
  // The table of docs/secure-aggregation.md ("SecAgg+ for large cohorts").
  for (uint32_t n : {200U, 1000U, 10000U}) {
    for (double rate : {0.05, 0.1}) {
      ASSERT_OK_AND_ASSIGN(NeighbourhoodParameters q, ChooseNeighbourhood(n, rate, rate, 40, 30));
      std::printf("secagg+ parameters: n=%u gamma=delta=%.2f k=%u t=%u%s\n", n, rate, q.k, q.t,
                  q.complete ? " (complete)" : "");
    }
  }
}

TEST(NeighbourhoodTest, ASparseSetupHoldsForEveryListTheThresholdAllows) {
  // At n = 1,000 with 5 % colluding, the k that 1,000 listed sites need is not enough when
  // the coordinator lists only the threshold's 667: the 50 colluders are then 7.5 %.
  const uint32_t n = 1000;
  ASSERT_OK_AND_ASSIGN(NeighbourhoodParameters plain, ChooseNeighbourhood(n, 0.05, 0.05, 40, 30));
  v1::SecAggSparse naive;
  naive.set_neighbours(plain.k);
  naive.set_neighbour_threshold(NeighbourhoodThreshold(plain.k));
  naive.set_colluding_fraction(0.05);
  naive.set_dropout_fraction(0.05);
  naive.set_security_bits(40);
  naive.set_correctness_bits(30);
  EXPECT_OK(ValidateSparse(naive, n, n));
  EXPECT_THAT(ValidateSparse(naive, n, DefaultThreshold(n)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("below what 667 listed sites need")));
  // SparseSetup's k holds for every list from 667 to 1,000 sites.
  ASSERT_OK_AND_ASSIGN(std::optional<v1::SecAggSparse> sparse, SparseSetup(n, 0.05, 0.05, 40, 30));
  ASSERT_TRUE(sparse.has_value());
  EXPECT_GT(sparse->neighbours(), plain.k);
  EXPECT_EQ(sparse->neighbour_threshold(), NeighbourhoodThreshold(sparse->neighbours()));
  for (uint32_t listed = DefaultThreshold(n); listed <= n; ++listed) {
    ASSERT_OK(ValidateSparse(*sparse, n, listed)) << listed;
  }
  // Too few sites for any sparse graph: none.
  ASSERT_OK_AND_ASSIGN(std::optional<v1::SecAggSparse> none, SparseSetup(10, 0.3, 0.3, 40, 30));
  EXPECT_FALSE(none.has_value());
  // The table of docs/secure-aggregation.md ("SecAgg+ for large cohorts").
  for (uint32_t size : {200U, 1000U, 10000U}) {
    for (double rate : {0.05, 0.1}) {
      ASSERT_OK_AND_ASSIGN(std::optional<v1::SecAggSparse> q,
                           SparseSetup(size, rate, rate, 40, 30));
      if (q.has_value()) {
        std::printf("secagg+ setup: n=%u gamma=delta=%.2f k=%u t_k=%u smallest group %u\n", size,
                    rate, q->neighbours(), q->neighbour_threshold(),
                    SmallestLearnableGroup(q->neighbours()));
      } else {
        std::printf("secagg+ setup: n=%u gamma=delta=%.2f complete graph\n", size, rate);
      }
    }
  }
}

TEST(NeighbourhoodTest, OneSitesRowIsItsRowOfTheWholeGraph) {
  for (const auto& [n, k] :
       std::vector<std::pair<uint32_t, uint32_t>>{{8, 2}, {40, 6}, {101, 12}, {7, 6}, {9, 8}}) {
    ASSERT_OK_AND_ASSIGN(auto graph, Neighbourhoods("row seed", n, k));
    for (uint32_t u = 0; u < n; ++u) {
      ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> row, NeighboursOf("row seed", n, k, u));
      EXPECT_EQ(row, graph[u]) << "n " << n << " k " << k << " site " << u;
    }
  }
  EXPECT_THAT(NeighboursOf("row seed", 8, 2, 8),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position 8 of 8")));
  EXPECT_THAT(NeighboursOf("", 8, 2, 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NeighbourhoodTest, TheGraphByIdIsTheGraphByPosition) {
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e", "f", "g", "h"};
  ASSERT_OK_AND_ASSIGN(NeighbourGraph graph, NeighbourGraph::Create("seed", ids, 2));
  ASSERT_OK_AND_ASSIGN(auto positions, Neighbourhoods("seed", 8, 2));
  for (uint32_t u = 0; u < 8; ++u) {
    std::vector<std::string> want;
    for (uint32_t v : positions[u]) want.push_back(ids[v]);
    EXPECT_EQ(graph.Neighbours(ids[u]), want);
    for (uint32_t v = 0; v < 8; ++v) {
      const bool joined = std::binary_search(positions[u].begin(), positions[u].end(), v);
      EXPECT_EQ(graph.AreNeighbors(ids[u], ids[v]), joined) << u << " " << v;
    }
  }
  EXPECT_FALSE(graph.AreNeighbors("a", "unlisted"));
  EXPECT_TRUE(graph.Neighbours("unlisted").empty());
  EXPECT_THAT(NeighbourGraph::Create("seed", {"b", "a", "c"}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sorted")));
}

TEST(NeighbourhoodTest, SmallestLearnableGroupIsTKLessTheColludersANeighbourhoodMayHold) {
  // k = 6: t_k = 5, at most ceil(6/3) - 1 = 1 colluder: 5 - 1 = 4 shares from honest
  // sites, the owner's own among them.
  EXPECT_EQ(NeighbourhoodThreshold(6), 5U);
  EXPECT_EQ(SmallestLearnableGroup(6), 4U);
  EXPECT_EQ(SmallestLearnableGroup(106), 71U - 35U);
  for (uint32_t k = 2; k < 400; k += 2) {
    const uint32_t colluders = (k + 2) / 3 - 1;  // fewer than k/3
    EXPECT_LT(3 * colluders, k);
    EXPECT_EQ(SmallestLearnableGroup(k) + colluders, NeighbourhoodThreshold(k));
    EXPECT_GT(SmallestLearnableGroup(k), k / 3);
  }
}

// A site checks a sample of the consistency signatures whose size does not grow with n:
// about 116 at 40 bits and 5 % colluders, for every cohort large enough that the threshold
// exceeds it; the whole threshold below that. The sample bounds a site's acceptance of a
// split view by r^s <= 2^-40, r the largest share of valid signatures both groups can see.
TEST(NeighbourhoodTest, ConsistencySampleSizeIsConstantInNAndMeetsTheBound) {
  v1::SecAggSparse sparse;
  sparse.set_colluding_fraction(0.05);
  sparse.set_security_bits(40);
  EXPECT_EQ(ConsistencySampleSize(sparse, 1000, 1000, 667), 116U);
  for (uint32_t n : {200U, 400U, 1000U, 10000U, 100000U}) {
    const uint32_t t = DefaultThreshold(n);
    const uint32_t s = ConsistencySampleSize(sparse, n, n, t);
    EXPECT_GE(s, 112U) << n;
    EXPECT_LE(s, 117U) << n;
    const double r = (n + std::floor(0.05 * n)) / (2.0 * t);
    EXPECT_LE(s * std::log2(r), -40.0) << n;
    EXPECT_GT((s - 1) * std::log2(r), -40.0) << n << ": the least such sample";
  }
  // Small cohorts: the sample would reach the threshold, which is then checked whole.
  EXPECT_EQ(ConsistencySampleSize(sparse, 100, 100, DefaultThreshold(100)), DefaultThreshold(100));
  // More colluders, a larger sample; at 1/3 the two groups' valid signatures reach t.
  sparse.set_colluding_fraction(0.3);
  EXPECT_GT(ConsistencySampleSize(sparse, 1000, 1000, 667), 116U);
  sparse.set_colluding_fraction(0.34);
  EXPECT_EQ(ConsistencySampleSize(sparse, 1000, 1000, 667), 667U);
  // A list shorter than the invited raises nothing by itself: fewer listed, fewer valid.
  sparse.set_colluding_fraction(0.05);
  EXPECT_LE(ConsistencySampleSize(sparse, 1000, 700, 667),
            ConsistencySampleSize(sparse, 1000, 1000, 667));
}

TEST(NeighbourhoodTest, RefusesParametersOutOfRangeNamingThem) {
  EXPECT_THAT(ChooseNeighbourhood(2, 0.1, 0.1, 40, 30),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n must")));
  EXPECT_THAT(ChooseNeighbourhood(100, 0.34, 0.1, 40, 30),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gamma")));
  EXPECT_THAT(ChooseNeighbourhood(100, 0.1, 0.95, 40, 30),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta")));
  EXPECT_THAT(ChooseNeighbourhood(100, 0.1, 0.1, 0, 30),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sigma")));
  EXPECT_THAT(ChooseNeighbourhood(100, 0.1, 0.1, 40, 300),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eta")));
  EXPECT_THAT(Neighbourhoods("seed", 10, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("even k")));
  EXPECT_THAT(Neighbourhoods("", 10, 4), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NeighbourhoodTest, EverySiteHasKNeighboursSymmetricallyAndTheGraphIsConnected) {
  const uint32_t n = 101;
  const uint32_t k = 8;
  ASSERT_OK_AND_ASSIGN(auto graph, Neighbourhoods("session-id", n, k));
  ASSERT_EQ(graph.size(), n);
  for (uint32_t u = 0; u < n; ++u) {
    ASSERT_EQ(graph[u].size(), k) << u;
    EXPECT_TRUE(std::is_sorted(graph[u].begin(), graph[u].end()));
    EXPECT_EQ(std::set<uint32_t>(graph[u].begin(), graph[u].end()).size(), k) << "no repeats";
    for (uint32_t v : graph[u]) {
      EXPECT_NE(v, u) << "no self-loop";
      EXPECT_TRUE(std::binary_search(graph[v].begin(), graph[v].end(), u)) << u << "-" << v;
    }
  }
  std::vector<bool> seen(n, false);
  std::queue<uint32_t> next;
  next.push(0);
  seen[0] = true;
  uint32_t reached = 1;
  while (!next.empty()) {
    const uint32_t u = next.front();
    next.pop();
    for (uint32_t v : graph[u]) {
      if (!seen[v]) {
        seen[v] = true;
        ++reached;
        next.push(v);
      }
    }
  }
  EXPECT_EQ(reached, n);
}

TEST(NeighbourhoodTest, TheSeedDecidesTheGraphAndEveryPairIsEquallyLikely) {
  ASSERT_OK_AND_ASSIGN(auto a, Neighbourhoods("session-a", 40, 6));
  ASSERT_OK_AND_ASSIGN(auto again, Neighbourhoods("session-a", 40, 6));
  ASSERT_OK_AND_ASSIGN(auto b, Neighbourhoods("session-b", 40, 6));
  EXPECT_EQ(a, again) << "every site computes the same graph";
  EXPECT_NE(a, b);
  // Over many seeds, site 0 is joined to each other site with probability k / (n - 1).
  const uint32_t n = 20;
  const uint32_t k = 4;
  const int trials = 4000;
  std::vector<int> joined(n, 0);
  for (int s = 0; s < trials; ++s) {
    ASSERT_OK_AND_ASSIGN(auto graph, Neighbourhoods(absl::StrCat("seed-", s), n, k));
    for (uint32_t v : graph[0]) ++joined[v];
  }
  const double expected = static_cast<double>(trials) * k / (n - 1);  // ~842
  for (uint32_t v = 1; v < n; ++v) {
    EXPECT_NEAR(joined[v], expected, 5 * std::sqrt(expected)) << "site " << v;
  }
  EXPECT_EQ(joined[0], 0);
}

// A known answer: sites of different versions or machines must draw the same graph from
// the same session id, so the drawing (the SHA-256 stream, its byte order, Fisher-Yates
// with rejection sampling, the ring) must not change silently.
TEST(NeighbourhoodTest, TheDrawingIsFixedAcrossVersionsAndMachines) {
  ASSERT_OK_AND_ASSIGN(auto graph, Neighbourhoods("tessera known answer", 8, 2));
  std::string drawn;
  for (const std::vector<uint32_t>& neighbours : graph) {
    absl::StrAppend(&drawn, "{", neighbours[0], ",", neighbours[1], "}");
  }
  // One ring of 8: 0-3-7-1-2-4-6-5-0.
  EXPECT_EQ(drawn, "{3,5}{2,7}{1,4}{0,7}{2,6}{0,6}{4,5}{1,3}");
}

TEST(NeighbourhoodTest, KAtLeastNMinusOneIsTheCompleteGraph) {
  ASSERT_OK_AND_ASSIGN(auto graph, Neighbourhoods("seed", 5, 4));
  for (uint32_t u = 0; u < 5; ++u) EXPECT_EQ(graph[u].size(), 4U);
  ASSERT_OK_AND_ASSIGN(auto odd, Neighbourhoods("seed", 6, 5));
  for (uint32_t u = 0; u < 6; ++u) EXPECT_EQ(odd[u].size(), 5U);
}

}  // namespace
}  // namespace tessera::secagg
