#include "client/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/internal/random.h"

namespace tessera::client {
namespace {

absl::Status CheckArguments(const Model& model, const Dataset& data, const TrainingOptions& options,
                            std::span<float> params) {
  if (data.num_rows == 0) return absl::InvalidArgumentError("training data has no rows");
  if (data.num_features != model.num_features()) {
    return absl::InvalidArgumentError(absl::StrCat("training data has ", data.num_features,
                                                   " features, the model expects ",
                                                   model.num_features()));
  }
  if (data.x.size() != data.num_rows * data.num_features || data.y.size() != data.num_rows) {
    return absl::InvalidArgumentError("training data arrays do not match its row count");
  }
  if (params.size() != model.num_parameters()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", params.size(), " parameters, the model has ", model.num_parameters()));
  }
  if (options.batch_size == 0) return absl::InvalidArgumentError("batch_size must be positive");
  if (!(std::isfinite(options.learning_rate) && options.learning_rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("learning_rate must be positive and finite, got ", options.learning_rate));
  }
  if (!(std::isfinite(options.l2) && options.l2 >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("l2 must be non-negative and finite, got ", options.l2));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainingReport> TrainSgd(const Model& model, const Dataset& data,
                                        const TrainingOptions& options, std::span<float> params) {
  if (absl::Status status = CheckArguments(model, data, options, params); !status.ok()) {
    return status;
  }
  const std::vector<float> original(params.begin(), params.end());
  // SGD steps are applied to a double copy and rounded to float for each gradient: many
  // small steps would otherwise be lost to float rounding of the parameters.
  std::vector<double> master(params.begin(), params.end());
  std::vector<double> grad(params.size());
  std::vector<size_t> order(data.num_rows);
  internal::SplitMix64 rng(options.seed);

  auto fail = [&](const std::string& what) {
    std::copy(original.begin(), original.end(), params.begin());
    return absl::FailedPreconditionError(
        absl::StrCat(what, "; the parameters were left unchanged (try a smaller learning rate)"));
  };

  TrainingReport report;
  report.num_examples = data.num_rows;
  for (uint32_t epoch = 0; epoch < options.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), size_t{0});
    internal::Shuffle(rng, order);
    double epoch_loss_sum = 0;
    uint64_t epoch_batches = 0;
    for (size_t start = 0; start < order.size(); start += options.batch_size) {
      const size_t size = std::min<size_t>(options.batch_size, order.size() - start);
      std::fill(grad.begin(), grad.end(), 0.0);
      const double loss = model.LossAndGradient(
          params, data, std::span<const size_t>(order).subspan(start, size), options.l2, grad);
      if (!std::isfinite(loss)) {
        return fail(absl::StrCat("training loss became non-finite in epoch ", epoch + 1, ", step ",
                                 report.steps + 1));
      }
      for (size_t i = 0; i < master.size(); ++i) {
        master[i] -= options.learning_rate * grad[i];
        params[i] = static_cast<float>(master[i]);
      }
      if (!std::all_of(params.begin(), params.end(), [](float v) { return std::isfinite(v); })) {
        return fail(absl::StrCat("parameters became non-finite in epoch ", epoch + 1, ", step ",
                                 report.steps + 1));
      }
      ++report.steps;
      epoch_loss_sum += loss;
      ++epoch_batches;
    }
    report.final_epoch_loss = epoch_loss_sum / static_cast<double>(epoch_batches);
  }
  return report;
}

}  // namespace tessera::client
