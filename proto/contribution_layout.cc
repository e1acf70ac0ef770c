#include "proto/contribution_layout.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace tessera::proto {
namespace {

absl::Status CheckFinite(std::span<const double> v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": value ", i, " is not finite"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLength(std::span<const double> v, size_t want, const char* what) {
  if (v.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected ", want, " values, got ", v.size()));
  }
  return absl::OkStatus();
}

}  // namespace

size_t StatisticsLength(size_t num_features) { return 1 + 2 * num_features; }

std::vector<double> EncodeStatistics(uint64_t num_rows, std::span<const double> sums,
                                     std::span<const double> sums_of_squares) {
  std::vector<double> out;
  out.reserve(1 + sums.size() + sums_of_squares.size());
  out.push_back(static_cast<double>(num_rows));
  out.insert(out.end(), sums.begin(), sums.end());
  out.insert(out.end(), sums_of_squares.begin(), sums_of_squares.end());
  return out;
}

absl::StatusOr<PooledStatistics> DecodeStatistics(std::span<const double> summed,
                                                  size_t num_features) {
  if (auto st = CheckLength(summed, StatisticsLength(num_features), "statistics"); !st.ok()) {
    return st;
  }
  if (auto st = CheckFinite(summed, "statistics"); !st.ok()) return st;
  double n = summed[0];
  if (n < 1 || n != std::floor(n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("statistics: row count must be a positive integer, got ", n));
  }
  PooledStatistics out;
  out.num_rows = static_cast<uint64_t>(n);
  out.mean.resize(num_features);
  out.stddev.resize(num_features);
  for (size_t j = 0; j < num_features; ++j) {
    double mean = summed[1 + j] / n;
    // E[x^2] - E[x]^2 loses precision when the mean is large against the spread; the
    // clamp keeps round-off from producing a negative variance.
    double var = summed[1 + num_features + j] / n - mean * mean;
    if (var < 0) var = 0;
    double sd = std::sqrt(var);
    // A column is treated as constant when its spread is at round-off level of its mean.
    if (sd <= 1e-12 * std::max(1.0, std::fabs(mean))) sd = 1.0;
    out.mean[j] = mean;
    out.stddev[j] = sd;
  }
  return out;
}

size_t FitLength(size_t num_parameters) { return 1 + num_parameters; }

std::vector<double> EncodeFit(uint64_t num_examples, std::span<const float> delta) {
  std::vector<double> out;
  out.reserve(1 + delta.size());
  double n = static_cast<double>(num_examples);
  out.push_back(n);
  for (float d : delta) out.push_back(n * static_cast<double>(d));
  return out;
}

std::vector<double> EncodeWeightedFit(uint64_t num_examples, uint64_t pooled_rows,
                                      std::span<const float> delta, double clip) {
  double w =
      pooled_rows == 0
          ? 0.0
          : std::min(1.0, static_cast<double>(num_examples) / static_cast<double>(pooled_rows));
  std::vector<double> out;
  out.reserve(1 + delta.size());
  out.push_back(w);
  for (float d : delta) out.push_back(w * std::clamp(static_cast<double>(d), -clip, clip));
  return out;
}

absl::StatusOr<AveragedUpdate> DecodeFit(std::vector<double> summed, size_t num_parameters) {
  if (auto st = CheckLength(summed, FitLength(num_parameters), "fit"); !st.ok()) return st;
  if (auto st = CheckFinite(summed, "fit"); !st.ok()) return st;
  if (summed[0] <= 0) {
    return absl::InvalidArgumentError("fit: total example count must be positive");
  }
  AveragedUpdate out;
  out.total_examples = summed[0];
  for (size_t i = 0; i < num_parameters; ++i) summed[i] = summed[1 + i] / out.total_examples;
  summed.pop_back();
  out.mean_delta = std::move(summed);
  return out;
}

}  // namespace tessera::proto
