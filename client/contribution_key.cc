#include "client/contribution_key.h"

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "proto/federation.pb.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"

namespace tessera::client {
namespace {

// The parts of `spec` the stage's vector depends on, everything else cleared.
v1::TaskSpec Determinants(const v1::TaskSpec& spec, v1::Stage stage) {
  v1::TaskSpec kept;
  v1::DatasetSpec* dataset = kept.mutable_dataset();
  dataset->set_id(spec.dataset().id());
  switch (stage) {
    case v1::STAGE_STATISTICS:
      *dataset->mutable_features() = spec.dataset().features();
      if (proto::StatisticsIncludeLabel(spec.model())) dataset->set_label(spec.dataset().label());
      *dataset->mutable_prepare() = spec.dataset().prepare();
      break;
    case v1::STAGE_FIT:
      *dataset = spec.dataset();
      *kept.mutable_model() = spec.model();
      *kept.mutable_training() = spec.training();
      kept.set_seed(spec.seed());
      break;
    case v1::STAGE_EVALUATE:
      *dataset = spec.dataset();
      *kept.mutable_model() = spec.model();
      kept.mutable_model()->clear_l2();
      kept.mutable_model()->clear_inverse_regularization();
      break;
    case v1::STAGE_GLM:
      // The tolerance only decides when the rounds stop, not what a vector holds.
      *dataset = spec.dataset();
      *kept.mutable_model() = spec.model();
      kept.mutable_model()->mutable_glm()->clear_epsilon();
      break;
    case v1::STAGE_ANALYTICS:
      *kept.mutable_analytics()->mutable_queries() = spec.analytics().queries();
      if (spec.analytics().has_filter()) {
        *kept.mutable_analytics()->mutable_filter() = spec.analytics().filter();
      }
      break;
    default:
      break;
  }
  return kept;
}

}  // namespace

std::string ContributionKey(const v1::TaskSpec& spec, int stage, const std::string& model_hash) {
  const v1::Stage s = static_cast<v1::Stage>(stage);
  const bool with_model = s == v1::STAGE_FIT || s == v1::STAGE_EVALUATE || s == v1::STAGE_GLM;
  // Every part has a fixed size or is length-prefixed, so no two inputs collide.
  const std::string spec_hash = crypto::HashTaskSpec(Determinants(spec, s));
  const std::string model = with_model ? model_hash : std::string();
  return crypto::Sha256(
      absl::StrCat("tessera/contribution/v1/", stage, "/", model.size(), ":", model, spec_hash));
}

std::vector<std::string> ContributionKeys(const v1::TaskSpec& spec, int stage,
                                          const std::string& model_hash) {
  if (stage == v1::STAGE_FIT_EVALUATE) {
    return {ContributionKey(spec, v1::STAGE_FIT, model_hash),
            ContributionKey(spec, v1::STAGE_EVALUATE, model_hash)};
  }
  return {ContributionKey(spec, stage, model_hash)};
}

}  // namespace tessera::client
