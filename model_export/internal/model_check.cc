#include "model_export/internal/model_check.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace tessera::model_export::internal {
namespace {

template <typename Repeated>
bool AllFinite(const Repeated& values) {
  for (auto v : values) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckModel(const v1::ExportedModel& model) {
  const int d = model.features_size();
  if (d == 0) return absl::InvalidArgumentError("model: no features");
  if (model.layers_size() == 0) return absl::InvalidArgumentError("model: no layers");
  if (model.mean_size() != d || model.stddev_size() != d) {
    return absl::InvalidArgumentError(absl::StrCat("model: ", model.mean_size(), " means and ",
                                                   model.stddev_size(), " stddevs for ", d,
                                                   " features"));
  }
  if (!AllFinite(model.mean())) return absl::InvalidArgumentError("model: a mean is not finite");
  for (double s : model.stddev()) {
    if (!std::isfinite(s) || s <= 0) {
      return absl::InvalidArgumentError("model: a stddev is not finite and > 0");
    }
  }
  uint64_t inputs = static_cast<uint64_t>(d);
  for (int l = 0; l < model.layers_size(); ++l) {
    const v1::ExportedLayer& layer = model.layers(l);
    const std::string where = absl::StrCat("model: layer ", l, ": ");
    if (layer.inputs() != inputs) {
      return absl::InvalidArgumentError(absl::StrCat(where, "takes ", layer.inputs(),
                                                     " inputs, the layer before gives ", inputs));
    }
    if (layer.outputs() == 0) return absl::InvalidArgumentError(where + "no outputs");
    if (static_cast<uint64_t>(layer.weights_size()) != uint64_t{layer.inputs()} * layer.outputs()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, layer.weights_size(),
          " weights, expected outputs x inputs = ", uint64_t{layer.inputs()} * layer.outputs()));
    }
    if (layer.bias_size() != 0 && static_cast<uint32_t>(layer.bias_size()) != layer.outputs()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, layer.bias_size(), " biases for ", layer.outputs(), " outputs"));
    }
    if (!AllFinite(layer.weights()) || !AllFinite(layer.bias())) {
      return absl::InvalidArgumentError(where + "a weight or bias is not finite");
    }
    const std::string& act = layer.activation();
    if (act != "relu" && act != "sigmoid" && act != "softmax" && act != "identity") {
      return absl::InvalidArgumentError(absl::StrCat(where, "unknown activation '",
                                                     act.substr(0, 40),
                                                     "' (relu, sigmoid, softmax, identity)"));
    }
    inputs = layer.outputs();
  }
  if (static_cast<uint64_t>(model.output_columns_size()) != inputs) {
    return absl::InvalidArgumentError(absl::StrCat("model: ", model.output_columns_size(),
                                                   " output columns for ", inputs, " outputs"));
  }
  if (model.output().empty()) return absl::InvalidArgumentError("model: no output name");
  return absl::OkStatus();
}

}  // namespace tessera::model_export::internal
