// Server strategies: pure functions of the round's aggregates, no I/O, no clock, no
// logging. The round driver owns RPCs, deadlines and dropouts; a strategy only says what
// each site is asked to do and what the cohort's sums turn into. Strategies only ever see
// sums over the cohort (never one site's update), so they work unchanged under secure
// aggregation.
//
// Notation. x_t is the global model before round t, Δ_t = proto::AveragedUpdate::mean_delta
// the example-weighted mean of the sites' (local − global) deltas, η the server learning
// rate. Δ_t points *downhill*: it is the negative of the pseudo-gradient. All arithmetic is
// in double; the new model is rounded to float once per round.
//
//   FEDAVG, FEDPROX   x_{t+1} = x_t + η Δ_t                                (η default 1.0)
//       McMahan et al. 2017; Li et al. 2020 (FedProx's proximal term is added by the sites,
//       training.proximal_mu; on the server FedProx is FedAvg).
//   FEDAVGM           v_t = μ v_{t−1} + Δ_t,  x_{t+1} = x_t + η v_t, v_{−1} = 0
//       Hsu, Qi & Brown 2019 (heavy-ball server momentum μ, default 0.9; η default 1.0). With
//       μ = 0 it gives exactly FedAvg's models.
//   FEDADAGRAD / FEDADAM / FEDYOGI (Reddi et al. 2021, "Adaptive Federated Optimization",
//   Algorithm 2), elementwise, with m_{−1} = 0 and v_{−1} = τ²:
//       m_t = β1 m_{t−1} + (1 − β1) Δ_t
//       Adagrad  v_t = v_{t−1} + Δ_t²
//       Adam     v_t = β2 v_{t−1} + (1 − β2) Δ_t²
//       Yogi     v_t = v_{t−1} − (1 − β2) Δ_t² sign(v_{t−1} − Δ_t²)        (sign(0) = 0)
//       x_{t+1} = x_t + η m_t / (√v_t + τ)
//     Defaults η = 0.01, β1 = 0.9, β2 = 0.99 (unused by Adagrad), τ = 1e-3. No bias
//     correction, as in the paper. v_{−1} = τ² is the smallest value Algorithm 2 allows
//     ("v_{−1} ≥ τ²"); Flower's fedadam.py/fedyogi.py/fedadagrad.py start from v_{−1} = 0
//     instead, so their first steps differ from ours. As in Algorithm 2, FedAdagrad keeps
//     the β1 momentum (the paper's experiments, and Flower, use β1 = 0 for it; a
//     StrategySpec cannot ask for β1 = 0, see MakeStrategy).
//
// State. FEDAVGM keeps v, the adaptive strategies keep m and v (one double per parameter
// each). SaveState() encodes it, RestoreState() decodes it bit for bit, so a restarted
// coordinator continues exactly where an uninterrupted one would. The encoding (version 1,
// all integers and doubles little-endian, doubles as IEEE-754 binary64 bit patterns):
//   "TSST" | u8 version = 1 | u8 kind (StrategySpec::Kind number) | u64 P | n·P doubles
// with n = 1 (FEDAVGM: v) or 2 (adaptive: m then v). P = 0 before the first round. The
// empty string is the initial state: the statistics round's record carries none.
//
// AggregateFit either succeeds and advances the state, or fails and leaves it untouched.
//
// Not thread-safe: one instance per running task, used by its driver thread only.
#ifndef TESSERA_COORDINATOR_STRATEGY_H_
#define TESSERA_COORDINATOR_STRATEGY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/contribution_layout.h"

namespace tessera::v1 {
class StrategySpec;
class TrainingSpec;
class Metric;
}  // namespace tessera::v1

namespace tessera::coordinator {

class Strategy {
 public:
  virtual ~Strategy() = default;

  // Local-training settings for `round`, from the task's own. Default: unchanged.
  virtual void ConfigureFit(uint32_t round, v1::TrainingSpec* training) const {}

  // The next global model from the current one and the cohort's example-weighted mean
  // update. INVALID_ARGUMENT if the sizes disagree (with each other, or with the size the
  // strategy was made for or has kept state for), or if a parameter would leave the float
  // range; the state is then unchanged.
  virtual absl::StatusOr<std::vector<float>> AggregateFit(uint32_t round,
                                                          std::span<const float> global,
                                                          const proto::AveragedUpdate& update) = 0;

  // Whether the new model of `round` is evaluated. Default: every round.
  virtual bool ConfigureEvaluate(uint32_t round) const { return true; }

  // The round's metrics, as decoded from the cohort's summed evaluation vector by the
  // task's evaluation layout (proto/evaluation.h). A strategy may add its own; the
  // default keeps them as they are. (Defined in strategy.cc, where v1::Metric is complete.)
  virtual std::vector<v1::Metric> AggregateEvaluate(uint32_t round,
                                                    std::vector<v1::Metric> metrics) const;

  // Opaque state to commit with the round; empty for stateless strategies.
  virtual std::string SaveState() const { return ""; }
  // Replaces the state with one SaveState() made; "" restores the initial state.
  // INVALID_ARGUMENT if `state` was not made by SaveState of the same kind of strategy, is
  // truncated or malformed, holds non-finite values, or holds a different number of
  // parameters than the strategy was made for; the state is then unchanged.
  virtual absl::Status RestoreState(const std::string& state) {
    return state.empty() ? absl::OkStatus()
                         : absl::InvalidArgumentError("this strategy keeps no state");
  }
};

// Server hyperparameters; see the table above for their meaning and defaults.
struct AdaptiveOptions {
  double server_learning_rate = 0.01;  // η > 0
  double beta1 = 0.9;                  // [0, 1)
  double beta2 = 0.99;                 // [0, 1); unused by FedAdagrad
  double tau = 1e-3;                   // τ > 0
};

// FedAvg (McMahan et al. 2017) with a server learning rate:
//   global <- global + server_learning_rate * mean_delta.
// Precondition (unchecked, kept for existing callers): server_learning_rate is finite.
std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate);

// The factories below check their arguments: INVALID_ARGUMENT for a learning rate or τ
// that is not finite and > 0, or a momentum/β outside [0, 1). `num_parameters` > 0 fixes
// the model size (a state or update of another size is refused); 0 takes the size of the
// first update.
absl::StatusOr<std::unique_ptr<Strategy>> MakeFedAvgM(double server_learning_rate,
                                                      double server_momentum,
                                                      size_t num_parameters = 0);
absl::StatusOr<std::unique_ptr<Strategy>> MakeFedAdagrad(const AdaptiveOptions& options,
                                                         size_t num_parameters = 0);
absl::StatusOr<std::unique_ptr<Strategy>> MakeFedAdam(const AdaptiveOptions& options,
                                                      size_t num_parameters = 0);
absl::StatusOr<std::unique_ptr<Strategy>> MakeFedYogi(const AdaptiveOptions& options,
                                                      size_t num_parameters = 0);

// The strategy a spec names, with the spec's defaults for fields left at 0 (proto3 cannot
// tell 0 from unset, so a momentum or β of exactly 0 cannot be asked for through a spec):
//   server_learning_rate 1.0 (FEDAVG, FEDAVGM, FEDPROX) or 0.01 (adaptive kinds);
//   server_momentum 0.9; beta1 0.9; beta2 0.99; tau 1e-3.
// KIND_UNSPECIFIED is FEDAVG. INVALID_ARGUMENT for a kind this build does not know or a
// set value out of range (see the factories above). `num_parameters` as for the factories
// (used by the stateful kinds; the round driver should pass the model's size).
absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const v1::StrategySpec& spec,
                                                       size_t num_parameters = 0);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STRATEGY_H_
