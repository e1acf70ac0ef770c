// Binary logistic regression (MakeLogisticRegression in client/model.h).
//
// Parameters arrive as float32 (the wire and checkpoint format) and every sum is taken in
// double: the federated average of many sites' updates is only as good as each site's
// arithmetic.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "client/internal/check.h"
#include "client/internal/model_util.h"
#include "client/model.h"

namespace tessera::client {
namespace {

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMajorMap = Eigen::Map<const RowMajorMatrix>;

// Mini-batch rows are gathered into a buffer of at most this many rows, so a call over
// any number of rows uses bounded memory and Eigen still sees a dense block.
constexpr size_t kGatherRows = 256;

struct ExampleTerms {
  double loss;      // binary cross-entropy of one example
  double residual;  // d loss / d z = sigmoid(z) - y
  double p;         // sigmoid(z)
};

// Loss and residual of one example with logit z and label y, without overflow and
// without log(0): with t = log(1 + exp(-|z|)),
//   softplus(z) = max(z, 0) + t,  softplus(-z) = max(-z, 0) + t,
//   loss = y * softplus(-z) + (1 - y) * softplus(z).
// Written this way (rather than softplus(z) - y*z) a confidently right prediction has a
// tiny loss with full relative precision instead of the rounding error of z - z.
inline ExampleTerms Terms(double z, double y) {
  const double e = std::exp(-std::abs(z));  // in (0, 1]
  const double t = std::log1p(e);
  const double loss = t + y * std::max(-z, 0.0) + (1.0 - y) * std::max(z, 0.0);
  const double p = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  return {loss, p - y, p};
}

class LogisticRegression final : public Model {
 public:
  explicit LogisticRegression(size_t num_features) : d_(num_features) {}

  size_t num_features() const override { return d_; }
  size_t num_parameters() const override { return d_ + 1; }
  size_t num_outputs() const override { return 1; }

  void Initialize(uint64_t seed, std::span<float> params) const override {
    // Zeros whatever the seed (the loss is convex), as proto/model_layout.h says.
    internal::InitializeFromLayout(internal::LayoutKind::kLogistic, d_, 0, {}, seed, params);
  }

  absl::Status CheckData(const Dataset& data, const std::string& source_name) const override {
    if (absl::Status status = Model::CheckData(data, source_name); !status.ok()) return status;
    return CheckBinaryLabels(data, source_name);
  }

  double LossAndGradient(std::span<const float> params, const Dataset& data,
                         std::span<const size_t> rows, double l2,
                         std::span<double> grad) const override {
    CheckShapes(params, data);
    TESSERA_CLIENT_CHECK(grad.size() == num_parameters());
    const Eigen::VectorXd w = Weights(params);
    const double b = params[d_];

    Eigen::VectorXd grad_w = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(d_));
    double grad_b = 0;
    double loss_sum = 0;
    const size_t n = rows.size();
    const size_t chunk_rows = std::min(n, kGatherRows);
    std::vector<double> buffer(chunk_rows * d_);
    Eigen::VectorXd z(static_cast<Eigen::Index>(chunk_rows));
    Eigen::VectorXd residual(static_cast<Eigen::Index>(chunk_rows));
    for (size_t start = 0; start < n; start += kGatherRows) {
      const size_t m = std::min(kGatherRows, n - start);
      for (size_t i = 0; i < m; ++i) {
        const size_t row = rows[start + i];
        TESSERA_CLIENT_CHECK(row < data.num_rows);
        if (d_ > 0) std::memcpy(&buffer[i * d_], &data.x[row * d_], d_ * sizeof(double));
      }
      const ConstRowMajorMap x(buffer.data(), static_cast<Eigen::Index>(m),
                               static_cast<Eigen::Index>(d_));
      auto z_m = z.head(static_cast<Eigen::Index>(m));
      auto residual_m = residual.head(static_cast<Eigen::Index>(m));
      z_m.noalias() = x * w;
      for (size_t i = 0; i < m; ++i) {
        const size_t row = rows[start + i];
        const ExampleTerms t = Terms(z_m[i] + b, data.y[row]);
        const double weight = data.weight.empty() ? 1.0 : data.weight[row];
        loss_sum += weight * t.loss;
        residual_m[i] = weight * t.residual;
        grad_b += weight * t.residual;
      }
      grad_w.noalias() += x.transpose() * residual_m;
    }

    double loss = 0;
    if (n > 0) {
      const double inv_n = 1.0 / static_cast<double>(n);
      loss = loss_sum / static_cast<double>(n);
      grad_w *= inv_n;
      grad_b *= inv_n;
    }
    if (l2 != 0) {
      loss += 0.5 * l2 * w.squaredNorm();
      grad_w += l2 * w;
    }
    for (size_t j = 0; j < d_; ++j) grad[j] += grad_w[static_cast<Eigen::Index>(j)];
    grad[d_] += grad_b;
    return loss;
  }

  EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const override {
    CheckShapes(params, data);
    const Eigen::VectorXd w = Weights(params);
    const double b = params[d_];
    const ConstRowMajorMap x(data.x.data(), static_cast<Eigen::Index>(data.num_rows),
                             static_cast<Eigen::Index>(d_));
    const Eigen::VectorXd z = x * w;
    EvaluationSums sums;
    sums.num_examples = data.num_rows;
    for (size_t r = 0; r < data.num_rows; ++r) {
      const double y = data.y[r];
      const ExampleTerms t = Terms(z[static_cast<Eigen::Index>(r)] + b, y);
      sums.loss_sum += t.loss;
      const double predicted = t.p >= 0.5 ? 1.0 : 0.0;
      if (predicted == y) ++sums.num_correct;
    }
    return sums;
  }

  void Predict(std::span<const float> params, const Dataset& data,
               std::span<double> out) const override {
    CheckShapes(params, data);
    TESSERA_CLIENT_CHECK(out.size() == data.num_rows);
    const Eigen::VectorXd w = Weights(params);
    const double b = params[d_];
    const ConstRowMajorMap x(data.x.data(), static_cast<Eigen::Index>(data.num_rows),
                             static_cast<Eigen::Index>(d_));
    const Eigen::VectorXd z = x * w;
    for (size_t r = 0; r < data.num_rows; ++r) {
      out[r] = Terms(z[static_cast<Eigen::Index>(r)] + b, 0.0).p;
    }
  }

 private:
  void CheckShapes(std::span<const float> params, const Dataset& data) const {
    TESSERA_CLIENT_CHECK(params.size() == num_parameters());
    TESSERA_CLIENT_CHECK(data.num_features == d_);
    TESSERA_CLIENT_CHECK(data.x.size() == data.num_rows * d_);
    TESSERA_CLIENT_CHECK(data.y.size() == data.num_rows);
  }

  Eigen::VectorXd Weights(std::span<const float> params) const {
    return Eigen::Map<const Eigen::VectorXf>(params.data(), static_cast<Eigen::Index>(d_))
        .cast<double>();
  }

  const size_t d_;
};

}  // namespace

std::unique_ptr<Model> MakeLogisticRegression(size_t num_features) {
  return std::make_unique<LogisticRegression>(num_features);
}

}  // namespace tessera::client
