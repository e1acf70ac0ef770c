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

// Fills an AUC block (kAucBlockLength values at `block`).
void EncodeAucBlock(std::span<const double> scores, std::span<const uint8_t> positive,
                    double* block) {
  double* pos = block + kAucPos;
  double* neg = block + kAucNeg;
  for (size_t r = 0; r < scores.size(); ++r) {
    (positive[r] ? pos : neg)[AucBin(scores[r])] += 1;
  }
  block[kAucExact] = ExactAucNumerator(scores, positive);
  block[kAucBinned] = BinnedAucNumerator({pos, kAucHistogram}, {neg, kAucHistogram});
}

double DecodeAucBlock(std::span<const double> block) {
  auto pos = block.subspan(kAucPos, kAucHistogram);
  auto neg = block.subspan(kAucNeg, kAucHistogram);
  const double p = std::accumulate(pos.begin(), pos.end(), 0.0);
  const double n = std::accumulate(neg.begin(), neg.end(), 0.0);
  if (p <= 0 || n <= 0) return kNaN;
  const double numerator = BinnedAucNumerator(pos, neg) - block[kAucBinned] + block[kAucExact];
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
    out[kBinLoss] += ClippedLogLoss(y == 1 ? p : 1 - p);
    if ((p >= 0.5) == (y == 1)) out[kBinCorrect] += 1;
  }
  out[kBinN] = static_cast<double>(rows);
  EncodeAucBlock(in.predictions, positive, out.data() + kBinAuc);
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
    out[kMcLoss] += -std::log(clipped / clipped_sum);
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
    EncodeAucBlock(scores, positive, out.data() + kMcClasses + 3 * k);
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
    const double e = (yhat - y) / s, z = (y - m) / s;
    out[kRegSse] += e * e;
    out[kRegSum] += z;
    out[kRegSumSq] += z * z;
  }
  out[kRegN] = static_cast<double>(rows);
  // The coordinator learns s as (sum over sites of n * s) / n.
  out[kRegScale] = static_cast<double>(rows) * s;
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
    const size_t cell =
        TimeBin(t, in.label_mean, in.label_stddev) * kSurvivalRiskBins + RiskBin(eta);
    n_grid[cell] += 1;
    if (ev == 1) {
      e_grid[cell] += 1;
      out[kSurvEvents] += 1;
    }
  }
  out[kSurvN] = static_cast<double>(rows);
  const PairCounts exact = ExactHarrell(in.labels, in.predictions, in.events);
  const PairCounts binned = BinnedHarrell({e_grid, kSurvivalCells}, {n_grid, kSurvivalCells});
  out[kSurvExactConc] = exact.concordant;
  out[kSurvExactComp] = exact.comparable;
  out[kSurvBinnedConc] = binned.concordant;
  out[kSurvBinnedComp] = binned.comparable;
  return out;
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
    const EvaluationLayout& layout, std::span<const double> summed) {
  if (auto st = CheckLayout(layout); !st.ok()) return st;
  if (summed.size() != layout.length) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation: expected ", layout.length, " values, got ", summed.size()));
  }
  for (size_t i = 0; i < summed.size(); ++i) {
    if (!std::isfinite(summed[i])) {
      return absl::InvalidArgumentError(absl::StrCat("evaluation: value ", i, " is not finite"));
    }
  }
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
      metrics.emplace_back("auc", DecodeAucBlock(summed.subspan(kBinAuc, kAucBlockLength)));
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
        metrics.emplace_back("auc",
                             DecodeAucBlock(summed.subspan(kMcClasses + 3 * k, kAucBlockLength)));
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
