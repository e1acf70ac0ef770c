#include "coordinator/sum_checks.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"

namespace tessera::coordinator {
namespace {

// One quantisation step of a BOUNDED value, relative to its bound, for any cohort up to
// 2^14 sites (bits >= 18): honest rounding moves each site's value by less than this.
constexpr double kBoundedStep = 1.0 / 65536;
// One step of the statistics encoding (24 fractional bits), per site.
constexpr double kStatisticsStep = 1.0 / 16777216;
// Evaluation entries that are not counts (loss sums) carry 16 fractional bits.
constexpr double kEvaluationStep = 1.0 / 65536;

absl::Status Refused(const std::string& check, const std::string& rule) {
  return absl::FailedPreconditionError(absl::StrCat(
      "sum refused (", check, "): ", rule,
      "; a site's masked input was out of the range every honest input keeps, and secure "
      "aggregation hides which site sent it"));
}

absl::Status CheckShape(std::span<const double> sums, size_t want, const char* stage) {
  if (sums.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(stage, " sum: expected ", want, " values, got ", sums.size()));
  }
  for (double v : sums) {
    if (!std::isfinite(v)) return Refused(absl::StrCat(stage, ".finite"), "a value is not finite");
  }
  return absl::OkStatus();
}

bool IsCount(double v, double cap) { return v >= 0 && v == std::floor(v) && v <= cap; }

// Every value of `part` a non-negative integer at most `cap`.
bool AllCounts(std::span<const double> part, double cap) {
  return std::all_of(part.begin(), part.end(), [cap](double v) { return IsCount(v, cap); });
}

double Total(std::span<const double> part) {
  double t = 0;
  for (double v : part) t += v;
  return t;
}

// The AUC block: [exact numerator, binned numerator, positives (kAucBins + 2), negatives,
// positives' offsets (kAucBins + 2), negatives' offsets]. An offset sum is an integer of at
// most kAucOffsetSteps - 1 per row of its bin.
bool AucBlockConsistent(std::span<const double> block, double n) {
  const size_t bins = proto::kAucBins + 2;
  const std::span<const double> pos = block.subspan(2, bins);
  const std::span<const double> neg = block.subspan(2 + bins, bins);
  const std::span<const double> pos_offsets = block.subspan(2 + 2 * bins, bins);
  const std::span<const double> neg_offsets = block.subspan(2 + 3 * bins, bins);
  // The exact pair count is a multiple of 1/2, never negative; the binned one a multiple of
  // 1/kAucOffsetSteps (offsets can make it negative).
  constexpr double kSteps = proto::kAucOffsetSteps;
  if (block[0] < 0 || std::floor(2 * block[0]) != 2 * block[0] ||
      std::floor(kSteps * block[1]) != kSteps * block[1]) {
    return false;
  }
  if (!AllCounts(pos, n) || !AllCounts(neg, n) || Total(pos) + Total(neg) != n) return false;
  for (size_t b = 0; b < bins; ++b) {
    if (!IsCount(pos_offsets[b], (kSteps - 1) * pos[b]) ||
        !IsCount(neg_offsets[b], (kSteps - 1) * neg[b])) {
      return false;
    }
  }
  return true;
}

bool MulticlassConsistent(std::span<const double> sums, size_t k, double n) {
  const std::span<const double> truth = sums.subspan(2, k);
  const std::span<const double> predicted = sums.subspan(2 + k, k);
  const std::span<const double> hits = sums.subspan(2 + 2 * k, k);
  if (!AllCounts(truth, n) || !AllCounts(predicted, n) || !AllCounts(hits, n)) return false;
  if (Total(truth) != n || Total(predicted) != n) return false;
  for (size_t c = 0; c < k; ++c) {
    if (hits[c] > std::min(truth[c], predicted[c])) return false;
  }
  return k != 2 || AucBlockConsistent(sums.subspan(2 + 3 * k, proto::kAucBlockLength), n);
}

// [n, events, exact C terms (2), binned C terms (2), E, N, E_t, N_t, E_r, N_r]: counts
// per cell, events among the rows, and position sums of at most kSurvivalOffsetSteps - 1
// per row, the events' within all rows'.
bool SurvivalConsistent(std::span<const double> sums, double n) {
  const size_t cells = proto::kSurvivalTimeBins * proto::kSurvivalRiskBins;
  constexpr double kMaxStep = proto::kSurvivalOffsetSteps - 1;
  if (!IsCount(sums[1], n)) return false;
  // The exact pair counts are never negative (the binned ones can be, with positions).
  if (sums[2] < 0 || sums[3] < 0) return false;
  const auto grid = [&](size_t g) { return sums.subspan(6 + g * cells, cells); };
  const std::span<const double> events = grid(0), rows = grid(1);
  if (!AllCounts(events, n) || !AllCounts(rows, n)) return false;
  for (size_t c = 0; c < cells; ++c) {
    if (events[c] > rows[c]) return false;
    for (size_t g : {2, 4}) {  // time, then risk positions: events', all rows'
      const double e = grid(g)[c], all = grid(g + 1)[c];
      if (!IsCount(e, kMaxStep * events[c]) || !IsCount(all, kMaxStep * rows[c]) || e > all) {
        return false;
      }
    }
  }
  return Total(rows) == n && Total(events) == sums[1];
}

}  // namespace

absl::Status CheckFitSum(std::span<const double> sums, size_t num_parameters, double clip,
                         uint32_t survivors, bool noised) {
  if (absl::Status st = CheckShape(sums, proto::FitLength(num_parameters), "fit"); !st.ok()) {
    return st;
  }
  const double n = std::max<uint32_t>(survivors, 1);
  const double weight = sums[0];
  if (weight < -n * kBoundedStep || weight > 1 + n * kBoundedStep) {
    return Refused("fit.weight_share",
                   "the summed training-row shares must lie in [0, 1] (each site's rows over "
                   "the rows its statistics cohort pooled)");
  }
  // Each site's weighted delta lies in [-clip, clip]; without noise it lies within
  // clip * (its weight), so the sum lies within clip * (summed weight).
  const double step = n * clip * kBoundedStep;
  const double range = noised ? n * clip : clip * std::max(weight, 0.0);
  for (size_t i = 1; i < sums.size(); ++i) {
    if (std::fabs(sums[i]) > range + step) {
      return Refused("fit.clip", noised ? "a summed update coordinate is beyond survivors * clip"
                                        : "the averaged model update is beyond the spec's "
                                          "secure_aggregation.clip");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStatisticsSum(std::span<const double> sums, size_t num_columns,
                                uint32_t survivors) {
  if (absl::Status st = CheckShape(sums, proto::StatisticsLength(num_columns), "statistics");
      !st.ok()) {
    return st;
  }
  const double sites = std::max<uint32_t>(survivors, 1);
  const double rows = sums[0];
  if (rows < 1 || !IsCount(rows, sites * kMaxRowsPerSite)) {
    return Refused("statistics.row_count",
                   "the pooled row count must be a positive integer of at most 2^40 per site");
  }
  const double step = sites * kStatisticsStep;
  for (size_t j = 0; j < num_columns; ++j) {
    const double sum = sums[1 + j];
    const double squares = sums[1 + num_columns + j];
    if (squares < -step) {
      return Refused("statistics.sum_of_squares", "a column's sum of squares is negative");
    }
    // Cauchy-Schwarz, with the encoding's rounding of both sums allowed.
    const double low = std::max(std::fabs(sum) - step, 0.0);
    if (low * low > rows * (squares + step) * (1 + 1e-9)) {
      return Refused("statistics.spread",
                     "a column's squared sum exceeds rows times its sum of squares (a negative "
                     "variance)");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckEvaluationSum(const v1::ModelSpec& model, std::span<const double> sums,
                                uint32_t survivors, bool noised) {
  absl::StatusOr<proto::EvaluationLayout> layout = proto::MakeEvaluationLayout(model);
  if (!layout.ok()) return layout.status();
  if (absl::Status st = CheckShape(sums, layout->length, "evaluation"); !st.ok()) return st;
  if (noised) return absl::OkStatus();
  const double n = sums[0];
  const double cap = std::max<uint32_t>(survivors, 1) * kMaxRowsPerSite;
  const double step = std::max<uint32_t>(survivors, 1) * kEvaluationStep;
  if (!IsCount(n, cap)) {
    return Refused("evaluation.count", "the evaluated row count must be a non-negative integer");
  }
  bool consistent = true;
  switch (layout->kind) {
    case proto::EvaluationKind::kBinary:
      consistent = sums[1] >= -step && IsCount(sums[2], n) &&
                   AucBlockConsistent(sums.subspan(3, proto::kAucBlockLength), n);
      break;
    case proto::EvaluationKind::kMulticlass:
      consistent = sums[1] >= -step && MulticlassConsistent(sums, layout->num_classes, n);
      break;
    case proto::EvaluationKind::kRegression: {
      // [n, n*s, sum of squared errors, sum, sum of squares] in label units.
      const double low = std::max(std::fabs(sums[3]) - step, 0.0);
      consistent = sums[1] >= -step && sums[2] >= -step && sums[4] >= -step &&
                   low * low <= n * (sums[4] + step) * (1 + 1e-9);
      break;
    }
    case proto::EvaluationKind::kSurvival:
      consistent = SurvivalConsistent(sums, n);
      break;
  }
  if (!consistent) {
    return Refused("evaluation.count",
                   "counts must be non-negative integers consistent with the row count (correct "
                   "and per-class counts at most the rows, histograms totalling the rows), "
                   "loss sums non-negative");
  }
  return absl::OkStatus();
}

absl::Status CheckAnalyticsSum(const v1::AnalyticsSpec& spec, std::span<const double> sums,
                               uint32_t survivors, bool noised) {
  if (absl::Status st = CheckShape(sums, proto::AnalyticsLength(spec), "analytics"); !st.ok()) {
    return st;
  }
  if (noised) return absl::OkStatus();
  const double sites = std::max<uint32_t>(survivors, 1);
  const double cap = sites * kMaxRowsPerSite;
  size_t at = 0;
  for (const v1::AnalyticsSpec::Query& query : spec.queries()) {
    // Main cell [count, withheld, S (4 parts), Q (4 parts)], then E + 1 cells [count,
    // withheld] with E >= 2 edges.
    const double count = sums[at];
    bool consistent = IsCount(count, cap) && IsCount(sums[at + 1], sites);
    const size_t edges = static_cast<size_t>(query.histogram_edges_size());
    size_t length = 10;
    if (edges >= 2) {
      double cells = 0;
      for (size_t c = 0; c <= edges; ++c) {
        const double cell = sums[at + 10 + 2 * c];
        consistent = consistent && IsCount(cell, cap) && IsCount(sums[at + 11 + 2 * c], sites);
        cells += cell;
      }
      consistent = consistent && cells <= count;
      length += 2 * (edges + 1);
    }
    if (!consistent) {
      return Refused("analytics.count",
                     "counts must be non-negative integers, withheld marks at most one per "
                     "site, histogram cells at most the query's count");
    }
    at += length;
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
