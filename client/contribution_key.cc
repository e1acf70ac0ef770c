#include "client/contribution_key.h"

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "proto/federation.pb.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"
#include "proto/validation_split.h"

namespace tessera::client {
namespace {

// The parts of `spec` the stage's vector depends on, everything else cleared.
v1::TaskSpec Determinants(const v1::TaskSpec& spec, v1::Stage stage) {
  v1::TaskSpec kept;
  v1::DatasetSpec* dataset = kept.mutable_dataset();
  dataset->set_id(spec.dataset().id());
  // A validation split decides which of the training file's rows a STATISTICS, FIT or
  // EVALUATE vector sums over.
  const auto keep_split = [&] {
    if (!proto::HasValidationSplit(spec)) return;
    kept.mutable_training()->set_validation_fraction(spec.training().validation_fraction());
    kept.set_seed(spec.seed());
  };
  switch (stage) {
    case v1::STAGE_STATISTICS:
      *dataset->mutable_features() = spec.dataset().features();
      if (proto::StatisticsIncludeLabel(spec.model())) dataset->set_label(spec.dataset().label());
      *dataset->mutable_prepare() = spec.dataset().prepare();
      keep_split();
      break;
    case v1::STAGE_FIT:
      *dataset = spec.dataset();
      *kept.mutable_model() = spec.model();
      *kept.mutable_training() = spec.training();
      // Which round is selected does not change what a round trains.
      kept.mutable_training()->clear_early_stopping();
      kept.set_seed(spec.seed());
      break;
    case v1::STAGE_EVALUATE:
      *dataset = spec.dataset();
      *kept.mutable_model() = spec.model();
      kept.mutable_model()->clear_l2();
      kept.mutable_model()->clear_inverse_regularization();
      keep_split();
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
  if (stage == v1::STAGE_TEST) {
    // The test rows' evaluation is the vector an EVALUATE sends in a task without a split:
    // one key for both, so neither can be asked for after the other.
    v1::TaskSpec on_test = spec;
    on_test.mutable_training()->clear_validation_fraction();
    on_test.mutable_training()->clear_early_stopping();
    return ContributionKey(on_test, v1::STAGE_EVALUATE, model_hash);
  }
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
