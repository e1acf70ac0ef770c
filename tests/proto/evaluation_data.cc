#include "tests/proto/evaluation_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace tessera::proto::evaluation_testing {

// ---- Data ----

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

EvaluationInput Input(const Rows& rows, size_t outputs, double label_mean, double label_stddev) {
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
                                        size_t outputs, double label_mean, double label_stddev,
                                        bool quantize) {
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

v1::ModelSpec Model(v1::ModelSpec::Kind kind, uint32_t num_classes) {
  v1::ModelSpec m;
  m.set_kind(kind);
  m.set_num_classes(num_classes);
  return m;
}

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

}  // namespace tessera::proto::evaluation_testing
