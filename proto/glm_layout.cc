#include "proto/glm_layout.h"

#include "absl/strings/str_cat.h"

namespace tessera::proto {

bool IsGlmTask(const v1::TaskSpec& spec) {
  return spec.model().kind() == v1::ModelSpec::GLM || spec.model().has_glm();
}

absl::StatusOr<size_t> GlmCoefficientCount(const v1::TaskSpec& spec, size_t num_sites) {
  if (!IsGlmTask(spec)) return absl::InvalidArgumentError("the task is not an exact regression");
  const auto features = static_cast<size_t>(spec.dataset().features_size());
  if (features == 0) return absl::InvalidArgumentError("an exact regression needs features");
  const v1::GlmSpec& glm = spec.model().glm();
  if (glm.family() == v1::GlmSpec::COX) return features;
  if (!glm.site_fixed_effects()) return features + 1;
  if (num_sites == 0) {
    return absl::InvalidArgumentError("site fixed effects need the cohort's sites");
  }
  return features + num_sites;
}

absl::StatusOr<std::vector<std::string>> GlmCoefficientNames(
    const v1::TaskSpec& spec, const std::vector<std::string>& sites) {
  const v1::GlmSpec& glm = spec.model().glm();
  if (absl::StatusOr<size_t> p = GlmCoefficientCount(spec, sites.size()); !p.ok()) {
    return p.status();
  }
  std::vector<std::string> names;
  if (glm.family() != v1::GlmSpec::COX) {
    if (glm.site_fixed_effects()) {
      for (const std::string& site : sites) names.push_back(absl::StrCat("(Intercept):", site));
    } else {
      names.emplace_back("(Intercept)");
    }
  }
  names.insert(names.end(), spec.dataset().features().begin(), spec.dataset().features().end());
  return names;
}

size_t GlmContributionLength(const v1::TaskSpec& spec, size_t num_coefficients) {
  const size_t p = num_coefficients;
  const size_t triangle = p * (p + 1) / 2;
  const v1::GlmSpec& g = spec.model().glm();
  if (g.family() == v1::GlmSpec::COX && g.has_pooled_time_grid()) {
    // glm::PooledCoxFlatSize: the event sums and counts, then per grid time the event
    // count, S0, E0, S1, E1 and the two triangles.
    return 1 + p + 2 +
           static_cast<size_t>(g.pooled_time_grid().points()) * (3 + 2 * p + 2 * triangle);
  }
  if (g.family() == v1::GlmSpec::COX) return 1 + p + triangle + 2;
  return triangle + p + 8;
}

std::string GlmFamilyName(v1::GlmSpec::Family family) {
  switch (family) {
    case v1::GlmSpec::BINOMIAL:
      return "binomial";
    case v1::GlmSpec::GAUSSIAN:
      return "gaussian";
    case v1::GlmSpec::POISSON:
      return "poisson";
    case v1::GlmSpec::COX:
      return "cox";
    default:
      return "unknown";
  }
}

}  // namespace tessera::proto
