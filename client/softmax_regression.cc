// Multinomial logistic regression (MakeSoftmaxRegression in client/model.h). Like the
// binary model: float32 parameters, every sum in double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "client/internal/check.h"
#include "client/internal/eigen_rows.h"
#include "client/internal/model_util.h"
#include "client/model.h"

namespace tessera::client {
namespace {

using internal::ConstRowMajorMapXd;
using internal::RowMajorMatrixXd;

class SoftmaxRegression final : public Model {
 public:
  SoftmaxRegression(size_t num_features, uint32_t num_classes) : d_(num_features), k_(num_classes) {
    TESSERA_CLIENT_CHECK(num_features > 0 && num_classes >= 2);
  }

  size_t num_features() const override { return d_; }
  size_t num_parameters() const override { return k_ * (d_ + 1); }
  size_t num_outputs() const override { return k_; }

  void Initialize(uint64_t seed, std::span<float> params) const override {
    internal::InitializeFromLayout(internal::LayoutKind::kSoftmax, d_, static_cast<uint32_t>(k_),
                                   {}, seed, params);
  }

  absl::Status CheckData(const Dataset& data, const std::string& source_name) const override {
    if (absl::Status status = Model::CheckData(data, source_name); !status.ok()) return status;
    return CheckClassLabels(data, static_cast<uint32_t>(k_), source_name);
  }

  double LossAndGradient(std::span<const float> params, const Dataset& data,
                         std::span<const size_t> rows, double l2,
                         std::span<double> grad) const override {
    internal::CheckShapes(d_, num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(grad.size() == num_parameters());
    const RowMajorMatrixXd w = Weights(params);
    const Eigen::RowVectorXd b = Biases(params);
    RowMajorMatrixXd grad_w = RowMajorMatrixXd::Zero(Rows(k_), Rows(d_));
    Eigen::RowVectorXd grad_b = Eigen::RowVectorXd::Zero(Rows(k_));
    double loss_sum = 0;
    internal::ForEachChunk(data, rows,
                           [&](const ConstRowMajorMapXd& x, std::span<const size_t> chunk) {
                             // After Probabilities, z holds p; p - onehot(y) is d loss / d z.
                             RowMajorMatrixXd z = x * w.transpose();
                             z.rowwise() += b;
                             loss_sum += Probabilities(data, chunk, &z);
                             for (size_t i = 0; i < chunk.size(); ++i) {
                               z(Rows(i), Label(data, chunk[i])) -= 1.0;
                               if (!data.weight.empty()) z.row(Rows(i)) *= data.weight[chunk[i]];
                             }
                             grad_w.noalias() += z.transpose() * x;
                             grad_b += z.colwise().sum();
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
    for (size_t c = 0; c < k_; ++c) {
      for (size_t j = 0; j < d_; ++j) grad[c * d_ + j] += grad_w(Rows(c), Rows(j));
      grad[k_ * d_ + c] += grad_b[Rows(c)];
    }
    return loss;
  }

  EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const override {
    internal::CheckShapes(d_, num_parameters(), params, data);
    RowMajorMatrixXd z = Logits(params, data);
    EvaluationSums sums;
    sums.num_examples = data.num_rows;
    for (size_t r = 0; r < data.num_rows; ++r) {
      Eigen::Index best;
      z.row(Rows(r)).maxCoeff(&best);  // the first of tied maxima
      if (best == Label(data, r)) ++sums.num_correct;
    }
    std::vector<size_t> all(data.num_rows);
    for (size_t r = 0; r < all.size(); ++r) all[r] = r;
    sums.loss_sum = Probabilities(data, all, &z);
    return sums;
  }

  void Predict(std::span<const float> params, const Dataset& data,
               std::span<double> out) const override {
    internal::CheckShapes(d_, num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(out.size() == data.num_rows * k_);
    RowMajorMatrixXd z = Logits(params, data);
    Probabilities(data, {}, &z);
    std::copy(z.data(), z.data() + z.size(), out.begin());
  }

 private:
  static Eigen::Index Rows(size_t n) { return static_cast<Eigen::Index>(n); }

  // Crashes on a label outside 0..K-1: CheckData is the caller's precondition.
  Eigen::Index Label(const Dataset& data, size_t row) const {
    const double y = data.y[row];
    TESSERA_CLIENT_CHECK(y >= 0 && y < static_cast<double>(k_) && y == std::floor(y));
    return static_cast<Eigen::Index>(y);
  }

  RowMajorMatrixXd Weights(std::span<const float> params) const {
    using RowMajorMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    return Eigen::Map<const RowMajorMatrixXf>(params.data(), Rows(k_), Rows(d_)).cast<double>();
  }

  Eigen::RowVectorXd Biases(std::span<const float> params) const {
    return Eigen::Map<const Eigen::RowVectorXf>(params.data() + k_ * d_, Rows(k_)).cast<double>();
  }

  RowMajorMatrixXd Logits(std::span<const float> params, const Dataset& data) const {
    RowMajorMatrixXd z = internal::AllRows(data) * Weights(params).transpose();
    z.rowwise() += Biases(params);
    return z;
  }

  // Replaces each row of logits `z` by its softmax; returns the summed cross-entropy of
  // the labels of rows `labels` (row i of z is data row labels[i]), 0 if it is empty.
  // With m = max z: log sum exp z = m + log sum exp(z - m), no overflow.
  double Probabilities(const Dataset& data, std::span<const size_t> labels,
                       RowMajorMatrixXd* z) const {
    double loss_sum = 0;
    for (Eigen::Index i = 0; i < z->rows(); ++i) {
      auto row = z->row(i);
      const double m = row.maxCoeff();
      // -log p_y = log sum exp(z - m) - (z_y - m), taken before exponentiating: exp of a
      // hopeless logit underflows to 0 and its log would be -inf.
      const double shifted_label_logit =
          labels.empty() ? 0.0 : row[Label(data, labels[static_cast<size_t>(i)])] - m;
      row.array() = (row.array() - m).exp();
      const double sum = row.sum();  // >= 1: the maximum contributes exp(0)
      if (!labels.empty()) {
        const double weight =
            data.weight.empty() ? 1.0 : data.weight[labels[static_cast<size_t>(i)]];
        loss_sum += weight * (std::log(sum) - shifted_label_logit);
      }
      row /= sum;
    }
    return loss_sum;
  }

  const size_t d_;
  const size_t k_;
};

}  // namespace

std::unique_ptr<Model> MakeSoftmaxRegression(size_t num_features, uint32_t num_classes) {
  return std::make_unique<SoftmaxRegression>(num_features, num_classes);
}

}  // namespace tessera::client
