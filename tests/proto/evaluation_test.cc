#include "proto/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
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
using ::testing::Not;

// ---- Data ----

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;
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
    std::vector<double> row;
    std::stringstream ls(line);
    for (std::string cell; std::getline(ls, cell, ',');) row.push_back(std::stod(cell));
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::vector<bool> TestRowMask(const std::string& name, size_t num_rows) {
  std::vector<bool> test(num_rows, false);
  std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/deploy/data/splits/" + name +
                   ".test_rows.txt");
  EXPECT_TRUE(in.good()) << name;
  for (size_t i; in >> i;) test.at(i) = true;
  return test;
}

// Features (the first `num_features` columns) standardised with the training rows' mean and
// population sd, as the data README's recipe.
std::vector<std::vector<double>> Standardize(const Table& t, size_t num_features,
                                             const std::vector<bool>& test) {
  std::vector<double> mean(num_features, 0), sd(num_features, 0);
  double n = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (test[r]) continue;
    n += 1;
    for (size_t j = 0; j < num_features; ++j) mean[j] += t.rows[r][j];
  }
  for (double& m : mean) m /= n;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (test[r]) continue;
    for (size_t j = 0; j < num_features; ++j) {
      sd[j] += (t.rows[r][j] - mean[j]) * (t.rows[r][j] - mean[j]);
    }
  }
  for (double& s : sd) s = s > 0 ? std::sqrt(s / n) : 1.0;
  std::vector<std::vector<double>> x(t.rows.size(), std::vector<double>(num_features));
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (size_t j = 0; j < num_features; ++j) x[r][j] = (t.rows[r][j] - mean[j]) / sd[j];
  }
  return x;
}

double Dot(const std::vector<double>& w, const std::vector<double>& x) {
  double s = 0;
  for (size_t j = 0; j < x.size(); ++j) s += w[j] * x[j];
  return s;
}

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

// A fixed scorer for the tests: plain full-batch gradient descent on the mean log-loss
// over the training rows (weights then intercept).
std::vector<double> LogisticScorer(const std::vector<std::vector<double>>& x,
                                   const std::vector<double>& y, const std::vector<bool>& test,
                                   int steps, double rate) {
  const size_t d = x[0].size();
  std::vector<double> w(d + 1, 0.0);
  for (int s = 0; s < steps; ++s) {
    std::vector<double> g(d + 1, 0.0);
    double n = 0;
    for (size_t r = 0; r < x.size(); ++r) {
      if (test[r]) continue;
      const double e = Sigmoid(Dot(w, x[r]) + w[d]) - y[r];
      for (size_t j = 0; j < d; ++j) g[j] += e * x[r][j];
      g[d] += e;
      n += 1;
    }
    for (size_t j = 0; j <= d; ++j) w[j] -= rate * g[j] / n;
  }
  return w;
}

// ---- Sites ----

// Row indices of `rows` dealt to `k` sites by a fixed hash, so sites differ in size and mix.
std::vector<std::vector<size_t>> Sites(const std::vector<size_t>& rows, size_t k) {
  std::vector<std::vector<size_t>> sites(k);
  for (size_t i = 0; i < rows.size(); ++i) {
    sites[(i * 2654435761u + i / 7) % 97 % k].push_back(rows[i]);
  }
  return sites;
}

// One site's input from per-row predictions (`outputs` per row), labels, events.
struct Rows {
  std::vector<double> predictions, labels, events;
};

Rows Select(const Rows& all, const std::vector<size_t>& rows, size_t outputs) {
  Rows out;
  for (size_t r : rows) {
    for (size_t c = 0; c < outputs; ++c)
      out.predictions.push_back(all.predictions[r * outputs + c]);
    out.labels.push_back(all.labels[r]);
    if (!all.events.empty()) out.events.push_back(all.events[r]);
  }
  return out;
}

EvaluationInput Input(const Rows& rows, size_t outputs, double label_mean = 0,
                      double label_stddev = 1) {
  EvaluationInput in;
  in.predictions = rows.predictions;
  in.outputs = outputs;
  in.labels = rows.labels;
  in.events = rows.events;
  in.label_mean = label_mean;
  in.label_stddev = label_stddev;
  return in;
}

// Encodes each site's rows, sums the vectors, decodes. `quantize` rounds every site's
// values to the evaluation stage's fixed point (16 fractional bits) first.
std::map<std::string, double> Federated(const EvaluationLayout& layout, const Rows& all,
                                        const std::vector<std::vector<size_t>>& sites,
                                        size_t outputs, double label_mean = 0,
                                        double label_stddev = 1, bool quantize = false) {
  std::vector<double> summed(layout.length, 0.0);
  for (const auto& site : sites) {
    Rows rows = Select(all, site, outputs);
    auto v = EncodeEvaluation(layout, Input(rows, outputs, label_mean, label_stddev));
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    EXPECT_EQ(v->size(), layout.length);
    for (size_t i = 0; i < summed.size(); ++i) {
      summed[i] += quantize ? std::round(std::ldexp((*v)[i], 16)) / 65536.0 : (*v)[i];
    }
  }
  auto metrics = DecodeEvaluation(layout, summed);
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  if (!metrics.ok()) return {};
  return {metrics->begin(), metrics->end()};
}

std::vector<size_t> AllRows(size_t n) {
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

std::vector<size_t> MaskRows(const std::vector<bool>& mask, bool value) {
  std::vector<size_t> rows;
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] == value) rows.push_back(i);
  }
  return rows;
}

// ---- Direct (pooled) metrics ----

double Clip(double p) { return std::clamp(p, 1e-15, 1 - 1e-15); }

// Exact pairwise AUC: pairs (pos, neg) with s_pos > s_neg, ties 1/2.
double ExactAuc(const std::vector<double>& scores, const std::vector<double>& labels,
                const std::vector<size_t>& rows) {
  std::vector<double> pos, neg;
  for (size_t r : rows) (labels[r] == 1 ? pos : neg).push_back(scores[r]);
  std::sort(neg.begin(), neg.end());
  double numerator = 0;
  for (double p : pos) {
    const auto lo = std::lower_bound(neg.begin(), neg.end(), p);
    const auto hi = std::upper_bound(neg.begin(), neg.end(), p);
    numerator += static_cast<double>(lo - neg.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  return numerator / (static_cast<double>(pos.size()) * static_cast<double>(neg.size()));
}

// Harrell's C by its definition, O(n^2).
double ExactHarrellC(const std::vector<double>& t, const std::vector<double>& eta,
                     const std::vector<double>& event, const std::vector<size_t>& rows) {
  double concordant = 0, comparable = 0;
  for (size_t i : rows) {
    if (event[i] != 1) continue;
    for (size_t j : rows) {
      if (i == j) continue;
      if (t[i] < t[j] || (t[i] == t[j] && event[j] == 0)) {
        comparable += 1;
        concordant += eta[i] > eta[j] ? 1.0 : (eta[i] == eta[j] ? 0.5 : 0.0);
      }
    }
  }
  return concordant / comparable;
}

v1::ModelSpec Model(v1::ModelSpec::Kind kind, uint32_t num_classes = 0) {
  v1::ModelSpec m;
  m.set_kind(kind);
  m.set_num_classes(num_classes);
  return m;
}

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
  EXPECT_EQ(cox.length, 6 + 2 * kSurvivalTimeBins * kSurvivalRiskBins);
  EXPECT_LE(cox.length, 20010u);

  EXPECT_THAT(MakeEvaluationLayout(Model(v1::ModelSpec::KIND_UNSPECIFIED)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeEvaluationLayout(Model(v1::ModelSpec::SOFTMAX_REGRESSION, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_classes")));
  EXPECT_THAT(MakeEvaluationLayout(Model(v1::ModelSpec::MLP, 10001)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_classes")));
}

TEST(EvaluationLayoutTest, MetricNamesInOrder) {
  auto names = [](v1::ModelSpec model, const EvaluationInput& in) {
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

// A binary data set with the logistic scorer's P(y = 1) for every row.
struct Binary {
  Rows all;
  std::vector<bool> test;
};

Binary BinaryWithLogisticScorer(const std::string& name) {
  const Table t = ReadCsv(name);
  const size_t d = t.header.size() - 1;
  Binary b;
  b.test = TestRowMask(name, t.rows.size());
  const auto x = Standardize(t, d, b.test);
  for (const auto& row : t.rows) b.all.labels.push_back(row[d]);
  const std::vector<double> w = LogisticScorer(x, b.all.labels, b.test, 300, 0.5);
  for (const auto& xr : x) b.all.predictions.push_back(Sigmoid(Dot(w, xr) + w[d]));
  return b;
}

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
        EXPECT_NEAR(m["auc"], auc, 0.002);
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

// digits with a fixed scorer: softmax of minus the squared distance to each class's
// training centroid. Sets *test_rows to the test-row mask.
Rows DigitsWithCentroidScorer(std::vector<bool>* test_rows) {
  const Table t = ReadCsv("digits");
  const size_t d = 64, k = 10;
  const std::vector<bool> test = TestRowMask("digits", t.rows.size());
  *test_rows = test;
  const auto x = Standardize(t, d, test);
  // A fixed scorer: softmax of minus the squared distance to each class's training centroid.
  std::vector<std::vector<double>> centroid(k, std::vector<double>(d, 0.0));
  std::vector<double> count(k, 0.0);
  for (size_t r = 0; r < x.size(); ++r) {
    if (test[r]) continue;
    const size_t c = static_cast<size_t>(t.rows[r][d]);
    count[c] += 1;
    for (size_t j = 0; j < d; ++j) centroid[c][j] += x[r][j];
  }
  for (size_t c = 0; c < k; ++c) {
    for (double& v : centroid[c]) v /= count[c];
  }
  Rows all;
  for (size_t r = 0; r < x.size(); ++r) {
    std::vector<double> logit(k);
    for (size_t c = 0; c < k; ++c) {
      double dist = 0;
      for (size_t j = 0; j < d; ++j)
        dist += (x[r][j] - centroid[c][j]) * (x[r][j] - centroid[c][j]);
      logit[c] = -dist / 8;
    }
    const double top = *std::max_element(logit.begin(), logit.end());
    double z = 0;
    for (double& l : logit) z += (l = std::exp(l - top));
    for (double l : logit) all.predictions.push_back(l / z);
    all.labels.push_back(t.rows[r][d]);
  }
  return all;
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

// diabetes_progression with a fixed linear scorer; the label's training mean and sd.
struct Regression {
  Rows all;
  std::vector<bool> test;
  double mean = 0, sd = 0;
};

Regression DiabetesWithLinearScorer() {
  const Table t = ReadCsv("diabetes_progression");
  const size_t d = t.header.size() - 1;
  const std::vector<bool> test = TestRowMask("diabetes_progression", t.rows.size());
  const auto x = Standardize(t, d, test);
  // Label statistics of the training rows (the statistics round's).
  double mean = 0, sd = 0, ntr = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (!test[r]) mean += t.rows[r][d], ntr += 1;
  }
  mean /= ntr;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (!test[r]) sd += (t.rows[r][d] - mean) * (t.rows[r][d] - mean);
  }
  sd = std::sqrt(sd / ntr);
  // A fixed linear scorer from 200 gradient steps on the half squared error.
  std::vector<double> w(d + 1, 0.0);
  w[d] = mean;
  for (int s = 0; s < 200; ++s) {
    std::vector<double> g(d + 1, 0.0);
    for (size_t r = 0; r < x.size(); ++r) {
      if (test[r]) continue;
      const double e = Dot(w, x[r]) + w[d] - t.rows[r][d];
      for (size_t j = 0; j < d; ++j) g[j] += e * x[r][j];
      g[d] += e;
    }
    for (size_t j = 0; j <= d; ++j) w[j] -= 0.1 * g[j] / ntr;
  }
  Regression out;
  for (size_t r = 0; r < x.size(); ++r) {
    out.all.predictions.push_back(Dot(w, x[r]) + w[d]);
    out.all.labels.push_back(t.rows[r][d]);
  }
  out.test = test;
  out.mean = mean;
  out.sd = sd;
  return out;
}

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

struct Survival {
  Rows all;  // predictions = eta, labels = time
  std::vector<bool> test;
  double time_mean = 0, time_sd = 0;
};

Survival RotterdamWithReferenceModel() {
  const Table t = ReadCsv("rotterdam_survival");
  const size_t d = 11;
  Survival s;
  s.test = TestRowMask("rotterdam_survival", t.rows.size());
  const auto x = Standardize(t, d, s.test);
  const std::map<std::string, double> coef = {
      {"year", -0.083655},     {"age", 0.168958},    {"meno", 0.017856},  {"size_20_50", 0.193198},
      {"size_gt50", 0.235221}, {"grade", 0.138088},  {"nodes", 0.322279}, {"pgr", -0.099292},
      {"er", 0.001588},        {"hormon", 0.007026}, {"chemo", 0.021525}};
  std::vector<double> w;
  for (size_t j = 0; j < d; ++j) w.push_back(coef.at(t.header[j]));
  double ntr = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    s.all.predictions.push_back(Dot(w, x[r]));
    s.all.labels.push_back(t.rows[r][d]);
    s.all.events.push_back(t.rows[r][d + 1]);
    if (!s.test[r]) s.time_mean += t.rows[r][d], ntr += 1;
  }
  s.time_mean /= ntr;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (!s.test[r]) s.time_sd += (t.rows[r][d] - s.time_mean) * (t.rows[r][d] - s.time_mean);
  }
  s.time_sd = std::sqrt(s.time_sd / ntr);
  return s;
}

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
        EXPECT_NEAR(m["c_index"], exact, 0.005);
      }
      std::printf("[ measured ] rotterdam %s sites=%zu C exact %.6f federated %.6f error %.2e\n",
                  test_split ? "test" : "train", k, exact, m["c_index"], m["c_index"] - exact);
      auto q = Federated(layout, s.all, Sites(rows, k), 1, s.time_mean, s.time_sd, true);
      EXPECT_EQ(q["c_index"], m["c_index"]);  // every entry is a multiple of 1/4
    }
  }
}

TEST(SurvivalEvaluationTest, RobustToTheModelsScale) {
  Survival s = RotterdamWithReferenceModel();
  ASSERT_OK_AND_ASSIGN(auto layout, MakeEvaluationLayout(Model(v1::ModelSpec::COX_PH)));
  const std::vector<size_t> rows = MaskRows(s.test, true);
  for (double scale : {0.2, 5.0, 20.0}) {
    Rows scaled = s.all;
    for (double& eta : scaled.predictions) eta *= scale;
    const double exact = ExactHarrellC(scaled.labels, scaled.predictions, scaled.events, rows);
    for (size_t k : {2, 3, 5}) {
      SCOPED_TRACE(::testing::Message() << "scale=" << scale << " sites=" << k);
      auto m = Federated(layout, scaled, Sites(rows, k), 1, s.time_mean, s.time_sd);
      EXPECT_NEAR(m["c_index"], exact, 0.005);
      std::printf("[ measured ] rotterdam test eta*%g sites=%zu C error %.2e\n", scale, k,
                  m["c_index"] - exact);
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

// ---- Encoding for noise ----

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
  auto delta = [](v1::ModelSpec model) {
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
    for (size_t i = 0; i < 2 * histogram; ++i) {
      const size_t b = i % histogram;
      const double v = noisy[5 + i];
      mass += v;
      if (v == 0) continue;
      const bool outer = b == 0 || b == kAucBins + 1;
      const size_t first =
          1 + static_cast<size_t>((kAucLogitRange - kAucNoiseLogitRange) * kAucBinsPerUnit);
      const size_t stride = kAucBinsPerUnit / kAucNoiseBinsPerUnit;
      EXPECT_TRUE(outer || (b >= first && (b - first) % stride == 0 &&
                            (b - first) / stride < static_cast<size_t>(2 * kAucNoiseLogitRange *
                                                                       kAucNoiseBinsPerUnit)))
          << "histogram cell " << b;
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
    const size_t cells = kSurvivalTimeBins * kSurvivalRiskBins;
    double events = 0, rows = 0;
    for (size_t c = 0; c < cells; ++c) {
      events += noisy[6 + c];
      rows += noisy[6 + cells + c];
      if (noisy[6 + c] == 0 && noisy[6 + cells + c] == 0) continue;
      EXPECT_EQ(c / kSurvivalRiskBins % kSurvivalNoiseTimeStride, 0u) << c;
      EXPECT_EQ(c % kSurvivalRiskBins % kSurvivalNoiseRiskStride, 0u) << c;
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
}  // namespace tessera::proto
