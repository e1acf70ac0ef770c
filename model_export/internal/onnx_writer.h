// The ONNX rendering of an ExportedModel (model_export/exported_model.h describes the
// graph). Kept apart so that only its .cc includes onnx's generated header.
#ifndef TESSERA_MODEL_EXPORT_INTERNAL_ONNX_WRITER_H_
#define TESSERA_MODEL_EXPORT_INTERNAL_ONNX_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "proto/model_export.pb.h"

namespace tessera::model_export::internal {

// ONNX IR version and the default domain's opset the writer uses (onnx 1.12's checker
// accepts IR <= 8 and opset <= 17).
inline constexpr int64_t kOnnxIrVersion = 8;
inline constexpr int64_t kOnnxOpset = 13;
// The graph's input name.
inline constexpr char kOnnxInput[] = "features";

// The serialised onnx.ModelProto (deterministic serialisation). `model` must pass
// CheckModel.
absl::StatusOr<std::string> WriteOnnx(const v1::ExportedModel& model);

}  // namespace tessera::model_export::internal

#endif  // TESSERA_MODEL_EXPORT_INTERNAL_ONNX_WRITER_H_
