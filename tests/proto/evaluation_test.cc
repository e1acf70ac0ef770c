#include "proto/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/proto/evaluation_data.h"
#include "tests/testing/status_matchers.h"

namespace tessera::proto::evaluation_testing {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- Layouts ----

TEST(EvaluationLayoutTest, KindsAndLengths) {
  ASSERT_OK_AND_ASSIGN(auto binary,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  EXPECT_EQ(binary.kind, EvaluationKind::kBinary);
  EXPECT_EQ(binary.length, 3 + kAucBlockLength);

  ASSERT_OK_AND_ASSIGN(auto softmax,
                       MakeEvaluationLayout(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 10)));
  EXPECT_EQ(softmax.kind, EvaluationKind::kMulticlass);
  EXPECT_EQ(softmax.num_classes, 10u);
  EXPECT_EQ(softmax.length, 2u + 30u);

  ASSERT_OK_AND_ASSIGN(auto mlp2, MakeEvaluationLayout(Model(v1::ModelSpec::MLP, 2)));
  EXPECT_EQ(mlp2.kind, EvaluationKind::kMulticlass);
  EXPECT_EQ(mlp2.length, 2 + 6 + kAucBlockLength);

  for (uint32_t k : {0u, 1u}) {
    ASSERT_OK_AND_ASSIGN(auto mlp_reg, MakeEvaluationLayout(Model(v1::ModelSpec::MLP, k)));
    EXPECT_EQ(mlp_reg.kind, EvaluationKind::kRegression);
    EXPECT_EQ(mlp_reg.length, 5u);
  }
  ASSERT_OK_AND_ASSIGN(auto linear, MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
  EXPECT_EQ(linear.kind, EvaluationKind::kRegression);

  ASSERT_OK_AND_ASSIGN(auto cox, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
  EXPECT_EQ(cox.kind, EvaluationKind::kSurvival);
  EXPECT_EQ(cox.length, 6 + 6 * kSurvivalTimeBins * kSurvivalRiskBins);
  EXPECT_EQ(cox.length, 4806u);
  EXPECT_LE(cox.length, 20010u);

  EXPECT_THAT(MakeEvaluationLayout(Model(v1::ModelSpec::KIND_UNSPECIFIED)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeEvaluationLayout(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_classes")));
  EXPECT_THAT(MakeEvaluationLayout(Model(v1::ModelSpec::MLP, 10001)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_classes")));
}

TEST(EvaluationLayoutTest, MetricNamesInOrder) {
  auto names = [](const v1::ModelSpec& model, const EvaluationInput& in) {
    std::vector<std::string> out;
    auto layout = MakeEvaluationLayout(model);
    EXPECT_TRUE(layout.ok());
    auto v = EncodeEvaluation(*layout, in);
    EXPECT_TRUE(v.ok()) << v.status();
    auto m = DecodeEvaluation(*layout, *v);
    EXPECT_TRUE(m.ok()) << m.status();
    for (const auto& [name, value] : *m) out.push_back(name);
    return out;
  };
  const std::vector<double> p = {0.2, 0.9}, y = {0, 1}, p2 = {0.8, 0.2, 0.1, 0.9},
                            p3 = {0.8, 0.1, 0.1, 0.1, 0.1, 0.8}, ev = {1, 0};
  EvaluationInput in;
  in.predictions = p;
  in.labels = y;
  EXPECT_THAT(names(Model(v1::ModelSpec::LOGISTIC_REGRESSION), in),
              ElementsAre("num_examples", "loss", "log_loss", "accuracy", "auc"));
  EXPECT_THAT(names(Model(v1::ModelSpec::LINEAR_REGRESSION), in),
              ElementsAre("num_examples", "loss", "rmse", "r2"));
  in.events = ev;
  EXPECT_THAT(names(Model(v1::ModelSpec::COX_PH), in),
              ElementsAre("num_examples", "num_events", "c_index"));
  in.events = {};
  in.predictions = p2;
  in.outputs = 2;
  EXPECT_THAT(names(Model(v1::ModelSpec::MLP, 2), in),
              ElementsAre("num_examples", "loss", "log_loss", "accuracy", "macro_f1", "auc"));
  in.predictions = p3;
  in.outputs = 3;
  EXPECT_THAT(names(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 3), in),
              ElementsAre("num_examples", "loss", "log_loss", "accuracy", "macro_f1"));
}

// ---- Binary ----

class BinaryDataTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BinaryDataTest, SitesSumToPooledMetrics) {
  const std::string name = GetParam();
  const Binary b = BinaryWithLogisticScorer(name);
  const Rows& all = b.all;
  const std::vector<bool>& test = b.test;

  ASSERT_OK_AND_ASSIGN(auto layout,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  for (bool test_split : {true, false}) {
    const std::vector<size_t> rows = test_split ? MaskRows(test, true) : AllRows(test.size());
    double loss = 0, correct = 0;
    for (size_t r : rows) {
      const double p = all.predictions[r], y = all.labels[r];
      loss += -std::log(Clip(y == 1 ? p : 1 - p));
      correct += (p >= 0.5) == (y == 1) ? 1 : 0;
    }
    const double n = static_cast<double>(rows.size());
    const double auc = ExactAuc(all.predictions, all.labels, rows);
    for (size_t k : {1, 3, 4, 5}) {
      SCOPED_TRACE(::testing::Message() << name << " test_split=" << test_split << " sites=" << k);
      auto m = Federated(layout, all, Sites(rows, k), 1);
      EXPECT_EQ(m["num_examples"], n);
      EXPECT_NEAR(m["accuracy"], correct / n, 1e-12);
      EXPECT_NEAR(m["log_loss"], loss / n, 1e-12);
      EXPECT_EQ(m["loss"], m["log_loss"]);
      if (k == 1) {
        EXPECT_NEAR(m["auc"], auc, 1e-12);  // one site: its exact term replaces the binned one
      } else {
        EXPECT_NEAR(m["auc"], auc, 2e-4);  // measured at most 8e-5
      }
      std::printf("[ measured ] %s %s sites=%zu auc exact %.6f federated %.6f error %.2e\n",
                  name.c_str(), test_split ? "test" : "all", k, auc, m["auc"], m["auc"] - auc);
      // The stage's fixed point changes nothing but the log-loss's last digits.
      auto q = Federated(layout, all, Sites(rows, k), 1, 0, 1, /*quantize=*/true);
      EXPECT_EQ(q["auc"], m["auc"]);
      EXPECT_EQ(q["accuracy"], m["accuracy"]);
      EXPECT_NEAR(q["log_loss"], m["log_loss"], 1e-5);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RealData, BinaryDataTest,
                         ::testing::Values("breast_cancer_wisconsin", "smoking_nhis"));

// Scores that crowd into a narrow range (a weak model: smoking's logits times 0.05 span
// 0.14 logit) and scores spread over tens of logits (breast cancer's times 5 reach +-80):
// the bins' asinh scale and the offsets inside the bins keep the AUC within 2e-4. The
// uniform 1/64-logit bins over [-16, 16] before them erred by 2.9e-3 and 9.4e-4 here.
TEST_P(BinaryDataTest, CrowdedAndSpreadScores) {
  const std::string name = GetParam();
  const Binary b = BinaryWithLogisticScorer(name);
  ASSERT_OK_AND_ASSIGN(auto layout,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  for (double scale : {0.05, 0.2, 5.0}) {
    Rows scaled = b.all;
    for (double& p : scaled.predictions) p = Sigmoid(scale * (std::log(p) - std::log1p(-p)));
    for (bool test_split : {true, false}) {
      const std::vector<size_t> rows = test_split ? MaskRows(b.test, true) : AllRows(b.test.size());
      const double auc = ExactAuc(scaled.predictions, scaled.labels, rows);
      for (size_t k : {3, 5}) {
        SCOPED_TRACE(::testing::Message() << name << " scale=" << scale
                                          << " test_split=" << test_split << " sites=" << k);
        auto m = Federated(layout, scaled, Sites(rows, k), 1);
        EXPECT_NEAR(m["auc"], auc, 2e-4);
        std::printf("[ measured ] %s x%g %s sites=%zu auc exact %.6f error %.2e\n", name.c_str(),
                    scale, test_split ? "test" : "all", k, auc, m["auc"] - auc);
      }
    }
  }
}

TEST(BinaryEvaluationTest, ExtremeProbabilitiesAndOneClass) {
  ASSERT_OK_AND_ASSIGN(auto layout,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  Rows rows;
  rows.predictions = {0.0, 1.0, 1.0, 1e-300, 0.5};
  rows.labels = {0, 1, 0, 1, 1};
  // Pairs in the same outer bin are exact within a site; across sites they would count 1/2.
  auto m = Federated(layout, rows, {{0, 3}, {1, 2, 4}}, 1);
  // Losses clip at 1e-15: two confident mistakes cost -log(1e-15) each.
  const double want_loss = (2 * -std::log(1 - 1e-15) + 2 * -std::log(1e-15) - std::log(0.5)) / 5;
  EXPECT_NEAR(m["log_loss"], want_loss, 1e-12);
  EXPECT_NEAR(m["accuracy"], 3.0 / 5, 1e-15);  // 0.5 predicts 1
  EXPECT_NEAR(m["auc"], ExactAuc(rows.predictions, rows.labels, AllRows(5)), 1e-12);

  Rows positives;
  positives.predictions = {0.3, 0.7};
  positives.labels = {1, 1};
  auto one_class = Federated(layout, positives, {{0}, {1}}, 1);
  EXPECT_TRUE(std::isnan(one_class["auc"]));
}

// ---- Multiclass ----

// Direct sklearn-style macro-F1 over the classes present in y_true or y_pred.
double MacroF1(const std::vector<size_t>& truth, const std::vector<size_t>& predicted, size_t k) {
  std::vector<double> tp(k), fp(k), fn(k);
  std::vector<bool> present(k, false);
  for (size_t i = 0; i < truth.size(); ++i) {
    present[truth[i]] = present[predicted[i]] = true;
    if (truth[i] == predicted[i]) {
      tp[truth[i]] += 1;
    } else {
      fp[predicted[i]] += 1;
      fn[truth[i]] += 1;
    }
  }
  double sum = 0, count = 0;
  for (size_t c = 0; c < k; ++c) {
    if (!present[c]) continue;
    const double precision = tp[c] + fp[c] > 0 ? tp[c] / (tp[c] + fp[c]) : 0;
    const double recall = tp[c] + fn[c] > 0 ? tp[c] / (tp[c] + fn[c]) : 0;
    sum += precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
    count += 1;
  }
  return sum / count;
}

TEST(MulticlassEvaluationTest, DigitsSitesSumToPooledMetrics) {
  const size_t k = 10;
  std::vector<bool> test;
  const Rows all = DigitsWithCentroidScorer(&test);
  const std::vector<size_t> rows = MaskRows(test, true);
  double loss = 0, correct = 0;
  std::vector<size_t> truth, predicted;
  for (size_t r : rows) {
    const double* p = all.predictions.data() + r * k;
    const size_t y = static_cast<size_t>(all.labels[r]);
    const size_t argmax = static_cast<size_t>(std::max_element(p, p + k) - p);
    double clipped_sum = 0;
    for (size_t c = 0; c < k; ++c) clipped_sum += Clip(p[c]);
    loss += -std::log(Clip(p[y]) / clipped_sum);
    correct += argmax == y ? 1 : 0;
    truth.push_back(y);
    predicted.push_back(argmax);
  }
  const double n = static_cast<double>(rows.size());
  const double f1 = MacroF1(truth, predicted, k);
  EXPECT_GT(correct / n, 0.85);  // the scorer is reasonable

  ASSERT_OK_AND_ASSIGN(auto layout,
                       MakeEvaluationLayout(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 10)));
  for (size_t sites : {1, 3, 5}) {
    SCOPED_TRACE(sites);
    auto m = Federated(layout, all, Sites(rows, sites), k);
    EXPECT_EQ(m["num_examples"], n);
    EXPECT_NEAR(m["accuracy"], correct / n, 1e-12);
    EXPECT_NEAR(m["log_loss"], loss / n, 1e-12);
    EXPECT_EQ(m["loss"], m["log_loss"]);
    EXPECT_NEAR(m["macro_f1"], f1, 1e-12);
    EXPECT_EQ(m.count("auc"), 0u);
  }
}

TEST(MulticlassEvaluationTest, MacroF1SkipsClassesAbsentFromBothSides) {
  // y_true = {0, 0, 1, 1}, y_pred = {0, 1, 1, 3}, K = 4: class 2 is in neither and is left
  // out; class 3 is only predicted (F1 0). sklearn: (2/3 + 1/2 + 0) / 3.
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::MLP, 4)));
  Rows rows;
  rows.predictions = {0.7, 0.1, 0.1, 0.1,  //
                      0.2, 0.6, 0.1, 0.1,  //
                      0.1, 0.7, 0.1, 0.1,  //
                      0.1, 0.2, 0.1, 0.6};
  rows.labels = {0, 0, 1, 1};
  auto m = Federated(layout, rows, {{0, 3}, {1, 2}}, 4);
  EXPECT_NEAR(m["macro_f1"], (2.0 / 3 + 0.5 + 0) / 3, 1e-12);
  EXPECT_NEAR(m["macro_f1"], MacroF1({0, 0, 1, 1}, {0, 1, 1, 3}, 4), 1e-12);
  EXPECT_NEAR(m["accuracy"], 0.5, 1e-15);
}

TEST(MulticlassEvaluationTest, TwoClassesAlsoGetTheAuc) {
  const Table t = ReadCsv("breast_cancer_wisconsin");
  const size_t d = t.header.size() - 1;
  const std::vector<bool> test = TestRowMask("breast_cancer_wisconsin", t.rows.size());
  const auto x = Standardize(t, d, test);
  Rows binary, two;
  for (const auto& row : t.rows) binary.labels.push_back(row[d]);
  const std::vector<double> w = LogisticScorer(x, binary.labels, test, 100, 0.5);
  for (const auto& xr : x) {
    const double p = Sigmoid(Dot(w, xr) + w[d]);
    two.predictions.push_back(1 - p);
    two.predictions.push_back(p);
    binary.predictions.push_back(p);
  }
  two.labels = binary.labels;
  const std::vector<size_t> rows = AllRows(t.rows.size());
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::MLP, 2)));
  auto m = Federated(layout, two, Sites(rows, 4), 2);
  EXPECT_NEAR(m["auc"], ExactAuc(binary.predictions, binary.labels, rows), 0.002);
}

// ---- Regression ----

TEST(RegressionEvaluationTest, DiabetesSitesSumToPooledMetrics) {
  const Regression reg = DiabetesWithLinearScorer();
  const Rows& all = reg.all;
  const double mean = reg.mean, sd = reg.sd;
  const std::vector<size_t> rows = MaskRows(reg.test, true);
  const double n = static_cast<double>(rows.size());
  double sse = 0, ybar = 0, sst = 0;
  for (size_t r : rows) {
    sse += (all.predictions[r] - all.labels[r]) * (all.predictions[r] - all.labels[r]);
    ybar += all.labels[r];
  }
  ybar /= n;
  for (size_t r : rows) sst += (all.labels[r] - ybar) * (all.labels[r] - ybar);
  const double rmse = std::sqrt(sse / n), r2 = 1 - sse / sst;
  EXPECT_GT(r2, 0.25);  // the scorer is reasonable

  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
  for (size_t sites : {1, 3, 5}) {
    SCOPED_TRACE(sites);
    auto m = Federated(layout, all, Sites(rows, sites), 1, mean, sd);
    EXPECT_EQ(m["num_examples"], n);
    EXPECT_NEAR(m["rmse"], rmse, 1e-9 * rmse);
    EXPECT_NEAR(m["loss"], 0.5 * sse / n, 1e-9 * sse / n);
    EXPECT_NEAR(m["r2"], r2, 1e-9);
    auto q = Federated(layout, all, Sites(rows, sites), 1, mean, sd, /*quantize=*/true);
    EXPECT_NEAR(q["rmse"], rmse, 1e-6 * rmse);
    EXPECT_NEAR(q["r2"], r2, 1e-6);
  }
}

TEST(RegressionEvaluationTest, DegenerateR2FollowsSklearn) {
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
  Rows rows;
  rows.labels = {3, 3, 3};
  rows.predictions = {3, 3, 3};
  EXPECT_EQ(Federated(layout, rows, {{0, 1}, {2}}, 1, 3, 2)["r2"], 1.0);
  rows.predictions = {3, 4, 3};
  EXPECT_EQ(Federated(layout, rows, {{0, 1}, {2}}, 1, 3, 2)["r2"], 0.0);
  EXPECT_TRUE(std::isnan(Federated(layout, rows, {{0}}, 1, 3, 2)["r2"]));
}

// ---- Survival ----

TEST(SurvivalEvaluationTest, RotterdamCIndexFromSites) {
  Survival s = RotterdamWithReferenceModel();
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
  for (bool test_split : {true, false}) {
    const std::vector<size_t> rows = MaskRows(s.test, test_split);
    const double exact = ExactHarrellC(s.all.labels, s.all.predictions, s.all.events, rows);
    // The data README's reference values (test 0.7094, training 0.6915).
    EXPECT_NEAR(exact, test_split ? 0.7094 : 0.6915, 1e-4);
    double events = 0;
    for (size_t r : rows) events += s.all.events[r];
    for (size_t k : {1, 2, 3, 5}) {
      SCOPED_TRACE(::testing::Message() << "test_split=" << test_split << " sites=" << k);
      auto m = Federated(layout, s.all, Sites(rows, k), 1, s.time_mean, s.time_sd);
      EXPECT_EQ(m["num_examples"], static_cast<double>(rows.size()));
      EXPECT_EQ(m["num_events"], events);
      if (k == 1) {
        EXPECT_NEAR(m["c_index"], exact, 1e-12);
      } else {
        EXPECT_NEAR(m["c_index"], exact, 5e-4);  // measured at most 2.6e-4
      }
      std::printf("[ measured ] rotterdam %s sites=%zu C exact %.6f federated %.6f error %.2e\n",
                  test_split ? "test" : "train", k, exact, m["c_index"], m["c_index"] - exact);
      auto q = Federated(layout, s.all, Sites(rows, k), 1, s.time_mean, s.time_sd, true);
      // Every entry is a multiple of 1/256 (positions are multiples of 1/128).
      EXPECT_EQ(q["c_index"], m["c_index"]);
    }
  }
}

// Risks that crowd near 0 (eta times 0.05 or 0.2) or spread far (times 5 or 20): the risk
// bins' asinh scale and the positions inside the bins keep C within 5e-4. The 100 x 100
// grids without positions before them erred by up to 1.6e-2 here (times 0.05).
TEST(SurvivalEvaluationTest, RobustToTheModelsScale) {
  Survival s = RotterdamWithReferenceModel();
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
  for (bool test_split : {true, false}) {
    const std::vector<size_t> rows = MaskRows(s.test, test_split);
    for (double scale : {0.05, 0.2, 5.0, 20.0}) {
      Rows scaled = s.all;
      for (double& eta : scaled.predictions) eta *= scale;
      const double exact = ExactHarrellC(scaled.labels, scaled.predictions, scaled.events, rows);
      for (size_t k : {2, 3, 5}) {
        SCOPED_TRACE(::testing::Message()
                     << "scale=" << scale << " test_split=" << test_split << " sites=" << k);
        auto m = Federated(layout, scaled, Sites(rows, k), 1, s.time_mean, s.time_sd);
        EXPECT_NEAR(m["c_index"], exact, 5e-4);
        std::printf("[ measured ] rotterdam %s eta*%g sites=%zu C error %.2e\n",
                    test_split ? "test" : "train", scale, k, m["c_index"] - exact);
      }
    }
  }
}

TEST(SurvivalEvaluationTest, TiesInTimeAndRisk) {
  // Small hand-checked case: times {1, 1, 2, 3}, events {1, 0, 1, 0}, eta {2, 1, 1, 1}.
  // Comparable: (0,1) tie with censored, (0,2), (0,3), (2,3). Concordant: (0,1), (0,2),
  // (0,3) = 3; (2,3) tied risk = 1/2. C = 3.5 / 4.
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
  Rows rows;
  rows.labels = {1, 1, 2, 3};
  rows.events = {1, 0, 1, 0};
  rows.predictions = {2, 1, 1, 1};
  EXPECT_NEAR(ExactHarrellC(rows.labels, rows.predictions, rows.events, AllRows(4)), 3.5 / 4,
              1e-15);
  EXPECT_NEAR(Federated(layout, rows, {AllRows(4)}, 1, 2, 1)["c_index"], 3.5 / 4, 1e-15);
  // Two events at the same time and nothing after: no comparable pair. (Split over two
  // sites, the pair would be estimated: it shares a time bin.)
  Rows none;
  none.labels = {5, 5};
  none.events = {1, 1};
  none.predictions = {0, 1};
  EXPECT_TRUE(std::isnan(Federated(layout, none, {{0, 1}}, 1, 2, 1)["c_index"]));
}

// ---- Errors ----

TEST(EvaluationErrorsTest, BadRowsNameTheRowNotTheValue) {
  ASSERT_OK_AND_ASSIGN(auto binary,
                       MakeEvaluationLayout(Model(v1::ModelSpec::LOGISTIC_REGRESSION)));
  const std::vector<double> p = {0.1, 0.2, 0.3}, bad_label = {0, 1, 7.25};
  EvaluationInput in;
  in.predictions = p;
  in.labels = bad_label;
  EXPECT_THAT(EncodeEvaluation(binary, in),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("row 2"), Not(HasSubstr("7.25")))));
  const std::vector<double> bad_p = {0.1, 1.25, 0.3}, y = {0, 1, 1};
  in.predictions = bad_p;
  in.labels = y;
  EXPECT_THAT(EncodeEvaluation(binary, in),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("row 1"), Not(HasSubstr("1.25")))));
  const std::vector<double> short_p = {0.1, 0.2};
  in.predictions = short_p;
  EXPECT_THAT(EncodeEvaluation(binary, in), StatusIs(absl::StatusCode::kInvalidArgument));
  in.predictions = p;
  in.outputs = 2;
  EXPECT_THAT(EncodeEvaluation(binary, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outputs")));

  ASSERT_OK_AND_ASSIGN(auto multi,
                       MakeEvaluationLayout(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 3)));
  const std::vector<double> probs = {0.2, 0.3, 0.5, 0.1, 0.1, 0.8}, labels = {2, 3};
  in.predictions = probs;
  in.labels = labels;
  in.outputs = 3;
  EXPECT_THAT(EncodeEvaluation(multi, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 1")));
  const std::vector<double> fractional = {2, 0.5};
  in.labels = fractional;
  EXPECT_THAT(EncodeEvaluation(multi, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 1")));

  ASSERT_OK_AND_ASSIGN(auto cox, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
  const std::vector<double> eta = {0.1, 0.2}, times = {10, 20}, events = {1, 2}, one = {1};
  in.predictions = eta;
  in.labels = times;
  in.outputs = 1;
  in.events = events;
  EXPECT_THAT(EncodeEvaluation(cox, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 1")));
  in.events = one;
  EXPECT_THAT(EncodeEvaluation(cox, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events")));
  const std::vector<double> ok_events = {1, 0};
  in.events = ok_events;
  in.label_stddev = 0;
  EXPECT_THAT(EncodeEvaluation(cox, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label_stddev")));
  in.label_stddev = 1;
  EXPECT_OK(EncodeEvaluation(cox, in));

  ASSERT_OK_AND_ASSIGN(auto reg, MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
  const std::vector<double> yhat = {1, NAN};
  in.predictions = yhat;
  EXPECT_THAT(EncodeEvaluation(reg, in),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 1")));

  EvaluationLayout wrong = binary;
  wrong.length += 1;
  EXPECT_THAT(EncodeEvaluation(wrong, in), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EvaluationErrorsTest, DecodeRejectsBadSums) {
  ASSERT_OK_AND_ASSIGN(auto reg, MakeEvaluationLayout(Model(v1::ModelSpec::LINEAR_REGRESSION)));
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{1, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 5")));
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{2, 2, NAN, 0, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{0, 0, 0, 0, 0}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(DecodeEvaluation(reg, std::vector<double>{1.5, 0, 0, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Zero rows encode to zeros.
  ASSERT_OK_AND_ASSIGN(auto zeros, EncodeEvaluation(reg, EvaluationInput{}));
  EXPECT_EQ(zeros, std::vector<double>(5, 0.0));
}

}  // namespace
}  // namespace tessera::proto::evaluation_testing
