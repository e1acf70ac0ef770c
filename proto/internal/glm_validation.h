// Validation and defaults of an exact regression task (ModelSpec.GlmSpec), for
// proto/validation.cc. Errors name the field path, as ValidateTaskSpec's do.
#ifndef TESSERA_PROTO_INTERNAL_GLM_VALIDATION_H_
#define TESSERA_PROTO_INTERNAL_GLM_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "common/proto_text.h"
#include "proto/task.pb.h"

namespace tessera::proto::internal {

// The most features an exact regression takes: its contribution grows with p², so 1,000
// features are about 500,000 values a round.
inline constexpr int kMaxGlmFeatures = 1000;
// A pooled Cox model's grid (GlmSpec.pooled_time_grid): at most this many grid times, and
// at most this many values a site per round (points * (p + 1) * (p + 2), about its vector).
inline constexpr uint32_t kMaxCoxGridPoints = 100000;
inline constexpr uint64_t kMaxCoxGridValues = 4000000;

// model.glm and everything a GLM task leaves out (training, strategy, privacy, the
// penalty); rounds 1..100 when set. For a task whose model is a GLM (IsGlmTask).
void ValidateGlmTask(const v1::TaskSpec& spec, std::vector<common::FieldError>* errors);

// kind GLM, the canonical link, EFRON ties for COX, R's epsilon, rounds 25.
void ApplyGlmDefaults(v1::TaskSpec* spec);

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_GLM_VALIDATION_H_
