#include "proto/internal/glm_validation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/internal/names.h"

namespace tessera::proto::internal {
namespace {

using common::FieldError;

v1::GlmSpec::Link CanonicalLink(v1::GlmSpec::Family family) {
  switch (family) {
    case v1::GlmSpec::BINOMIAL:
      return v1::GlmSpec::LOGIT;
    case v1::GlmSpec::GAUSSIAN:
      return v1::GlmSpec::IDENTITY;
    case v1::GlmSpec::POISSON:
      return v1::GlmSpec::LOG;
    default:
      return v1::GlmSpec::LINK_UNSPECIFIED;
  }
}

// A column named by `field` (offset or weights): a valid header name that is not a
// feature, the label, the event or `other`.
void CheckExtraColumn(const v1::TaskSpec& spec, const std::string& column, const char* field,
                      const std::string& other, std::vector<FieldError>* errors) {
  if (column.empty()) return;
  const v1::DatasetSpec& ds = spec.dataset();
  if (!IsValidColumnName(column)) {
    errors->push_back({field, "must be a CSV header name without commas or quotes"});
  } else if (column == ds.label() || column == ds.event() || column == other ||
             std::find(ds.features().begin(), ds.features().end(), column) != ds.features().end()) {
    errors->push_back({field, absl::StrCat("column '", column,
                                           "' is already the label, the event, a feature or "
                                           "the other of offset and weights")});
  }
}

void ValidateGlmSpec(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  const v1::GlmSpec& g = spec.model().glm();
  if (g.family() == v1::GlmSpec::FAMILY_UNSPECIFIED) {
    errors->push_back({"model.glm.family", "required (BINOMIAL, GAUSSIAN, POISSON or COX)"});
    return;
  }
  if (!v1::GlmSpec::Family_IsValid(g.family())) {
    errors->push_back({"model.glm.family", "unknown family"});
    return;
  }
  const bool cox = g.family() == v1::GlmSpec::COX;
  if (!v1::GlmSpec::Link_IsValid(g.link())) {
    errors->push_back({"model.glm.link", "unknown link"});
  } else if (g.link() != v1::GlmSpec::LINK_UNSPECIFIED && g.link() != CanonicalLink(g.family())) {
    errors->push_back(
        {"model.glm.link", cox ? "COX has no link"
                               : "only the family's canonical link is supported (LOGIT for "
                                 "BINOMIAL, IDENTITY for GAUSSIAN, LOG for POISSON)"});
  }
  if (!v1::GlmSpec::Ties_IsValid(g.ties())) {
    errors->push_back({"model.glm.ties", "unknown ties method (EFRON or BRESLOW)"});
  } else if (!cox && g.ties() != v1::GlmSpec::TIES_UNSPECIFIED) {
    errors->push_back({"model.glm.ties", "only COX handles tied event times"});
  }
  if (!(g.epsilon() >= 0 && g.epsilon() <= 1e-3)) {
    errors->push_back({"model.glm.epsilon", "must be in (0, 1e-3] (unset: R's default)"});
  }
  if (cox) {
    if (g.site_fixed_effects()) {
      errors->push_back({"model.glm.site_fixed_effects",
                         "COX is stratified by site already (each site its own baseline hazard)"});
    }
    if (!g.offset().empty()) errors->push_back({"model.glm.offset", "not supported for COX"});
    if (!g.weights().empty()) errors->push_back({"model.glm.weights", "not supported for COX"});
    if (spec.dataset().event().empty()) {
      errors->push_back({"dataset.event", "COX needs the event column"});
    }
    if (g.has_pooled_time_grid()) {
      const v1::CoxTimeGrid& grid = g.pooled_time_grid();
      if (!(std::isfinite(grid.unit()) && grid.unit() > 0)) {
        errors->push_back({"model.glm.pooled_time_grid.unit", "must be a finite number > 0"});
      }
      if (grid.points() < 1 || grid.points() > kMaxCoxGridPoints) {
        errors->push_back(
            {"model.glm.pooled_time_grid.points", absl::StrCat("must be 1..", kMaxCoxGridPoints)});
      }
      const auto p = static_cast<uint64_t>(spec.dataset().features_size());
      if (static_cast<uint64_t>(grid.points()) * (p + 1) * (p + 2) > kMaxCoxGridValues) {
        errors->push_back({"model.glm.pooled_time_grid.points",
                           absl::StrCat("with ", p, " features each round would carry more than ",
                                        kMaxCoxGridValues, " values a site: fewer grid times")});
      }
    }
  } else if (!spec.dataset().event().empty()) {
    errors->push_back({"dataset.event", "only COX takes an event column"});
  }
  if (!cox && g.has_pooled_time_grid()) {
    errors->push_back({"model.glm.pooled_time_grid", "only COX has a baseline hazard to pool"});
  }
  if (g.log_offset() && g.offset().empty()) {
    errors->push_back({"model.glm.log_offset", "needs model.glm.offset"});
  }
  CheckExtraColumn(spec, g.offset(), "model.glm.offset", g.weights(), errors);
  CheckExtraColumn(spec, g.weights(), "model.glm.weights", g.offset(), errors);
  if (spec.dataset().features_size() > kMaxGlmFeatures) {
    errors->push_back({"dataset.features", absl::StrCat("an exact regression takes at most ",
                                                        kMaxGlmFeatures, " features")});
  }
}

}  // namespace

void ValidateGlmTask(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  const v1::ModelSpec& m = spec.model();
  if (m.kind() != v1::ModelSpec::GLM && m.kind() != v1::ModelSpec::KIND_UNSPECIFIED) {
    errors->push_back({"model.glm", "only a GLM model (kind GLM, or no kind) takes glm"});
  }
  if (!m.has_glm()) {
    errors->push_back({"model.glm", "required for kind GLM (family at least)"});
  } else {
    ValidateGlmSpec(spec, errors);
  }
  if (m.l2() != 0 || m.inverse_regularization() != 0) {
    errors->push_back({"model.l2", "an exact regression is not penalised"});
  }
  if (m.num_classes() != 0) errors->push_back({"model.num_classes", "a GLM has no classes"});
  if (m.hidden_layers_size() > 0) {
    errors->push_back({"model.hidden_layers", "only an MLP has hidden layers"});
  }
  if (spec.has_training()) {
    errors->push_back({"training", "an exact regression has no local training (Newton rounds)"});
  }
  if (spec.has_strategy()) {
    errors->push_back({"strategy", "an exact regression's rounds are Newton steps, no strategy"});
  }
  if (spec.has_privacy()) {
    errors->push_back({"privacy",
                       "an exact regression releases exact sums; differential privacy of them is "
                       "not supported"});
  }
  // A GLM family needs a round for its start and two to compare; COX two to compare.
  const uint32_t least = m.glm().family() == v1::GlmSpec::COX ? 2 : 3;
  if (spec.rounds() != 0 && (spec.rounds() < least || spec.rounds() > 100)) {
    errors->push_back(
        {"rounds", absl::StrCat("an exact regression takes ", least, "..100 rounds (default 25)")});
  }
}

void ApplyGlmDefaults(v1::TaskSpec* spec) {
  v1::ModelSpec* m = spec->mutable_model();
  m->set_kind(v1::ModelSpec::GLM);
  v1::GlmSpec* g = m->mutable_glm();
  const bool cox = g->family() == v1::GlmSpec::COX;
  if (g->link() == v1::GlmSpec::LINK_UNSPECIFIED && !cox) g->set_link(CanonicalLink(g->family()));
  if (cox && g->ties() == v1::GlmSpec::TIES_UNSPECIFIED) g->set_ties(v1::GlmSpec::EFRON);
  if (g->epsilon() == 0) g->set_epsilon(cox ? 1e-9 : 1e-8);
  if (spec->rounds() == 0) spec->set_rounds(25);
}

}  // namespace tessera::proto::internal
