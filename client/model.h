// Models a site trains locally. A model is a flat float32 parameter vector plus the
// functions that give its loss, gradient and predictions on a dataset. The layout of the
// vector is defined, for every ModelSpec kind, in proto/model_layout.h (the coordinator
// builds the first global model from it). Eigen stays in the .cc files.
//
// Implementations are stateless beyond their shape and thread-safe: any number of threads
// may call any method of one Model concurrently. (The MLP keeps scratch buffers in
// thread_local storage, which each thread keeps until it exits.)
//
// Preconditions, for every method taking them (a broken one is a crash, not a Status):
// params.size() == num_parameters(), data.num_features == num_features(), the dataset's
// arrays match its row count, and CheckData(data, ...) is OK.
#ifndef TESSERA_CLIENT_MODEL_H_
#define TESSERA_CLIENT_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/dataset.h"

namespace tessera::v1 {
class ModelSpec;
}  // namespace tessera::v1

namespace tessera::client {

// Sums over a set of rows, as federated evaluation needs them.
struct EvaluationSums {
  uint64_t num_examples = 0;
  // Sum of per-example losses, without the regulariser: n times the mean loss that
  // LossAndGradient gives with l2 = 0 over the same rows. For COX_PH the negative partial
  // log-likelihood of the rows taken as one stratum.
  double loss_sum = 0;
  // Classifiers: rows whose most probable class (binary: p >= 0.5) is the label.
  // Regression and survival models: 0.
  uint64_t num_correct = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual size_t num_features() const = 0;
  virtual size_t num_parameters() const = 0;
  // Values Predict writes per row: 1 for binary logistic regression (P(y = 1)), K for a
  // K-class softmax model or MLP (the class probabilities), 1 for regression (y hat) and
  // for COX_PH (the linear predictor eta = w.x).
  virtual size_t num_outputs() const = 0;

  // Writes the initial parameters for `seed` into `params` (size num_parameters()): the
  // values of proto::InitialParameters, bit for bit.
  virtual void Initialize(uint64_t seed, std::span<float> params) const = 0;

  // OK if `data` fits this model: its shape, and labels as the model needs them (0/1;
  // classes 0..K-1; finite reals; survival times >= 0 with a 0/1 event per row).
  // INVALID_ARGUMENT otherwise, prefixed with `source_name` and naming the first bad row.
  virtual absl::Status CheckData(const Dataset& data, const std::string& source_name) const;

  // Mean loss over `rows` of `data` plus the model's L2 term 0.5*l2*||w||^2 (biases are
  // not penalised); adds its gradient into `grad` (size num_parameters(), caller zeroes).
  // `rows` are row indices into data (repeats allowed). COX_PH takes `rows` as one
  // stratum: its risk sets hold only rows of `rows`.
  virtual double LossAndGradient(std::span<const float> params, const Dataset& data,
                                 std::span<const size_t> rows, double l2,
                                 std::span<double> grad) const = 0;

  // Evaluation sums over all rows of `data`.
  virtual EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const = 0;

  // Per-row outputs (see num_outputs) for metrics: `out` is row-major, size
  // data.num_rows * num_outputs().
  virtual void Predict(std::span<const float> params, const Dataset& data,
                       std::span<double> out) const = 0;
};

// The model a ModelSpec names, for `num_features` inputs. INVALID_ARGUMENT naming the
// problem for a kind this build does not know or a bad combination of fields (the rules
// of proto::NumParameters: e.g. an MLP without hidden layers, SOFTMAX_REGRESSION with
// fewer than 2 classes).
absl::StatusOr<std::unique_ptr<Model>> MakeModel(const v1::ModelSpec& spec, size_t num_features);

// Binary logistic regression: params = [w_1..w_d, b]; p = sigmoid(w.x + b); loss is the
// mean binary cross-entropy. Zero initialisation (the loss is convex).
std::unique_ptr<Model> MakeLogisticRegression(size_t num_features);

// Multinomial logistic (softmax) regression over `num_classes` >= 2 classes:
// params = [W (K x d, row-major), b (K)]; p = softmax(W x + b); loss is the mean
// cross-entropy -log p_y; L2 on W only. Labels 0..K-1. Zero initialisation.
// sklearn's LogisticRegression(C) on n rows is l2 = 1 / (C * n).
std::unique_ptr<Model> MakeSoftmaxRegression(size_t num_features, uint32_t num_classes);

// Linear regression: params = [w_1..w_d, b]; y hat = w.x + b. The per-example loss is
// 0.5 * (y hat - y)^2 (half the squared error, so that its gradient is the residual), and
// the objective mean loss + 0.5 * l2 * ||w||^2, intercept not penalised. Zero
// initialisation.
//
// scikit-learn's Ridge(alpha) minimises the *summed* squared error
//   ||y - X w - b||^2 + alpha * ||w||^2.
// Dividing it by 2n gives mean(0.5 * r^2) + 0.5 * (alpha / n) * ||w||^2, so Ridge(alpha)
// on n rows is l2 = alpha / n here. (l2 = 2 * alpha / n would be right for an objective
// with the plain mean squared error mean(r^2); not this one.) LinearRegression() is l2 = 0.
std::unique_ptr<Model> MakeLinearRegression(size_t num_features);

// Arithmetic of a model's matrix work. kFloat is about twice as fast and is what
// MakeModel uses for the MLP; kDouble exists for gradient checks. Both take float32
// parameters and give double gradients and losses (sums are taken in double).
enum class Precision { kFloat, kDouble };

// Multilayer perceptron: `hidden_layers` (1..3 widths, each 1..4096) ReLU layers, then a
// softmax head over `num_classes` >= 2 classes (labels 0..K-1, cross-entropy loss) or,
// with num_classes 0 or 1, a linear head for regression (loss 0.5 * (y hat - y)^2).
// Layout and initialisation: proto/model_layout.h. L2 on every weight matrix, not on the
// biases. Preconditions as stated (MakeModel checks them and returns errors instead).
std::unique_ptr<Model> MakeMlp(size_t num_features, std::span<const uint32_t> hidden_layers,
                               uint32_t num_classes, Precision precision = Precision::kFloat);

// Cox proportional hazards: params = [w_1..w_d] (no intercept), eta = w.x. The loss over
// a set of rows is their negative partial log-likelihood with Breslow's handling of tied
// times, divided by the number of rows, with the rows as one stratum (risk sets never
// reach outside them, so never across sites):
//   -(1/n) * sum over events i of [eta_i - log(sum over j with t_j >= t_i of exp(eta_j))].
// Dataset.y is the time, Dataset.event the event indicator. Zero initialisation.
std::unique_ptr<Model> MakeCoxPh(size_t num_features);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_MODEL_H_
