// The parameter layout and initial values of each model kind, which the coordinator (to
// create the first global model and to check contribution lengths) and the clients (to
// train; client::Model::Initialize calls InitialParameters) must agree on bit for bit.
// Pure functions, no Eigen; thread-safe.
//
// d = number of features (dataset.features), K = model.num_classes. Every parameter
// vector is float32; matrices are row-major (out x in: row o holds the weights into
// output o).
//
//   LOGISTIC_REGRESSION  [w_1..w_d, b]                         d + 1       zeros
//   SOFTMAX_REGRESSION   [W (K x d), b (K)]                    K(d + 1)    zeros
//   LINEAR_REGRESSION    [w_1..w_d, b]                         d + 1       zeros
//   COX_PH               [w_1..w_d] (no intercept: it cancels  d           zeros
//                        out of the partial likelihood)
//   MLP                  layer by layer, input side first: for hidden layer l = 1..L
//                        (L = size of model.hidden_layers, widths h_l) and then the head,
//                        W_l (out_l x in_l) followed by b_l (out_l); in_1 = d,
//                        in_l = h_(l-1), the head has out = K (softmax, K >= 2) or 1
//                        (linear head for regression, K = 0 or 1).
//   GLM                  [b_0, w_1..w_d] (COX: [w_1..w_d])     d + 1 (d)   zeros
//                        with site fixed effects one intercept per site of the cohort
//                        first: proto/glm_layout.h (the coefficients of an exact regression)
//
// The convex models start at zero whatever the seed. The MLP's weights are drawn from
// common::SplitMix64(seed), one 64-bit output per weight in layout order (biases, which
// are zero, draw nothing): u = (next >> 11) * 2^-53 in [0, 1), w = float((2u - 1) * a)
// computed in double, with
//   a = sqrt(6 / in_l)             for the ReLU layers (He et al. 2015, "Kaiming uniform")
//   a = sqrt(6 / (in + out))       for the head (Glorot & Bengio 2010, "Xavier uniform").
// Only IEEE-exact operations (a correctly rounded sqrt, *, -, one rounding to float) are
// used, so the values are the same on every conforming platform.
#ifndef TESSERA_PROTO_MODEL_LAYOUT_H_
#define TESSERA_PROTO_MODEL_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::v1 {
class ModelSpec;
}  // namespace tessera::v1

namespace tessera::proto {

// Upper bound on the number of parameters of any model (4 GiB of float32).
inline constexpr size_t kMaxParameters = size_t{1} << 30;

// Number of parameters of `spec` for `num_features` inputs. INVALID_ARGUMENT, naming the
// field, for a model kind this build does not know, no features, or a bad combination
// (the rules of ValidateTaskSpec): num_classes above 10000, below 2 for
// SOFTMAX_REGRESSION, or set (non-zero) for LOGISTIC_REGRESSION, LINEAR_REGRESSION or
// COX_PH; hidden_layers on a kind other than MLP; an MLP without 1..3 hidden layers or
// with a width outside 1..4096; more than kMaxParameters parameters.
absl::StatusOr<size_t> NumParameters(const v1::ModelSpec& spec, size_t num_features);

// MLP only: the widths of its layers, input first: {d, h_1, .., h_L, out}. Same errors as
// NumParameters (and INVALID_ARGUMENT if `spec` is not an MLP).
absl::StatusOr<std::vector<size_t>> MlpLayerWidths(const v1::ModelSpec& spec, size_t num_features);

// The L2 penalty in force for a model trained on `pooled_rows` rows in all: spec.l2(), or
// 1 / (inverse_regularization * pooled_rows) when scikit-learn's C is given (0 when
// pooled_rows is 0). The coordinator sends it with every work item and each site computes it
// again from the spec and N, which the session set-up binds.
double ResolvedL2(const v1::ModelSpec& spec, uint64_t pooled_rows);

// Whether the statistics round also pools the label (its mean and standard deviation scale
// evaluation): regression models (LINEAR_REGRESSION, an MLP with a linear head) and
// COX_PH (the time column).
bool StatisticsIncludeLabel(const v1::ModelSpec& spec);

// The initial global model for `seed` (see above); the same on every platform. Same
// errors as NumParameters.
absl::StatusOr<std::vector<float>> InitialParameters(const v1::ModelSpec& spec, size_t num_features,
                                                     uint64_t seed);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_MODEL_LAYOUT_H_
