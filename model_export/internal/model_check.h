// Consistency of a v1::ExportedModel (one read from a JSON file, or built): what the
// writers and the scorer rely on. Thread-safe.
#ifndef TESSERA_MODEL_EXPORT_INTERNAL_MODEL_CHECK_H_
#define TESSERA_MODEL_EXPORT_INTERNAL_MODEL_CHECK_H_

#include "absl/status/status.h"
#include "proto/model_export.pb.h"

namespace tessera::model_export::internal {

// INVALID_ARGUMENT naming the first problem: no features or layers, mean/stddev sizes not
// matching the features, a stddev not finite and > 0, a layer whose inputs do not chain
// (the first takes the features), weights not outputs x inputs, a bias neither empty nor
// `outputs` long, an unknown activation, a non-finite number, output columns not matching
// the last layer's outputs.
absl::Status CheckModel(const v1::ExportedModel& model);

}  // namespace tessera::model_export::internal

#endif  // TESSERA_MODEL_EXPORT_INTERNAL_MODEL_CHECK_H_
