// Validation and defaults of an exact regression task (ModelSpec.GlmSpec), for
// proto/validation.cc. Errors name the field path, as ValidateTaskSpec's do.
#ifndef TESSERA_PROTO_INTERNAL_GLM_VALIDATION_H_
#define TESSERA_PROTO_INTERNAL_GLM_VALIDATION_H_

#include <vector>

#include "common/proto_text.h"
#include "proto/task.pb.h"

namespace tessera::proto::internal {

// The most features an exact regression takes: its contribution grows with p², so 1,000
// features are about 500,000 values a round.
inline constexpr int kMaxGlmFeatures = 1000;

// model.glm and everything a GLM task leaves out (training, strategy, privacy, the
// penalty); rounds 1..100 when set. For a task whose model is a GLM (IsGlmTask).
void ValidateGlmTask(const v1::TaskSpec& spec, std::vector<common::FieldError>* errors);

// kind GLM, the canonical link, EFRON ties for COX, R's epsilon, rounds 25.
void ApplyGlmDefaults(v1::TaskSpec* spec);

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_GLM_VALIDATION_H_
