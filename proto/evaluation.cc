#include "proto/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

constexpr double kProbabilityClip = 1e-15;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- Layout positions ----
// Binary.
constexpr size_t kBinN = 0, kBinLoss = 1, kBinCorrect = 2, kBinAuc = 3;
// Multiclass: n, loss, then three blocks of K.
constexpr size_t kMcN = 0, kMcLoss = 1, kMcClasses = 2;
// Regression.
constexpr size_t kRegN = 0, kRegScale = 1, kRegSse = 2, kRegSum = 3, kRegSumSq = 4;
constexpr size_t kRegressionLength = 5;
// Survival.
constexpr size_t kSurvN = 0, kSurvEvents = 1, kSurvExactConc = 2, kSurvExactComp = 3,
                 kSurvBinnedConc = 4, kSurvBinnedComp = 5, kSurvGrid = 6;
constexpr size_t kSurvivalCells = kSurvivalTimeBins * kSurvivalRiskBins;
constexpr size_t kSurvivalLength = kSurvGrid + 2 * kSurvivalCells;
// Inside an AUC block.
constexpr size_t kAucExact = 0, kAucBinned = 1, kAucPos = 2, kAucNeg = 2 + kAucBins + 2;
constexpr size_t kAucHistogram = kAucBins + 2;
// Coarse AUC bins for noise: kAucNoiseBins bins, each represented by the fine bin that
// holds its lower edge.
static_assert(kAucBinsPerUnit % kAucNoiseBinsPerUnit == 0);
static_assert(kAucNoiseLogitRange > 0 && kAucNoiseLogitRange <= kAucLogitRange);
constexpr size_t kAucNoiseBins =
    static_cast<size_t>(2 * kAucNoiseLogitRange) * kAucNoiseBinsPerUnit;
constexpr size_t kAucNoiseStride = kAucBinsPerUnit / kAucNoiseBinsPerUnit;
constexpr size_t kAucNoiseFirst =
    1 + static_cast<size_t>(kAucLogitRange - kAucNoiseLogitRange) * kAucBinsPerUnit;
static_assert(kSurvivalTimeBins % kSurvivalNoiseTimeStride == 0);
static_assert(kSurvivalRiskBins % kSurvivalNoiseRiskStride == 0);

size_t ExpectedLength(EvaluationKind kind, uint32_t num_classes) {
  switch (kind) {
    case EvaluationKind::kBinary:
      return kBinAuc + kAucBlockLength;
    case EvaluationKind::kMulticlass:
      return kMcClasses + 3 * static_cast<size_t>(num_classes) +
             (num_classes == 2 ? kAucBlockLength : 0);
    case EvaluationKind::kRegression:
      return kRegressionLength;
    case EvaluationKind::kSurvival:
      return kSurvivalLength;
  }
  return 0;
}

absl::Status CheckLayout(const EvaluationLayout& layout) {
  if (layout.kind == EvaluationKind::kMulticlass &&
      (layout.num_classes < 2 || layout.num_classes > kMaxEvaluationClasses)) {
    return absl::InvalidArgumentError(absl::StrCat("evaluation layout: multiclass needs 2..",
                                                   kMaxEvaluationClasses, " classes, got ",
                                                   layout.num_classes));
  }
  const size_t want = ExpectedLength(layout.kind, layout.num_classes);
  if (want == 0 || layout.length != want) {
    return absl::InvalidArgumentError(absl::StrCat("evaluation layout: length ", layout.length,
                                                   " does not match its kind (", want, ")"));
  }
  return absl::OkStatus();
}

absl::Status RowError(size_t row, const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("evaluation: row ", row, ": ", what));
}

bool IsProbability(double p) { return p >= 0.0 && p <= 1.0; }  // false for NaN

double ClippedLogLoss(double p) {
  return -std::log(std::clamp(p, kProbabilityClip, 1.0 - kProbabilityClip));
}

// A row's log-loss as the noise encoding sends it: at most kMaxRowLogLoss, in units of it.
double ScaledLogLoss(double loss) { return std::min(loss, kMaxRowLogLoss) / kMaxRowLogLoss; }

// ---- AUC ----

// Histogram index of a probability: underflow 0, bins 1..kAucBins, overflow kAucBins + 1.
size_t AucBin(double p) {
  // logit(p); p = 0 and p = 1 give -inf and +inf, which land in the outer bins.
  const double s = std::log(p) - std::log1p(-p);
  if (!(s >= -kAucLogitRange)) return 0;
  if (s >= kAucLogitRange) return kAucBins + 1;
  const double u = std::floor((s + kAucLogitRange) * kAucBinsPerUnit);
  return 1 + std::min(static_cast<size_t>(u), kAucBins - 1);
}

// The coarse bin of a probability when encoding for noise, as an index of the fine
// histogram: underflow 0, the coarse bins' representatives, overflow kAucBins + 1.
size_t AucNoiseBin(double p) {
  const double s = std::log(p) - std::log1p(-p);
  if (!(s >= -kAucNoiseLogitRange)) return 0;
  if (s >= kAucNoiseLogitRange) return kAucBins + 1;
  const double u = std::floor((s + kAucNoiseLogitRange) * kAucNoiseBinsPerUnit);
  return kAucNoiseFirst + std::min(static_cast<size_t>(u), kAucNoiseBins - 1) * kAucNoiseStride;
}

// Whether fine bin b is read when decoding noisy sums.
bool IsAucNoiseBin(size_t b) {
  return b == 0 || b == kAucBins + 1 ||
         (b >= kAucNoiseFirst && (b - kAucNoiseFirst) % kAucNoiseStride == 0 &&
          (b - kAucNoiseFirst) / kAucNoiseStride < kAucNoiseBins);
}

// sum over (pos, neg) pairs of [bin_pos > bin_neg] + 1/2 [bin_pos = bin_neg].
double BinnedAucNumerator(std::span<const double> pos, std::span<const double> neg) {
  double numerator = 0, neg_below = 0;
  for (size_t b = 0; b < pos.size(); ++b) {
    numerator += pos[b] * (neg_below + 0.5 * neg[b]);
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

// Fills an AUC block (kAucBlockLength values at `block`). For noise: coarse bins, and no
// within-site numerators (they stay 0).
void EncodeAucBlock(std::span<const double> scores, std::span<const uint8_t> positive,
                    bool for_noise, double* block) {
  double* pos = block + kAucPos;
  double* neg = block + kAucNeg;
  for (size_t r = 0; r < scores.size(); ++r) {
    (positive[r] ? pos : neg)[for_noise ? AucNoiseBin(scores[r]) : AucBin(scores[r])] += 1;
  }
  if (for_noise) return;
  block[kAucExact] = ExactAucNumerator(scores, positive);
  block[kAucBinned] = BinnedAucNumerator({pos, kAucHistogram}, {neg, kAucHistogram});
}

double DecodeAucBlock(std::span<const double> block, bool noisy) {
  std::vector<double> pos(block.begin() + kAucPos, block.begin() + kAucPos + kAucHistogram);
  std::vector<double> neg(block.begin() + kAucNeg, block.begin() + kAucNeg + kAucHistogram);
  double numerator = 0;
  if (noisy) {
    // Only the coarse bins hold rows; the others hold noise alone. The within-site terms
    // were sent as 0 (noise again): the pooled coarse histograms are the whole estimate.
    for (size_t b = 0; b < kAucHistogram; ++b) {
      if (!IsAucNoiseBin(b)) pos[b] = neg[b] = 0;
    }
    numerator = BinnedAucNumerator(pos, neg);
  } else {
    numerator = BinnedAucNumerator(pos, neg) - block[kAucBinned] + block[kAucExact];
  }
  const double p = std::accumulate(pos.begin(), pos.end(), 0.0);
  const double n = std::accumulate(neg.begin(), neg.end(), 0.0);
  if (p <= 0 || n <= 0) return kNaN;
  return std::clamp(numerator / (p * n), 0.0, 1.0);
}

// ---- Harrell's C ----

struct PairCounts {
  double concordant = 0;  // concordant + 1/2 per tied-risk comparable pair
  double comparable = 0;
};

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

// ---- Encoders per kind ----

absl::Status CheckShape(const EvaluationLayout& layout, const EvaluationInput& in,
                        size_t want_outputs) {
  if (in.outputs != want_outputs) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation: expected ", want_outputs, " outputs per row, got ", in.outputs));
  }
  if (in.predictions.size() != in.labels.size() * in.outputs) {
    return absl::InvalidArgumentError(absl::StrCat("evaluation: ", in.predictions.size(),
                                                   " predictions for ", in.labels.size(),
                                                   " rows of ", in.outputs, " outputs"));
  }
  return absl::OkStatus();
}

absl::Status CheckLabelMoments(const EvaluationInput& in) {
  if (!std::isfinite(in.label_mean) || !std::isfinite(in.label_stddev) || in.label_stddev <= 0) {
    return absl::InvalidArgumentError(
        "evaluation: label_mean must be finite and label_stddev finite and > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> EncodeBinary(const EvaluationLayout& layout,
                                                 const EvaluationInput& in) {
  if (auto st = CheckShape(layout, in, 1); !st.ok()) return st;
  const size_t rows = in.labels.size();
  std::vector<double> out(layout.length, 0.0);
  std::vector<uint8_t> positive(rows);
  for (size_t r = 0; r < rows; ++r) {
    const double y = in.labels[r], p = in.predictions[r];
    if (y != 0 && y != 1) return RowError(r, "label is not 0 or 1");
    if (!IsProbability(p)) return RowError(r, "prediction is not a probability in [0, 1]");
    positive[r] = y == 1;
    const double loss = ClippedLogLoss(y == 1 ? p : 1 - p);
    out[kBinLoss] += in.for_noise ? ScaledLogLoss(loss) : loss;
    if ((p >= 0.5) == (y == 1)) out[kBinCorrect] += 1;
  }
  out[kBinN] = static_cast<double>(rows);
  EncodeAucBlock(in.predictions, positive, in.for_noise, out.data() + kBinAuc);
  return out;
}

absl::StatusOr<std::vector<double>> EncodeMulticlass(const EvaluationLayout& layout,
                                                     const EvaluationInput& in) {
  const size_t k = layout.num_classes;
  if (auto st = CheckShape(layout, in, k); !st.ok()) return st;
  const size_t rows = in.labels.size();
  std::vector<double> out(layout.length, 0.0);
  double* true_count = out.data() + kMcClasses;
  double* predicted_count = true_count + k;
  double* true_positive = predicted_count + k;
  for (size_t r = 0; r < rows; ++r) {
    const double y = in.labels[r];
    if (!(y >= 0 && y < static_cast<double>(k)) || y != std::floor(y)) {
      return RowError(r, "label is not a class index");
    }
    const size_t label = static_cast<size_t>(y);
    const double* p = in.predictions.data() + r * k;
    size_t argmax = 0;
    double clipped_sum = 0;
    for (size_t c = 0; c < k; ++c) {
      if (!IsProbability(p[c])) return RowError(r, "prediction is not a probability in [0, 1]");
      if (p[c] > p[argmax]) argmax = c;
      clipped_sum += std::clamp(p[c], kProbabilityClip, 1.0 - kProbabilityClip);
    }
    const double clipped = std::clamp(p[label], kProbabilityClip, 1.0 - kProbabilityClip);
    const double loss = -std::log(clipped / clipped_sum);
    out[kMcLoss] += in.for_noise ? ScaledLogLoss(loss) : loss;
    true_count[label] += 1;
    predicted_count[argmax] += 1;
    if (argmax == label) true_positive[label] += 1;
  }
  out[kMcN] = static_cast<double>(rows);
  if (k == 2) {
    std::vector<double> scores(rows);
    std::vector<uint8_t> positive(rows);
    for (size_t r = 0; r < rows; ++r) {
      scores[r] = in.predictions[r * 2 + 1];
      positive[r] = in.labels[r] == 1;
    }
    EncodeAucBlock(scores, positive, in.for_noise, out.data() + kMcClasses + 3 * k);
  }
  return out;
}

absl::StatusOr<std::vector<double>> EncodeRegression(const EvaluationLayout& layout,
                                                     const EvaluationInput& in) {
  if (auto st = CheckShape(layout, in, 1); !st.ok()) return st;
  if (auto st = CheckLabelMoments(in); !st.ok()) return st;
  const size_t rows = in.labels.size();
  const double m = in.label_mean, s = in.label_stddev;
  std::vector<double> out(layout.length, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    const double y = in.labels[r], yhat = in.predictions[r];
    if (!std::isfinite(y)) return RowError(r, "label is not finite");
    if (!std::isfinite(yhat)) return RowError(r, "prediction is not finite");
    // In units of the label's sd the sums are O(rows) whatever the label's unit, which
    // suits the fixed-point encoding; the shift by the training mean keeps SST's
    // sum-of-squares form well conditioned.
    double e = (yhat - y) / s, z = (y - m) / s;
    if (in.for_noise) {
      // (yhat - y)/s can overflow to inf for finite inputs; clamp keeps it at the bound.
      constexpr double kB = kRegressionNoiseClip;
      e = std::clamp(e, -kB, kB) / kB;
      z = std::clamp(z, -kB, kB) / kB;
    }
    out[kRegSse] += e * e;
    out[kRegSum] += z;
    out[kRegSumSq] += z * z;
  }
  out[kRegN] = static_cast<double>(rows);
  // The coordinator learns s as (sum over sites of n * s) / n; with noise it is told s
  // (one row would move n * s by s, a sensitivity in the label's unit).
  if (!in.for_noise) out[kRegScale] = static_cast<double>(rows) * s;
  return out;
}

absl::StatusOr<std::vector<double>> EncodeSurvival(const EvaluationLayout& layout,
                                                   const EvaluationInput& in) {
  if (auto st = CheckShape(layout, in, 1); !st.ok()) return st;
  if (auto st = CheckLabelMoments(in); !st.ok()) return st;
  const size_t rows = in.labels.size();
  if (in.events.size() != rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation: ", in.events.size(), " events for ", rows, " rows"));
  }
  std::vector<double> out(layout.length, 0.0);
  double* e_grid = out.data() + kSurvGrid;
  double* n_grid = e_grid + kSurvivalCells;
  for (size_t r = 0; r < rows; ++r) {
    const double t = in.labels[r], ev = in.events[r], eta = in.predictions[r];
    if (!std::isfinite(t)) return RowError(r, "time is not finite");
    if (ev != 0 && ev != 1) return RowError(r, "event is not 0 or 1");
    if (!std::isfinite(eta)) return RowError(r, "prediction is not finite");
    const size_t cell = SurvivalCell(t, eta, in.label_mean, in.label_stddev, in.for_noise);
    n_grid[cell] += 1;
    if (ev == 1) {
      e_grid[cell] += 1;
      out[kSurvEvents] += 1;
    }
  }
  out[kSurvN] = static_cast<double>(rows);
  if (in.for_noise) return out;  // no within-site pair terms
  const PairCounts exact = ExactHarrell(in.labels, in.predictions, in.events);
  const PairCounts binned = BinnedHarrell({e_grid, kSurvivalCells}, {n_grid, kSurvivalCells});
  out[kSurvExactConc] = exact.concordant;
  out[kSurvExactComp] = exact.comparable;
  out[kSurvBinnedConc] = binned.concordant;
  out[kSurvBinnedComp] = binned.comparable;
  return out;
}

// ---- Decoding ----

absl::Status CheckSummed(const EvaluationLayout& layout, std::span<const double> summed) {
  if (summed.size() != layout.length) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation: expected ", layout.length, " values, got ", summed.size()));
  }
  for (size_t i = 0; i < summed.size(); ++i) {
    if (!std::isfinite(summed[i])) {
      return absl::InvalidArgumentError(absl::StrCat("evaluation: value ", i, " is not finite"));
    }
  }
  return absl::OkStatus();
}

// Metrics from sums encoded for noise, with noise: post-processing only (no exactness to
// check: counts are real numbers), each metric clamped to its range.
absl::StatusOr<std::vector<std::pair<std::string, double>>> DecodeNoisy(
    const EvaluationLayout& layout, std::span<const double> summed,
    const EvaluationDecodeOptions& options) {
  if (auto st = CheckSummed(layout, summed); !st.ok()) return st;
  const double n = std::round(summed[0]);
  if (!(n >= 1)) {
    return absl::FailedPreconditionError("evaluation: fewer than one example after the noise");
  }
  std::vector<std::pair<std::string, double>> metrics;
  metrics.emplace_back("num_examples", n);
  switch (layout.kind) {
    case EvaluationKind::kBinary: {
      const double log_loss = std::max(0.0, summed[kBinLoss] * kMaxRowLogLoss / n);
      metrics.emplace_back("loss", log_loss);
      metrics.emplace_back("log_loss", log_loss);
      metrics.emplace_back("accuracy", std::clamp(summed[kBinCorrect] / n, 0.0, 1.0));
      metrics.emplace_back("auc", DecodeAucBlock(summed.subspan(kBinAuc, kAucBlockLength), true));
      break;
    }
    case EvaluationKind::kMulticlass: {
      const size_t k = layout.num_classes;
      const double log_loss = std::max(0.0, summed[kMcLoss] * kMaxRowLogLoss / n);
      const double* true_count = summed.data() + kMcClasses;
      const double* predicted_count = true_count + k;
      const double* true_positive = predicted_count + k;
      // A class absent from both sides has a noisy true + predicted count of standard
      // deviation sqrt(2) * noise_stddev: above 4 * noise_stddev with probability < 0.3%.
      const double present_above = 4 * options.noise_stddev;
      double correct = 0, f1_sum = 0, present = 0;
      for (size_t c = 0; c < k; ++c) {
        correct += true_positive[c];
        const double denominator = true_count[c] + predicted_count[c];
        if (!(denominator > present_above)) continue;
        f1_sum += std::clamp(2 * true_positive[c] / denominator, 0.0, 1.0);
        present += 1;
      }
      metrics.emplace_back("loss", log_loss);
      metrics.emplace_back("log_loss", log_loss);
      metrics.emplace_back("accuracy", std::clamp(correct / n, 0.0, 1.0));
      metrics.emplace_back("macro_f1", present > 0 ? f1_sum / present : kNaN);
      if (k == 2) {
        metrics.emplace_back(
            "auc", DecodeAucBlock(summed.subspan(kMcClasses + 3 * k, kAucBlockLength), true));
      }
      break;
    }
    case EvaluationKind::kRegression: {
      const double s = options.label_stddev;
      if (!std::isfinite(s) || s <= 0) {
        return absl::InvalidArgumentError(
            "evaluation: decoding noisy regression sums needs label_stddev finite and > 0");
      }
      constexpr double kB = kRegressionNoiseClip;
      const double sse = std::max(0.0, summed[kRegSse] * kB * kB);
      const double sum = summed[kRegSum] * kB;
      const double sum_sq = std::max(0.0, summed[kRegSumSq] * kB * kB);
      const double mse = s * s * sse / n;
      double r2 = kNaN;
      if (n >= 2) {
        const double sst = sum_sq - sum * sum / n;
        if (sst > 0) r2 = std::min(1.0, 1 - sse / sst);
      }
      metrics.emplace_back("loss", 0.5 * mse);
      metrics.emplace_back("rmse", std::sqrt(mse));
      metrics.emplace_back("r2", r2);
      break;
    }
    case EvaluationKind::kSurvival: {
      std::vector<double> events(summed.begin() + kSurvGrid,
                                 summed.begin() + kSurvGrid + kSurvivalCells);
      std::vector<double> all(summed.begin() + kSurvGrid + kSurvivalCells,
                              summed.begin() + kSurvGrid + 2 * kSurvivalCells);
      for (size_t c = 0; c < kSurvivalCells; ++c) {
        if (!IsSurvivalNoiseCell(c)) events[c] = all[c] = 0;  // noise only
      }
      const PairCounts binned = BinnedHarrell(events, all);
      metrics.emplace_back("num_events", std::max(0.0, std::round(summed[kSurvEvents])));
      metrics.emplace_back("c_index",
                           binned.comparable > 0
                               ? std::clamp(binned.concordant / binned.comparable, 0.0, 1.0)
                               : kNaN);
      break;
    }
  }
  return metrics;
}

}  // namespace

absl::StatusOr<EvaluationLayout> MakeEvaluationLayout(const v1::ModelSpec& model) {
  EvaluationLayout layout;
  const uint32_t k = model.num_classes();
  switch (model.kind()) {
    case v1::ModelSpec::LOGISTIC_REGRESSION:
      layout.kind = EvaluationKind::kBinary;
      layout.num_classes = 2;
      break;
    case v1::ModelSpec::SOFTMAX_REGRESSION:
      if (k < 2) {
        return absl::InvalidArgumentError("evaluation: SOFTMAX_REGRESSION needs num_classes >= 2");
      }
      layout.kind = EvaluationKind::kMulticlass;
      layout.num_classes = k;
      break;
    case v1::ModelSpec::MLP:
      if (k >= 2) {
        layout.kind = EvaluationKind::kMulticlass;
        layout.num_classes = k;
      } else {
        layout.kind = EvaluationKind::kRegression;
      }
      break;
    case v1::ModelSpec::LINEAR_REGRESSION:
      layout.kind = EvaluationKind::kRegression;
      break;
    case v1::ModelSpec::COX_PH:
      layout.kind = EvaluationKind::kSurvival;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("evaluation: no metrics for model kind ", static_cast<int>(model.kind())));
  }
  if (layout.num_classes > kMaxEvaluationClasses) {
    return absl::InvalidArgumentError(absl::StrCat("evaluation: num_classes must be at most ",
                                                   kMaxEvaluationClasses, ", got ", k));
  }
  layout.length = ExpectedLength(layout.kind, layout.num_classes);
  return layout;
}

bool EvaluationNoiseOn(const v1::TaskSpec& spec) {
  return spec.has_privacy() && spec.privacy().evaluation_noise_multiplier() > 0;
}

double EvaluationRecordSensitivity(const EvaluationLayout& layout) {
  // The square root of the sum of the squared per-row bounds (the header's table).
  switch (layout.kind) {
    case EvaluationKind::kBinary:      // n, log-loss, correct, one histogram cell
    case EvaluationKind::kRegression:  // n, e^2, z, z^2
    case EvaluationKind::kSurvival:    // n, events, one E cell, one N cell
      return 2.0;
    case EvaluationKind::kMulticlass:  // n, log-loss, true_k, predicted_k, tp_k [, cell]
      return std::sqrt(layout.num_classes == 2 ? 6.0 : 5.0);
  }
  return 0;
}

double EvaluationNoiseStddev(const v1::PrivacySpec& privacy, const EvaluationLayout& layout) {
  const double sigma = privacy.evaluation_noise_multiplier();
  return sigma > 0 ? sigma * EvaluationRecordSensitivity(layout) : 0.0;
}

absl::StatusOr<std::vector<double>> EncodeEvaluation(const EvaluationLayout& layout,
                                                     const EvaluationInput& input) {
  if (auto st = CheckLayout(layout); !st.ok()) return st;
  switch (layout.kind) {
    case EvaluationKind::kBinary:
      return EncodeBinary(layout, input);
    case EvaluationKind::kMulticlass:
      return EncodeMulticlass(layout, input);
    case EvaluationKind::kRegression:
      return EncodeRegression(layout, input);
    case EvaluationKind::kSurvival:
      return EncodeSurvival(layout, input);
  }
  return absl::InvalidArgumentError("evaluation: unknown layout kind");
}

absl::StatusOr<std::vector<std::pair<std::string, double>>> DecodeEvaluation(
    const EvaluationLayout& layout, std::span<const double> summed,
    const EvaluationDecodeOptions& options) {
  if (auto st = CheckLayout(layout); !st.ok()) return st;
  if (!std::isfinite(options.noise_stddev) || options.noise_stddev < 0) {
    return absl::InvalidArgumentError("evaluation: noise_stddev must be finite and >= 0");
  }
  if (options.noise_stddev > 0) return DecodeNoisy(layout, summed, options);
  if (auto st = CheckSummed(layout, summed); !st.ok()) return st;
  const double n = summed[0];  // every layout starts with the row count
  if (n < 0 || n != std::floor(n)) {
    return absl::InvalidArgumentError(
        "evaluation: the example count is not a non-negative integer");
  }
  if (n == 0) return absl::FailedPreconditionError("evaluation: no example was evaluated");

  std::vector<std::pair<std::string, double>> metrics;
  metrics.emplace_back("num_examples", n);
  switch (layout.kind) {
    case EvaluationKind::kBinary: {
      const double log_loss = summed[kBinLoss] / n;
      metrics.emplace_back("loss", log_loss);
      metrics.emplace_back("log_loss", log_loss);
      metrics.emplace_back("accuracy", summed[kBinCorrect] / n);
      metrics.emplace_back("auc", DecodeAucBlock(summed.subspan(kBinAuc, kAucBlockLength), false));
      break;
    }
    case EvaluationKind::kMulticlass: {
      const size_t k = layout.num_classes;
      const double log_loss = summed[kMcLoss] / n;
      const double* true_count = summed.data() + kMcClasses;
      const double* predicted_count = true_count + k;
      const double* true_positive = predicted_count + k;
      double correct = 0, f1_sum = 0, present = 0;
      for (size_t c = 0; c < k; ++c) {
        correct += true_positive[c];
        // 2tp + fp + fn = true count + predicted count.
        const double denominator = true_count[c] + predicted_count[c];
        if (denominator <= 0) continue;  // in neither y_true nor y_pred: not averaged
        f1_sum += 2 * true_positive[c] / denominator;
        present += 1;
      }
      metrics.emplace_back("loss", log_loss);
      metrics.emplace_back("log_loss", log_loss);
      metrics.emplace_back("accuracy", correct / n);
      metrics.emplace_back("macro_f1", present > 0 ? f1_sum / present : kNaN);
      if (k == 2) {
        metrics.emplace_back(
            "auc", DecodeAucBlock(summed.subspan(kMcClasses + 3 * k, kAucBlockLength), false));
      }
      break;
    }
    case EvaluationKind::kRegression: {
      const double s = summed[kRegScale] / n;
      const double mse = s * s * summed[kRegSse] / n;
      const double sse = summed[kRegSse];
      double r2 = kNaN;
      if (n >= 2) {
        const double sst = std::max(0.0, summed[kRegSumSq] - summed[kRegSum] * summed[kRegSum] / n);
        if (sst > 0) {
          r2 = 1 - sse / sst;
        } else {
          r2 = sse == 0 ? 1.0 : 0.0;
        }
      }
      metrics.emplace_back("loss", 0.5 * mse);
      metrics.emplace_back("rmse", std::sqrt(mse));
      metrics.emplace_back("r2", r2);
      break;
    }
    case EvaluationKind::kSurvival: {
      const PairCounts binned =
          BinnedHarrell(summed.subspan(kSurvGrid, kSurvivalCells),
                        summed.subspan(kSurvGrid + kSurvivalCells, kSurvivalCells));
      const double concordant =
          binned.concordant - summed[kSurvBinnedConc] + summed[kSurvExactConc];
      const double comparable =
          binned.comparable - summed[kSurvBinnedComp] + summed[kSurvExactComp];
      metrics.emplace_back("num_events", summed[kSurvEvents]);
      metrics.emplace_back("c_index",
                           comparable > 0 ? std::clamp(concordant / comparable, 0.0, 1.0) : kNaN);
      break;
    }
  }
  return metrics;
}

}  // namespace tessera::proto
