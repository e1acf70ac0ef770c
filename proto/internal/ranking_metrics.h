// Private to proto/evaluation.cc: the ranking metrics of the evaluation stage — the AUC
// block (a binned score histogram per class with, without noise, the offset sums inside
// the bins and the exact and binned within-site numerators) and the survival grid of Harrell's C —
// as proto/evaluation.h describes them. Pure functions; thread-safe.
#ifndef TESSERA_PROTO_INTERNAL_RANKING_METRICS_H_
#define TESSERA_PROTO_INTERNAL_RANKING_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/evaluation.h"

namespace tessera::proto::internal {

// ---- AUC ----

// Fills an AUC block (kAucBlockLength values at `block`, zeroed by the caller) from each
// row's score and class. For noise: coarse bins, and no within-site numerators (they stay
// 0).
void EncodeAucBlock(std::span<const double> scores, std::span<const uint8_t> positive,
                    bool for_noise, double* block);

// The AUC of a summed block: the pooled histograms' binned estimate corrected by the sites'
// exact-minus-binned numerators, or, when `noisy`, the coarse histograms alone. NaN when a
// class has no rows.
double DecodeAucBlock(std::span<const double> block, bool noisy);

// ---- Harrell's C ----

struct PairCounts {
  double concordant = 0;  // concordant + 1/2 per tied-risk comparable pair
  double comparable = 0;
};

// The six survival grids of an evaluation vector (proto/evaluation.h): E, N, E_t, N_t,
// E_r, N_r, each kSurvivalTimeBins x kSurvivalRiskBins, time-major.
inline constexpr size_t kSurvivalGridsLength = 6 * kSurvivalTimeBins * kSurvivalRiskBins;

// Adds one row (time t, linear predictor eta, event or censored) to `grids`
// (kSurvivalGridsLength values), time standardised by (mean, stddev). For noise: its coarse
// cell counted in E and N, no positions.
void AddSurvivalRow(double t, double eta, bool event, double mean, double stddev, bool for_noise,
                    double* grids);

// The binned estimate from fine grids with their position sums.
PairCounts BinnedHarrell(std::span<const double> grids);

// The binned estimate from the coarse cells of grids encoded for noise (the rest is noise
// alone and is not read).
PairCounts NoisyBinnedHarrell(std::span<const double> grids);

// Exact Harrell's C counts over the rows' own pairs; O(n log n).
PairCounts ExactHarrell(std::span<const double> times, std::span<const double> etas,
                        std::span<const double> events);

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_RANKING_METRICS_H_
