// Models a site trains locally. A model is a flat float32 parameter vector plus the
// functions that give its loss, gradient and predictions on a dataset; the layout of the
// vector is the model's own. Eigen stays in the .cc files.
//
// Implementations are stateless beyond their shape and thread-safe.
#ifndef TESSERA_CLIENT_MODEL_H_
#define TESSERA_CLIENT_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"
#include "client/dataset.h"

namespace tessera::v1 {
class ModelSpec;
}  // namespace tessera::v1

namespace tessera::client {

// Sums over a set of rows, as federated evaluation needs them.
struct EvaluationSums {
  uint64_t num_examples = 0;
  double loss_sum = 0;  // sum of per-example losses, without the regulariser
  uint64_t num_correct = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual size_t num_features() const = 0;
  virtual size_t num_parameters() const = 0;

  // Writes the initial parameters for `seed` into `params` (size num_parameters()).
  virtual void Initialize(uint64_t seed, std::span<float> params) const = 0;

  // Mean loss over `rows` of `data` plus the model's L2 term 0.5*l2*||w||^2 (biases are
  // not penalised); adds its gradient into `grad` (size num_parameters(), caller zeroes).
  // `rows` are row indices into data.
  virtual double LossAndGradient(std::span<const float> params, const Dataset& data,
                                 std::span<const size_t> rows, double l2,
                                 std::span<double> grad) const = 0;

  // Evaluation sums over all rows of `data`.
  virtual EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const = 0;
};

// The model a ModelSpec names, for `num_features` inputs. INVALID_ARGUMENT for a kind
// this build does not know.
absl::StatusOr<std::unique_ptr<Model>> MakeModel(const v1::ModelSpec& spec, size_t num_features);

// Binary logistic regression: params = [w_1..w_d, b]; p = sigmoid(w.x + b); loss is the
// mean binary cross-entropy. Zero initialisation (the loss is convex).
std::unique_ptr<Model> MakeLogisticRegression(size_t num_features);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_MODEL_H_
