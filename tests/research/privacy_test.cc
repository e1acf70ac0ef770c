// Differential privacy: the RDP accountant's epsilon for the Gaussian mechanism with every
// site in every round (sampling rate 1) against an independent calculation, and a DP
// simulation of deploy/examples/breast_cancer_dp.textproto that reports that epsilon after
// every round and stops when the budget is spent.
//
// The independent calculation (Mironov 2017): one round of the Gaussian mechanism with
// noise multiplier sigma has RDP alpha / (2 sigma^2) at every order alpha (Prop. 7); r
// rounds compose to r alpha / (2 sigma^2) (Prop. 1); and an (alpha, rho)-RDP mechanism is
// (rho + log(1/delta) / (alpha - 1), delta)-DP (Prop. 3), minimised here over the orders
// of tensorflow_privacy's grid plus 64, written out below.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/privacy_accountant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::HasSubstr;

std::vector<double> Orders() {
  std::vector<double> orders = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a <= 64; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0}) orders.push_back(a);
  return orders;
}

double IndependentEpsilon(double sigma, int rounds, double delta) {
  double best = std::numeric_limits<double>::infinity();
  for (double alpha : Orders()) {
    const double rdp = rounds * alpha / (2 * sigma * sigma);
    best = std::min(best, rdp + std::log(1 / delta) / (alpha - 1));
  }
  return best;
}

TEST(PrivacyAccountantTest, GaussianEpsilonMatchesIndependentCalculation) {
  EXPECT_EQ(coordinator::DefaultRdpOrders(), Orders());
  for (double sigma : {0.5, 1.1, 1.5, 2.0, 4.0, 10.0}) {
    for (int rounds : {1, 3, 6, 7, 30, 100, 1000}) {
      for (double delta : {1e-5, 1e-8}) {
        const double expected = IndependentEpsilon(sigma, rounds, delta);
        ASSERT_OK_AND_ASSIGN(double got, coordinator::GaussianEpsilon(sigma, 1.0, rounds, delta));
        EXPECT_NEAR(got, expected, 1e-12 * expected)
            << "sigma " << sigma << ", " << rounds << " rounds, delta " << delta;
        // Sanity of the calculation itself: the grid's minimum is at least the
        // continuous one, r/(2 s^2) + 2 sqrt(r log(1/delta) / (2 s^2)) at
        // alpha* = 1 + sqrt(2 s^2 log(1/delta) / r), and close to it when alpha* lies
        // where the grid is dense.
        const double c = rounds / (2 * sigma * sigma);
        const double continuous = c + 2 * std::sqrt(c * std::log(1 / delta));
        EXPECT_GE(expected, continuous - 1e-12);
        const double alpha_star = 1 + std::sqrt(std::log(1 / delta) / c);
        if (alpha_star >= 2 && alpha_star <= 64) {
          EXPECT_LE(expected, continuous * 1.01) << "sigma " << sigma << ", " << rounds;
        }
      }
    }
  }
  // One value by hand (the example's setting): sigma 1.5, 6 rounds, delta 1e-5, RDP
  // 6 alpha / 4.5 and log(1/delta) = 11.5129:
  //   alpha = 3.5: 4.6667 + 4.6052 = 9.2718
  //   alpha = 4:   5.3333 + 3.8376 = 9.1710   (the minimum)
  //   alpha = 4.5: 6.0000 + 3.2894 = 9.2894
  ASSERT_OK_AND_ASSIGN(double hand, coordinator::GaussianEpsilon(1.5, 1.0, 6, 1e-5));
  EXPECT_NEAR(hand, 6 * 4 / 4.5 + std::log(1e5) / 3, 1e-12);
}

TEST(PrivacySimulationTest, BreastCancerDpReportsEpsilonEachRoundAndStopsAtBudget) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample("breast_cancer_dp"));
  ASSERT_TRUE(spec.has_privacy());
  const v1::PrivacySpec& p = spec.privacy();
  // The example is tuned so that the budget binds before spec.rounds.
  int affordable = 0;
  while (IndependentEpsilon(p.noise_multiplier(), affordable + 1, p.delta()) <=
         p.epsilon_budget()) {
    ++affordable;
  }
  ASSERT_GE(affordable, 1);
  ASSERT_LT(static_cast<uint32_t>(affordable), spec.rounds()) << "the budget does not bind";

  testing::TempDir temp;
  ASSERT_OK_AND_ASSIGN(simulation::SimulationResult result,
                       Simulate(spec, "breast_cancer_wisconsin", 5, "iid", temp.path()));
  Report("breast_cancer_dp", result);
  EXPECT_EQ(result.task.state(), v1::TASK_COMPLETED);
  EXPECT_THAT(result.task.state_reason(), HasSubstr("privacy budget spent"));
  EXPECT_THAT(result.task.state_reason(),
              HasSubstr(absl::StrCat("round ", affordable + 1, " would reach epsilon")));
  EXPECT_EQ(result.task.last_committed_round(), affordable);
  int trained = 0;
  for (const v1::RoundRecord& r : result.rounds) {
    if (r.round() == 0) continue;
    ++trained;
    const std::map<std::string, double> m = Metrics(r);
    ASSERT_EQ(m.count("epsilon"), 1u) << "round " << r.round();
    ASSERT_EQ(m.count("delta"), 1u) << "round " << r.round();
    const double expected = IndependentEpsilon(p.noise_multiplier(), r.round(), p.delta());
    EXPECT_NEAR(m.at("epsilon"), expected, 1e-12 * expected) << "round " << r.round();
    EXPECT_LE(m.at("epsilon"), p.epsilon_budget()) << "round " << r.round();
    EXPECT_EQ(m.at("delta"), p.delta());
    EXPECT_EQ(r.fit_participants_size(), 5) << "round " << r.round();
  }
  EXPECT_EQ(trained, affordable);
  // The noise is real (from the sites' CSPRNG, so this run is not reproducible); the model
  // still has to have learned something: without noise the AUC is 0.993.
  EXPECT_GT(result.final_metrics["auc"], 0.8);
}

}  // namespace
}  // namespace tessera::research
