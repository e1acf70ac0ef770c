// The MLP's float kernels, once per instruction set, chosen at run time (client/mlp.cc).
// Exposed for tests, which check that the variants agree.
#ifndef TESSERA_CLIENT_INTERNAL_MLP_DISPATCH_H_
#define TESSERA_CLIENT_INTERNAL_MLP_DISPATCH_H_

#include <cstddef>

#include "client/internal/mlp_types.h"

namespace tessera::client::internal {

struct MlpFloatKernels {
  const char* name;  // "baseline" (SSE2, any x86-64) or "avx2" (AVX2 + FMA)
  // Mean loss over the call's rows plus the L2 term; adds the gradient into ws.grad,
  // which the caller has zeroed.
  double (*loss_and_gradient)(const MlpDims& dims, const float* params, const MlpRows& rows,
                              double l2, const MlpWorkspace<float>& ws);
  // Gathers rows [begin, begin + m) of the call (m <= kMlpBlockRows) and runs the forward
  // pass: head outputs (logits) in ws.logits.
  void (*forward)(const MlpDims& dims, const float* params, const MlpRows& rows, size_t begin,
                  size_t m, const MlpWorkspace<float>& ws);
  // The trainer's plain SGD step on a block of n parameters, for every model (SgdStep in
  // client/internal/mlp_kernel.h): bit-identical in every variant.
  bool (*sgd_step)(double learning_rate, double* w, double* g, float* out, size_t n);
};

const MlpFloatKernels& BaselineMlpKernels();
// Null if this build has no AVX2 variant (not x86-64).
const MlpFloatKernels* Avx2MlpKernels();
// The AVX2 variant if this build has it and the CPU and OS support AVX2 and FMA, else
// the baseline; the baseline if the environment variable TESSERA_MLP_KERNEL is
// "baseline". Chosen on first use, fixed for the life of the process.
const MlpFloatKernels& SelectedMlpKernels();

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_MLP_DISPATCH_H_
