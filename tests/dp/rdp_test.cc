#include "dp/rdp.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::dp {
namespace {

using ::tessera::testing::StatusIs;

constexpr double kInf = std::numeric_limits<double>::infinity();

// The default grid, typed out again rather than taken from DefaultRdpOrders().
std::vector<double> GridByHand() {
  std::vector<double> g = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a <= 64; ++a) g.push_back(a);
  g.push_back(128);
  g.push_back(256);
  g.push_back(512);
  return g;
}

TEST(RdpOrdersTest, DefaultGridIsTheDocumentedOne) {
  EXPECT_EQ(DefaultRdpOrders(), GridByHand());
  EXPECT_EQ(RdpAccountant().orders(), GridByHand());
}

// ---- q = 1: the Gaussian mechanism, RDP(α) = α/(2σ²) exactly ----

TEST(GaussianMechanismTest, RdpIsAlphaOverTwoSigmaSquared) {
  for (double sigma : {0.5, 1.0, 3.7}) {
    for (double alpha : {1.25, 2.0, 7.5, 512.0}) {
      ASSERT_OK_AND_ASSIGN(double rdp, SampledGaussianRdp(sigma, 1.0, alpha));
      EXPECT_DOUBLE_EQ(rdp, alpha / (2 * sigma * sigma));
    }
  }
}

TEST(GaussianMechanismTest, EpsilonOnAnOrderOfTheGridByHand) {
  // σ = 1, 2 steps: RDP(α) = 2·α/2 = α. δ = e^-16: ε(α) = α + 16/(α − 1), minimised over
  // the reals at α − 1 = √16, i.e. α = 5 (on the grid): ε = 5 + 16/4 = 9. Neighbours:
  // ε(4.5) = 4.5 + 16/3.5 = 9.07, ε(6) = 6 + 16/5 = 9.2.
  RdpAccountant accountant;
  ASSERT_OK(accountant.AddGaussianSteps(1.0, 1.0, 2));
  ASSERT_OK_AND_ASSIGN(double eps, accountant.Epsilon(std::exp(-16.0)));
  EXPECT_NEAR(eps, 9.0, 1e-12);
  ASSERT_OK_AND_ASSIGN(double order, accountant.OptimalOrder(std::exp(-16.0)));
  EXPECT_EQ(order, 5.0);
  EXPECT_NEAR(*GaussianEpsilon(1.0, 1.0, 2, std::exp(-16.0)), 9.0, 1e-12);

  // The Balle et al. 2020 conversion at the same order α = 5, RDP 5:
  //   ε = 5 + log(4/5) − (log δ + log 5)/4 = 5 − 0.2231435513 − (−16 + 1.6094379124)/4
  //     = 5 − 0.2231435513 + 3.5976405219 = 8.3744969706
  ASSERT_OK_AND_ASSIGN(RdpAccountant one, RdpAccountant::WithOrders({5.0}));
  ASSERT_OK(one.AddGaussianSteps(1.0, 1.0, 2));
  EXPECT_NEAR(*one.Epsilon(std::exp(-16.0), RdpConversion::kBalle), 8.3744969706, 1e-9);
  EXPECT_NEAR(*one.Epsilon(std::exp(-16.0), RdpConversion::kMironov), 9.0, 1e-12);
}

TEST(GaussianMechanismTest, EpsilonMatchesTheClosedFormOverTheGrid) {
  // ε = min_α [steps·α/(2σ²) + log(1/δ)/(α − 1)], evaluated here directly on the grid; and
  // bounded below by the minimum over all real α > 1, reached at
  // α* = 1 + σ√(2 log(1/δ)/steps): steps/(2σ²) + √(2·steps·log(1/δ))/σ.
  struct Case {
    double sigma;
    int64_t steps;
    double delta;
  };
  for (const Case& c : {Case{0.8, 50, 1e-6}, Case{1.0, 1, 1e-5}, Case{2.5, 300, 1e-8},
                        Case{10.0, 1000, 1e-5}, Case{0.3, 10, 1e-3}}) {
    SCOPED_TRACE(::testing::Message() << c.sigma << " " << c.steps << " " << c.delta);
    double want = kInf;
    for (double a : GridByHand()) {
      want =
          std::min(want, c.steps * a / (2 * c.sigma * c.sigma) + std::log(1 / c.delta) / (a - 1));
    }
    ASSERT_OK_AND_ASSIGN(double eps, GaussianEpsilon(c.sigma, 1.0, c.steps, c.delta));
    EXPECT_NEAR(eps, want, 1e-12 * want);
    const double lower = c.steps / (2 * c.sigma * c.sigma) +
                         std::sqrt(2 * c.steps * std::log(1 / c.delta)) / c.sigma;
    EXPECT_GE(eps, lower * (1 - 1e-12));
  }
  // σ = 0.8, 50 steps, δ = 1e-6: ε = 50·1.5/1.28 + log(1e6)/0.5 = 58.59375 + 27.6310211159
  //   = 86.2247711159, at α = 1.5 (worked out by hand; the grid's smallest orders matter).
  EXPECT_NEAR(*GaussianEpsilon(0.8, 1.0, 50, 1e-6), 86.2247711159, 1e-9);
}

// ---- 0 < q < 1: the sampled Gaussian mechanism ----

TEST(SampledGaussianTest, IntegerOrdersMatchTheBinomialExpansionByHand) {
  // A_α = E_{z~N(0,σ²)}[((1−q) + q·e^{(2z−1)/(2σ²)})^α]; expanding the power and using
  // E[e^{k(2z−1)/(2σ²)}] = e^{(k²−k)/(2σ²)}:
  //   α = 2: A = (1−q)² + 2q(1−q) + q²e^{1/σ²} = 1 + q²(e^{1/σ²} − 1)
  //   α = 3: A = (1−q)³ + 3q(1−q)² + 3q²(1−q)e^{1/σ²} + q³e^{3/σ²}
  //            = 1 + 3q²(1−q)(e^{1/σ²} − 1) + q³(e^{3/σ²} − 1)
  // (the second forms subtract the binomial weights, which sum to 1, so nothing cancels).
  for (double q : {0.001, 0.01, 0.25, 0.9}) {
    for (double sigma : {0.7, 1.1, 5.0}) {
      SCOPED_TRACE(::testing::Message() << "q=" << q << " sigma=" << sigma);
      const double em1 = std::expm1(1 / (sigma * sigma));
      const double em3 = std::expm1(3 / (sigma * sigma));
      const double rdp2 = std::log1p(q * q * em1);
      const double rdp3 = std::log1p(3 * q * q * (1 - q) * em1 + q * q * q * em3) / 2;
      EXPECT_NEAR(*SampledGaussianRdp(sigma, q, 2), rdp2, 1e-13 * rdp2);
      EXPECT_NEAR(*SampledGaussianRdp(sigma, q, 3), rdp3, 1e-13 * rdp3);
    }
  }
}

// A_α − 1 by the trapezoid rule on the defining integral, written so that nothing
// cancels: (1−q) + q·e^w = 1 + q·expm1(w). Independent of the series the library sums.
double RdpByQuadrature(double sigma, double q, double alpha) {
  const double lo = -40 * sigma - 1;
  const double hi = alpha + 40 * sigma + 1;
  const double h = sigma / 400;
  double sum = 0;
  for (double z = lo; z <= hi; z += h) {
    const double w = (2 * z - 1) / (2 * sigma * sigma);
    const double density =
        std::exp(-z * z / (2 * sigma * sigma)) / (sigma * std::sqrt(2 * std::numbers::pi));
    sum += density * std::expm1(alpha * std::log1p(q * std::expm1(w)));
  }
  return std::log1p(sum * h) / (alpha - 1);
}

TEST(SampledGaussianTest, FractionalAndIntegerOrdersMatchNumericalIntegration) {
  struct Case {
    double sigma, q, alpha;
  };
  for (const Case& c : {Case{0.8, 0.01, 1.5}, Case{1.5, 0.1, 2.5}, Case{4.0, 0.5, 1.25},
                        Case{0.8, 0.1, 4.5}, Case{2.0, 0.3, 3.75}, Case{1.12, 256.0 / 60000, 1.75},
                        Case{1.12, 256.0 / 60000, 9}, Case{0.9, 0.05, 12}, Case{3.0, 0.9, 2.25}}) {
    SCOPED_TRACE(::testing::Message() << c.sigma << " " << c.q << " " << c.alpha);
    ASSERT_OK_AND_ASSIGN(double rdp, SampledGaussianRdp(c.sigma, c.q, c.alpha));
    const double want = RdpByQuadrature(c.sigma, c.q, c.alpha);
    EXPECT_NEAR(rdp, want, 1e-8 * want);
  }
  // Spot values from a 30-digit mpmath quadrature of the same integral:
  // (relative 1e-9: log A is summed directly, and A is close to 1 for small q)
  EXPECT_NEAR(*SampledGaussianRdp(0.8, 0.01, 1.5), 2.73310700040e-4, 1e-9 * 2.7e-4);
  EXPECT_NEAR(*SampledGaussianRdp(0.8, 0.1, 4.5), 0.646707614642, 1e-9 * 0.65);
  EXPECT_NEAR(*SampledGaussianRdp(2.0, 0.3, 3.75), 0.0528660979349, 1e-9 * 0.053);
}

TEST(SampledGaussianTest, EdgesOfTheSamplingRate) {
  EXPECT_EQ(*SampledGaussianRdp(1.0, 0.0, 2.5), 0.0);
  // As q → 1 the sampled mechanism becomes the plain one.
  for (double alpha : {2.0, 5.0, 32.0}) {
    EXPECT_NEAR(*SampledGaussianRdp(1.3, 1 - 1e-12, alpha), alpha / (2 * 1.3 * 1.3), 1e-9);
  }
  // Sampling only ever helps.
  for (double alpha : GridByHand()) {
    EXPECT_LE(*SampledGaussianRdp(1.1, 0.5, alpha), alpha / (2 * 1.1 * 1.1) * (1 + 1e-12));
  }
}

// Published figure: tensorflow_privacy's compute_dp_sgd_privacy.py (docstring of
// tensorflow/privacy, privacy/analysis/compute_dp_sgd_privacy.py, 2019):
//   compute_dp_sgd_privacy --N=60000 --batch_size=256 --noise_multiplier=1.12 --epochs=60
//   --delta=1e-5  →  "DP-SGD with these parameters satisfies (2.92, 1e-5)-DP"
// (the same row is in tutorials/README.md: MNIST, noise multiplier 1.12, 60 epochs,
// eps 2.92). That script uses q = 256/60000, steps = ceil(60·60000/256) = 14063, the
// orders 1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, 5..63, 128, 256, 512 and the
// ε = RDP + log(1/δ)/(α − 1) conversion (our kMironov), and prints 3 significant digits:
// so ε ∈ [2.915, 2.925). An independent 30-digit mpmath computation (integer orders by the
// binomial sum, fractional ones by quadrature) gives 2.92235485047 at α = 9.
// (The often-quoted σ = 1.1 gives 3.009 on the same grid.)
TEST(SampledGaussianTest, MatchesThePublishedTensorFlowPrivacyMnistFigure) {
  const double q = 256.0 / 60000;
  const int64_t steps = 14063;
  ASSERT_OK_AND_ASSIGN(double eps, GaussianEpsilon(1.12, q, steps, 1e-5));
  EXPECT_NEAR(eps, 2.92, 0.005);
  EXPECT_NEAR(eps, 2.92235485047, 1e-8);
  RdpAccountant accountant;
  ASSERT_OK(accountant.AddGaussianSteps(1.12, q, steps));
  EXPECT_EQ(*accountant.OptimalOrder(1e-5), 9.0);
  // The tighter conversion, same RDP: 2.52155886181 at α = 8 (mpmath, as above).
  EXPECT_NEAR(*accountant.Epsilon(1e-5, RdpConversion::kBalle), 2.52155886181, 1e-8);
  EXPECT_NEAR(*GaussianEpsilon(1.1, q, steps, 1e-5), 3.00921117300, 1e-8);
}

// ---- Properties ----

TEST(RdpAccountantTest, EpsilonGrowsWithStepsAndSamplingAndShrinksWithNoise) {
  for (double q : {1.0, 0.01}) {
    SCOPED_TRACE(q);
    double last = 0;
    for (int64_t steps : {1, 2, 10, 100, 1000}) {
      ASSERT_OK_AND_ASSIGN(double eps, GaussianEpsilon(1.5, q, steps, 1e-5));
      EXPECT_GT(eps, last);
      last = eps;
    }
    last = kInf;
    for (double sigma : {0.6, 0.9, 1.5, 3.0, 10.0}) {
      ASSERT_OK_AND_ASSIGN(double eps, GaussianEpsilon(sigma, q, 100, 1e-5));
      EXPECT_LT(eps, last);
      last = eps;
    }
  }
  double last = 0;
  for (double q : {0.001, 0.01, 0.1, 0.5, 1.0}) {
    ASSERT_OK_AND_ASSIGN(double eps, GaussianEpsilon(1.0, q, 100, 1e-5));
    EXPECT_GT(eps, last);
    last = eps;
  }
  // Larger δ, smaller ε; and RDP is non-decreasing in the order.
  EXPECT_LT(*GaussianEpsilon(1.0, 0.1, 100, 1e-3), *GaussianEpsilon(1.0, 0.1, 100, 1e-7));
  RdpAccountant a;
  ASSERT_OK(a.AddGaussianSteps(0.9, 0.02, 5));
  for (size_t i = 1; i < a.rdp().size(); ++i) EXPECT_GE(a.rdp()[i], a.rdp()[i - 1]);
}

TEST(RdpAccountantTest, CompositionAddsRdp) {
  RdpAccountant split;
  ASSERT_OK(split.AddGaussianSteps(1.3, 0.05, 30));
  ASSERT_OK(split.AddGaussianSteps(1.3, 0.05, 70));
  RdpAccountant whole;
  ASSERT_OK(whole.AddGaussianSteps(1.3, 0.05, 100));
  for (size_t i = 0; i < whole.rdp().size(); ++i) {
    EXPECT_NEAR(split.rdp()[i], whole.rdp()[i], 1e-12 * whole.rdp()[i]);
  }
  // Different mechanisms: per-order sums. (2 rounds at q = 1, σ = 2: 2α/8 = α/4.)
  RdpAccountant mixed;
  ASSERT_OK(mixed.AddGaussianSteps(2.0, 1.0, 2));
  ASSERT_OK(mixed.AddGaussianSteps(1.3, 0.05, 100));
  for (size_t i = 0; i < mixed.rdp().size(); ++i) {
    EXPECT_NEAR(mixed.rdp()[i], whole.rdp()[i] + mixed.orders()[i] / 4, 1e-9);
  }
  // Nothing added: ε is the δ term alone, log(1/δ)/511 at α = 512.
  EXPECT_NEAR(*RdpAccountant().Epsilon(1e-5), std::log(1e5) / 511, 1e-15);
  // kBalle: log(511/512) − (log 1e-5 + log 512)/511 = −0.0019550348 + 0.0103221151
  //   = 0.0083670803, also at α = 512.
  EXPECT_NEAR(*RdpAccountant().Epsilon(1e-5, RdpConversion::kBalle), 0.0083670803, 1e-10);
  // Zero steps change nothing.
  RdpAccountant zero;
  ASSERT_OK(zero.AddGaussianSteps(1.0, 0.5, 0));
  EXPECT_EQ(zero.rdp(), RdpAccountant().rdp());
}

TEST(RdpAccountantTest, BalleConversionIsNeverLarger) {
  for (double sigma : {0.5, 1.0, 4.0}) {
    for (double q : {0.01, 1.0}) {
      RdpAccountant a;
      ASSERT_OK(a.AddGaussianSteps(sigma, q, 200));
      for (double delta : {1e-3, 1e-6, 1e-10}) {
        EXPECT_LE(*a.Epsilon(delta, RdpConversion::kBalle), *a.Epsilon(delta));
      }
    }
  }
}

TEST(RdpAccountantTest, RefusesBadArguments) {
  RdpAccountant a;
  const std::vector<double> before = a.rdp();
  for (double sigma : {0.0, -1.0, kInf, std::nan("")}) {
    EXPECT_THAT(a.AddGaussianSteps(sigma, 0.5, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  for (double q : {-0.1, 1.1, std::nan("")}) {
    EXPECT_THAT(a.AddGaussianSteps(1.0, q, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(a.AddGaussianSteps(1.0, 0.5, -1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(a.rdp(), before);
  for (double delta : {0.0, 1.0, -1e-5, 2.0, std::nan("")}) {
    EXPECT_THAT(a.Epsilon(delta), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(a.OptimalOrder(delta), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(RdpAccountant::WithOrders({}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RdpAccountant::WithOrders({2, 1.0}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RdpAccountant::WithOrders({2, 20000}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SampledGaussianRdp(1.0, 0.5, 0.5), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(RdpAccountant custom, RdpAccountant::WithOrders({8, 2, 2, 1.5}));
  EXPECT_EQ(custom.orders(), (std::vector<double>{1.5, 2, 8}));
}

// ---- State ----

TEST(RdpAccountantTest, StateRoundTripsExactly) {
  RdpAccountant a;
  ASSERT_OK(a.AddGaussianSteps(1.1, 0.01, 1234));
  ASSERT_OK(a.AddGaussianSteps(3.0, 1.0, 7));
  const std::string state = a.SaveState();
  RdpAccountant b;
  ASSERT_OK(b.RestoreState(state));
  EXPECT_EQ(b.rdp(), a.rdp());
  EXPECT_EQ(b.SaveState(), state);
  // Continuing after a restore is the same as never stopping.
  ASSERT_OK(a.AddGaussianSteps(2.0, 1.0, 1));
  ASSERT_OK(b.AddGaussianSteps(2.0, 1.0, 1));
  EXPECT_EQ(b.rdp(), a.rdp());
  EXPECT_EQ(*b.Epsilon(1e-6), *a.Epsilon(1e-6));
  // "" is nothing spent.
  ASSERT_OK(b.RestoreState(""));
  EXPECT_EQ(b.rdp(), RdpAccountant().rdp());
}

TEST(RdpAccountantTest, RefusesBadStateAndKeepsItsOwn) {
  RdpAccountant a;
  ASSERT_OK(a.AddGaussianSteps(1.1, 0.01, 100));
  const std::string good = a.SaveState();
  const std::vector<double> kept = a.rdp();

  std::vector<std::string> bad;
  for (size_t n = 1; n < good.size(); n += 7) bad.push_back(good.substr(0, n));
  bad.push_back(good.substr(0, good.size() - 1));
  bad.push_back(good + "x");
  std::string s = good;
  s[1] ^= 1;  // magic
  bad.push_back(s);
  s = good;
  s[4] = 9;  // version
  bad.push_back(s);
  ASSERT_OK_AND_ASSIGN(RdpAccountant other_orders, RdpAccountant::WithOrders({2, 3, 4}));
  bad.push_back(other_orders.SaveState());
  // Same count, one order changed: header 9 bytes, then (order, rdp) pairs of 8 bytes.
  auto with_double = [&](size_t offset, double value) {
    std::string st = good;
    const uint64_t bits = std::bit_cast<uint64_t>(value);
    for (int b = 0; b < 8; ++b) st[offset + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
    return st;
  };
  bad.push_back(with_double(9, 1.3));                    // first order 1.25 → 1.3
  bad.push_back(with_double(9 + 8, -0.5));               // negative RDP
  bad.push_back(with_double(9 + 16 + 8, std::nan("")));  // NaN RDP
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_THAT(a.RestoreState(bad[i]), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(a.rdp(), kept);
  // +inf is a legitimate RDP value.
  ASSERT_OK(a.RestoreState(with_double(9 + 8, kInf)));
  EXPECT_EQ(a.rdp()[0], kInf);
}

// ---- A task's ledger: releases with their own noise multipliers ----

TEST(ReleaseLedgerTest, NoReleaseSpendsNothing) {
  ASSERT_OK_AND_ASSIGN(double eps, EpsilonOfReleases({}, 1e-5));
  EXPECT_EQ(eps, 0.0);
  ASSERT_OK_AND_ASSIGN(NextReleaseEpsilon next, EpsilonAfterNextRelease({}, 1.5, 0, 1e-5));
  EXPECT_EQ(next.now, 0.0);
  EXPECT_EQ(next.evaluation, 0.0);  // exact evaluation sums are not charged
  EXPECT_EQ(next.model_update, *GaussianEpsilon(1.5, 1.0, 1, 1e-5));
  EXPECT_EQ(next.round, next.model_update);
}

TEST(ReleaseLedgerTest, KReleasesOfOneSigmaAreKGaussianSteps) {
  for (double sigma : {0.7, 1.5, 4.0}) {
    for (int k : {1, 2, 6, 30}) {
      for (double delta : {1e-5, 1e-8}) {
        const std::vector<double> ledger(static_cast<size_t>(k), sigma);
        ASSERT_OK_AND_ASSIGN(double eps, EpsilonOfReleases(ledger, delta));
        ASSERT_OK_AND_ASSIGN(double steps, GaussianEpsilon(sigma, 1.0, k, delta));
        EXPECT_NEAR(eps, steps, 1e-12 * steps) << sigma << " x " << k << ", delta " << delta;
      }
    }
  }
}

TEST(ReleaseLedgerTest, MixedSigmasAddTheirRdpByHand) {
  // σ = 1 and σ = 2: RDP(α) = α/2 + α/8 = 0.625 α. δ = e^-10: ε(α) = 0.625 α + 10/(α − 1),
  // minimised over the reals at α − 1 = √(10/0.625) = 4, α = 5 (on the grid):
  // ε = 3.125 + 2.5 = 5.625. Neighbours: ε(4.5) = 2.8125 + 10/3.5 = 5.670,
  // ε(6) = 3.75 + 2 = 5.75.
  const std::vector<double> ledger = {1.0, 2.0};
  ASSERT_OK_AND_ASSIGN(double eps, EpsilonOfReleases(ledger, std::exp(-10.0)));
  EXPECT_NEAR(eps, 5.625, 1e-12);
  // The order does not matter, and any mix equals one release at the σ whose 1/σ² is the
  // sum of theirs.
  const std::vector<double> mixed = {1.5, 5.0, 1.5, 5.0, 5.0, 0.9};
  double inverse_variance = 0;
  for (double s : mixed) inverse_variance += 1 / (s * s);
  const double equivalent = 1 / std::sqrt(inverse_variance);
  ASSERT_OK_AND_ASSIGN(double got, EpsilonOfReleases(mixed, 1e-5));
  ASSERT_OK_AND_ASSIGN(double one, GaussianEpsilon(equivalent, 1.0, 1, 1e-5));
  EXPECT_NEAR(got, one, 1e-12 * one);
  const std::vector<double> reversed(mixed.rbegin(), mixed.rend());
  EXPECT_NEAR(*EpsilonOfReleases(reversed, 1e-5), got, 1e-12 * got);
  // By hand over the grid, independently of the accountant.
  double best = std::numeric_limits<double>::infinity();
  for (double alpha : GridByHand()) {
    best = std::min(best, alpha * inverse_variance / 2 + std::log(1e5) / (alpha - 1));
  }
  EXPECT_NEAR(got, best, 1e-12 * best);
}

TEST(ReleaseLedgerTest, NextReleaseOfEachKind) {
  // Three rounds charged, the second one twice (a failed attempt after its charge), each
  // with an evaluation at σ_e = 5.
  const double sigma = 1.5, sigma_e = 5, delta = 1e-5;
  const std::vector<double> ledger = {sigma, sigma_e, sigma, sigma, sigma_e, sigma, sigma_e};
  ASSERT_OK_AND_ASSIGN(NextReleaseEpsilon next,
                       EpsilonAfterNextRelease(ledger, sigma, sigma_e, delta));
  auto with = [&](std::vector<double> more) {
    std::vector<double> all = ledger;
    all.insert(all.end(), more.begin(), more.end());
    return *EpsilonOfReleases(all, delta);
  };
  EXPECT_EQ(next.now, *EpsilonOfReleases(ledger, delta));
  EXPECT_NEAR(next.model_update, with({sigma}), 1e-12 * next.model_update);
  EXPECT_NEAR(next.evaluation, with({sigma_e}), 1e-12 * next.evaluation);
  EXPECT_NEAR(next.round, with({sigma, sigma_e}), 1e-12 * next.round);
  EXPECT_LT(next.now, next.evaluation);
  EXPECT_LT(next.evaluation, next.model_update);  // σ_e > σ: an evaluation costs less
  EXPECT_LT(next.model_update, next.round);
  // Evaluation noise adds to the training rounds' ε: 4 update releases alone cost less.
  EXPECT_LT(*GaussianEpsilon(sigma, 1.0, 4, delta), next.now);

  // Exact evaluation sums (σ_e = 0) are not charged.
  ASSERT_OK_AND_ASSIGN(NextReleaseEpsilon exact, EpsilonAfterNextRelease(ledger, sigma, 0, delta));
  EXPECT_EQ(exact.evaluation, exact.now);
  EXPECT_EQ(exact.round, exact.model_update);
}

TEST(ReleaseLedgerTest, RefusesBadArguments) {
  const std::vector<double> ok = {1.0, 2.0};
  for (double bad : {0.0, -1.0, kInf, std::nan("")}) {
    const std::vector<double> ledger = {1.0, bad};
    EXPECT_THAT(EpsilonOfReleases(ledger, 1e-5),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("release 1")))
        << bad;
    EXPECT_THAT(EpsilonAfterNextRelease(ledger, 1, 1, 1e-5),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
    EXPECT_THAT(EpsilonAfterNextRelease(ok, bad, 1, 1e-5),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  for (double bad : {-1.0, kInf, std::nan("")}) {
    EXPECT_THAT(EpsilonAfterNextRelease(ok, 1, bad, 1e-5),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  for (double delta : {0.0, 1.0, -1e-5, std::nan("")}) {
    EXPECT_THAT(EpsilonOfReleases(ok, delta), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(EpsilonOfReleases({}, delta), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(EpsilonAfterNextRelease(ok, 1, 1, delta),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace tessera::dp
