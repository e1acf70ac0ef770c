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

}  // namespace tessera::glm
