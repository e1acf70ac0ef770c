// Federated evaluation metrics from summed vectors. A site turns the model's predictions
// on its held-out rows into a vector of doubles (EncodeEvaluation); the coordinator only
// ever sees that vector summed over the cohort and turns the sum into named metrics
// (DecodeEvaluation). Every entry is a plain sum over rows or over pairs of rows of one
// site, never normalised per site, so the plain path (adding vectors) and secure
// aggregation (unmasking the sum) give the same metrics. The stage is encoded as fixed
// point with 16 fractional bits: every entry below is an integer count, a multiple of
// 1/4, or a real sum of moderate size (log-losses, squared errors in units of the label's
// standard deviation), so counts add exactly and real sums to ~1e-5 absolute; the ranges
// of row counts (EvaluationCountRanges) go as integers, in two words each instead of three
// (secagg/stage_encoding.h).
//
// Layouts (n = rows, K = classes, "AUC block" and the survival grid below):
//
//   BINARY      [n, sum log-loss, correct, AUC block]                      3 + 522 values
//   MULTICLASS  [n, sum log-loss, true_k (K), predicted_k (K), tp_k (K)]   2 + 3K values
//               (+ AUC block on the class-1 probability when K = 2)
//   REGRESSION  [n, n*s, sum ((yhat - y)/s)^2, sum (y - m)/s, sum ((y - m)/s)^2]   5 values
//               m, s = label_mean, label_stddev of the statistics round
//   SURVIVAL    [n, events, exact C terms (2), binned C terms (2), grids E, N,
//                E_t, N_t, E_r, N_r (T*R each)]                           6 + 4800 values
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
//    positives by score bin (kAucBins + 2), negatives by score bin (kAucBins + 2),
//    positives' offsets by score bin (kAucBins + 2), negatives' offsets (kAucBins + 2)]
// The score is the logit s of P(y = 1). The kAucBins bins are uniform in
// asinh(s / kAucScoreScale) over s in [-kAucLogitRange, kAucLogitRange], plus one underflow
// and one overflow bin: 0.023 logit wide at s = 0, 0.09 at |s| = 1, 0.36 at |s| = 4 (about
// 9 % of |s| beyond), so a model whose scores crowd into a narrow range and one whose
// scores spread over tens of logits are both resolved; p in about [4e-18, 1 - 4e-18]. A
// row's offset is its position inside its bin in kAucOffsetSteps steps (0 .. steps - 1,
// from the bin's lower edge in the asinh scale; 0 in the outer bins); the offset ranges
// sum these integers.
// AUC = (pairs (pos, neg) with s_pos > s_neg + 1/2 pairs with s_pos = s_neg) / (P N). From
// the pooled histograms a pair in different bins is ordered exactly; a pair (i, j) in the
// same bin counts 1/2 + (o_i - o_j) / kAucOffsetSteps, o the offsets: summed over a bin,
// 1/2 P_b N_b + (N_b O+_b - P_b O-_b) / steps from the bin's counts and offset sums alone.
// That term is the best linear predictor of [s_i > s_j] for two uniform positions in a bin
// (and exact for tied scores, which share the offset), so densities that rise or fall
// across a bin no longer bias the estimate: the error left is second order in the bin
// width. Each site also sends the exact numerator over its own (pos, neg) pairs and the
// binned estimate of that same numerator from its own histograms and offsets, and the
// coordinator swaps one for the other: only cross-site pairs are estimated, and only those
// that share a bin contribute error, at most 1/2 each (|1/2 + o_i - o_j - [s_i > s_j]| <=
// 1/2).
// Error bound: |AUC_est - AUC| <= (1/2) * (cross-site pairs sharing a bin) / (P N).
// Measured (tests/proto/evaluation_test.cc, a logistic scorer, 3 and 5 sites, its logits
// also scaled by 0.05, 0.2 and 5 to crowd or spread them): at most 8e-5 in all 32 cases
// (breast_cancer_wisconsin and smoking_nhis, test split and all rows); the 2,048 uniform
// 1/64-logit bins over [-16, 16] this replaced erred by up to 2.9e-3 (smoking's logits
// times 0.05) and 9.4e-4 (breast cancer's times 5, beyond their range), in 4 times the
// words. One site gives the exact AUC.

// ---- Survival: Harrell's C ----
// A pair (i, j) is comparable if event_i = 1 and t_i < t_j, or t_i = t_j with event_j = 0;
// it is concordant if eta_i > eta_j, and counts 1/2 if eta_i = eta_j.
// C = (concordant + ties / 2) / comparable.
// Grids: kSurvivalTimeBins (20) time bins uniform in Phi(z), z = (t - label_mean) /
// label_stddev and Phi the normal CDF (about equal-mass bins for the pooled times), times
// kSurvivalRiskBins (40) risk bins uniform in asinh(eta / kSurvivalRiskScale) over eta in
// [-kSurvivalRiskRange, kSurvivalRiskRange] (0.009 wide at eta = 0, 0.44 at |eta| = 1 and
// 44 % of |eta| beyond: a Cox linear predictor crowded near 0 and one spread over tens of
// units are both resolved, the positions inside the bins doing the rest; the outer bins
// open-ended).
// Per (time bin, risk bin) cell: E counts events and N all rows; E_t and N_t sum the
// events' and all rows' positions inside their time bin, E_r and N_r inside their risk
// bin, each in kSurvivalOffsetSteps integer steps (rows beyond the risk range at step 0
// below it, at the last step above it). Layout: [n, events, exact C terms (2), binned C
// terms (2), E, N, E_t, N_t, E_r, N_r], each grid time-major: 6 + 6 * 800 values.
// From the pooled grids, for an event i and a row j != i, with positions tau (time) and
// rho (risk) in units of a bin, (steps + 1/2) / kSurvivalOffsetSteps:
//   - different time bins: comparable iff j's bin is later; concordant iff i's risk bin is
//     higher, 1/2 + rho_i - rho_j in the same risk bin;
//   - the same time bin: comparable with weight 1/2 + tau_j - tau_i, and then concordant
//     with that weight in a lower risk bin, with weight 1/4 + (tau_j - tau_i) / 2 +
//     (rho_i - rho_j) / 2 in the same cell (the product of the two, first order).
// Every term is linear in the positions, so the cells' position sums give each sum over
// pairs; as for the AUC's offsets, the estimate is unbiased to first order when the times
// or risks crowd towards one side of a bin, and tied times or risks share a position.
// As for AUC, each site adds its exact concordant and comparable counts over its own
// pairs and their binned estimates, so that only cross-site pairs are estimated.
// Measured on rotterdam with the reference Cox model (tests/proto/evaluation_test.cc), 2,
// 3 and 5 sites, test split and training rows, eta also scaled by 0.05, 0.2, 5 and 20:
// error at most 2.6e-4 (2.7e-5..1.9e-4 at scale 1; C 0.7094 on the test split, 0.6915 on
// the training rows).
// The 100 x 100 grids without positions before 4 December 2026 (20,006 values instead of
// 4,806) erred by 1.0e-4..1.4e-4 at scale 1, up to 9.9e-4 at scale 0.2, 6.1e-4 at 20 and
// 1.6e-2 at 0.05.
// One site gives the exact C.

// ---- Evaluation under differential privacy (EvaluationInput::for_noise) ----
// With PrivacySpec.evaluation_noise_multiplier = sigma_e > 0 every evaluation sum is a
// Gaussian mechanism at the record level: each site encodes for noise, then adds noise of
// standard deviation sigma_e * Delta / sqrt(t) to every entry (client/privacy.h,
// AddEvaluationNoise), Delta = EvaluationRecordSensitivity(layout) and t the session's
// threshold, so a sum over at least t honest sites carries noise of standard deviation at
// least sigma_e * Delta. The encoding for noise differs from the exact one so that Delta is
// small and independent of the data:
//   - Every entry is a sum of per-row terms (neighbouring data sets differ by one row of
//     one site, added or removed, which moves each entry by that row's term), and every
//     per-row term lies in [-1, 1]: real-valued terms are clipped and divided by their
//     bound, and the decoder multiplies back.
//   - The exact and the binned within-site pair terms (AUC numerators, C-index concordant
//     and comparable counts) are sent as 0: one row changes them by up to the site's size.
//     The metric then comes from the pooled histogram or grid alone (binned estimate).
//   - Histograms and grids are coarse (fewer cells carry the noise that enters the
//     metric). Rows are binned into representative cells of the same layout (same length);
//     the decoder reads only those and ignores the rest, which hold noise only.
// Per-row terms and bounds (|term| <= bound; entries not listed are 0):
//   binary      n: 1; log-loss / kMaxRowLogLoss: 1 (the clip at 1e-15 bounds a row's
//               log-loss by -log(1e-15) = kMaxRowLogLoss); correct: 1; one AUC histogram
//               cell: 1.                                           Delta = sqrt(4) = 2
//   multiclass  n: 1; min(log-loss, kMaxRowLogLoss) / kMaxRowLogLoss: 1 (the renormalised
//               loss of a row whose probabilities do not sum to 1 can exceed the bound:
//               clipped); true_k: one class, 1; predicted_k: one class, 1; tp_k: at most
//               one class, 1; K = 2: one AUC histogram cell, 1.
//                                                Delta = sqrt(5), sqrt(6) for K = 2
//   regression  n: 1; n*s: not sent (0; the decoder takes s from its options);
//               e^2 / B^2, z / B, z^2 / B^2 with e = clamp((yhat - y)/s, -B, B),
//               z = clamp((y - m)/s, -B, B), B = kRegressionNoiseClip: 1 each. Residuals
//               and labels beyond B label sds count as B sds (rmse, r2 then shrink
//               towards what the clip allows).                      Delta = sqrt(4) = 2
//   survival    n: 1; events: 1; one E grid cell: 1 (events only); one N grid cell: 1.
//                                                                   Delta = sqrt(4) = 2
// Delta is the square root of the sum of the squared bounds: an upper bound on the L2
// change of a site's vector when one of its rows is added or removed (not always tight:
// a correct binary row has a log-loss of at most log 2).
// Coarse cells: AUC scores (logits) in kAucNoiseBinsPerUnit bins per logit unit over
// [-kAucNoiseLogitRange, kAucNoiseLogitRange], plus the underflow and overflow bins, the
// coarse bin c counted at index c of each histogram (the first 2 * kAucNoiseLogitRange *
// kAucNoiseBinsPerUnit + 2 entries; no offsets); survival cells of
// kSurvivalNoiseTimeBins time bins uniform in Phi(z) by kSurvivalNoiseRiskBins risk bins
// uniform in asinh(eta / kSurvivalNoiseRiskScale) over [-kSurvivalNoiseRiskRange,
// kSurvivalNoiseRiskRange], the coarse cell (a, r)
// counted at index a * kSurvivalNoiseRiskBins + r of the E and N grids (no positions).
// Pairs in a shared coarse cell count 1/2 (no
// offsets), now also within a site. The cell sizes trade the binning error
// (smaller cells) against the noise summed over the cells (fewer cells); measured
// (tests/common/evaluation_test.cc, all rows, 5 sites), rms error at sigma_e = 0 / 1 / 5:
// AUC smoking_nhis 0.011 / 0.011 / 0.016, breast_cancer_wisconsin 8e-5 / 0.010 / 0.050;
// C rotterdam 0.005 / 0.009 / 0.039; r2 diabetes 0 / 0.050 / 0.24; accuracy digits
// 0 / 0.004 / 0.021. Finer AUC bins (4 per unit) halve smoking's binning error but add
// noise; at sigma_e >= 1 the noise dominates on data sets of a few thousand rows.
// m, s (regression) and the time bins' label_mean, label_stddev come from the statistics
// round and are inputs of the mechanism, not part of its output (the statistics release
// itself is exact; docs/research.md).
// Decoding noisy sums (EvaluationDecodeOptions::noise_stddev > 0) is post-processing of
// the noisy sums: counts may be fractional or negative, and every metric is clamped to its
// range (accuracy, AUC, C in [0, 1], log-loss >= 0; r2 <= 1). num_examples is the noisy row
// count rounded to an integer; the metrics divide by it.
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
class PrivacySpec;
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::proto {

enum class EvaluationKind { kBinary, kMulticlass, kRegression, kSurvival };

struct EvaluationLayout {
  EvaluationKind kind;
  uint32_t num_classes = 0;  // classification (2 for binary)
  size_t length = 0;         // values in the vector
};

// AUC bins: uniform in asinh(logit / kAucScoreScale) over logits in [-kAucLogitRange,
// kAucLogitRange], plus an underflow and an overflow bin; a row's offset inside its bin in
// kAucOffsetSteps steps.
inline constexpr double kAucScoreScale = 0.25;
inline constexpr double kAucLogitRange = 40.0;
inline constexpr size_t kAucBins = 128;
inline constexpr int kAucOffsetSteps = 64;
inline constexpr size_t kAucBlockLength = 2 + 4 * (kAucBins + 2);
// Survival grid.
inline constexpr size_t kSurvivalTimeBins = 20;
inline constexpr size_t kSurvivalRiskBins = 40;
inline constexpr double kSurvivalRiskScale = 0.02;
inline constexpr double kSurvivalRiskRange = 64.0;
inline constexpr int kSurvivalOffsetSteps = 64;
// Upper bound on num_classes (ValidateTaskSpec's).
inline constexpr uint32_t kMaxEvaluationClasses = 10000;

// Encoding for noise (see above).
// -log(1e-15): the largest log-loss of one row, probabilities clipped to [1e-15, 1 - 1e-15].
inline constexpr double kMaxRowLogLoss = 34.538776394910684;
// Regression: residuals and labels are clipped to this many label standard deviations.
inline constexpr double kRegressionNoiseClip = 3.0;
// AUC: 1/2-logit bins over [-8, 8] (32 bins), plus the underflow and overflow bins.
inline constexpr double kAucNoiseLogitRange = 8.0;
inline constexpr int kAucNoiseBinsPerUnit = 2;
// Survival: 10 time bins x 20 risk bins.
inline constexpr size_t kSurvivalNoiseTimeBins = 10;
inline constexpr size_t kSurvivalNoiseRiskBins = 20;
inline constexpr double kSurvivalNoiseRiskScale = 0.25;
inline constexpr double kSurvivalNoiseRiskRange = 16.0;
// Upper bound on PrivacySpec.evaluation_noise_multiplier (ValidateTaskSpec's). Far beyond
// any useful setting; it keeps a site's noise (standard deviation <= 1e6 * sqrt(6) per
// entry) thousands of standard deviations inside the evaluation stage's fixed-point range
// (WIDE, 16 fractional bits, 3 limbs of at least 17 bits for up to 16384 sites: |value| <
// 2^34 ~ 1.7e10; entries encoded for noise are otherwise at most the site's row count), so
// the encoding, which saturates rather than declines, never clips the noise.
inline constexpr double kMaxEvaluationNoiseMultiplier = 1e6;

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
  // Encode for evaluation noise (the section above): per-row terms clipped and scaled to
  // [-1, 1], no within-site pair terms, coarse histograms and grids. Set it exactly when the
  // task asks for evaluation noise (EvaluationNoiseOn), and then add the noise
  // (client/privacy.h, AddEvaluationNoise).
  bool for_noise = false;
};

// True when the task's evaluation sums are noised: privacy is set and
// privacy.evaluation_noise_multiplier > 0. Both sides decide with this function.
bool EvaluationNoiseOn(const v1::TaskSpec& spec);

// Delta: the largest L2 change of a site's vector encoded for noise when one of its rows is
// added or removed (the table above): 2 for binary, regression and survival; sqrt(5) for
// multiclass, sqrt(6) for multiclass with K = 2. For a layout from MakeEvaluationLayout.
double EvaluationRecordSensitivity(const EvaluationLayout& layout);

// The smallest standard deviation of the noise in each summed entry when at least t sites
// added their share: privacy.evaluation_noise_multiplier * EvaluationRecordSensitivity(
// layout); 0 when evaluation noise is off. m >= t honest sites give sqrt(m / t) times this.
double EvaluationNoiseStddev(const v1::PrivacySpec& privacy, const EvaluationLayout& layout);

// The entries of `layout`'s vector that count rows whatever the data — the AUC block's
// two histograms, the survival grids (E and N) — as [begin, end) ranges, in order. Encoded
// without noise they are non-negative integers, so the stage encoding carries them exactly
// in fewer words than the real sums around them (secagg/stage_encoding.h); with noise they
// are real numbers like the rest. Pure.
std::vector<std::pair<size_t, size_t>> EvaluationCountRanges(const EvaluationLayout& layout);

// Client side: the site's evaluation sums over its held-out rows (zero rows give a vector
// of zeros), encoded for noise when input.for_noise. INVALID_ARGUMENT on a layout whose length does
// not match its kind, on outputs != 1 (K for multiclass), on size mismatches, on a label_mean that
// is not finite or a label_stddev that is not finite and > 0 (regression, survival), and on bad
// rows: probabilities outside [0, 1], non-finite predictions or labels, labels that are not a class
// index, events not 0/1. Row errors name the row index, never a value.
absl::StatusOr<std::vector<double>> EncodeEvaluation(const EvaluationLayout& layout,
                                                     const EvaluationInput& input);

struct EvaluationDecodeOptions {
  // 0: the sums are exact (sites encoded without for_noise). > 0: the sites encoded for
  // noise and added evaluation noise; the standard deviation of the noise in each summed
  // entry (EvaluationNoiseStddev gives a lower bound; it decides which multiclass classes
  // count as present in the macro-F1: those whose noisy true + predicted count exceeds
  // 4 * noise_stddev).
  double noise_stddev = 0;
  // With noise, regression only: the label sd s the sites used (the standardisation's
  // label_stddev), which the sites then do not send. Finite and > 0.
  double label_stddev = 0;
};

// Coordinator side: named metrics from the cohort's summed vector, in the fixed order
// above. INVALID_ARGUMENT on a wrong length or non-finite values (also on options that are
// not finite, or a regression with noise without label_stddev > 0); FAILED_PRECONDITION if
// no example was evaluated (with noise: if the noisy row count is below 1). Exact sums need
// an integer row count (INVALID_ARGUMENT otherwise).
absl::StatusOr<std::vector<std::pair<std::string, double>>> DecodeEvaluation(
    const EvaluationLayout& layout, std::span<const double> summed,
    const EvaluationDecodeOptions& options = {});

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_EVALUATION_H_
