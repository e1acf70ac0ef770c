// The glm library's names for what a task's spec asks (ModelSpec.GlmSpec in
// proto/task.proto), for the sites (client/glm_work.h) and the coordinator
// (coordinator/glm_rounds.h) alike. Pure; thread-safe.
#ifndef TESSERA_GLM_SPEC_H_
#define TESSERA_GLM_SPEC_H_

#include <optional>

#include "glm/cox.h"
#include "glm/glm.h"
#include "proto/task.pb.h"

namespace tessera::glm {

// BINOMIAL, GAUSSIAN, POISSON; anything else (COX, unset) is kBinomial — callers branch on
// COX first.
Family FamilyOf(v1::GlmSpec::Family family);

// BRESLOW, or Efron's (R's default) for everything else.
Ties TiesOf(v1::GlmSpec::Ties ties);

// A pooled Cox model's grid (GlmSpec.pooled_time_grid), or nullopt for a stratified one.
std::optional<CoxGrid> PooledGridOf(const v1::GlmSpec& glm);

}  // namespace tessera::glm

#endif  // TESSERA_GLM_SPEC_H_
