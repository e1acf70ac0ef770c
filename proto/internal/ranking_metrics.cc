// Binned and exact ranking metrics of the evaluation stage (proto/internal/ranking_metrics.h).
#include "proto/internal/ranking_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "proto/evaluation.h"

namespace tessera::proto::internal {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Inside an AUC block: counts and offset sums per bin, positives then negatives.
constexpr size_t kAucHistogram = kAucBins + 2;
constexpr size_t kAucExact = 0, kAucBinned = 1, kAucPos = 2, kAucNeg = kAucPos + kAucHistogram,
                 kAucPosOffsets = kAucNeg + kAucHistogram,
                 kAucNegOffsets = kAucPosOffsets + kAucHistogram;
static_assert(kAucNegOffsets + kAucHistogram == kAucBlockLength);
// Coarse AUC bins for noise, counted at indices 0 (underflow), 1..kAucNoiseBins, and
// kAucNoiseBins + 1 (overflow) of each histogram.
constexpr size_t kAucNoiseBins =
    static_cast<size_t>(2 * kAucNoiseLogitRange) * kAucNoiseBinsPerUnit;
static_assert(kAucNoiseBins + 2 <= kAucHistogram);
static_assert(kAucOffsetSteps > 0 && (kAucOffsetSteps & (kAucOffsetSteps - 1)) == 0,
              "offsets in steps of a power of two are exact in the stage's fixed point");

// logit(p); p = 0 and p = 1 give -inf and +inf, which land in the outer bins.
double Logit(double p) { return std::log(p) - std::log1p(-p); }

struct AucPlace {
  size_t bin = 0;     // underflow 0, bins 1..kAucBins, overflow kAucBins + 1
  double offset = 0;  // 0 .. kAucOffsetSteps - 1 inside the bin; 0 in the outer bins
};

AucPlace AucBin(double p) {
  static const double kHalfWidth = std::asinh(kAucLogitRange / kAucScoreScale);
  const double u = (std::asinh(Logit(p) / kAucScoreScale) + kHalfWidth) / (2 * kHalfWidth) *
                   static_cast<double>(kAucBins);
  if (!(u >= 0)) return {};
  if (u >= static_cast<double>(kAucBins)) return {kAucBins + 1, 0};
  const size_t b = std::min(static_cast<size_t>(std::floor(u)), kAucBins - 1);
  const double inside = (u - static_cast<double>(b)) * kAucOffsetSteps;
  return {1 + b, std::clamp(std::floor(inside), 0.0, double{kAucOffsetSteps - 1})};
}

// The coarse bin of a probability when encoding for noise.
size_t AucNoiseBin(double p) {
  const double s = Logit(p);
  if (!(s >= -kAucNoiseLogitRange)) return 0;
  if (s >= kAucNoiseLogitRange) return kAucNoiseBins + 1;
  const double u = std::floor((s + kAucNoiseLogitRange) * kAucNoiseBinsPerUnit);
  return 1 + std::min(static_cast<size_t>(u), kAucNoiseBins - 1);
}

// sum over (pos, neg) pairs of [bin_pos > bin_neg] + [bin_pos = bin_neg] (1/2 + (o_pos -
// o_neg) / kAucOffsetSteps), from the counts and offset sums per bin (empty offsets: 0).
double BinnedAucNumerator(std::span<const double> pos, std::span<const double> neg,
                          std::span<const double> pos_offsets,
                          std::span<const double> neg_offsets) {
  double numerator = 0, neg_below = 0;
  for (size_t b = 0; b < pos.size(); ++b) {
    numerator += pos[b] * (neg_below + 0.5 * neg[b]);
    if (!pos_offsets.empty()) {
      numerator += (neg[b] * pos_offsets[b] - pos[b] * neg_offsets[b]) / kAucOffsetSteps;
    }
    neg_below += neg[b];
  }
  return numerator;
}

// Exact Mann-Whitney numerator over the rows' own pairs; O(n log n).
double ExactAucNumerator(std::span<const double> scores, std::span<const uint8_t> positive) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double numerator = 0, neg_below = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    double pos_here = 0, neg_here = 0;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) {
      (positive[order[j]] ? pos_here : neg_here) += 1;
      ++j;
    }
    numerator += pos_here * (neg_below + 0.5 * neg_here);
    neg_below += neg_here;
    i = j;
  }
  return numerator;
}

size_t TimeBin(double t, double mean, double stddev) {
  const double z = (t - mean) / stddev;
  const double u = 0.5 * std::erfc(-z / std::sqrt(2.0));  // Phi(z)
  const double b = std::floor(u * static_cast<double>(kSurvivalTimeBins));
  if (!(b >= 0)) return 0;
  return std::min(static_cast<size_t>(b), kSurvivalTimeBins - 1);
}

size_t RiskBin(double eta) {
  static const double kHalfWidth = std::asinh(kSurvivalRiskRange / kSurvivalRiskScale);
  const double u = (std::asinh(eta / kSurvivalRiskScale) + kHalfWidth) / (2 * kHalfWidth);
  const double b = std::floor(u * static_cast<double>(kSurvivalRiskBins));
  if (!(b >= 0)) return 0;
  return std::min(static_cast<size_t>(b), kSurvivalRiskBins - 1);
}

// Fenwick tree of counts over ranks 0..size-1.
class CountTree {
 public:
  explicit CountTree(size_t size) : tree_(size + 1, 0) {}
  void Add(size_t rank) {
    for (size_t i = rank + 1; i < tree_.size(); i += i & (~i + 1)) ++tree_[i];
  }
  // Number of entries with rank < `rank`.
  uint64_t Below(size_t rank) const {
    uint64_t total = 0;
    for (size_t i = rank; i > 0; i -= i & (~i + 1)) total += tree_[i];
    return total;
  }

 private:
  std::vector<uint64_t> tree_;
};

}  // namespace

// Fills an AUC block (kAucBlockLength values at `block`). For noise: coarse bins, no
// offsets, and no within-site numerators (they stay 0).
void EncodeAucBlock(std::span<const double> scores, std::span<const uint8_t> positive,
                    bool for_noise, double* block) {
  double* pos = block + kAucPos;
  double* neg = block + kAucNeg;
  if (for_noise) {
    for (size_t r = 0; r < scores.size(); ++r)
      (positive[r] ? pos : neg)[AucNoiseBin(scores[r])] += 1;
    return;
  }
  double* pos_offsets = block + kAucPosOffsets;
  double* neg_offsets = block + kAucNegOffsets;
  for (size_t r = 0; r < scores.size(); ++r) {
    const AucPlace place = AucBin(scores[r]);
    (positive[r] ? pos : neg)[place.bin] += 1;
    (positive[r] ? pos_offsets : neg_offsets)[place.bin] += place.offset;
  }
  block[kAucExact] = ExactAucNumerator(scores, positive);
  block[kAucBinned] =
      BinnedAucNumerator({pos, kAucHistogram}, {neg, kAucHistogram}, {pos_offsets, kAucHistogram},
                         {neg_offsets, kAucHistogram});
}

double DecodeAucBlock(std::span<const double> block, bool noisy) {
  double numerator = 0, p = 0, n = 0;
  if (noisy) {
    // Only the coarse bins hold rows; the rest of the block holds noise alone. The
    // within-site terms were sent as 0 (noise again): the pooled coarse histograms are the
    // whole estimate.
    const auto pos = block.subspan(kAucPos, kAucNoiseBins + 2);
    const auto neg = block.subspan(kAucNeg, kAucNoiseBins + 2);
    numerator = BinnedAucNumerator(pos, neg, {}, {});
    p = std::accumulate(pos.begin(), pos.end(), 0.0);
    n = std::accumulate(neg.begin(), neg.end(), 0.0);
  } else {
    const auto pos = block.subspan(kAucPos, kAucHistogram);
    const auto neg = block.subspan(kAucNeg, kAucHistogram);
    numerator = BinnedAucNumerator(pos, neg, block.subspan(kAucPosOffsets, kAucHistogram),
                                   block.subspan(kAucNegOffsets, kAucHistogram)) -
                block[kAucBinned] + block[kAucExact];
    p = std::accumulate(pos.begin(), pos.end(), 0.0);
    n = std::accumulate(neg.begin(), neg.end(), 0.0);
  }
  if (p <= 0 || n <= 0) return kNaN;
  return std::clamp(numerator / (p * n), 0.0, 1.0);
}

// A row's grid cell, coarse (fine bins rounded down to the strides) when for noise.
size_t SurvivalCell(double t, double eta, double mean, double stddev, bool for_noise) {
  size_t time_bin = TimeBin(t, mean, stddev), risk_bin = RiskBin(eta);
  if (for_noise) {
    time_bin -= time_bin % kSurvivalNoiseTimeStride;
    risk_bin -= risk_bin % kSurvivalNoiseRiskStride;
  }
  return time_bin * kSurvivalRiskBins + risk_bin;
}

bool IsSurvivalNoiseCell(size_t cell) {
  return (cell / kSurvivalRiskBins) % kSurvivalNoiseTimeStride == 0 &&
         (cell % kSurvivalRiskBins) % kSurvivalNoiseRiskStride == 0;
}

// The binned estimate from grids E (events) and N (all rows), time-major.
PairCounts BinnedHarrell(std::span<const double> events, std::span<const double> all) {
  constexpr size_t kT = kSurvivalTimeBins, kR = kSurvivalRiskBins;
  PairCounts out;
  std::vector<double> later(kR, 0.0);  // rows per risk bin in later time bins
  double later_total = 0;
  for (size_t a = kT; a-- > 0;) {
    const double* e = events.data() + a * kR;
    const double* n = all.data() + a * kR;
    double e_here = 0, n_here = 0;
    double later_below = 0, here_below = 0;
    for (size_t r = 0; r < kR; ++r) {
      if (e[r] != 0) {
        // Later time bins: comparable, concordant below, 1/2 at the same risk bin. The
        // same time bin: comparable with weight 1/2, then the same; j != i.
        out.concordant +=
            e[r] * (later_below + 0.5 * later[r] + 0.5 * (here_below + 0.5 * (n[r] - 1)));
      }
      later_below += later[r];
      here_below += n[r];
      e_here += e[r];
      n_here += n[r];
    }
    out.comparable += e_here * later_total + 0.5 * (e_here * n_here - e_here);
    for (size_t r = 0; r < kR; ++r) later[r] += n[r];
    later_total += n_here;
  }
  return out;
}

// Exact Harrell's C counts over the rows' own pairs; O(n log n).
PairCounts ExactHarrell(std::span<const double> times, std::span<const double> etas,
                        std::span<const double> events) {
  const size_t n = times.size();
  std::vector<double> sorted_etas(etas.begin(), etas.end());
  std::sort(sorted_etas.begin(), sorted_etas.end());
  sorted_etas.erase(std::unique(sorted_etas.begin(), sorted_etas.end()), sorted_etas.end());
  std::vector<size_t> rank(n);
  for (size_t i = 0; i < n; ++i) {
    rank[i] = static_cast<size_t>(
        std::lower_bound(sorted_etas.begin(), sorted_etas.end(), etas[i]) - sorted_etas.begin());
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return times[a] > times[b]; });

  CountTree tree(sorted_etas.size());
  uint64_t inserted = 0;
  PairCounts out;
  for (size_t g = 0; g < n;) {
    size_t end = g;
    while (end < n && times[order[end]] == times[order[g]]) ++end;
    // Rows of later times are in the tree; add this time's censored rows (comparable with
    // this time's events), query the events, then add the events.
    for (size_t k = g; k < end; ++k) {
      if (events[order[k]] == 0) {
        tree.Add(rank[order[k]]);
        ++inserted;
      }
    }
    for (size_t k = g; k < end; ++k) {
      const size_t i = order[k];
      if (events[i] != 1) continue;
      const uint64_t below = tree.Below(rank[i]);
      const uint64_t tied = tree.Below(rank[i] + 1) - below;
      out.concordant += static_cast<double>(below) + 0.5 * static_cast<double>(tied);
      out.comparable += static_cast<double>(inserted);
    }
    for (size_t k = g; k < end; ++k) {
      if (events[order[k]] == 1) {
        tree.Add(rank[order[k]]);
        ++inserted;
      }
    }
    g = end;
  }
  return out;
}

}  // namespace tessera::proto::internal
