// Plain data shared by the MLP's kernels (client/internal/mlp_kernel.h) and their callers.
// Data only, no functions: this header is compiled into translation units built for
// different instruction sets (see client/mlp_avx2.cc), and an inline function compiled
// there could be the copy the linker keeps for everyone.
#ifndef TESSERA_CLIENT_INTERNAL_MLP_TYPES_H_
#define TESSERA_CLIENT_INTERNAL_MLP_TYPES_H_

#include <cstddef>

namespace tessera::client::internal {

// Rows per block of the forward and backward passes: bounds the workspace whatever the
// number of rows of a call, and keeps a training mini-batch in one block.
inline constexpr size_t kMlpBlockRows = 256;
inline constexpr size_t kMlpMaxLayers = 4;  // 3 hidden + head

struct MlpDims {
  size_t num_layers = 0;                  // weight layers: hidden layers + head
  size_t widths[kMlpMaxLayers + 1] = {};  // widths[0] = d, widths[num_layers] = outputs
  size_t offsets[kMlpMaxLayers] = {};     // start of W_l in the parameter vector
  size_t num_parameters = 0;
  bool softmax = false;  // else a linear head with one output
};

// Caller-owned scratch memory for one call. Sizes, with B = kMlpBlockRows:
template <typename T>
struct MlpWorkspace {
  T* x;            // B x d: the gathered rows
  T* activations;  // B x (sum of hidden widths): post-ReLU outputs, layer after layer
  T* logits;       // B x outputs
  T* delta[2];     // B x (widest hidden or output layer), each
  T* grad;         // num_parameters: the gradient, in T
};

// The rows of a call: row i of the call is data row rows[i], or row i if rows is null.
struct MlpRows {
  const double* x;  // the dataset's row-major features
  const double* y;  // its labels
  const size_t* rows;
  size_t count;
  // Each data row's weight in the training loss (Dataset.weight), or null for 1.
  const double* weight = nullptr;
};

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_MLP_TYPES_H_
