// Turning a committed model into files that leave the federation: the checkpoint (float32
// parameters in the layout of proto/model_layout.h), the task spec and the task's pooled
// standardisation become one v1::ExportedModel (proto/model_export.proto: a chain of dense
// layers over the standardised raw features), which the writers render as
//   onnx  an ONNX model (opset 13, IR version 8, the schema of Debian's libonnx-dev): one
//         float input "features" [N, F] taking the raw CSV columns in task order, the
//         standardisation inside the graph (Sub mean, Div stddev), then Gemm / Relu /
//         Sigmoid / Softmax only; one output (ExportedModel.output) [N, columns];
//   json  the proto3 JSON mapping of ExportedModel (kind, features, standardisation, every
//         layer's weights);
//   csv   a coefficient table for the linear kinds (logistic, softmax, linear, Cox):
//         output,feature,coefficient,standardized_coefficient,mean,stddev, one row per
//         output and feature plus one "(intercept)" row per output. `coefficient` is on
//         the raw scale of the feature (w / stddev; the intercept then is
//         b - sum_j w_j mean_j / stddev_j), `standardized_coefficient` is the model's own
//         weight (per standard deviation of the feature). An MLP has no such table: csv
//         refuses it (INVALID_ARGUMENT).
// Every writer is deterministic: the same model gives the same bytes, so that the
// coordinator can sign the SHA-256 of the file it builds (model_export/provenance.h).
//
// Pure functions; thread-safe. onnx.pb.h stays in the .cc files.
#ifndef TESSERA_MODEL_EXPORT_EXPORTED_MODEL_H_
#define TESSERA_MODEL_EXPORT_EXPORTED_MODEL_H_

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "proto/model_export.pb.h"

namespace tessera::v1 {
class Standardization;
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::model_export {

enum class Format { kOnnx, kJson, kCsv };

// "onnx", "json", "csv" (INVALID_ARGUMENT naming the accepted values otherwise).
absl::StatusOr<Format> ParseFormat(const std::string& name);
const char* FormatName(Format format);

// Where the model comes from, written into the file.
struct ModelOrigin {
  std::string task_id;
  uint32_t round = 0;
};

// The model of `spec` with parameters `params` and the pooled `standardization`.
// INVALID_ARGUMENT for an analytics spec (no model), a model kind this build does not know,
// a parameter count that does not match the layout, a standardisation whose sizes do not
// match the features, or a stddev that is not finite and > 0, or a parameter or mean that
// is not finite.
absl::StatusOr<v1::ExportedModel> BuildExportedModel(const v1::TaskSpec& spec,
                                                     const v1::Standardization& standardization,
                                                     std::span<const float> params,
                                                     const ModelOrigin& origin);

// The file's bytes in `format`. INVALID_ARGUMENT for csv of an MLP, or a model that is not
// consistent (layer sizes that do not chain; BuildExportedModel's output always is).
absl::StatusOr<std::string> WriteModelFile(const v1::ExportedModel& model, Format format);

}  // namespace tessera::model_export

#endif  // TESSERA_MODEL_EXPORT_EXPORTED_MODEL_H_
