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

// Where a value falls on `bins` bins of [0, bins) in `u`: the bin (clamped to the outer
// ones) and the step of its position inside it (0 below the range, the last step above).
struct GridPlace {
  size_t bin = 0;
  double step = 0;
};

GridPlace Place(double u, size_t bins) {
  if (!(u >= 0)) return {};
  if (u >= static_cast<double>(bins)) return {bins - 1, kSurvivalOffsetSteps - 1};
  const size_t b = std::min(static_cast<size_t>(std::floor(u)), bins - 1);
  const double inside = std::floor((u - static_cast<double>(b)) * kSurvivalOffsetSteps);
  return {b, std::clamp(inside, 0.0, double{kSurvivalOffsetSteps - 1})};
}

// Phi((t - mean) / stddev) in [0, 1], Phi the normal CDF.
double TimeQuantile(double t, double mean, double stddev) {
  return 0.5 * std::erfc(-((t - mean) / stddev) / std::sqrt(2.0));
}

// asinh(eta / scale) over eta in [-range, range], as [0, 1].
double RiskQuantile(double eta, double scale, double range) {
  const double half_width = std::asinh(range / scale);
  return (std::asinh(eta / scale) + half_width) / (2 * half_width);
}

// The estimator on one set of grids of `time_bins` x `risk_bins` cells: counts E, N and,
// unless empty, the position sums (integer steps). Empty position spans: every pair in a
// shared bin counts 1/2.
struct GridView {
  size_t time_bins = 0, risk_bins = 0;
  std::span<const double> events, all;
  std::span<const double> events_time, all_time, events_risk, all_risk;  // may be empty
};

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

void AddSurvivalRow(double t, double eta, bool event, double mean, double stddev, bool for_noise,
                    double* grids) {
  constexpr size_t kCells = kSurvivalTimeBins * kSurvivalRiskBins;
  double* events = grids;
  double* all = grids + kCells;
  const double time_quantile = TimeQuantile(t, mean, stddev);
  if (for_noise) {
    const size_t a = Place(time_quantile * kSurvivalNoiseTimeBins, kSurvivalNoiseTimeBins).bin;
    const size_t r = Place(RiskQuantile(eta, kSurvivalNoiseRiskScale, kSurvivalNoiseRiskRange) *
                               kSurvivalNoiseRiskBins,
                           kSurvivalNoiseRiskBins)
                         .bin;
    const size_t cell = a * kSurvivalNoiseRiskBins + r;
    all[cell] += 1;
    if (event) events[cell] += 1;
    return;
  }
  const GridPlace time = Place(time_quantile * kSurvivalTimeBins, kSurvivalTimeBins);
  const GridPlace risk =
      Place(RiskQuantile(eta, kSurvivalRiskScale, kSurvivalRiskRange) * kSurvivalRiskBins,
            kSurvivalRiskBins);
  const size_t cell = time.bin * kSurvivalRiskBins + risk.bin;
  all[cell] += 1;
  grids[3 * kCells + cell] += time.step;
  grids[5 * kCells + cell] += risk.step;
  if (event) {
    events[cell] += 1;
    grids[2 * kCells + cell] += time.step;
    grids[4 * kCells + cell] += risk.step;
  }
}

namespace {

// Sum of positions inside the bins, in units of a bin: (steps + 1/2 per row) / steps.
double Positions(std::span<const double> steps, size_t cell, double rows) {
  return (steps[cell] + 0.5 * rows) / kSurvivalOffsetSteps;
}

PairCounts GridHarrell(const GridView& g) {
  const size_t kR = g.risk_bins;
  const bool positions = !g.events_time.empty();
  PairCounts out;
  // Rows per risk bin in later time bins, and their risk positions.
  std::vector<double> later(kR, 0.0), later_risk(kR, 0.0);
  double later_total = 0;
  for (size_t a = g.time_bins; a-- > 0;) {
    double e_here = 0, n_here = 0, e_time_here = 0, n_time_here = 0;
    double later_below = 0, here_below = 0, here_time_below = 0;
    for (size_t r = 0; r < kR; ++r) {
      const size_t c = a * kR + r;
      const double e = g.events[c], n = g.all[c];
      // Positions; with none, every row sits mid-bin and the position terms cancel.
      const double e_time = positions ? Positions(g.events_time, c, e) : 0.5 * e;
      const double n_time = positions ? Positions(g.all_time, c, n) : 0.5 * n;
      const double e_risk = positions ? Positions(g.events_risk, c, e) : 0.5 * e;
      const double n_risk = positions ? Positions(g.all_risk, c, n) : 0.5 * n;
      if (e != 0) {
        // Later time bins: concordant below; in the same risk bin 1/2 + rho_i - rho_j.
        out.concordant +=
            e * later_below + 0.5 * e * later[r] + later[r] * e_risk - e * later_risk[r];
        // The same time bin, lower risk bins: comparable with weight 1/2 + tau_j - tau_i.
        out.concordant += 0.5 * e * here_below + e * here_time_below - e_time * here_below;
        // The same cell, j != i: 1/4 + (tau_j - tau_i) / 2 + (rho_i - rho_j) / 2.
        out.concordant +=
            0.25 * e * (n - 1) + 0.5 * (e * n_time - n * e_time) + 0.5 * (n * e_risk - e * n_risk);
      }
      later_below += later[r];
      here_below += n;
      here_time_below += n_time;
      e_here += e;
      n_here += n;
      e_time_here += e_time;
      n_time_here += n_time;
    }
    // Later time bins: comparable; the same time bin, j != i: 1/2 + tau_j - tau_i.
    out.comparable += e_here * later_total + 0.5 * e_here * (n_here - 1) +
                      (e_here * n_time_here - n_here * e_time_here);
    for (size_t r = 0; r < kR; ++r) {
      const size_t c = a * kR + r;
      later[r] += g.all[c];
      later_risk[r] += positions ? Positions(g.all_risk, c, g.all[c]) : 0.5 * g.all[c];
    }
    later_total += n_here;
  }
  return out;
}

}  // namespace

PairCounts BinnedHarrell(std::span<const double> grids) {
  constexpr size_t kCells = kSurvivalTimeBins * kSurvivalRiskBins;
  return GridHarrell({.time_bins = kSurvivalTimeBins,
                      .risk_bins = kSurvivalRiskBins,
                      .events = grids.subspan(0, kCells),
                      .all = grids.subspan(kCells, kCells),
                      .events_time = grids.subspan(2 * kCells, kCells),
                      .all_time = grids.subspan(3 * kCells, kCells),
                      .events_risk = grids.subspan(4 * kCells, kCells),
                      .all_risk = grids.subspan(5 * kCells, kCells)});
}

PairCounts NoisyBinnedHarrell(std::span<const double> grids) {
  constexpr size_t kCells = kSurvivalTimeBins * kSurvivalRiskBins;
  constexpr size_t kCoarse = kSurvivalNoiseTimeBins * kSurvivalNoiseRiskBins;
  static_assert(kCoarse <= kCells);
  return GridHarrell({.time_bins = kSurvivalNoiseTimeBins,
                      .risk_bins = kSurvivalNoiseRiskBins,
                      .events = grids.subspan(0, kCoarse),
                      .all = grids.subspan(kCells, kCoarse),
                      .events_time = {},
                      .all_time = {},
                      .events_risk = {},
                      .all_risk = {}});
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
