// The parameter layout of each model kind, which the coordinator (to create the first
// global model and to check contribution lengths) and the clients (to train) must agree
// on. Pure functions; thread-safe.
//
//   LOGISTIC_REGRESSION  [w_1..w_d, b]   zero-initialised (the loss is convex)
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

// Number of parameters of `spec` for `num_features` inputs. INVALID_ARGUMENT for a model
// kind this build does not know, or no features.
absl::StatusOr<size_t> NumParameters(const v1::ModelSpec& spec, size_t num_features);

// The initial global model for `seed`; the same on every platform.
absl::StatusOr<std::vector<float>> InitialParameters(const v1::ModelSpec& spec,
                                                     size_t num_features, uint64_t seed);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_MODEL_LAYOUT_H_
