#include "client/model.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/internal/check.h"
#include "client/internal/model_util.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"

namespace tessera::client {
namespace internal {

void InitializeFromLayout(LayoutKind kind, size_t num_features, uint32_t num_classes,
                          std::span<const uint32_t> hidden_layers, uint64_t seed,
                          std::span<float> params) {
  v1::ModelSpec spec;
  switch (kind) {
    case LayoutKind::kLogistic:
      spec.set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
      break;
    case LayoutKind::kSoftmax:
      spec.set_kind(v1::ModelSpec::SOFTMAX_REGRESSION);
      break;
    case LayoutKind::kLinear:
      spec.set_kind(v1::ModelSpec::LINEAR_REGRESSION);
      break;
    case LayoutKind::kMlp:
      spec.set_kind(v1::ModelSpec::MLP);
      break;
    case LayoutKind::kCox:
      spec.set_kind(v1::ModelSpec::COX_PH);
      break;
  }
  spec.set_num_classes(num_classes);
  for (uint32_t width : hidden_layers) spec.add_hidden_layers(width);
  absl::StatusOr<std::vector<float>> initial = proto::InitialParameters(spec, num_features, seed);
  TESSERA_CLIENT_CHECK(initial.ok());
  TESSERA_CLIENT_CHECK(initial->size() == params.size());
  std::copy(initial->begin(), initial->end(), params.begin());
}

}  // namespace internal

absl::Status Model::CheckData(const Dataset& data, const std::string& source_name) const {
  if (data.num_features != num_features()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": data has ", data.num_features,
                                                   " features, the model expects ",
                                                   num_features()));
  }
  if (data.x.size() != data.num_rows * data.num_features || data.y.size() != data.num_rows ||
      (!data.event.empty() && data.event.size() != data.num_rows)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": data arrays do not match its row count ", data.num_rows));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Model>> MakeModel(const v1::ModelSpec& spec, size_t num_features) {
  // One set of rules for the coordinator and the sites: proto::NumParameters rejects every
  // bad combination with a message naming the field.
  absl::StatusOr<size_t> num_parameters = proto::NumParameters(spec, num_features);
  if (!num_parameters.ok()) return num_parameters.status();

  std::unique_ptr<Model> model;
  switch (spec.kind()) {
    case v1::ModelSpec::LOGISTIC_REGRESSION:
      model = MakeLogisticRegression(num_features);
      break;
    case v1::ModelSpec::SOFTMAX_REGRESSION:
      model = MakeSoftmaxRegression(num_features, spec.num_classes());
      break;
    case v1::ModelSpec::LINEAR_REGRESSION:
      model = MakeLinearRegression(num_features);
      break;
    case v1::ModelSpec::MLP: {
      const std::vector<uint32_t> hidden(spec.hidden_layers().begin(), spec.hidden_layers().end());
      model = MakeMlp(num_features, hidden, spec.num_classes());
      break;
    }
    case v1::ModelSpec::COX_PH:
      model = MakeCoxPh(num_features);
      break;
    case v1::ModelSpec::GLM:
      return absl::InvalidArgumentError(
          "model.kind GLM is an exact regression, fitted by Newton rounds (client/glm_work.h), "
          "not trained locally");
    default:
      break;
  }
  if (model == nullptr || model->num_parameters() != *num_parameters) {
    // NumParameters accepted a kind this switch does not build: the two must move together.
    return absl::InternalError(absl::StrCat("model.kind ", static_cast<int>(spec.kind()),
                                            " has a layout but no implementation"));
  }
  return model;
}

}  // namespace tessera::client
