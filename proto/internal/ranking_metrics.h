// Private to proto/evaluation.cc: the ranking metrics of the evaluation stage — the AUC
// block (a binned score histogram per class with, without noise, the offset sums inside
// the bins and the exact and binned within-site numerators) and the survival grid of Harrell's C —
// as proto/evaluation.h describes them. Pure functions; thread-safe.
#ifndef TESSERA_PROTO_INTERNAL_RANKING_METRICS_H_
#define TESSERA_PROTO_INTERNAL_RANKING_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <span>

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

// A row's cell in the time-major survival grid (kSurvivalTimeBins x kSurvivalRiskBins),
// time standardised by (mean, stddev); coarse (fine bins rounded down to the strides) when
// `for_noise`.
size_t SurvivalCell(double t, double eta, double mean, double stddev, bool for_noise);

// Whether `cell` is one of the coarse cells read when decoding noisy sums.
bool IsSurvivalNoiseCell(size_t cell);

// The binned estimate from grids E (events) and N (all rows), time-major.
PairCounts BinnedHarrell(std::span<const double> events, std::span<const double> all);

// Exact Harrell's C counts over the rows' own pairs; O(n log n).
PairCounts ExactHarrell(std::span<const double> times, std::span<const double> etas,
                        std::span<const double> events);

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_RANKING_METRICS_H_
