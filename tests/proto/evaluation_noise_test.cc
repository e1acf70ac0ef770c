// Evaluation encoded for noise (privacy.evaluation_noise_multiplier): one row's bound on
// the encoded vector (the sensitivity the noise is scaled to), what the noise encoding
// leaves out, and how far noisy sums decode from the exact metrics.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/evaluation.h"
#include "proto/task.pb.h"
#include "tests/proto/evaluation_data.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto::evaluation_testing {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The sum of every site's vector encoded for noise, plus Gaussian noise of standard
// deviation `noise_stddev` per entry (the total the sites' shares add up to), decoded as
// noisy sums. noise_stddev 0 adds none but still decodes as noisy: the coarse bins' own
// error.
std::map<std::string, double> FederatedNoisy(const EvaluationLayout& layout, const Rows& all,
                                             const std::vector<std::vector<size_t>>& sites,
                                             size_t outputs, double label_mean, double label_stddev,
                                             double noise_stddev, std::mt19937_64* rng) {
  std::vector<double> summed(layout.length, 0.0);
  for (const auto& site : sites) {
    Rows rows = Select(all, site, outputs);
    EvaluationInput in = Input(rows, outputs, label_mean, label_stddev);
    in.for_noise = true;
    auto v = EncodeEvaluation(layout, in);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    for (size_t i = 0; i < summed.size(); ++i) summed[i] += (*v)[i];
  }
  if (noise_stddev > 0) {
    std::normal_distribution<double> normal(0.0, noise_stddev);
    for (double& v : summed) v += normal(*rng);
  }
  EvaluationDecodeOptions options;
  options.noise_stddev = noise_stddev > 0 ? noise_stddev : 1e-300;
  options.label_stddev = label_stddev;
  auto metrics = DecodeEvaluation(layout, summed, options);
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  if (!metrics.ok()) return {};
  return {metrics->begin(), metrics->end()};
}

double L2Distance(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum);
}

TEST(EvaluationNoiseTest, SensitivityPerLayout) {
  EXPECT_DOUBLE_EQ(kMaxRowLogLoss, -std::log(1e-15));
  auto delta = [](const v1::ModelSpec& model) {
    auto layout = MakeEvaluationLayout(model);
    EXPECT_TRUE(layout.ok());
    return EvaluationRecordSensitivity(*layout);
  };
  EXPECT_EQ(delta(Model(v1::ModelSpec::LOGISTIC_REGRESSION)), 2.0);
  EXPECT_EQ(delta(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 3)), std::sqrt(5.0));
  EXPECT_EQ(delta(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 10000)), std::sqrt(5.0));
  EXPECT_EQ(delta(Model(v1::ModelSpec::MLP, 2)), std::sqrt(6.0));
  EXPECT_EQ(delta(Model(v1::ModelSpec::LINEAR_REGRESSION)), 2.0);
  EXPECT_EQ(delta(Model(v1::ModelSpec::MLP, 0)), 2.0);
  EXPECT_EQ(delta(Model(v1::ModelSpec::COX_PH)), 2.0);

  v1::TaskSpec spec;
  *spec.mutable_model() = Model(v1::ModelSpec::COX_PH);
  EXPECT_FALSE(EvaluationNoiseOn(spec));
  spec.mutable_privacy()->set_noise_multiplier(1);
  EXPECT_FALSE(EvaluationNoiseOn(spec));  // privacy without evaluation noise: exact sums
  spec.mutable_privacy()->set_evaluation_noise_multiplier(1.5);
  EXPECT_TRUE(EvaluationNoiseOn(spec));
  ASSERT_OK_AND_ASSIGN(auto cox, MakeEvaluationLayout(spec.model()));
  EXPECT_EQ(EvaluationNoiseStddev(spec.privacy(), cox), 3.0);
  spec.mutable_privacy()->set_evaluation_noise_multiplier(0);
  EXPECT_EQ(EvaluationNoiseStddev(spec.privacy(), cox), 0.0);
}

// A random row for `layout`, often extreme: probabilities 0, 1, 1e-300, 1 - 1e-16, 0.5 and
// unnormalised multiclass rows; regression values up to +-1e308; any survival time and
// risk. Appended to `rows`.
void AddRandomRow(const EvaluationLayout& layout, std::mt19937_64& rng, Rows* rows) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto pick = [&](std::initializer_list<double> values) {
    std::uniform_int_distribution<size_t> index(0, values.size() - 1);
    return *(values.begin() + index(rng));
  };
  auto probability = [&] {
    return unit(rng) < 0.5 ? unit(rng) : pick({0.0, 1.0, 1e-300, 1 - 1e-16, 0.5, 1e-15, 1e-16});
  };
  auto real = [&] {
    return unit(rng) < 0.5 ? 10 * (unit(rng) - 0.5)
                           : pick({0.0, 1e308, -1e308, 1e6, -1e6, 4.0, -4.0, 1e-300});
  };
  switch (layout.kind) {
    case EvaluationKind::kBinary:
      rows->predictions.push_back(probability());
      rows->labels.push_back(unit(rng) < 0.5 ? 0 : 1);
      break;
    case EvaluationKind::kMulticlass: {
      const size_t k = layout.num_classes;
      const bool normalised = unit(rng) < 0.5;
      double sum = 0;
      std::vector<double> p(k);
      for (double& v : p) sum += (v = probability());
      for (double& v : p) rows->predictions.push_back(normalised && sum > 0 ? v / sum : v);
      rows->labels.push_back(static_cast<double>(
          std::uniform_int_distribution<size_t>(0, layout.num_classes - 1)(rng)));
      break;
    }
    case EvaluationKind::kRegression:
      rows->predictions.push_back(real());
      rows->labels.push_back(real());
      break;
    case EvaluationKind::kSurvival:
      rows->predictions.push_back(real());
      rows->labels.push_back(real());
      rows->events.push_back(unit(rng) < 0.5 ? 0 : 1);
      break;
  }
}

TEST(EvaluationNoiseTest, OneRowMovesTheVectorByAtMostTheSensitivity) {
  std::mt19937_64 rng(20240607);
  for (const v1::ModelSpec& model :
       {Model(v1::ModelSpec::LOGISTIC_REGRESSION), Model(v1::ModelSpec::MLP, 2),
        Model(v1::ModelSpec::SOFTMAX_REGRESSION, 3), Model(v1::ModelSpec::SOFTMAX_REGRESSION, 10),
        Model(v1::ModelSpec::LINEAR_REGRESSION), Model(v1::ModelSpec::COX_PH)}) {
    ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(model));
    const double delta = EvaluationRecordSensitivity(layout);
    const size_t outputs = layout.kind == EvaluationKind::kMulticlass ? layout.num_classes : 1;
    double largest = 0;
    for (int trial = 0; trial < 400; ++trial) {
      // A site's rows (0..20 of them), then the same site with one more row anywhere.
      Rows site;
      const size_t n = std::uniform_int_distribution<size_t>(0, 20)(rng);
      for (size_t r = 0; r <= n; ++r) AddRandomRow(layout, rng, &site);  // the last is the extra
      std::vector<size_t> without, with;
      const size_t extra = std::uniform_int_distribution<size_t>(0, n)(rng);
      for (size_t r = 0; r <= n; ++r) {
        with.push_back(r);
        if (r != extra) without.push_back(r);
      }
      const double mean = 100 * (std::uniform_real_distribution<double>(0, 1)(rng) - 0.5);
      const double sd = std::exp(std::uniform_real_distribution<double>(-5, 5)(rng));
      const Rows with_rows = Select(site, with, outputs);
      const Rows without_rows = Select(site, without, outputs);
      EvaluationInput a = Input(without_rows, outputs, mean, sd);
      EvaluationInput b = Input(with_rows, outputs, mean, sd);
      a.for_noise = b.for_noise = true;
      ASSERT_OK_AND_ASSIGN(std::vector<double> va, EncodeEvaluation(layout, a));
      ASSERT_OK_AND_ASSIGN(std::vector<double> vb, EncodeEvaluation(layout, b));
      const double moved = L2Distance(va, vb);
      ASSERT_LE(moved, delta * (1 + 1e-12))
          << "model " << model.ShortDebugString() << " trial " << trial;
      largest = std::max(largest, moved);
    }
    // The bound is nearly attained (not exactly for classifiers: a row with a large loss
    // is a wrong prediction, so it does not also count as correct).
    EXPECT_GE(largest, 0.85 * delta) << model.ShortDebugString();
    std::printf("[ measured ] %s: largest one-row L2 change %.6f, sensitivity %.6f\n",
                model.ShortDebugString().c_str(), largest, delta);
  }
}

TEST(EvaluationNoiseTest, TheExactEncodingIsNotBoundedByOneRow) {
  // Why the pair terms go: one positive row with the top score added to a site holding
  // 1000 negatives moves the exact AUC numerator by 1000.
  ASSERT_OK_AND_ASSIGN(auto layout,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  Rows site;
  for (int r = 0; r < 1000; ++r) {
    site.predictions.push_back(0.001 * r);
    site.labels.push_back(0);
  }
  Rows more = site;
  more.predictions.push_back(0.9999);
  more.labels.push_back(1);
  for (bool for_noise : {false, true}) {
    EvaluationInput a = Input(site, 1), b = Input(more, 1);
    a.for_noise = b.for_noise = for_noise;
    ASSERT_OK_AND_ASSIGN(std::vector<double> va, EncodeEvaluation(layout, a));
    ASSERT_OK_AND_ASSIGN(std::vector<double> vb, EncodeEvaluation(layout, b));
    if (for_noise) {
      EXPECT_LE(L2Distance(va, vb), EvaluationRecordSensitivity(layout));
    } else {
      EXPECT_GE(L2Distance(va, vb), 1000);
    }
  }
}

TEST(EvaluationNoiseTest, EncodingForNoiseSendsNoPairTermsAndFillsOnlyCoarseCells) {
  // Binary: one site with every breast cancer row.
  {
    const Binary b = BinaryWithLogisticScorer("breast_cancer_wisconsin");
    ASSERT_OK_AND_ASSIGN(auto layout,
                         MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
    EvaluationInput in = Input(b.all, 1);
    ASSERT_OK_AND_ASSIGN(std::vector<double> exact, EncodeEvaluation(layout, in));
    in.for_noise = true;
    ASSERT_OK_AND_ASSIGN(std::vector<double> noisy, EncodeEvaluation(layout, in));
    EXPECT_EQ(noisy[0], exact[0]);                           // n
    EXPECT_NEAR(noisy[1] * kMaxRowLogLoss, exact[1], 1e-9);  // log-loss, scaled
    EXPECT_EQ(noisy[2], exact[2]);                           // correct
    EXPECT_NE(exact[3], 0);                                  // exact numerator
    EXPECT_NE(exact[4], 0);                                  // binned numerator
    EXPECT_EQ(noisy[3], 0);
    EXPECT_EQ(noisy[4], 0);
    double mass = 0;
    const size_t histogram = kAucBins + 2;
    for (size_t i = 0; i < 4 * histogram; ++i) {
      const size_t b = i % histogram;
      const double v = noisy[5 + i];
      mass += v;
      if (v == 0) continue;
      // The coarse bins are counted at the histogram's first entries, no offsets.
      EXPECT_LT(b, static_cast<size_t>(2 * kAucNoiseLogitRange * kAucNoiseBinsPerUnit) + 2)
          << "histogram cell " << b;
      EXPECT_LT(i, 2 * histogram) << "offset entry " << b;
    }
    EXPECT_EQ(mass, exact[0]);
  }
  // Survival: no pair terms, rows only in the coarse cells.
  {
    const Survival s = RotterdamWithReferenceModel();
    ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
    EvaluationInput in = Input(s.all, 1, s.time_mean, s.time_sd);
    in.for_noise = true;
    ASSERT_OK_AND_ASSIGN(std::vector<double> noisy, EncodeEvaluation(layout, in));
    EXPECT_EQ(noisy[0], static_cast<double>(s.all.labels.size()));
    EXPECT_GT(noisy[1], 0);
    for (size_t i = 2; i < 6; ++i) EXPECT_EQ(noisy[i], 0) << i;
    // Coarse cells at the first entries of E and N; no positions.
    const size_t cells = kSurvivalTimeBins * kSurvivalRiskBins;
    double events = 0, rows = 0;
    for (size_t i = 0; i < 6 * cells; ++i) {
      const size_t grid = i / cells, c = i % cells;
      if (grid == 0) events += noisy[6 + i];
      if (grid == 1) rows += noisy[6 + i];
      if (noisy[6 + i] == 0) continue;
      EXPECT_LT(grid, 2u) << "position entry " << i;
      EXPECT_LT(c, kSurvivalNoiseTimeBins * kSurvivalNoiseRiskBins) << "cell " << c;
    }
    EXPECT_EQ(events, noisy[1]);
    EXPECT_EQ(rows, noisy[0]);
  }
  // Regression: no n * s; clipped terms in units of the clip.
  {
    ASSERT_OK_AND_ASSIGN(auto layout,
                         MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
    Rows rows;
    rows.labels = {10, 10, 10};
    rows.predictions = {10, 12, 1000};  // residuals 0, 1 and 495 sds (clipped to 4)
    EvaluationInput in = Input(rows, 1, 8, 2);
    in.for_noise = true;
    ASSERT_OK_AND_ASSIGN(std::vector<double> noisy, EncodeEvaluation(layout, in));
    const double b = kRegressionNoiseClip;
    EXPECT_THAT(noisy, ElementsAre(3, 0, (0 + 1 + b * b) / (b * b), 3 * 1 / b, 3 * 1 / (b * b)));
  }
}

// Metrics of the pooled rows against the decoded noisy sums: `draws` runs of noise of
// standard deviation sigma_e * Delta on the sum; returns, per metric, the root mean square
// error over the draws (noise 0: one draw, the coarse bins' and clipping's own error).
std::map<std::string, double> NoisyErrors(const EvaluationLayout& layout, const Rows& all,
                                          const std::vector<size_t>& rows, size_t outputs,
                                          double mean, double sd, double sigma_e, int draws,
                                          std::mt19937_64* rng) {
  const auto exact = Federated(layout, all, {rows}, outputs, mean, sd);
  std::map<std::string, double> errors;
  const auto sites = Sites(rows, 5);
  const int runs = sigma_e > 0 ? draws : 1;
  for (int d = 0; d < runs; ++d) {
    const auto noisy = FederatedNoisy(layout, all, sites, outputs, mean, sd,
                                      sigma_e * EvaluationRecordSensitivity(layout), rng);
    for (const auto& [name, value] : exact) {
      const double v = noisy.at(name);
      EXPECT_FALSE(std::isnan(v)) << name;
      if (name == "accuracy" || name == "auc" || name == "c_index" || name == "macro_f1") {
        EXPECT_GE(v, 0) << name;
        EXPECT_LE(v, 1) << name;
      }
      errors[name] += (v - value) * (v - value) / runs;
    }
  }
  for (auto& [name, e] : errors) e = std::sqrt(e);
  return errors;
}

void PrintErrors(const char* what, double sigma_e, const std::map<std::string, double>& errors) {
  std::printf("[ measured ] %s sigma_e=%g rms error:", what, sigma_e);
  for (const auto& [name, e] : errors) std::printf(" %s %.2e", name.c_str(), e);
  std::printf("\n");
}

// The metrics from noisy sums, on every row of each demo data set (5 sites): without noise
// (the coarse bins and the clipping alone), and with sigma_e = 1 and 5. The bounds are the
// measured errors (printed) with some margin; they show the metrics stay usable, not that
// they are exact. Measured rms errors, sigma_e = 0 / 1 / 5: smoking (10,000 rows) AUC
// 0.011 / 0.011 / 0.016; breast cancer (569) AUC 8e-5 / 0.010 / 0.050, accuracy 0 / 0.004 /
// 0.021; digits (1,797) accuracy 0 / 0.004 / 0.021, macro-F1 0 / 0.004 / 0.020; diabetes
// (442) r2 0 / 0.050 / 0.24; rotterdam (2,982) C 0.005 / 0.009 / 0.039.
TEST(EvaluationNoiseTest, NoisySumsDecodeToSensibleMetrics) {
  std::mt19937_64 rng(7);
  constexpr int kDraws = 40;
  struct Bound {
    double sigma_e;
    std::map<std::string, double> max_rms;
  };
  {
    const Binary b = BinaryWithLogisticScorer("smoking_nhis");
    ASSERT_OK_AND_ASSIGN(auto layout,
                         MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
    for (const Bound& bound : {Bound{0, {{"auc", 0.02}, {"accuracy", 1e-12}, {"log_loss", 1e-12}}},
                               Bound{1, {{"auc", 0.02}, {"accuracy", 1e-3}, {"log_loss", 0.02}}},
                               Bound{5, {{"auc", 0.03}, {"accuracy", 3e-3}, {"log_loss", 0.08}}}}) {
      auto e = NoisyErrors(layout, b.all, AllRows(b.all.labels.size()), 1, 0, 1, bound.sigma_e,
                           kDraws, &rng);
      PrintErrors("smoking_nhis", bound.sigma_e, e);
      for (const auto& [name, max] : bound.max_rms) EXPECT_LE(e[name], max) << name;
    }
  }
  {
    const Binary b = BinaryWithLogisticScorer("breast_cancer_wisconsin");
    ASSERT_OK_AND_ASSIGN(auto layout,
                         MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
    for (const Bound& bound :
         {Bound{0, {{"auc", 1e-3}}}, Bound{1, {{"auc", 0.02}, {"accuracy", 0.01}}},
          Bound{5, {{"auc", 0.1}, {"accuracy", 0.04}}}}) {
      auto e = NoisyErrors(layout, b.all, AllRows(b.all.labels.size()), 1, 0, 1, bound.sigma_e,
                           kDraws, &rng);
      PrintErrors("breast_cancer_wisconsin", bound.sigma_e, e);
      for (const auto& [name, max] : bound.max_rms) EXPECT_LE(e[name], max) << name;
    }
  }
  {
    std::vector<bool> test;
    const Rows all = DigitsWithCentroidScorer(&test);
    ASSERT_OK_AND_ASSIGN(auto layout,
                         MakeEvaluationLayout(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 10)));
    for (const Bound& bound : {Bound{0, {{"accuracy", 1e-12}, {"macro_f1", 1e-12}}},
                               Bound{1, {{"accuracy", 0.01}, {"macro_f1", 0.01}}},
                               Bound{5, {{"accuracy", 0.04}, {"macro_f1", 0.04}}}}) {
      auto e = NoisyErrors(layout, all, AllRows(all.labels.size()), 10, 0, 1, bound.sigma_e, kDraws,
                           &rng);
      PrintErrors("digits", bound.sigma_e, e);
      for (const auto& [name, max] : bound.max_rms) EXPECT_LE(e[name], max) << name;
    }
  }
  {
    const Regression reg = DiabetesWithLinearScorer();
    ASSERT_OK_AND_ASSIGN(auto layout,
                         MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
    for (const Bound& bound :
         {Bound{0, {{"rmse", 1e-9}, {"r2", 1e-9}}}, Bound{1, {{"rmse", 5}, {"r2", 0.1}}},
          Bound{5, {{"rmse", 20}, {"r2", 0.5}}}}) {
      auto e = NoisyErrors(layout, reg.all, AllRows(reg.all.labels.size()), 1, reg.mean, reg.sd,
                           bound.sigma_e, kDraws, &rng);
      PrintErrors("diabetes_progression", bound.sigma_e, e);
      for (const auto& [name, max] : bound.max_rms) EXPECT_LE(e[name], max) << name;
    }
  }
  {
    const Survival s = RotterdamWithReferenceModel();
    ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
    for (const Bound& bound : {Bound{0, {{"c_index", 0.01}}}, Bound{1, {{"c_index", 0.02}}},
                               Bound{5, {{"c_index", 0.08}}}}) {
      auto e = NoisyErrors(layout, s.all, AllRows(s.all.labels.size()), 1, s.time_mean, s.time_sd,
                           bound.sigma_e, kDraws, &rng);
      PrintErrors("rotterdam_survival", bound.sigma_e, e);
      for (const auto& [name, max] : bound.max_rms) EXPECT_LE(e[name], max) << name;
    }
  }
}

TEST(EvaluationNoiseTest, DecodingNoisySums) {
  ASSERT_OK_AND_ASSIGN(auto reg, MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
  EvaluationDecodeOptions options;
  options.noise_stddev = 2;
  options.label_stddev = 3;
  // A fractional row count is fine with noise; it is rounded for num_examples.
  ASSERT_OK_AND_ASSIGN(auto m,
                       DecodeEvaluation(reg, std::vector<double>{9.6, 0, 0.5, 0, 1}, options));
  EXPECT_EQ(m[0].first, "num_examples");
  EXPECT_EQ(m[0].second, 10);
  // loss = 0.5 * s^2 * B^2 * 0.5 / n, r2 = 1 - B^2 0.5 / (B^2 (1 - 0))
  EXPECT_NEAR(m[1].second, 0.5 * 9 * kRegressionNoiseClip * kRegressionNoiseClip * 0.5 / 10, 1e-12);
  EXPECT_NEAR(m[3].second, 0.5, 1e-12);
  // Noise may make the sums impossible: metrics stay in range.
  ASSERT_OK_AND_ASSIGN(auto neg,
                       DecodeEvaluation(reg, std::vector<double>{5, 0, -1, 0, -1}, options));
  EXPECT_EQ(neg[2].second, 0);             // rmse from a negative SSE: 0
  EXPECT_TRUE(std::isnan(neg[3].second));  // r2 without a positive SST
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{0.4, 0, 0, 0, 0}, options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{-30, 0, 0, 0, 0}, options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{5, 0, NAN, 0, 0}, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  options.label_stddev = 0;
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{5, 0, 0, 0, 0}, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label_stddev")));
  options.noise_stddev = -1;
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{5, 0, 0, 0, 0}, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise_stddev")));
  options.noise_stddev = NAN;
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{5, 0, 0, 0, 0}, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise_stddev")));

  // Binary: clamped accuracy and AUC; an empty noisy class gives NaN.
  ASSERT_OK_AND_ASSIGN(auto binary,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  std::vector<double> sums(binary.length, 0.0);
  sums[0] = 3;
  sums[1] = -0.5;  // negative log-loss sum
  sums[2] = 4;     // more correct than rows
  options.noise_stddev = 1;
  ASSERT_OK_AND_ASSIGN(auto b, DecodeEvaluation(binary, sums, options));
  std::map<std::string, double> bm(b.begin(), b.end());
  EXPECT_EQ(bm["log_loss"], 0);
  EXPECT_EQ(bm["accuracy"], 1);
  EXPECT_TRUE(std::isnan(bm["auc"]));

  // Multiclass: a class whose noisy counts stay within 4 noise sds of 0 is not averaged.
  ASSERT_OK_AND_ASSIGN(auto multi, MakeEvaluationLayout(Model(v1::ModelSpec::MLP, 3)));
  std::vector<double> mc(multi.length, 0.0);
  mc[0] = 100;
  // true counts, predicted counts, true positives for classes 0, 1, 2.
  const double counts[9] = {60, 40, 1.5, 50, 50, -2, 45, 35, 0.5};
  for (size_t i = 0; i < 9; ++i) mc[2 + i] = counts[i];
  ASSERT_OK_AND_ASSIGN(auto mm, DecodeEvaluation(multi, mc, options));
  std::map<std::string, double> mcm(mm.begin(), mm.end());
  EXPECT_NEAR(mcm["macro_f1"], (2 * 45 / 110.0 + 2 * 35 / 90.0) / 2, 1e-12);
  EXPECT_NEAR(mcm["accuracy"], 80.5 / 100, 1e-12);
}

}  // namespace
}  // namespace tessera::proto::evaluation_testing
