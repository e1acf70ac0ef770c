// The MLP's float kernels compiled for AVX2 + FMA (x86-64-v3); client/CMakeLists.txt
// builds this file alone with -mavx2 -mfma, and client/mlp.cc calls it only on CPUs that
// have both. Eigen picks its 8-wide float kernels from the compiler's target macros.
//
// Nothing compiled here may be shared with the baseline build: every inline function and
// template instantiation this object defines (Eigen's, the kernel's, and the standard
// library's, such as std::max<float> or std::exp(float) in a Debug build) is renamed
// after compilation by client/privatize_avx2_symbols.cmake, so that the linker never
// merges it with, or picks it for, baseline code. The Eigen namespace renaming and the
// unnamed namespace of the kernel templates (client/internal/mlp_kernel.h) keep the
// object's names apart too. The test client_mlp_avx2_symbols checks that the object in
// the library defines no shareable symbol besides Avx2MlpKernels().
#define Eigen tessera_avx2_Eigen
#include "client/internal/mlp_dispatch.h"
#include "client/internal/mlp_kernel.h"

namespace tessera::client::internal {
namespace {

double LossAndGradientAvx2(const MlpDims& dims, const float* params, const MlpRows& rows, double l2,
                           const MlpWorkspace<float>& ws) {
  return LossAndGradient<float>(dims, params, rows, l2, ws);
}

void ForwardAvx2(const MlpDims& dims, const float* params, const MlpRows& rows, size_t begin,
                 size_t m, const MlpWorkspace<float>& ws) {
  GatherAndForward<float>(dims, params, rows, begin, m, ws);
}

constexpr MlpFloatKernels kAvx2Kernels = {"avx2", &LossAndGradientAvx2, &ForwardAvx2, &SgdStep};

}  // namespace

const MlpFloatKernels* Avx2MlpKernels() { return &kAvx2Kernels; }

}  // namespace tessera::client::internal
