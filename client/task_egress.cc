#include "client/task_egress.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/policy.h"
#include "proto/evaluation.h"
#include "proto/glm_layout.h"
#include "proto/model_layout.h"
#include "proto/validation_split.h"
#include "secagg/stage_encoding.h"
#include "secagg/vector_codec.h"

namespace tessera::client {
namespace {

std::string PrivacyText(const v1::PrivacySpec& p) {
  return absl::StrCat("noise_multiplier ", p.noise_multiplier(), ", clip_norm ", p.clip_norm(),
                      ", task budget epsilon ", p.epsilon_budget(), " at delta ", p.delta());
}

// One stage's entry; the vector size from the encoding the site's session would use.
v1::StageEgress Stage(const v1::TaskSpec& spec, v1::Stage stage, const char* name,
                      std::string holds) {
  v1::StageEgress out;
  out.set_stage(name);
  out.set_holds(std::move(holds));
  // The vector's size does not depend on the cohort; the least cohort the task allows.
  auto encoding = secagg::StageEncoding(spec, stage, std::max<uint32_t>(spec.min_clients(), 2));
  if (encoding.ok()) {
    out.set_values(secagg::EncodedValues(*encoding));
    out.set_words(secagg::EncodedWords(*encoding));
  } else {
    out.set_skipped(absl::StrCat("cannot be computed: ", encoding.status().message()));
  }
  return out;
}

const v1::LocalDataset* FindLocal(const v1::ClientConfig& config, const std::string& id) {
  for (const v1::LocalDataset& d : config.datasets()) {
    if (d.id() == id) return &d;
  }
  return nullptr;
}

void TrainingStages(const v1::TaskSpec& spec, const v1::LocalDataset* local,
                    v1::ShowTaskResponse* out) {
  const size_t features = static_cast<size_t>(spec.dataset().features_size());
  const bool label = proto::StatisticsIncludeLabel(spec.model());
  v1::StageEgress stats =
      Stage(spec, v1::STAGE_STATISTICS, "statistics",
            absl::StrCat("row count, sums and sums of squares of ", features, " feature columns",
                         label ? " and the label" : "",
                         " (round 0; not asked again when earlier pooled statistics are reused)"));
  *out->add_stages() = std::move(stats);

  if (proto::IsGlmTask(spec)) {
    const bool cox = spec.model().glm().family() == v1::GlmSpec::COX;
    const bool pooled = cox && spec.model().glm().has_pooled_time_grid();
    *out->add_stages() = Stage(
        spec, v1::STAGE_GLM, "glm",
        absl::StrCat(pooled ? absl::StrCat("for each of the ",
                                           spec.model().glm().pooled_time_grid().points(),
                                           " grid times, the sums of e^eta, e^eta*x and "
                                           "e^eta*x*x' over the training rows at risk and over "
                                           "the events there, with the event count")
                     : cox  ? "partial log-likelihood, score and information matrix of the "
                              "training rows (this site's stratum)"
                            : "X'WX, X'Wz, deviance, Pearson chi-square and log-likelihood of the "
                              "training rows, with their row count and weighted totals",
                     " at the round's coefficients, every round (at most ", spec.rounds(),
                     "; exact sums, no noise)",
                     spec.model().glm().site_fixed_effects()
                         ? "; with site fixed effects the sums on this site's intercept are over "
                           "this site's rows alone (policy.allow_site_fixed_effects)"
                         : ""));
    return;
  }

  const auto params = proto::NumParameters(spec.model(), features);
  v1::StageEgress fit =
      Stage(spec, v1::STAGE_FIT, "fit",
            absl::StrCat("weight and weighted model delta of ", params.ok() ? *params : 0,
                         " parameters, each clipped to +-", spec.secure_aggregation().clip(),
                         ", every round"));
  if (spec.has_privacy()) {
    fit.set_dp(true);
    fit.set_dp_detail(PrivacyText(spec.privacy()));
  }
  *out->add_stages() = std::move(fit);

  const bool split = proto::HasValidationSplit(spec);
  v1::StageEgress eval =
      Stage(spec, v1::STAGE_EVALUATE, "evaluate",
            split ? absl::StrCat("loss and metric sums over the validation rows (",
                                 spec.training().validation_fraction() * 100,
                                 "% of the training file's rows, never trained on), every round")
                  : "loss and metric sums over the held-out rows, every round");
  if (proto::EvaluationNoiseOn(spec)) {
    eval.set_dp(true);
    eval.set_dp_detail(
        absl::StrCat("evaluation_noise_multiplier ", spec.privacy().evaluation_noise_multiplier()));
  }
  const bool no_test_file = local != nullptr && local->test_csv().empty();
  if (no_test_file && !split) {
    eval.set_skipped("this site has no test_csv for the dataset: it sends nothing here");
  }
  *out->add_stages() = std::move(eval);
  if (!split) return;
  v1::StageEgress test =
      Stage(spec, v1::STAGE_TEST, "test",
            absl::StrCat("loss and metric sums over the held-out rows (test_csv), once: the "
                         "model of the round with the best validation ",
                         proto::SelectionMetric(spec)));
  if (no_test_file) {
    test.set_skipped("this site has no test_csv for the dataset: it sends nothing here");
  }
  *out->add_stages() = std::move(test);
}

}  // namespace

void DescribeTask(const v1::TaskSpec& spec, const v1::ClientConfig& config,
                  v1::ShowTaskResponse* out) {
  out->set_dataset(spec.dataset().id());
  for (const std::string& column : TaskColumns(spec)) out->add_columns(column);
  const v1::LocalDataset* local = FindLocal(config, spec.dataset().id());
  if (TaskKindOf(spec) == v1::LocalPolicy::ANALYTICS) {
    v1::StageEgress stage =
        Stage(spec, v1::STAGE_ANALYTICS, "analytics",
              "counts, sums, sums of squares and histogram cells of the queried columns");
    if (spec.has_privacy()) {
      stage.set_dp(true);
      stage.set_dp_detail(PrivacyText(spec.privacy()));
    }
    *out->add_stages() = std::move(stage);
  } else {
    TrainingStages(spec, local, out);
  }
  if (local == nullptr) {
    for (v1::StageEgress& s : *out->mutable_stages()) {
      s.set_skipped(absl::StrCat("this site has no dataset '", spec.dataset().id(), "'"));
    }
  }
  const PolicyDecision verdict = Evaluate(config.policy(), spec);
  switch (verdict.verdict) {
    case PolicyDecision::kRefuse:
      out->set_policy(absl::StrCat("refused: ", verdict.refusal.reason));
      break;
    case PolicyDecision::kAutoApprove:
      out->set_policy(absl::StrCat("auto-approved by rule ", verdict.auto_approval_rule));
      break;
    case PolicyDecision::kNeedsApproval:
      out->set_policy(config.policy().require_approval() ? "needs the site's approval"
                                                         : "allowed (require_approval is off)");
      break;
  }
}

}  // namespace tessera::client
