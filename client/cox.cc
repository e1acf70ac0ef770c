// Cox proportional hazards with Breslow ties (MakeCoxPh in client/model.h).
//
// For rows sorted by time, with eta = X w, groups g of tied times t_g holding d_g events,
// and log risk-set sums L_g = log sum_{t_j >= t_g} exp(eta_j):
//   log PL = sum_g [ sum_{events i in g} eta_i - d_g * L_g ]
//   d log PL / d eta_k = event_k - sum_{g : t_g <= t_k} d_g * exp(eta_k - L_g).
// Both are computed in O(n log n): L_g by a running log-sum-exp while walking times
// downwards (the risk set only grows), the hazard sums by a running log-sum-exp of
// log d_g - L_g while walking upwards. Everything stays in log space, so neither large
// nor very unequal linear predictors overflow or underflow a risk-set sum to zero.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
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

// log(exp(a) + exp(b)) without overflow; -inf is the empty sum.
double LogAddExp(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == -std::numeric_limits<double>::infinity()) return a;
  return a + std::log1p(std::exp(b - a));
}

struct PartialLikelihood {
  double log_likelihood = 0;
  // d log PL / d eta for each input position (empty unless asked for).
  std::vector<double> d_eta;
};

// `eta`, `time`, `event` are per row of one stratum.
PartialLikelihood BreslowPartialLikelihood(std::span<const double> eta,
                                           std::span<const double> time,
                                           std::span<const double> event, bool with_gradient) {
  const size_t n = eta.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  // Latest time first. Stable, so the summation order (and the result's last bits) is
  // fixed by the input order alone, whatever the standard library.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return time[a] > time[b]; });

  struct Group {
    size_t begin, end;  // range in `order`
    double events;      // d_g
    double log_risk;    // L_g
  };
  std::vector<Group> groups;
  PartialLikelihood result;
  double log_risk = -std::numeric_limits<double>::infinity();
  for (size_t begin = 0; begin < n;) {
    size_t end = begin;
    double events = 0;
    double event_eta = 0;
    while (end < n && time[order[end]] == time[order[begin]]) {
      const size_t r = order[end];
      log_risk = LogAddExp(log_risk, eta[r]);
      if (event[r] != 0) {
        events += 1;
        event_eta += eta[r];
      }
      ++end;
    }
    if (events > 0) result.log_likelihood += event_eta - events * log_risk;
    groups.push_back({begin, end, events, log_risk});
    begin = end;
  }

  if (with_gradient) {
    result.d_eta.assign(n, 0.0);
    // log of sum_{g : t_g <= t} d_g * exp(-L_g), walking from the earliest time up.
    double log_hazard = -std::numeric_limits<double>::infinity();
    for (auto g = groups.rbegin(); g != groups.rend(); ++g) {
      if (g->events > 0) log_hazard = LogAddExp(log_hazard, std::log(g->events) - g->log_risk);
      for (size_t i = g->begin; i < g->end; ++i) {
        const size_t r = order[i];
        // eta_r <= L_g for every counted group (r is in their risk sets): no overflow.
        result.d_eta[r] = event[r] - std::exp(eta[r] + log_hazard);
      }
    }
  }
  return result;
}

class CoxPh final : public Model {
 public:
  explicit CoxPh(size_t num_features) : d_(num_features) { TESSERA_CLIENT_CHECK(num_features > 0); }

  size_t num_features() const override { return d_; }
  size_t num_parameters() const override { return d_; }
  size_t num_outputs() const override { return 1; }

  void Initialize(uint64_t seed, std::span<float> params) const override {
    internal::InitializeFromLayout(internal::LayoutKind::kCox, d_, 0, {}, seed, params);
  }

  absl::Status CheckData(const Dataset& data, const std::string& source_name) const override {
    if (absl::Status status = Model::CheckData(data, source_name); !status.ok()) return status;
    return CheckSurvivalData(data, source_name);
  }

  double LossAndGradient(std::span<const float> params, const Dataset& data,
                         std::span<const size_t> rows, double l2,
                         std::span<double> grad) const override {
    CheckShapes(params, data);
    TESSERA_CLIENT_CHECK(grad.size() == num_parameters());
    const Eigen::VectorXd w = Weights(params);
    const size_t n = rows.size();
    std::vector<double> eta(n), time(n), event(n);
    size_t done = 0;
    internal::ForEachChunk(
        data, rows, [&](const ConstRowMajorMapXd& x, std::span<const size_t> chunk) {
          Eigen::Map<Eigen::VectorXd>(eta.data() + done, Index(chunk.size())).noalias() = x * w;
          for (size_t i = 0; i < chunk.size(); ++i) {
            time[done + i] = data.y[chunk[i]];
            event[done + i] = data.event[chunk[i]];
          }
          done += chunk.size();
        });
    const PartialLikelihood pl = BreslowPartialLikelihood(eta, time, event, true);

    Eigen::VectorXd grad_w = Eigen::VectorXd::Zero(Index(d_));
    double loss = 0;
    if (n > 0) {
      const double inv_n = 1.0 / static_cast<double>(n);
      loss = -pl.log_likelihood * inv_n;
      done = 0;
      // d loss / d w = -(1/n) X^T d_eta.
      internal::ForEachChunk(data, rows,
                             [&](const ConstRowMajorMapXd& x, std::span<const size_t> chunk) {
                               const Eigen::Map<const Eigen::VectorXd> d_eta(pl.d_eta.data() + done,
                                                                             Index(chunk.size()));
                               grad_w.noalias() -= inv_n * (x.transpose() * d_eta);
                               done += chunk.size();
                             });
    }
    if (l2 != 0) {
      loss += 0.5 * l2 * w.squaredNorm();
      grad_w += l2 * w;
    }
    for (size_t j = 0; j < d_; ++j) grad[j] += grad_w[Index(j)];
    return loss;
  }

  EvaluationSums Evaluate(std::span<const float> params, const Dataset& data) const override {
    CheckShapes(params, data);
    const Eigen::VectorXd eta = internal::AllRows(data) * Weights(params);
    EvaluationSums sums;
    sums.num_examples = data.num_rows;
    sums.loss_sum = -BreslowPartialLikelihood(std::span<const double>(eta.data(), data.num_rows),
                                              data.y, data.event, false)
                         .log_likelihood;
    return sums;
  }

  void Predict(std::span<const float> params, const Dataset& data,
               std::span<double> out) const override {
    CheckShapes(params, data);
    TESSERA_CLIENT_CHECK(out.size() == data.num_rows);
    Eigen::Map<Eigen::VectorXd>(out.data(), Index(data.num_rows)).noalias() =
        internal::AllRows(data) * Weights(params);
  }

 private:
  static Eigen::Index Index(size_t i) { return static_cast<Eigen::Index>(i); }

  void CheckShapes(std::span<const float> params, const Dataset& data) const {
    internal::CheckShapes(d_, num_parameters(), params, data);
    TESSERA_CLIENT_CHECK(data.event.size() == data.num_rows);
  }

  Eigen::VectorXd Weights(std::span<const float> params) const {
    return Eigen::Map<const Eigen::VectorXf>(params.data(), Index(d_)).cast<double>();
  }

  const size_t d_;
};

}  // namespace

std::unique_ptr<Model> MakeCoxPh(size_t num_features) {
  return std::make_unique<CoxPh>(num_features);
}

}  // namespace tessera::client
