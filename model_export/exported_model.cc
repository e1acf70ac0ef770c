#include "model_export/exported_model.h"

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "common/version.h"
#include "crypto/hash.h"
#include "model_export/internal/model_check.h"
#include "model_export/internal/onnx_writer.h"
#include "proto/federation.pb.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"

namespace tessera::model_export {
namespace {

v1::ExportedLayer Dense(size_t inputs, size_t outputs, std::span<const float> weights,
                        std::span<const float> bias, const char* activation) {
  v1::ExportedLayer layer;
  layer.set_inputs(static_cast<uint32_t>(inputs));
  layer.set_outputs(static_cast<uint32_t>(outputs));
  layer.mutable_weights()->Add(weights.begin(), weights.end());
  layer.mutable_bias()->Add(bias.begin(), bias.end());
  layer.set_activation(activation);
  return layer;
}

// The layers of `spec` over `params` (their count already checked against the layout).
absl::Status AddLayers(const v1::ModelSpec& spec, size_t d, std::span<const float> params,
                       v1::ExportedModel* model) {
  using Kind = v1::ModelSpec;
  switch (spec.kind()) {
    case Kind::LOGISTIC_REGRESSION:
      *model->add_layers() = Dense(d, 1, params.first(d), params.subspan(d, 1), "sigmoid");
      model->set_output("probability");
      model->add_output_columns("probability");
      return absl::OkStatus();
    case Kind::LINEAR_REGRESSION:
      *model->add_layers() = Dense(d, 1, params.first(d), params.subspan(d, 1), "identity");
      model->set_output("prediction");
      model->add_output_columns("prediction");
      return absl::OkStatus();
    case Kind::COX_PH:
      *model->add_layers() = Dense(d, 1, params.first(d), {}, "identity");
      model->set_output("linear_predictor");
      model->add_output_columns("linear_predictor");
      return absl::OkStatus();
    case Kind::SOFTMAX_REGRESSION: {
      const size_t k = spec.num_classes();
      *model->add_layers() = Dense(d, k, params.first(k * d), params.subspan(k * d, k), "softmax");
      model->set_output("probabilities");
      for (size_t c = 0; c < k; ++c) model->add_output_columns(absl::StrCat("p_", c));
      return absl::OkStatus();
    }
    case Kind::MLP: {
      ASSIGN_OR_RETURN(std::vector<size_t> widths, proto::MlpLayerWidths(spec, d));
      size_t offset = 0;
      const bool classifier = spec.num_classes() >= 2;
      for (size_t l = 0; l + 1 < widths.size(); ++l) {
        const size_t in = widths[l], out = widths[l + 1];
        const bool head = l + 2 == widths.size();
        const char* act = !head ? "relu" : (classifier ? "softmax" : "identity");
        *model->add_layers() = Dense(in, out, params.subspan(offset, out * in),
                                     params.subspan(offset + out * in, out), act);
        offset += out * in + out;
      }
      if (classifier) {
        model->set_output("probabilities");
        for (size_t c = 0; c < spec.num_classes(); ++c) {
          model->add_output_columns(absl::StrCat("p_", c));
        }
      } else {
        model->set_output("prediction");
        model->add_output_columns("prediction");
      }
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "model kind ",
          v1::ModelSpec::Kind_IsValid(spec.kind()) ? v1::ModelSpec::Kind_Name(spec.kind())
                                                   : absl::StrCat(static_cast<int>(spec.kind())),
          " cannot be exported",
          spec.kind() == v1::ModelSpec::GLM
              ? ": an exact regression's result is its report (tessera tasks show)"
              : ""));
  }
}

std::string Number(double v) { return absl::StrFormat("%.17g", v); }

// csv: see the header. Linear kinds only.
absl::StatusOr<std::string> WriteCsv(const v1::ExportedModel& model) {
  if (model.kind() == v1::ModelSpec::MLP || model.layers_size() != 1) {
    return absl::InvalidArgumentError(
        "--format csv is a coefficient table of a linear model (logistic, softmax, linear "
        "regression, Cox); an MLP has no per-feature coefficients: export it as onnx or json");
  }
  const v1::ExportedLayer& layer = model.layers(0);
  const size_t d = layer.inputs();
  std::string out = "output,feature,coefficient,standardized_coefficient,mean,stddev\n";
  for (size_t o = 0; o < layer.outputs(); ++o) {
    std::string name = model.output_columns(static_cast<int>(o));
    if (model.kind() == v1::ModelSpec::LOGISTIC_REGRESSION) name = "logit";
    // The intercept on the raw scale, summed in double.
    double intercept = layer.bias().empty() ? 0.0 : layer.bias(static_cast<int>(o));
    for (size_t j = 0; j < d; ++j) {
      const double w = layer.weights(static_cast<int>(o * d + j));
      const double m = model.mean(static_cast<int>(j));
      const double s = model.stddev(static_cast<int>(j));
      intercept -= w * m / s;
      absl::StrAppend(&out, name, ",", model.features(static_cast<int>(j)), ",", Number(w / s), ",",
                      Number(w), ",", Number(m), ",", Number(s), "\n");
    }
    const double b = layer.bias().empty() ? 0.0 : layer.bias(static_cast<int>(o));
    absl::StrAppend(&out, name, ",(intercept),", Number(intercept), ",", Number(b), ",,\n");
  }
  return out;
}

}  // namespace

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "onnx") return Format::kOnnx;
  if (name == "json") return Format::kJson;
  if (name == "csv") return Format::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", name.substr(0, 40), "' (onnx, json or csv)"));
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kOnnx:
      return "onnx";
    case Format::kJson:
      return "json";
    case Format::kCsv:
      return "csv";
  }
  return "?";
}

absl::StatusOr<v1::ExportedModel> BuildExportedModel(const v1::TaskSpec& spec,
                                                     const v1::Standardization& standardization,
                                                     std::span<const float> params,
                                                     const ModelOrigin& origin) {
  if (spec.has_analytics() || !spec.has_model()) {
    return absl::InvalidArgumentError("an analytics task has no model to export");
  }
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  ASSIGN_OR_RETURN(size_t expected, proto::NumParameters(spec.model(), d));
  if (params.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint has ", params.size(),
                                                   " parameters, the model needs ", expected));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (!std::isfinite(params[i])) {
      return absl::InvalidArgumentError(absl::StrCat("parameter ", i, " is not finite"));
    }
  }
  if (static_cast<size_t>(standardization.mean_size()) != d ||
      static_cast<size_t>(standardization.stddev_size()) != d) {
    return absl::InvalidArgumentError(
        absl::StrCat("the standardisation has ", standardization.mean_size(), " means and ",
                     standardization.stddev_size(), " standard deviations for ", d, " features"));
  }
  v1::ExportedModel model;
  model.set_format_version(1);
  model.set_kind(spec.model().kind());
  model.set_task_id(origin.task_id);
  model.set_round(origin.round);
  model.set_model_sha256(crypto::ToHex(crypto::HashModel(params)));
  model.set_spec_sha256(crypto::ToHex(crypto::HashTaskSpec(spec)));
  *model.mutable_features() = spec.dataset().features();
  model.set_label(spec.dataset().label());
  model.set_event(spec.dataset().event());
  *model.mutable_mean() = standardization.mean();
  *model.mutable_stddev() = standardization.stddev();
  RETURN_IF_ERROR(AddLayers(spec.model(), d, params, &model));
  model.set_producer_version(std::string(common::Version()));
  RETURN_IF_ERROR(internal::CheckModel(model));
  return model;
}

absl::StatusOr<std::string> WriteModelFile(const v1::ExportedModel& model, Format format) {
  RETURN_IF_ERROR(internal::CheckModel(model));
  switch (format) {
    case Format::kOnnx:
      return internal::WriteOnnx(model);
    case Format::kJson:
      return common::ToJson(model) + "\n";
    case Format::kCsv:
      return WriteCsv(model);
  }
  return absl::InvalidArgumentError("unknown format");
}

}  // namespace tessera::model_export
