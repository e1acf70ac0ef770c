// The shape of an exact regression task (ModelSpec.GlmSpec, stage STAGE_GLM): how many
// coefficients it has, their names, and the length of the vector a site contributes each
// Newton round. Both sides and the secure-aggregation encoding use these; nothing else
// knows the layout.
//
//   coefficients  "(Intercept)" — or, with site fixed effects, "(Intercept):<site>" for
//                 each site of the cohort in sorted order — then the features in the spec's
//                 order. COX has no intercept: the features only.
//   contribution  GLM families: glm::Flatten(SiteSums), p(p+1)/2 + p + 8 values;
//                 COX: glm::FlattenCox(CoxSums), 1 + p + p(p+1)/2 + 2 values
//                 (tests/glm/ checks that these lengths are glm/'s).
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_GLM_LAYOUT_H_
#define TESSERA_PROTO_GLM_LAYOUT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/task.pb.h"

namespace tessera::proto {

// Whether `spec` is an exact regression task (model.kind GLM, or model.glm set).
bool IsGlmTask(const v1::TaskSpec& spec);

// The number of coefficients for a cohort of `num_sites` sites. INVALID_ARGUMENT for a task
// that is not a GLM, no features, or (with site fixed effects) no sites.
absl::StatusOr<size_t> GlmCoefficientCount(const v1::TaskSpec& spec, size_t num_sites);

// Their names; `sites` the cohort sorted by name (used with site fixed effects only).
absl::StatusOr<std::vector<std::string>> GlmCoefficientNames(const v1::TaskSpec& spec,
                                                             const std::vector<std::string>& sites);

// The length of a site's contribution for `num_coefficients` coefficients.
size_t GlmContributionLength(const v1::TaskSpec& spec, size_t num_coefficients);

// The family's name as R prints it: "binomial", "gaussian", "poisson", "cox".
std::string GlmFamilyName(v1::GlmSpec::Family family);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_GLM_LAYOUT_H_
