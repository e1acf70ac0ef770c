// Helpers shared by the model implementations (client/*.cc). Not part of the public API;
// include only from .cc files: eigen_rows.h pulls in Eigen.
#ifndef TESSERA_CLIENT_INTERNAL_MODEL_UTIL_H_
#define TESSERA_CLIENT_INTERNAL_MODEL_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "client/dataset.h"
#include "client/internal/check.h"

namespace tessera::client::internal {

// The ModelSpec kinds, without the generated proto header (which is slow to compile).
enum class LayoutKind { kLogistic, kSoftmax, kLinear, kMlp, kCox };

// Writes proto::InitialParameters for the spec these arguments describe into `params`;
// crashes if the layout rejects them or its size differs (the factories' preconditions).
void InitializeFromLayout(LayoutKind kind, size_t num_features, uint32_t num_classes,
                          std::span<const uint32_t> hidden_layers, uint64_t seed,
                          std::span<float> params);

// The preconditions every Model method states in client/model.h.
inline void CheckShapes(size_t num_features, size_t num_parameters, std::span<const float> params,
                        const Dataset& data) {
  TESSERA_CLIENT_CHECK(params.size() == num_parameters);
  TESSERA_CLIENT_CHECK(data.num_features == num_features);
  TESSERA_CLIENT_CHECK(data.x.size() == data.num_rows * num_features);
  TESSERA_CLIENT_CHECK(data.y.size() == data.num_rows);
}

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_MODEL_UTIL_H_
