// Multilayer perceptron (MakeMlp in client/model.h). The arithmetic lives in
// client/internal/mlp_kernel.h; this file owns the shapes, the scratch memory, the choice
// of kernel and the Model interface.
//
// Speed: a training step of a 784-128-10 network on 32 rows is two 32x784x128 matrix
// products, so the work is Eigen's GEMM in float on a gathered block of rows, with no
// allocation per step (the scratch memory is thread_local and only grows). The build
// targets baseline x86-64 (SSE2), where Eigen's float kernels are 4 wide without FMA; on
// CPUs with AVX2 and FMA the float kernels of client/mlp_avx2.cc (8 wide, fused
// multiply-add) run instead, about twice as fast. Each process always uses the same
// kernel, so training stays deterministic on a machine; machines with and without AVX2
// may differ in the last bits (FMA rounds once where SSE2 rounds twice). Setting
// TESSERA_MLP_KERNEL=baseline in the environment forces the baseline kernel.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/internal/check.h"
#include "client/internal/mlp_dispatch.h"
#include "client/internal/mlp_kernel.h"
#include "client/internal/mlp_types.h"
#include "client/internal/model_util.h"
#include "client/model.h"

namespace tessera::client {
namespace internal {
namespace {

double LossAndGradientBaseline(const MlpDims& dims, const float* params, const MlpRows& rows,
                               double l2, const MlpWorkspace<float>& ws) {
  return LossAndGradient<float>(dims, params, rows, l2, ws);
}

void ForwardBaseline(const MlpDims& dims, const float* params, const MlpRows& rows, size_t begin,
                     size_t m, const MlpWorkspace<float>& ws) {
  GatherAndForward<float>(dims, params, rows, begin, m, ws);
}

constexpr MlpFloatKernels kBaselineKernels = {"baseline", &LossAndGradientBaseline,
                                              &ForwardBaseline, &SgdStep};

}  // namespace

const MlpFloatKernels& BaselineMlpKernels() { return kBaselineKernels; }

#ifndef TESSERA_HAVE_MLP_AVX2
const MlpFloatKernels* Avx2MlpKernels() { return nullptr; }
#endif

const MlpFloatKernels& SelectedMlpKernels() {
  static const MlpFloatKernels* const selected = [] {
    // TESSERA_MLP_KERNEL=baseline forces the baseline kernel: for benchmarks, and for
    // sites that want bit-identical training on machines with and without AVX2.
    const char* forced = std::getenv("TESSERA_MLP_KERNEL");
    if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return &kBaselineKernels;
    const MlpFloatKernels* avx2 = Avx2MlpKernels();
#if defined(__x86_64__) || defined(__i386__)
    // libgcc's check includes the OS's support for the AVX register state (XGETBV).
    __builtin_cpu_init();
    if (avx2 != nullptr && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return avx2;
    }
#endif
    return &kBaselineKernels;
  }();
  return *selected;
}

}  // namespace internal

namespace {

using internal::MlpDims;
using internal::MlpRows;
using internal::MlpWorkspace;

// Element counts of MlpWorkspace's buffers for `dims`.
struct WorkspaceSizes {
  size_t x, activations, logits, delta, grad;
};

WorkspaceSizes SizesFor(const MlpDims& dims) {
  size_t hidden = 0, widest = 0;
  for (size_t l = 1; l <= dims.num_layers; ++l) {
    if (l < dims.num_layers) hidden += dims.widths[l];
    widest = std::max(widest, dims.widths[l]);
  }
  const size_t b = internal::kMlpBlockRows;
  return {b * dims.widths[0], b * hidden, b * dims.widths[dims.num_layers], b * widest,
          dims.num_parameters};
}

// Storage aligned to 64 bytes (a cache line, and more than any packet). Eigen's vectorised
// loops over an unaligned row (the softmax's exp and sums, the L2 term) run their first
// elements as scalar code until the data is aligned to the packet size (32 bytes with
// AVX2), and the scalar and packet code differ in the last bits (e.g. std::exp against
// Eigen's pexp). With malloc's 16-byte alignment, which of them a value went through
// depended on where the buffer landed, and so the trained model changed from run to run.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlignment); }
  friend bool operator==(const AlignedAllocator&, const AlignedAllocator&) { return true; }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

// Scratch memory of one thread, reused by every call on that thread (Models are const and
// shared between threads, so it cannot live in the Model). `grad` is all zeros between
// calls (the kernels add into it). Aligned, so that results do not depend on where the
// buffers land (AlignedAllocator).
template <typename T>
struct ThreadBuffers {
  AlignedVector<T> x, activations, logits, delta0, delta1, grad, params;

  MlpWorkspace<T> Get(const MlpDims& dims) {
    const WorkspaceSizes sizes = SizesFor(dims);
    Grow(x, sizes.x);
    Grow(activations, sizes.activations);
    Grow(logits, sizes.logits);
    Grow(delta0, sizes.delta);
    Grow(delta1, sizes.delta);
    Grow(grad, sizes.grad);
    return {
        x.data(), activations.data(), logits.data(), {delta0.data(), delta1.data()}, grad.data()};
  }

  static void Grow(AlignedVector<T>& v, size_t size) {
    if (v.size() < size) v.resize(size);
  }
};

template <typename T>
ThreadBuffers<T>& Buffers() {
  thread_local ThreadBuffers<T> buffers;
  return buffers;
}

class Mlp final : public Model {
 public:
  Mlp(size_t num_features, std::span<const uint32_t> hidden_layers, uint32_t num_classes,
      Precision precision)
      : hidden_(hidden_layers.begin(), hidden_layers.end()),
        num_classes_(num_classes),
        precision_(precision),
        kernels_(internal::SelectedMlpKernels()) {
    TESSERA_CLIENT_CHECK(num_features > 0);
    TESSERA_CLIENT_CHECK(!hidden_.empty() && hidden_.size() < internal::kMlpMaxLayers);
    dims_.num_layers = hidden_.size() + 1;
    dims_.widths[0] = num_features;
    for (size_t l = 0; l < hidden_.size(); ++l) {
      TESSERA_CLIENT_CHECK(hidden_[l] > 0);
      dims_.widths[l + 1] = hidden_[l];
    }
    dims_.softmax = num_classes >= 2;
    dims_.widths[dims_.num_layers] = dims_.softmax ? num_classes : 1;
    size_t offset = 0;
    for (size_t l = 0; l < dims_.num_layers; ++l) {
      dims_.offsets[l] = offset;
      offset += (dims_.widths[l] + 1) * dims_.widths[l + 1];
    }
    dims_.num_parameters = offset;
  }

  size_t num_features() const override { return dims_.widths[0]; }
  size_t num_parameters() const override { return dims_.num_parameters; }
  size_t num_outputs() const override { return dims_.widths[dims_.num_layers]; }

  void Initialize(uint64_t seed, std::span<float> params) const override {
    internal::InitializeFromLayout(internal::LayoutKind::kMlp, num_features(), num_classes_,
                                   hidden_, seed, params);
  }

  absl::Status CheckData(const Dataset& data, const std::string& source_name) const override {
    if (absl::Status status = Model::CheckData(data, source_name); !status.ok()) return status;
    if (dims_.softmax) return CheckClassLabels(data, num_classes_, source_name);
    for (size_t r = 0; r < data.num_rows; ++r) {
      if (!std::isfinite(data.y[r])) {
        return absl::InvalidArgumentError(absl::StrCat(source_name, ": data row ", r,
                                                       " (0-based, header not counted) has label ",
                                                       data.y[r], "; expected a finite number"));
      }
    }
    return absl::OkStatus();
  }

  double LossAndGradient(std::span<const float> params, const Dataset& data,
                         std::span<const size_t> rows, double l2,
                         std::span<double> grad) const override {
    internal::CheckShapes(num_features(), num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(grad.size() == num_parameters());
    for (size_t r : rows) TESSERA_CLIENT_CHECK(r < data.num_rows);
    const MlpRows call = {data.x.data(), data.y.data(), rows.data(), rows.size(),
                          data.weight.empty() ? nullptr : data.weight.data()};
    return precision_ == Precision::kFloat ? LossAndGradientAs<float>(params, call, l2, grad)
                                           : LossAndGradientAs<double>(params, call, l2, grad);
  }

  EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const override {
    internal::CheckShapes(num_features(), num_parameters(), params, data);
    return precision_ == Precision::kFloat ? EvaluateAs<float>(params, data, {})
                                           : EvaluateAs<double>(params, data, {});
  }

  void Predict(std::span<const float> params, const Dataset& data,
               std::span<double> out) const override {
    internal::CheckShapes(num_features(), num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(out.size() == data.num_rows * num_outputs());
    if (precision_ == Precision::kFloat) {
      EvaluateAs<float>(params, data, out);
    } else {
      EvaluateAs<double>(params, data, out);
    }
  }

 private:
  // The parameters as T: the float span itself, or a converted copy in `buffers`.
  template <typename T>
  const T* ParamsAs(std::span<const float> params, ThreadBuffers<T>& buffers) const {
    if constexpr (std::is_same_v<T, float>) {
      return params.data();
    } else {
      buffers.params.assign(params.begin(), params.end());
      return buffers.params.data();
    }
  }

  template <typename T>
  double LossAndGradientAs(std::span<const float> params, const MlpRows& rows, double l2,
                           std::span<double> grad) const {
    ThreadBuffers<T>& buffers = Buffers<T>();
    const MlpWorkspace<T> ws = buffers.Get(dims_);
    double loss;
    if constexpr (std::is_same_v<T, float>) {
      loss = kernels_.loss_and_gradient(dims_, params.data(), rows, l2, ws);
    } else {
      loss = internal::LossAndGradient<T>(dims_, ParamsAs<T>(params, buffers), rows, l2, ws);
    }
    // Hand the gradient over and leave the buffer zeroed for the next call, block by block
    // so that each block is read and cleared while in L1.
    constexpr Eigen::Index kBlock = 1024;
    const auto n = static_cast<Eigen::Index>(grad.size());
    Eigen::Map<Eigen::ArrayXd> out(grad.data(), n);
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> scratch(ws.grad, n);
    for (Eigen::Index b = 0; b < n; b += kBlock) {
      const Eigen::Index len = std::min(kBlock, n - b);
      out.segment(b, len) += scratch.segment(b, len).template cast<double>();
      scratch.segment(b, len).setZero();
    }
    return loss;
  }

  // Evaluation sums over all rows; with a non-empty `out`, also the outputs.
  template <typename T>
  EvaluationSums EvaluateAs(std::span<const float> params, const Dataset& data,
                            std::span<double> out) const {
    ThreadBuffers<T>& buffers = Buffers<T>();
    const MlpWorkspace<T> ws = buffers.Get(dims_);
    const T* p = ParamsAs<T>(params, buffers);
    const MlpRows rows = {data.x.data(), data.y.data(), nullptr, data.num_rows};
    const size_t k = num_outputs();
    EvaluationSums sums;
    sums.num_examples = data.num_rows;
    for (size_t begin = 0; begin < data.num_rows; begin += internal::kMlpBlockRows) {
      const size_t m = std::min(internal::kMlpBlockRows, data.num_rows - begin);
      if constexpr (std::is_same_v<T, float>) {
        kernels_.forward(dims_, p, rows, begin, m, ws);
      } else {
        internal::GatherAndForward<T>(dims_, p, rows, begin, m, ws);
      }
      if (dims_.softmax) {
        // Labels are read (and checked) only for the sums; Predict needs none.
        const bool with_labels = out.empty();
        if (with_labels) {
          for (size_t i = 0; i < m; ++i) {
            const T* z = ws.logits + i * k;
            const size_t best = static_cast<size_t>(std::max_element(z, z + k) - z);
            if (best == internal::ClassOf(data.y[begin + i], k)) ++sums.num_correct;
          }
        }
        sums.loss_sum += internal::SoftmaxRows(dims_, with_labels ? &rows : nullptr, begin, m, ws);
      } else if (out.empty()) {
        for (size_t i = 0; i < m; ++i) {
          const double residual = static_cast<double>(ws.logits[i]) - data.y[begin + i];
          sums.loss_sum += 0.5 * residual * residual;
        }
      }
      if (!out.empty()) {
        for (size_t i = 0; i < m * k; ++i) out[begin * k + i] = static_cast<double>(ws.logits[i]);
      }
    }
    return sums;
  }

  const std::vector<uint32_t> hidden_;
  const uint32_t num_classes_;
  const Precision precision_;
  const internal::MlpFloatKernels& kernels_;
  MlpDims dims_;
};

}  // namespace

std::unique_ptr<Model> MakeMlp(size_t num_features, std::span<const uint32_t> hidden_layers,
                               uint32_t num_classes, Precision precision) {
  return std::make_unique<Mlp>(num_features, hidden_layers, num_classes, precision);
}

}  // namespace tessera::client
