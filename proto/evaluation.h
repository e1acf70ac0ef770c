// Federated evaluation metrics from summed vectors. A site turns the model's predictions
// on its held-out rows into a vector of doubles (EncodeEvaluation); the coordinator only
// ever sees that vector summed over the cohort and turns the sum into named metrics
// (DecodeEvaluation). Every entry is a plain sum over rows or over pairs of rows of one
// site, never normalised per site, so the plain path (adding vectors) and secure
// aggregation (unmasking the sum) give the same metrics. The stage is encoded as fixed
// point with 16 fractional bits: every entry below is an integer count, a multiple of
// 1/4, or a real sum of moderate size (log-losses, squared errors in units of the label's
// standard deviation), so counts add exactly and real sums to ~1e-5 absolute.
//
// Layouts (n = rows, K = classes, "AUC block" and the survival grid below):
//
//   BINARY      [n, sum log-loss, correct, AUC block]                      3 + 4102 values
//   MULTICLASS  [n, sum log-loss, true_k (K), predicted_k (K), tp_k (K)]   2 + 3K values
//               (+ AUC block on the class-1 probability when K = 2)
//   REGRESSION  [n, n*s, sum ((yhat - y)/s)^2, sum (y - m)/s, sum ((y - m)/s)^2]   5 values
//               m, s = label_mean, label_stddev of the statistics round
//   SURVIVAL    [n, events, exact C terms (2), binned C terms (2), E grid (T*R),
//                N grid (T*R)]                                            6 + 20000 values
//
// Multiclass sums the confusion matrix's diagonal and margins rather than the K x K
// matrix: they are all that accuracy and macro-F1 need, and K may be up to 10000.
//
// ---- Metrics (DecodeEvaluation, in this order; the names are an interface) ----
//   binary      num_examples, loss, log_loss, accuracy, auc
//   multiclass  num_examples, loss, log_loss, accuracy, macro_f1 [, auc when K = 2]
//   regression  num_examples, loss, rmse, r2
//   survival    num_examples, num_events, c_index
// - log_loss: mean of -log p(true class), probabilities clipped to [1e-15, 1 - 1e-15]
//   (multiclass rows are then renormalised, as scikit-learn 1.2's log_loss does). loss is
//   the same number (the training objective without regulariser).
// - accuracy: binary predicts 1 when P(y = 1) >= 0.5 (the client models' rule; scikit-learn
//   predicts 0 at exactly 0.5); multiclass predicts the most probable class, the lowest
//   index among ties (numpy's argmax).
// - macro_f1: scikit-learn's f1_score(average="macro"): the mean over the classes that
//   occur among the true or the predicted labels of F1_k = 2 tp_k / (2 tp_k + fp_k + fn_k).
//   A class with no true and no predicted row is left out of the mean (scikit-learn
//   averages over unique_labels(y_true, y_pred)); a class that occurs on one side only has
//   tp = 0 and so F1 = 0, which is what scikit-learn's zero_division gives it.
// - loss for regression is 0.5 * MSE (the training convention); rmse = sqrt(MSE);
//   r2 = 1 - SSE / SST with SST around the pooled test mean (r2_score on the pooled test
//   rows). As in scikit-learn: NaN with fewer than 2 rows; with SST = 0, 1 for a perfect
//   fit and 0 otherwise.
// - A metric the cohort cannot define is NaN: auc when one class is absent, c_index
//   without a comparable pair.
//
// ---- AUC block (binary; multiclass K = 2) ----
//   [exact within-site numerator, binned within-site numerator,
//    positives by score bin (kAucBins + 2), negatives by score bin (kAucBins + 2)]
// The score is the logit of P(y = 1). Bins are 1/64 wide in logit space over [-16, 16]
// (2048 bins, p in about [1.1e-7, 1 - 1.1e-7]), plus one underflow and one overflow bin.
// AUC = (pairs (pos, neg) with s_pos > s_neg + 1/2 pairs with s_pos = s_neg) / (P N). From
// the pooled histograms a pair in different bins is ordered exactly and a pair in the same
// bin counts 1/2. Each site also sends the exact numerator over its own (pos, neg) pairs
// and the binned estimate of that same numerator from its own histograms, and the
// coordinator swaps one for the other: only cross-site pairs are estimated, and only those
// that share a bin contribute error. Exact ties (the same score) share a bin and count 1/2
// both ways, so they are exact.
// Error bound: |AUC_est - AUC| <= (1/2) * (cross-site pairs sharing a bin) / (P N)
// <= (1/2) * sum_b pos_b neg_b / (P N), about (w / 2) * integral f+ f- for score densities
// f+, f- in logit space and bin width w = 1/64 (~0.002 when both classes' logits crowd
// into a range of ~2). The actual error is far smaller: a pair inside a 1/64-logit bin is
// ordered almost at random, so its 1/2 is right on average, and tied scores (frequent with
// discrete features) are exact. Measured (tests/common/evaluation_test.cc, a logistic
// scorer, 3-5 sites): breast_cancer_wisconsin 0 on the test split, 7e-6 on all 569 rows;
// smoking_nhis (weak signal, logits in [-3, -0.2]) 6e-5..7e-5 on the test split, 1e-5..2e-5
// on all 10,000 rows. One site gives the exact AUC. Overflow bins only matter for
// probabilities beyond 1 - 1.1e-7 (or below 1.1e-7) on both classes at different sites.
//
// ---- Survival: Harrell's C ----
// A pair (i, j) is comparable if event_i = 1 and t_i < t_j, or t_i = t_j with event_j = 0;
// it is concordant if eta_i > eta_j, and counts 1/2 if eta_i = eta_j.
// C = (concordant + ties / 2) / comparable.
// Grid: kSurvivalTimeBins (100) time bins uniform in Phi(z), z = (t - label_mean) /
// label_stddev and Phi the normal CDF (about equal-mass bins for the pooled times, so few
// pairs share a time bin), times kSurvivalRiskBins (100) risk bins uniform in
// asinh(eta / 0.25) over eta in [-16, 16] (fine near 0, where a Cox linear predictor on
// standardised features lives, and relative width ~7% for large |eta|, so the resolution
// scales with the model's spread), outer bins open-ended. E counts events and N all rows
// per (time bin, risk bin) cell.
// From the pooled grids, for an event i and a row j != i:
//   - different time bins: comparable iff j's bin is later; concordant iff i's risk bin is
//     higher, 1/2 in the same risk bin;
//   - the same time bin: comparable with weight 1/2 (either may come first), and then
//     concordant as above.
// As for AUC, each site adds its exact concordant and comparable counts over its own
// pairs and their binned estimates, so that only cross-site pairs are estimated.
// Error: pairs sharing a risk bin are close in risk, so their true concordance is near
// 1/2 (error ~bin width / 12 per pair); pairs of events sharing a time bin lose their
// order, which biases them towards 1/2 (they are ~1/T of the comparable pairs with
// equal-mass bins). One site gives the exact C. Measured on rotterdam with the reference
// Cox model (tests/common/evaluation_test.cc), 2-5 sites: error 1.0e-4..1.4e-4 on the test
// split (C 0.7094) and on the training split (C 0.6915); with eta scaled by 0.2, 5 or 20,
// at most 1e-3.
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_EVALUATION_H_
#define TESSERA_PROTO_EVALUATION_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::v1 {
class ModelSpec;
}  // namespace tessera::v1

namespace tessera::proto {

enum class EvaluationKind { kBinary, kMulticlass, kRegression, kSurvival };

struct EvaluationLayout {
  EvaluationKind kind;
  uint32_t num_classes = 0;  // classification (2 for binary)
  size_t length = 0;         // values in the vector
};

// AUC bins: uniform in logit over [-kAucLogitRange, kAucLogitRange], kAucBinsPerUnit per
// logit unit, plus an underflow and an overflow bin.
inline constexpr double kAucLogitRange = 16.0;
inline constexpr int kAucBinsPerUnit = 64;
inline constexpr size_t kAucBins = 2048;
inline constexpr size_t kAucBlockLength = 2 + 2 * (kAucBins + 2);
// Survival grid.
inline constexpr size_t kSurvivalTimeBins = 100;
inline constexpr size_t kSurvivalRiskBins = 100;
inline constexpr double kSurvivalRiskScale = 0.25;
inline constexpr double kSurvivalRiskRange = 16.0;
// Upper bound on num_classes (ValidateTaskSpec's).
inline constexpr uint32_t kMaxEvaluationClasses = 10000;

// From the task's model: LOGISTIC_REGRESSION -> binary; SOFTMAX_REGRESSION -> multiclass
// (num_classes); MLP with num_classes >= 2 -> multiclass (K = 2 is still multiclass but
// also gets the binary AUC); MLP with 0/1 classes and LINEAR_REGRESSION -> regression;
// COX_PH -> survival. INVALID_ARGUMENT otherwise (unknown kind, SOFTMAX_REGRESSION with
// fewer than 2 classes, more than kMaxEvaluationClasses classes).
absl::StatusOr<EvaluationLayout> MakeEvaluationLayout(const v1::ModelSpec& model);

struct EvaluationInput {
  // rows x outputs, row-major: binary P(y = 1); multiclass K probabilities; regression
  // y-hat; survival eta (the Cox linear predictor).
  std::span<const double> predictions;
  size_t outputs = 1;
  // Class index | real value | survival time.
  std::span<const double> labels;
  // Survival only (1 = event, 0 = censored); ignored for the other kinds.
  std::span<const double> events;
  // Pooled mean and population sd of the label (survival: of the time column) from the
  // statistics round. Used by regression (shift and scale) and survival (time bins).
  double label_mean = 0;
  double label_stddev = 1;
};

// Client side: the site's evaluation sums over its held-out rows (zero rows give a vector
// of zeros). INVALID_ARGUMENT on a layout whose length does not match its kind, on
// outputs != 1 (K for multiclass), on size mismatches, on a label_mean that is not finite
// or a label_stddev that is not finite and > 0 (regression, survival), and on bad rows:
// probabilities outside [0, 1], non-finite predictions or labels, labels that are not a
// class index, events not 0/1. Row errors name the row index, never a value.
absl::StatusOr<std::vector<double>> EncodeEvaluation(const EvaluationLayout& layout,
                                                     const EvaluationInput& input);

// Coordinator side: named metrics from the cohort's summed vector, in the fixed order
// above. INVALID_ARGUMENT on a wrong length or non-finite values; FAILED_PRECONDITION if no
// example was evaluated.
absl::StatusOr<std::vector<std::pair<std::string, double>>> DecodeEvaluation(
    const EvaluationLayout& layout, std::span<const double> summed);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_EVALUATION_H_
