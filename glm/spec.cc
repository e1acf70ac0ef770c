#include "glm/spec.h"

namespace tessera::glm {

Family FamilyOf(v1::GlmSpec::Family family) {
  switch (family) {
    case v1::GlmSpec::GAUSSIAN:
      return Family::kGaussian;
    case v1::GlmSpec::POISSON:
      return Family::kPoisson;
    default:
      return Family::kBinomial;
  }
}

Ties TiesOf(v1::GlmSpec::Ties ties) {
  return ties == v1::GlmSpec::BRESLOW ? Ties::kBreslow : Ties::kEfron;
}

std::optional<CoxGrid> PooledGridOf(const v1::GlmSpec& glm) {
  if (glm.family() != v1::GlmSpec::COX || !glm.has_pooled_time_grid()) return std::nullopt;
  return CoxGrid{glm.pooled_time_grid().unit(), static_cast<int>(glm.pooled_time_grid().points())};
}

}  // namespace tessera::glm
