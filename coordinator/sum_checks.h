// Checks on a decoded secure-aggregation sum before the coordinator uses it: what a sum of
// honest inputs must satisfy, whatever the data. Secure aggregation hides every input, so a
// site can add any shift within Z_2^32 to its words (docs/secure-aggregation.md, "What a
// malicious site can do to the sum"); these checks refuse the shifts that leave the range
// every honest input keeps. A shift that stays within the bounds passes: only verifiable
// bounded inputs (zero-knowledge range proofs, not built) would catch it.
//
// Every check has a name ("fit.weight_share", ...) and the error names it and the rule,
// never a value of the sum: the coordinator may see the sum, but a refusal is logged,
// stored and shown, and says only which rule the sum broke. The error also says that the
// coordinator cannot tell which site sent the out-of-range input.
//
//   FIT         fit.weight_share  the summed training-row shares lie in [0, 1]: each site's
//                                 weight is its rows over the pooled rows, and the cohort
//                                 is within the statistics cohort (one more quantisation
//                                 step per site allowed);
//               fit.clip          every summed weighted delta lies within survivors * clip;
//                                 without privacy noise also within clip * (summed weight),
//                                 i.e. the applied mean update within [-clip, clip].
//   STATISTICS  statistics.row_count       a positive integer, at most survivors * kMaxRows;
//               statistics.sum_of_squares  >= 0 per column;
//               statistics.spread          sum^2 <= rows * sum of squares per column
//                                          (a variance is never negative).
//   EVALUATE    evaluation.count  the row count and every count entry (correct, class
//                                 counts, histogram cells, events, grid cells) are
//                                 non-negative integers; correct, true positives and events
//                                 at most the rows; binary histograms and multiclass true and
//                                 predicted counts total the rows; loss sums >= 0.
//   ANALYTICS   analytics.count   per query, counts and histogram cells are non-negative
//                                 integers, withheld marks integers in [0, survivors], the
//                                 histogram cells total at most the main cell's count (the
//                                 split sum and sum-of-squares parts are not checked).
// Noised sums (evaluation or analytics under differential privacy) are checked only for
// finiteness: their counts are legitimately fractional or negative; FIT under privacy keeps
// fit.weight_share and the survivors * clip range (the weight is not noised, each noised
// coordinate is still clipped by the encoding).
//
// Pure functions; thread-safe.
#ifndef TESSERA_COORDINATOR_SUM_CHECKS_H_
#define TESSERA_COORDINATOR_SUM_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "proto/task.pb.h"

namespace tessera::coordinator {

// A plausibility cap on one site's row count (2^40, about 1.1e12 rows).
inline constexpr double kMaxRowsPerSite = 1099511627776.0;

// FAILED_PRECONDITION "sum refused (fit.weight_share): ..." when a check fails;
// INVALID_ARGUMENT for a sum of the wrong length. `survivors`: the sites in the sum (> 0).
absl::Status CheckFitSum(std::span<const double> sums, size_t num_parameters, double clip,
                         uint32_t survivors, bool noised);
// `num_columns`: the pooled columns (features, plus the label when pooled).
absl::Status CheckStatisticsSum(std::span<const double> sums, size_t num_columns,
                                uint32_t survivors);
// For `spec`'s evaluation layout; `noised`: the sum carries evaluation noise.
absl::Status CheckEvaluationSum(const v1::ModelSpec& model, std::span<const double> sums,
                                uint32_t survivors, bool noised);
absl::Status CheckAnalyticsSum(const v1::AnalyticsSpec& spec, std::span<const double> sums,
                               uint32_t survivors, bool noised);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SUM_CHECKS_H_
