#include "coordinator/strategy.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"

namespace tessera::coordinator {
namespace {

v1::Metric MakeMetric(const std::string& name, double value) {
  v1::Metric m;
  m.set_name(name);
  m.set_value(value);
  return m;
}

class FedAvg final : public Strategy {
 public:
  explicit FedAvg(double server_learning_rate) : lr_(server_learning_rate) {}

  absl::StatusOr<std::vector<float>> AggregateFit(uint32_t round, std::span<const float> global,
                                                  const proto::AveragedUpdate& update) override {
    if (update.mean_delta.size() != global.size()) {
      return absl::InvalidArgumentError(absl::StrCat("update has ", update.mean_delta.size(),
                                                     " parameters, the model ", global.size()));
    }
    std::vector<float> next(global.size());
    for (size_t i = 0; i < global.size(); ++i) {
      float v = static_cast<float>(static_cast<double>(global[i]) + lr_ * update.mean_delta[i]);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameter ", i, " leaves the float range after the update"));
      }
      next[i] = v;
    }
    return next;
  }

 private:
  const double lr_;
};

}  // namespace

absl::StatusOr<std::vector<v1::Metric>> Strategy::AggregateEvaluate(
    uint32_t round, std::span<const double> summed) const {
  auto metrics = proto::DecodeEvaluate(summed);
  if (!metrics.ok()) return metrics.status();
  return std::vector<v1::Metric>{MakeMetric("loss", metrics->loss),
                                 MakeMetric("accuracy", metrics->accuracy),
                                 MakeMetric("num_examples", metrics->num_examples)};
}

std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate) {
  return std::make_unique<FedAvg>(server_learning_rate);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const v1::StrategySpec& spec) {
  double lr = spec.server_learning_rate() > 0 ? spec.server_learning_rate() : 1.0;
  switch (spec.kind()) {
    case v1::StrategySpec::KIND_UNSPECIFIED:
    case v1::StrategySpec::FEDAVG:
      return MakeFedAvg(lr);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("strategy kind ", static_cast<int>(spec.kind()), " is not supported"));
  }
}

}  // namespace tessera::coordinator
