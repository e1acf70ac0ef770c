#include "proto/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "proto/internal/ranking_metrics.h"
#include "proto/task.pb.h"

namespace tessera::proto {
namespace {

using internal::AddSurvivalRow;
using internal::BinnedHarrell;
using internal::DecodeAucBlock;
using internal::EncodeAucBlock;
using internal::ExactHarrell;
using internal::NoisyBinnedHarrell;
using internal::PairCounts;

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
constexpr size_t kSurvivalLength = kSurvGrid + internal::kSurvivalGridsLength;

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
  for (size_t r = 0; r < rows; ++r) {
    const double t = in.labels[r], ev = in.events[r], eta = in.predictions[r];
    if (!std::isfinite(t)) return RowError(r, "time is not finite");
    if (ev != 0 && ev != 1) return RowError(r, "event is not 0 or 1");
    if (!std::isfinite(eta)) return RowError(r, "prediction is not finite");
    AddSurvivalRow(t, eta, ev == 1, in.label_mean, in.label_stddev, in.for_noise,
                   out.data() + kSurvGrid);
    if (ev == 1) out[kSurvEvents] += 1;
  }
  out[kSurvN] = static_cast<double>(rows);
  if (in.for_noise) return out;  // no within-site pair terms
  const PairCounts exact = ExactHarrell(in.labels, in.predictions, in.events);
  const PairCounts binned = BinnedHarrell({out.data() + kSurvGrid, internal::kSurvivalGridsLength});
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
      const PairCounts binned =
          NoisyBinnedHarrell(summed.subspan(kSurvGrid, internal::kSurvivalGridsLength));
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

std::vector<std::pair<size_t, size_t>> EvaluationCountRanges(const EvaluationLayout& layout) {
  // The AUC block at `at`: two numerators (multiples of 1/2), then the two histograms.
  auto histograms = [](size_t at) {
    return std::pair<size_t, size_t>(at + 2, at + kAucBlockLength);
  };
  switch (layout.kind) {
    case EvaluationKind::kBinary:
      return {histograms(kBinAuc)};
    case EvaluationKind::kMulticlass:
      if (layout.num_classes != 2) return {};
      return {histograms(kMcClasses + 3 * static_cast<size_t>(layout.num_classes))};
    case EvaluationKind::kRegression:
      return {};
    case EvaluationKind::kSurvival:
      return {{kSurvGrid, kSurvivalLength}};
  }
  return {};
}

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
          BinnedHarrell(summed.subspan(kSurvGrid, internal::kSurvivalGridsLength));
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
