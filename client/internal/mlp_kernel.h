// The MLP's arithmetic (MakeMlp in client/model.h), as templates on the scalar type of
// the matrix work.
//
// Everything here is in an unnamed namespace on purpose: the header is compiled into
// client/mlp.cc (baseline x86-64) and again into client/mlp_avx2.cc (AVX2 + FMA), and
// each must keep its own copy. With external linkage the linker would keep one copy of
// each function for the whole program, possibly the AVX2 one for baseline callers.
// (mlp_avx2.cc also renames Eigen's namespace, for the same reason.)
//
// Includes Eigen: include only from those .cc files.
#ifndef TESSERA_CLIENT_INTERNAL_MLP_KERNEL_H_
#define TESSERA_CLIENT_INTERNAL_MLP_KERNEL_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "Eigen/Core"
#include "client/internal/check.h"
#include "client/internal/mlp_types.h"

namespace tessera::client::internal {
namespace {

size_t RowOf(const MlpRows& rows, size_t i) { return rows.rows == nullptr ? i : rows.rows[i]; }

template <typename T>
using MlpMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MlpMap = Eigen::Map<MlpMatrix<T>>;
template <typename T>
using MlpConstMap = Eigen::Map<const MlpMatrix<T>>;
template <typename T>
using MlpConstRowMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
template <typename T>
using MlpRowMap = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;

Eigen::Index MlpIndex(size_t i) { return static_cast<Eigen::Index>(i); }

template <typename T>
MlpConstMap<T> LayerWeights(const MlpDims& dims, const T* params, size_t l) {
  return MlpConstMap<T>(params + dims.offsets[l], MlpIndex(dims.widths[l + 1]),
                        MlpIndex(dims.widths[l]));
}

template <typename T>
MlpConstRowMap<T> LayerBiases(const MlpDims& dims, const T* params, size_t l) {
  return MlpConstRowMap<T>(params + dims.offsets[l] + dims.widths[l + 1] * dims.widths[l],
                           MlpIndex(dims.widths[l + 1]));
}

// Start of layer l's activations for a block of m rows.
template <typename T>
T* Activations(const MlpDims& dims, const MlpWorkspace<T>& ws, size_t m, size_t l) {
  size_t offset = 0;
  for (size_t k = 1; k <= l; ++k) offset += m * dims.widths[k];
  return ws.activations + offset;
}

// Copies rows [begin, begin + m) of the call into ws.x, as T.
template <typename T>
void Gather(const MlpDims& dims, const MlpRows& rows, size_t begin, size_t m,
            const MlpWorkspace<T>& ws) {
  const size_t d = dims.widths[0];
  for (size_t i = 0; i < m; ++i) {
    const double* in = rows.x + RowOf(rows, begin + i) * d;
    if (i + 1 < m) {
      // Rows of a shuffled batch are scattered over the dataset: fetch the next one while
      // converting this one.
      const double* next = rows.x + RowOf(rows, begin + i + 1) * d;
      for (size_t j = 0; j < d; j += 64 / sizeof(double)) __builtin_prefetch(next + j);
    }
    T* out = ws.x + i * d;
    for (size_t j = 0; j < d; ++j) out[j] = static_cast<T>(in[j]);
  }
}

// Forward pass of the m gathered rows: hidden activations and head outputs (logits).
template <typename T>
void Forward(const MlpDims& dims, const T* params, size_t m, const MlpWorkspace<T>& ws) {
  const T* in = ws.x;
  for (size_t l = 0; l < dims.num_layers; ++l) {
    const size_t in_width = dims.widths[l];
    const size_t out_width = dims.widths[l + 1];
    const bool head = l + 1 == dims.num_layers;
    T* out = head ? ws.logits : Activations(dims, ws, m, l);
    MlpMap<T> a(out, MlpIndex(m), MlpIndex(out_width));
    a.noalias() = MlpConstMap<T>(in, MlpIndex(m), MlpIndex(in_width)) *
                  LayerWeights(dims, params, l).transpose();
    a.rowwise() += LayerBiases(dims, params, l);
    if (!head) a = a.cwiseMax(T(0));
    in = out;
  }
}

// Crashes on a label outside 0..K-1 (CheckData is the caller's precondition).
size_t ClassOf(double y, size_t num_classes) {
  TESSERA_CLIENT_CHECK(y >= 0 && y < static_cast<double>(num_classes) && y == std::floor(y));
  return static_cast<size_t>(y);
}

// Softmax head: replaces each row of ws.logits by its probabilities. With `rows`, returns
// the summed cross-entropy of their labels (row i of the block is call row begin + i).
template <typename T>
double SoftmaxRows(const MlpDims& dims, const MlpRows* rows, size_t begin, size_t m,
                   const MlpWorkspace<T>& ws) {
  const size_t k = dims.widths[dims.num_layers];
  double loss_sum = 0;
  for (size_t i = 0; i < m; ++i) {
    MlpRowMap<T> z(ws.logits + i * k, MlpIndex(k));
    const T max = z.maxCoeff();
    double shifted_label_logit = 0;
    if (rows != nullptr) {
      const size_t label = ClassOf(rows->y[RowOf(*rows, begin + i)], k);
      shifted_label_logit = static_cast<double>(z[MlpIndex(label)] - max);
    }
    z.array() = (z.array() - max).exp();
    const T sum = z.sum();  // >= 1
    // -log p_y = log sum exp(z - max) - (z_y - max), before exp can underflow.
    const double weight =
        rows != nullptr && rows->weight != nullptr ? rows->weight[RowOf(*rows, begin + i)] : 1.0;
    loss_sum += weight * (std::log(static_cast<double>(sum)) - shifted_label_logit);
    z /= sum;
  }
  return rows != nullptr ? loss_sum : 0.0;
}

// Mean loss over the call's rows plus 0.5 * l2 * (sum of squared weights); adds its
// gradient into ws.grad, which the caller has zeroed.
template <typename T>
double LossAndGradient(const MlpDims& dims, const T* params, const MlpRows& rows, double l2,
                       const MlpWorkspace<T>& ws) {
  const size_t n = rows.count;
  const size_t outputs = dims.widths[dims.num_layers];
  const size_t head = dims.num_layers - 1;
  const T scale = n > 0 ? static_cast<T>(1.0 / static_cast<double>(n)) : T(0);
  double loss_sum = 0;
  for (size_t begin = 0; begin < n; begin += kMlpBlockRows) {
    const size_t m = n - begin < kMlpBlockRows ? n - begin : kMlpBlockRows;
    Gather(dims, rows, begin, m, ws);
    Forward(dims, params, m, ws);

    // d loss_mean / d logits, in place of the logits.
    MlpMap<T> d_out(ws.logits, MlpIndex(m), MlpIndex(outputs));
    if (dims.softmax) {
      loss_sum += SoftmaxRows(dims, &rows, begin, m, ws);
      for (size_t i = 0; i < m; ++i) {
        d_out(MlpIndex(i), MlpIndex(ClassOf(rows.y[RowOf(rows, begin + i)], outputs))) -= T(1);
        if (rows.weight != nullptr)
          d_out.row(MlpIndex(i)) *= T(rows.weight[RowOf(rows, begin + i)]);
      }
    } else {
      for (size_t i = 0; i < m; ++i) {
        const double weight = rows.weight != nullptr ? rows.weight[RowOf(rows, begin + i)] : 1.0;
        const double residual = static_cast<double>(ws.logits[i]) - rows.y[RowOf(rows, begin + i)];
        loss_sum += 0.5 * weight * residual * residual;
        ws.logits[i] = static_cast<T>(weight * residual);
      }
    }
    d_out *= scale;

    // Backward, from the head down: d_out is d loss / d (pre-activation) of layer l.
    const T* d_pre = ws.logits;
    int which = 0;
    for (size_t l = head + 1; l-- > 0;) {
      const size_t in_width = dims.widths[l];
      const size_t out_width = dims.widths[l + 1];
      const MlpConstMap<T> delta(d_pre, MlpIndex(m), MlpIndex(out_width));
      const T* in = l == 0 ? ws.x : Activations(dims, ws, m, l - 1);
      const MlpConstMap<T> input(in, MlpIndex(m), MlpIndex(in_width));
      MlpMap<T> grad_w(ws.grad + dims.offsets[l], MlpIndex(out_width), MlpIndex(in_width));
      MlpRowMap<T> grad_b(ws.grad + dims.offsets[l] + out_width * in_width, MlpIndex(out_width));
      // "+=": Eigen's "=" for a matrix product would first zero the destination, a pass
      // over all the weights that the caller's zeroed buffer makes unnecessary.
      grad_w.noalias() += delta.transpose() * input;
      grad_b += delta.colwise().sum();
      if (l == 0) break;
      // d loss / d (pre-activation of layer l - 1) = (delta W_l) masked by ReLU'.
      MlpMap<T> next(ws.delta[which], MlpIndex(m), MlpIndex(in_width));
      next.noalias() = delta * LayerWeights(dims, params, l);
      next = (input.array() > T(0)).select(next, T(0));
      d_pre = ws.delta[which];
      which ^= 1;
    }
  }

  double loss = n > 0 ? loss_sum / static_cast<double>(n) : 0.0;
  if (l2 != 0) {
    double squares = 0;
    for (size_t l = 0; l < dims.num_layers; ++l) {
      const auto w = LayerWeights(dims, params, l);
      squares += w.template cast<double>().squaredNorm();
      MlpMap<T>(ws.grad + dims.offsets[l], w.rows(), w.cols()) += static_cast<T>(l2) * w;
    }
    loss += 0.5 * l2 * squares;
  }
  return loss;
}

// Gather and Forward of one block, as the dispatch table wants them.
template <typename T>
void GatherAndForward(const MlpDims& dims, const T* params, const MlpRows& rows, size_t begin,
                      size_t m, const MlpWorkspace<T>& ws) {
  Gather(dims, rows, begin, m, ws);
  Forward(dims, params, m, ws);
}

// One plain SGD step on n parameters (client/trainer.cc, any model): w -= lr * g in
// double, out = w rounded to float, g zeroed for the next step; false if an out value is
// not finite. No fused multiply-add (the AVX2 build's compiler would contract lr * g into
// w's subtraction): every variant rounds alike, so a step gives bit-identical parameters
// with and without AVX2. Written so that the compiler vectorises it (the finiteness test is
// an integer OR over the float's exponent bits, not a float sum).
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
bool SgdStep(double learning_rate, double* w, double* g, float* out, size_t n) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  uint32_t not_finite = 0;
  for (size_t i = 0; i < n; ++i) {
    const double step = learning_rate * g[i];
    w[i] -= step;
    out[i] = static_cast<float>(w[i]);
    uint32_t bits = 0;
    std::memcpy(&bits, &out[i], sizeof bits);
    not_finite |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    g[i] = 0;
  }
  return not_finite == 0;
}

}  // namespace
}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_MLP_KERNEL_H_
