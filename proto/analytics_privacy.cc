// Differential privacy of analytics (proto/analytics.h, "Differential privacy"): the
// statistics of a vector and what one row can change them by. The site's noised encoding
// is in analytics.cc, the noised release in analytics_release.cc.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "proto/analytics.h"
#include "proto/internal/analytics_sums.h"
#include "proto/task.pb.h"

namespace tessera::proto {

size_t AnalyticsStatisticsLength(const v1::AnalyticsSpec& spec) {
  size_t length = 0;
  for (const auto& query : spec.queries()) length += internal::QueryStatistics(query);
  return length;
}

AnalyticsSensitivity AnalyticsRecordSensitivity(const v1::AnalyticsSpec& spec) {
  AnalyticsSensitivity out;
  out.per_statistic.reserve(AnalyticsStatisticsLength(spec));
  for (const auto& query : spec.queries()) {
    const size_t cells = internal::HistogramCells(query);
    // A row is in the count, S and Q of every query (one filter serves them all), and in
    // exactly one of a histogram's cells.
    out.row_statistics += 3 + (cells > 0 ? 1 : 0);
    out.per_statistic.push_back(1.0);
    out.per_statistic.push_back(internal::SumSensitivity(query));
    out.per_statistic.push_back(internal::SquareSensitivity(query));
    out.per_statistic.insert(out.per_statistic.end(), cells, 1.0);
  }
  return out;
}

absl::StatusOr<std::vector<double>> AnalyticsStatistics(const v1::AnalyticsSpec& spec,
                                                        std::span<const double> values,
                                                        bool noised) {
  const size_t length = AnalyticsLength(spec);
  if (values.size() != length) {
    return absl::InvalidArgumentError(
        absl::StrCat("analytics: expected ", length, " values, got ", values.size()));
  }
  for (double v : values) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("analytics: a value is not finite");
  }
  std::vector<double> out;
  out.reserve(AnalyticsStatisticsLength(spec));
  const double* block = values.data();
  for (const auto& query : spec.queries()) {
    if (noised && !(internal::SumSensitivity(query) > 0)) {
      return absl::InvalidArgumentError(absl::StrCat("analytics: column '", query.column(),
                                                     "' has no value_range, which noise needs"));
    }
    absl::StatusOr<internal::DoubleDouble> sum = internal::JoinSum(block + internal::kSum);
    if (!sum.ok()) return sum.status();
    absl::StatusOr<internal::DoubleDouble> sum_of_squares =
        internal::JoinSum(block + internal::kSumOfSquares);
    if (!sum_of_squares.ok()) return sum_of_squares.status();
    out.push_back(block[internal::kCount]);
    if (noised) {
      out.push_back(internal::Multiply(*sum, {internal::SumSensitivity(query), 0.0}).hi);
      out.push_back(
          internal::Multiply(*sum_of_squares, {internal::SquareSensitivity(query), 0.0}).hi);
    } else {
      out.push_back(sum->hi);
      out.push_back(sum_of_squares->hi);
    }
    const size_t cells = internal::HistogramCells(query);
    for (size_t i = 0; i < cells; ++i) {
      out.push_back(block[internal::kMainValues + i * internal::kCellValues]);
    }
    block += internal::QueryLength(query);
  }
  return out;
}

}  // namespace tessera::proto
