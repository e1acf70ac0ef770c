// Server strategies: pure functions of the round's aggregates, no I/O, no clock. The round
// driver owns RPCs, deadlines and dropouts; a strategy only says what each site is asked
// to do and what the cohort's sums turn into. Strategies only ever see sums over the
// cohort (never one site's update), so they work unchanged under secure aggregation.
//
// A stateful strategy (server momentum, adaptive moments) saves its state after every
// round; the driver commits it with the round and restores it after a restart.
//
// Not thread-safe: one instance per running task, used by its driver thread only.
#ifndef TESSERA_COORDINATOR_STRATEGY_H_
#define TESSERA_COORDINATOR_STRATEGY_H_

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
  // update. INVALID_ARGUMENT if the sizes disagree.
  virtual absl::StatusOr<std::vector<float>> AggregateFit(
      uint32_t round, std::span<const float> global, const proto::AveragedUpdate& update) = 0;

  // Whether the new model of `round` is evaluated. Default: every round.
  virtual bool ConfigureEvaluate(uint32_t round) const { return true; }

  // Round metrics from the cohort's summed evaluation vector (proto/contribution_layout.h):
  // loss, accuracy, num_examples.
  virtual absl::StatusOr<std::vector<v1::Metric>> AggregateEvaluate(
      uint32_t round, std::span<const double> summed) const;

  // Opaque state to commit with the round; empty for stateless strategies.
  virtual std::string SaveState() const { return ""; }
  // INVALID_ARGUMENT if `state` was not made by SaveState of the same strategy.
  virtual absl::Status RestoreState(const std::string& state) {
    return state.empty() ? absl::OkStatus()
                         : absl::InvalidArgumentError("this strategy keeps no state");
  }
};

// FedAvg (McMahan et al. 2017) with a server learning rate:
//   global <- global + server_learning_rate * mean_delta.
std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate);

// The strategy a spec names. INVALID_ARGUMENT for a kind this build does not know.
absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const v1::StrategySpec& spec);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_STRATEGY_H_
