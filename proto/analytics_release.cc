// The coordinator's side of analytics: the release rule (proto/analytics.h) over the
// cohort's summed vector, exact or noised.
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/analytics.h"
#include "proto/internal/analytics_sums.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

using internal::DoubleDouble;

bool IsCount(double v) { return v >= 0 && v == std::floor(v); }

// Checks that every count and withheld entry of a query's block is a non-negative integer.
absl::Status CheckCounts(const v1::AnalyticsSpec::Query& query, const double* block) {
  std::vector<size_t> positions = {internal::kCount, internal::kWithheld};
  const size_t cells = internal::HistogramCells(query);
  for (size_t i = 0; i < cells; ++i) {
    positions.push_back(internal::kMainValues + i * internal::kCellValues);
    positions.push_back(internal::kMainValues + i * internal::kCellValues + 1);
  }
  for (size_t p : positions) {
    if (!IsCount(block[p])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "analytics: a count of column '", query.column(), "' is not a non-negative integer"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MainCell> DecodeMain(const double* block) {
  MainCell main;
  main.count = block[internal::kCount];
  absl::StatusOr<DoubleDouble> sum = internal::JoinSum(block + internal::kSum);
  if (!sum.ok()) return sum.status();
  absl::StatusOr<DoubleDouble> sum_of_squares = internal::JoinSum(block + internal::kSumOfSquares);
  if (!sum_of_squares.ok()) return sum_of_squares.status();
  // Precondition (the release rule): count >= k >= 1.
  const DoubleDouble mean = internal::Divide(*sum, main.count);
  // n * variance = Q - S * mean, in double-double: the cancellation happens at ~2^-106.
  const DoubleDouble m2 =
      internal::Add(*sum_of_squares, internal::Negate(internal::Multiply(*sum, mean)));
  main.sum = sum->hi;
  main.mean = mean.hi;
  main.variance = std::max(0.0, internal::Divide(m2, main.count).hi);
  return main;
}

// The main cell from noised sums (proto/analytics.h, "Differential privacy"): S and Q
// scaled back by Delta, then clamped to what values in [lo, hi] allow. Precondition: the
// block's count is the rounded noisy count, at least k >= 1; the query has a value_range.
absl::StatusOr<MainCell> DecodeNoisedMain(const v1::AnalyticsSpec::Query& query,
                                          const double* block) {
  absl::StatusOr<DoubleDouble> sum = internal::JoinSum(block + internal::kSum);
  if (!sum.ok()) return sum.status();
  absl::StatusOr<DoubleDouble> sum_of_squares = internal::JoinSum(block + internal::kSumOfSquares);
  if (!sum_of_squares.ok()) return sum_of_squares.status();
  const double lo = query.value_range(0), hi = query.value_range(1);
  MainCell main;
  main.count = block[internal::kCount];
  const double n = main.count;
  const double s = internal::Multiply(*sum, {internal::SumSensitivity(query), 0.0}).hi;
  const double q =
      internal::Multiply(*sum_of_squares, {internal::SquareSensitivity(query), 0.0}).hi;
  main.sum = std::clamp(s, n * lo, n * hi);
  main.mean = std::clamp(main.sum / n, lo, hi);
  const double half_width = (hi - lo) / 2;
  main.variance = std::clamp(q / n - main.mean * main.mean, 0.0, half_width * half_width);
  return main;
}

// A copy of a query's noised block with every count (the main cell's and each histogram
// cell's) rounded to the nearest integer and clamped at 0; withheld entries as they are.
std::vector<double> RoundedCounts(const v1::AnalyticsSpec::Query& query, const double* block) {
  std::vector<double> out(block, block + internal::QueryLength(query));
  auto round = [](double v) { return std::max(0.0, std::round(v)); };
  out[internal::kCount] = round(out[internal::kCount]);
  const size_t cells = internal::HistogramCells(query);
  for (size_t i = 0; i < cells; ++i) {
    double& n = out[internal::kMainValues + i * internal::kCellValues];
    n = round(n);
  }
  return out;
}

// Which histogram cells of a query with a released main cell of `count` rows are released:
// primary suppression, then complementary suppression until the suppressed cells' total,
// derivable from the released ones, is at least k.
std::vector<bool> ReleasedCells(const double* cells, size_t num_cells, double count, double k) {
  std::vector<bool> released(num_cells);
  bool any_suppressed = false;
  double released_total = 0;
  for (size_t i = 0; i < num_cells; ++i) {
    const double n = cells[i * internal::kCellValues];
    const double withheld = cells[i * internal::kCellValues + 1];
    released[i] = withheld == 0 && n >= k;
    if (released[i]) {
      released_total += n;
    } else {
      any_suppressed = true;
    }
  }
  if (!any_suppressed) return released;
  while (count - released_total < k) {
    size_t smallest = num_cells;
    for (size_t i = 0; i < num_cells; ++i) {
      if (released[i] && (smallest == num_cells || cells[i * internal::kCellValues] <
                                                       cells[smallest * internal::kCellValues])) {
        smallest = i;
      }
    }
    if (smallest == num_cells) break;  // every cell suppressed
    released[smallest] = false;
    released_total -= cells[smallest * internal::kCellValues];
  }
  return released;
}

absl::StatusOr<QueryRelease> ReleaseQuery(const v1::AnalyticsSpec::Query& query,
                                          const double* block, double k, bool noised) {
  std::vector<double> rounded;
  if (noised) {
    rounded = RoundedCounts(query, block);
    block = rounded.data();
  }
  QueryRelease out;
  out.column = query.column();
  out.edges.assign(query.histogram_edges().begin(), query.histogram_edges().end());
  const size_t num_cells = internal::HistogramCells(query);
  const size_t num_bins = num_cells == 0 ? 0 : num_cells - 2;
  out.bins.assign(num_bins, std::nullopt);
  if (absl::Status counts = CheckCounts(query, block); !counts.ok()) return counts;
  const double count = block[internal::kCount];
  if (block[internal::kWithheld] > 0 || count < k) {
    out.suppressed_cells = static_cast<uint32_t>(1 + num_cells);
    return out;
  }
  absl::StatusOr<MainCell> main = noised ? DecodeNoisedMain(query, block) : DecodeMain(block);
  if (!main.ok()) return main.status();
  out.main = *main;
  const double* cells = block + internal::kMainValues;
  const std::vector<bool> released = ReleasedCells(cells, num_cells, count, k);
  for (size_t i = 0; i < num_cells; ++i) {
    if (!released[i]) {
      ++out.suppressed_cells;
      continue;
    }
    const double n = cells[i * internal::kCellValues];
    if (i < num_bins) {
      out.bins[i] = n;
    } else if (i == num_bins) {
      out.below = n;
    } else {
      out.above = n;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<QueryRelease>> ReleaseAnalytics(const v1::AnalyticsSpec& spec,
                                                           std::span<const double> summed,
                                                           bool noised) {
  const size_t length = AnalyticsLength(spec);
  if (summed.size() != length) {
    return absl::InvalidArgumentError(
        absl::StrCat("analytics: expected ", length, " values, got ", summed.size()));
  }
  for (size_t i = 0; i < summed.size(); ++i) {
    if (!std::isfinite(summed[i])) {
      return absl::InvalidArgumentError(absl::StrCat("analytics: value ", i, " is not finite"));
    }
  }
  if (noised) {
    for (const auto& query : spec.queries()) {
      if (query.value_range_size() != 2) {
        return absl::InvalidArgumentError(absl::StrCat("analytics: column '", query.column(),
                                                       "' has no value_range, which noise needs"));
      }
    }
  }
  const double k = MinCellSize(spec);
  std::vector<QueryRelease> results;
  results.reserve(static_cast<size_t>(spec.queries_size()));
  const double* block = summed.data();
  for (const auto& query : spec.queries()) {
    absl::StatusOr<QueryRelease> result = ReleaseQuery(query, block, k, noised);
    if (!result.ok()) return result.status();
    results.push_back(std::move(*result));
    block += internal::QueryLength(query);
  }
  return results;
}

}  // namespace tessera::proto
