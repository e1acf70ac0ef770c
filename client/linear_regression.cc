// Linear regression with half squared error (MakeLinearRegression in client/model.h, which
// also explains how l2 maps to scikit-learn's Ridge(alpha)). float32 parameters, sums in
// double.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "client/internal/check.h"
#include "client/internal/eigen_rows.h"
#include "client/internal/model_util.h"
#include "client/model.h"

namespace tessera::client {
namespace {

using internal::ConstRowMajorMapXd;

class LinearRegression final : public Model {
 public:
  explicit LinearRegression(size_t num_features) : d_(num_features) {
    TESSERA_CLIENT_CHECK(num_features > 0);
  }

  size_t num_features() const override { return d_; }
  size_t num_parameters() const override { return d_ + 1; }
  size_t num_outputs() const override { return 1; }

  void Initialize(uint64_t seed, std::span<float> params) const override {
    internal::InitializeFromLayout(internal::LayoutKind::kLinear, d_, 0, {}, seed, params);
  }

  absl::Status CheckData(const Dataset& data, const std::string& source_name) const override {
    if (absl::Status status = Model::CheckData(data, source_name); !status.ok()) return status;
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
    internal::CheckShapes(d_, num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(grad.size() == num_parameters());
    const Eigen::VectorXd w = Weights(params);
    const double b = params[d_];
    Eigen::VectorXd grad_w = Eigen::VectorXd::Zero(Index(d_));
    double grad_b = 0;
    double loss_sum = 0;
    internal::ForEachChunk(data, rows,
                           [&](const ConstRowMajorMapXd& x, std::span<const size_t> chunk) {
                             Eigen::VectorXd residual = x * w;
                             for (size_t i = 0; i < chunk.size(); ++i) {
                               const double r = residual[Index(i)] + b - data.y[chunk[i]];
                               residual[Index(i)] = r;
                               loss_sum += 0.5 * r * r;
                               grad_b += r;
                             }
                             grad_w.noalias() += x.transpose() * residual;
                           });
    const size_t n = rows.size();
    double loss = 0;
    if (n > 0) {
      const double inv_n = 1.0 / static_cast<double>(n);
      loss = loss_sum * inv_n;
      grad_w *= inv_n;
      grad_b *= inv_n;
    }
    if (l2 != 0) {
      loss += 0.5 * l2 * w.squaredNorm();
      grad_w += l2 * w;
    }
    for (size_t j = 0; j < d_; ++j) grad[j] += grad_w[Index(j)];
    grad[d_] += grad_b;
    return loss;
  }

  EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const override {
    internal::CheckShapes(d_, num_parameters(), params, data);
    const Eigen::VectorXd prediction = Predictions(params, data);
    EvaluationSums sums;
    sums.num_examples = data.num_rows;
    for (size_t r = 0; r < data.num_rows; ++r) {
      const double residual = prediction[Index(r)] - data.y[r];
      sums.loss_sum += 0.5 * residual * residual;
    }
    return sums;
  }

  void Predict(std::span<const float> params, const Dataset& data,
               std::span<double> out) const override {
    internal::CheckShapes(d_, num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(out.size() == data.num_rows);
    const Eigen::VectorXd prediction = Predictions(params, data);
    for (size_t r = 0; r < data.num_rows; ++r) out[r] = prediction[Index(r)];
  }

 private:
  static Eigen::Index Index(size_t i) { return static_cast<Eigen::Index>(i); }

  Eigen::VectorXd Weights(std::span<const float> params) const {
    return Eigen::Map<const Eigen::VectorXf>(params.data(), Index(d_)).cast<double>();
  }

  Eigen::VectorXd Predictions(std::span<const float> params, const Dataset& data) const {
    Eigen::VectorXd prediction = internal::AllRows(data) * Weights(params);
    prediction.array() += static_cast<double>(params[d_]);
    return prediction;
  }

  const size_t d_;
};

}  // namespace

std::unique_ptr<Model> MakeLinearRegression(size_t num_features) {
  return std::make_unique<LinearRegression>(num_features);
}

}  // namespace tessera::client
