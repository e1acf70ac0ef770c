// Helpers shared by the client tests: random data, central-difference gradient checks
// and the reference splits of the datasets shipped in deploy/data.
#ifndef TESSERA_TESTS_CLIENT_TEST_UTIL_H_
#define TESSERA_TESTS_CLIENT_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/internal/random.h"
#include "client/model.h"
#include "common/files.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"

namespace tessera::client::test_util {

inline double Uniform(internal::SplitMix64& rng, double lo, double hi) {
  return lo + (hi - lo) * rng.NextUnit();
}

// Features uniform in [-2, 2); labels left zero.
inline Dataset RandomFeatures(size_t rows, size_t features, uint64_t seed) {
  internal::SplitMix64 rng(seed);
  Dataset data;
  data.num_rows = rows;
  data.num_features = features;
  data.x.resize(rows * features);
  for (double& v : data.x) v = Uniform(rng, -2, 2);
  data.y.assign(rows, 0.0);
  return data;
}

// RandomFeatures with labels 0..k-1 at random.
inline Dataset ClassData(size_t rows, size_t features, uint32_t k, uint64_t seed) {
  Dataset data = RandomFeatures(rows, features, seed);
  internal::SplitMix64 rng(seed + 1000);
  for (double& y : data.y) y = static_cast<double>(rng.Below(k));
  return data;
}

// RandomFeatures with y = a linear function of x plus noise, scale ~ 1.
inline Dataset RegressionData(size_t rows, size_t features, uint64_t seed) {
  Dataset data = RandomFeatures(rows, features, seed);
  internal::SplitMix64 rng(seed + 2000);
  for (size_t r = 0; r < rows; ++r) {
    double y = 0.3;
    for (size_t j = 0; j < features; ++j) y += (j % 2 ? -0.5 : 0.25) * data.x[r * features + j];
    data.y[r] = y + Uniform(rng, -0.5, 0.5);
  }
  return data;
}

inline std::vector<float> RandomParams(size_t n, uint64_t seed, double scale = 0.5) {
  internal::SplitMix64 rng(seed);
  std::vector<float> params(n);
  for (float& v : params) v = static_cast<float>(Uniform(rng, -scale, scale));
  return params;
}

// `count` rows drawn with replacement, in random order.
inline std::vector<size_t> RandomRows(size_t num_rows, size_t count, uint64_t seed) {
  internal::SplitMix64 rng(seed);
  std::vector<size_t> rows(count);
  for (size_t& r : rows) r = static_cast<size_t>(rng.Below(num_rows));
  return rows;
}

inline std::vector<size_t> AllRows(const Dataset& data) {
  std::vector<size_t> rows(data.num_rows);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  return rows;
}

inline double Norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

struct GradientCheck {
  std::vector<double> analytic;
  std::vector<double> numeric;
  double relative_error;  // ||numeric - analytic|| / ||analytic||
};

// Central differences of model.LossAndGradient in every parameter, with the step `h`
// actually taken in float (plus - minus, exact in double).
inline GradientCheck CheckGradient(const Model& model, const std::vector<float>& params,
                                   const Dataset& data, const std::vector<size_t>& rows, double l2,
                                   float h) {
  const size_t n = params.size();
  GradientCheck check;
  check.analytic.assign(n, 0.0);
  model.LossAndGradient(params, data, rows, l2, check.analytic);
  check.numeric.resize(n);
  std::vector<double> ignored(n);
  std::vector<float> moved = params;
  for (size_t k = 0; k < n; ++k) {
    moved[k] = params[k] + h;
    const double up = model.LossAndGradient(moved, data, rows, l2, ignored);
    const double plus = moved[k];
    moved[k] = params[k] - h;
    const double down = model.LossAndGradient(moved, data, rows, l2, ignored);
    const double minus = moved[k];
    moved[k] = params[k];
    check.numeric[k] = (up - down) / (plus - minus);
  }
  std::vector<double> diff(n);
  for (size_t k = 0; k < n; ++k) diff[k] = check.numeric[k] - check.analytic[k];
  check.relative_error = Norm(diff) / Norm(check.analytic);
  return check;
}

// Two well separated clusters: x ~ +1 for label 1, -1 for label 0, with some spread.
inline Dataset Separable(size_t rows) {
  Dataset data;
  data.num_rows = rows;
  data.num_features = 2;
  internal::SplitMix64 rng(99);
  for (size_t r = 0; r < rows; ++r) {
    const double y = r % 2;
    const double sign = y == 1 ? 1 : -1;
    for (int j = 0; j < 2; ++j) {
      data.x.push_back(sign + (static_cast<double>(rng.Next() >> 11) * 0x1.0p-53 - 0.5));
    }
    data.y.push_back(y);
  }
  return data;
}

// A model spec of `kind` (classes and hidden layers where the kind takes them).
inline v1::ModelSpec Spec(v1::ModelSpec::Kind kind, uint32_t num_classes = 0,
                          const std::vector<uint32_t>& hidden = {}) {
  v1::ModelSpec spec;
  spec.set_kind(kind);
  spec.set_num_classes(num_classes);
  for (uint32_t h : hidden) spec.add_hidden_layers(h);
  return spec;
}

// Gradient checks at 3 seeds x (l2 = 0, 0.3) on 40 random rows (with repeats) of 60.
inline void ExpectGradientsMatch(const Model& model,
                                 const std::function<Dataset(uint64_t)>& make_data,
                                 double tolerance, float h = 1.0f / 16384) {
  for (double l2 : {0.0, 0.3}) {
    for (uint64_t seed : {1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << "l2=" << l2 << " seed=" << seed);
      const Dataset data = make_data(seed);
      const std::vector<size_t> rows = RandomRows(data.num_rows, 40, seed + 50);
      const std::vector<float> params = RandomParams(model.num_parameters(), seed + 100);
      const GradientCheck check = CheckGradient(model, params, data, rows, l2, h);
      EXPECT_LT(check.relative_error, tolerance);
    }
  }
}

// A shipped dataset split into its reference training and test rows, features
// standardised with the training rows' mean and population standard deviation (a
// constant column gets 1), as every baseline in deploy/data/README.md.
struct ReferenceSplit {
  Dataset train;
  Dataset test;
  std::vector<std::string> features;
};

inline absl::StatusOr<ReferenceSplit> LoadReferenceSplit(const std::string& name,
                                                         bool survival = false) {
  const std::string dir = std::string(TESSERA_SOURCE_DIR) + "/deploy/data/";
  absl::StatusOr<CsvTable> table = LoadCsv(dir + name + ".csv");
  if (!table.ok()) return table.status();
  const size_t label_columns = survival ? 2 : 1;
  ReferenceSplit split;
  split.features.assign(table->header.begin(), table->header.end() - label_columns);
  absl::StatusOr<Dataset> all =
      survival ? SelectColumns(*table, split.features, table->header[table->header.size() - 2],
                               table->header.back(), name)
               : SelectColumns(*table, split.features, table->header.back(), name);
  if (!all.ok()) return all.status();
  absl::StatusOr<std::string> text = common::ReadFile(dir + "splits/" + name + ".test_rows.txt");
  if (!text.ok()) return text.status();
  std::vector<bool> is_test(all->num_rows, false);
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    size_t row;
    if (!absl::SimpleAtoi(line, &row) || row >= all->num_rows) {
      return absl::InvalidArgumentError(absl::StrCat("bad test row '", line, "'"));
    }
    is_test[row] = true;
  }
  std::vector<size_t> train_rows, test_rows;
  for (size_t r = 0; r < all->num_rows; ++r) (is_test[r] ? test_rows : train_rows).push_back(r);
  split.train = SelectRows(*all, train_rows);
  split.test = SelectRows(*all, test_rows);

  const LocalStatistics stats = ComputeStatistics(split.train);
  const double n = static_cast<double>(stats.num_rows);
  std::vector<double> mean(split.train.num_features), stddev(split.train.num_features);
  for (size_t j = 0; j < mean.size(); ++j) {
    mean[j] = stats.sums[j] / n;
    const double var = std::max(0.0, stats.sums_of_squares[j] / n - mean[j] * mean[j]);
    stddev[j] = var > 0 ? std::sqrt(var) : 1.0;
  }
  if (absl::Status s = Standardize(mean, stddev, &split.train); !s.ok()) return s;
  if (absl::Status s = Standardize(mean, stddev, &split.test); !s.ok()) return s;
  return split;
}

}  // namespace tessera::client::test_util

#endif  // TESSERA_TESTS_CLIENT_TEST_UTIL_H_
