// What each stage's contribution vector holds. A site's contribution is a vector of
// doubles that the coordinator only ever sees summed over the cohort (secure aggregation
// unmasks only the sum), so every quantity the coordinator
// needs must be a sum over sites. Both sides use these functions; nothing else knows the
// layouts.
//
//   STATISTICS  [n, sum_1..sum_d, sumsq_1..sumsq_d]        d = number of features
//   FIT         [w, w*delta_1..w*delta_P]                   P = number of parameters,
//                                                           delta = local - global model,
//                                                           w = the site's weight
//   EVALUATE    see proto/evaluation.h (the layout depends on the task kind)
//
// Under secure aggregation a FIT weight is the site's share of the pooled training rows,
// w = n / N (at most 1), and every delta coordinate is clipped to [-clip, clip] first, so
// that the vector fits the fixed-point encoding; FedAvg's ratio sum(w*delta) / sum(w) is the
// same as with raw counts.
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_CONTRIBUTION_LAYOUT_H_
#define TESSERA_PROTO_CONTRIBUTION_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::proto {

// ---- STATISTICS ----
size_t StatisticsLength(size_t num_features);
// `sums` and `sums_of_squares` have one entry per feature.
std::vector<double> EncodeStatistics(uint64_t num_rows, std::span<const double> sums,
                                     std::span<const double> sums_of_squares);

struct PooledStatistics {
  uint64_t num_rows = 0;
  std::vector<double> mean;
  // Population standard deviation (divide by n); a constant column gets 1.
  std::vector<double> stddev;
};
// From the cohort's summed vector. INVALID_ARGUMENT on a wrong length, a non-integral or
// zero row count, or non-finite values.
absl::StatusOr<PooledStatistics> DecodeStatistics(std::span<const double> summed,
                                                  size_t num_features);

// ---- FIT ----
size_t FitLength(size_t num_parameters);
// `delta` = local model - global model; it is multiplied by `num_examples`.
std::vector<double> EncodeFit(uint64_t num_examples, std::span<const float> delta);

// The secure-aggregation form: [w, w * clip(delta_i, -clip, clip)], w = min(n / N, 1) with
// N the pooled training rows (so every value lies in [-clip, clip]).
std::vector<double> EncodeWeightedFit(uint64_t num_examples, uint64_t pooled_rows,
                                      std::span<const float> delta, double clip);

struct AveragedUpdate {
  // Total weight behind the sum: examples for EncodeFit, the cohort's share of the pooled
  // rows for EncodeWeightedFit.
  double total_examples = 0;
  // Example-weighted mean of the sites' deltas.
  std::vector<double> mean_delta;
};
// INVALID_ARGUMENT on a wrong length, a zero total, or non-finite values. `summed` is taken
// by value: moved in, its buffer becomes mean_delta (no second model-sized vector).
absl::StatusOr<AveragedUpdate> DecodeFit(std::vector<double> summed, size_t num_parameters);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_CONTRIBUTION_LAYOUT_H_
