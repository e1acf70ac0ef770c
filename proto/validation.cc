#include "proto/validation.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/analytics.h"
#include "proto/config.pb.h"
#include "proto/evaluation.h"
#include "proto/glm_layout.h"
#include "proto/internal/glm_validation.h"
#include "proto/internal/names.h"
#include "proto/internal/policy_validation.h"
#include "proto/preparation.h"
#include "proto/task.pb.h"
#include "proto/validation_split.h"

namespace tessera::proto {
namespace {

using common::FieldError;

using internal::IsValidColumnName;
using internal::IsValidName;

// Unset (0) is allowed: the field's default applies.
void CheckUnitInterval(double v, const std::string& path, std::vector<FieldError>* errors) {
  if (!std::isfinite(v) || v < 0 || v >= 1) errors->push_back({path, "must be in [0, 1)"});
}

void CheckBudget(const v1::PrivacySpec& p, std::vector<FieldError>* errors) {
  if (!std::isfinite(p.epsilon_budget()) || p.epsilon_budget() <= 0) {
    errors->push_back({"privacy.epsilon_budget", "required, a finite number > 0"});
  }
  if (!(p.delta() > 0 && p.delta() < 1)) {
    errors->push_back({"privacy.delta", "required with an epsilon budget, in (0, 1)"});
  }
}

// An analytics task's privacy (proto/analytics.h, "Differential privacy"): a noise
// multiplier, a budget, and every query's value_range; no clip_norm (the ranges are the
// sensitivity) and no evaluation noise (there is no evaluation).
void ValidateAnalyticsPrivacy(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  const v1::PrivacySpec& p = spec.privacy();
  if (p.clip_norm() != 0) {
    errors->push_back({"privacy.clip_norm",
                       "must be unset on an analytics task: the sensitivity comes from every "
                       "query's value_range"});
  }
  if (!(p.noise_multiplier() > 0 && p.noise_multiplier() <= kMaxAnalyticsNoiseMultiplier)) {
    errors->push_back(
        {"privacy.noise_multiplier",
         absl::StrCat("required, a finite number in (0, ", kMaxAnalyticsNoiseMultiplier, "]")});
  }
  CheckBudget(p, errors);
  if (p.evaluation_noise_multiplier() != 0) {
    errors->push_back({"privacy.evaluation_noise_multiplier",
                       "must be unset: an analytics task has no evaluation"});
  }
  for (int i = 0; i < spec.analytics().queries_size(); ++i) {
    if (spec.analytics().queries(i).value_range_size() == 0) {
      errors->push_back({absl::StrCat("analytics.queries[", i, "].value_range"),
                         "required with privacy: [lo, hi], the bounds of the column (values "
                         "outside are clipped), which set the noise's scale"});
    }
  }
}

// An analytics task: no model, training or strategy, one round, a valid AnalyticsSpec, and
// value ranges exactly when it has privacy.
void ValidateAnalyticsTask(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if (spec.has_model()) errors->push_back({"model", "an analytics task has no model"});
  if (spec.has_training()) errors->push_back({"training", "an analytics task has no training"});
  if (spec.has_strategy()) errors->push_back({"strategy", "an analytics task has no strategy"});
  if (spec.rounds() > 1) errors->push_back({"rounds", "an analytics task has one round"});
  for (common::FieldError& e : ValidateAnalyticsSpec(spec.analytics(), "analytics")) {
    errors->push_back(std::move(e));
  }
  if (spec.has_privacy()) {
    ValidateAnalyticsPrivacy(spec, errors);
    return;
  }
  for (int i = 0; i < spec.analytics().queries_size(); ++i) {
    if (spec.analytics().queries(i).value_range_size() > 0) {
      errors->push_back({absl::StrCat("analytics.queries[", i, "].value_range"),
                         "applies to a task with privacy only (the noise's scale); exact "
                         "answers are not clipped"});
    }
  }
}

// "px{0..63}" -> px0 .. px63 (prefix and suffix kept). Returns false (and leaves `out`
// unchanged) if `entry` is not a range; sets `error` for a malformed or huge one.
bool ExpandRange(const std::string& entry, std::vector<std::string>* out, std::string* error) {
  size_t open = entry.find('{');
  size_t dots = entry.find("..", open == std::string::npos ? 0 : open);
  size_t close = entry.find('}', dots == std::string::npos ? 0 : dots);
  if (open == std::string::npos || dots == std::string::npos || close == std::string::npos) {
    return false;
  }
  uint64_t first = 0;
  uint64_t last = 0;
  if (!absl::SimpleAtoi(entry.substr(open + 1, dots - open - 1), &first) ||
      !absl::SimpleAtoi(entry.substr(dots + 2, close - dots - 2), &last) || last < first) {
    *error = "a range is written NAME{FIRST..LAST} with FIRST <= LAST";
    return true;
  }
  if (last - first >= 100000) {
    *error = "a range may name at most 100000 columns";
    return true;
  }
  const std::string prefix = entry.substr(0, open);
  const std::string suffix = entry.substr(close + 1);
  for (uint64_t i = first; i <= last; ++i) out->push_back(absl::StrCat(prefix, i, suffix));
  return true;
}

// dataset: id, distinct feature columns, a label that is not a feature.
void ValidateDataset(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if (!spec.has_dataset()) {
    errors->push_back({"dataset", "required"});
    return;
  }
  const v1::DatasetSpec& ds = spec.dataset();
  if (ds.id().empty()) {
    errors->push_back({"dataset.id", "required"});
  } else if (!IsValidName(ds.id(), /*allow_upper=*/false)) {
    errors->push_back({"dataset.id", "must be 1..64 characters from [a-z0-9._-]"});
  }
  if (ds.features().empty() && !spec.has_analytics()) {
    errors->push_back({"dataset.features", "at least one feature column is required"});
  } else if (ds.features_size() > 100000) {
    errors->push_back({"dataset.features", "at most 100000 feature columns"});
  }
  std::set<std::string> seen;
  for (int i = 0; i < ds.features_size(); ++i) {
    const std::string& f = ds.features(i);
    std::string path = absl::StrCat("dataset.features[", i, "]");
    if (!IsValidColumnName(f)) {
      errors->push_back({path, "must be a non-empty CSV header name without commas or quotes"});
    } else if (!seen.insert(f).second) {
      errors->push_back({path, absl::StrCat("column '", f, "' is listed twice")});
    }
  }
  if (ds.label().empty()) {
    if (!spec.has_analytics()) errors->push_back({"dataset.label", "required"});
  } else if (!IsValidColumnName(ds.label())) {
    errors->push_back({"dataset.label", "must be a CSV header name without commas or quotes"});
  } else if (seen.count(ds.label()) > 0) {
    errors->push_back(
        {"dataset.label", absl::StrCat("column '", ds.label(), "' is also listed as a feature")});
  }
}

// model: a known kind and the fields that kind takes (a training task only).
void ValidateModel(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if (!spec.has_model()) {
    errors->push_back({"model", "required"});
    return;
  }
  const v1::ModelSpec& m = spec.model();
  const bool known_kind = v1::ModelSpec::Kind_IsValid(m.kind());
  if (m.kind() == v1::ModelSpec::KIND_UNSPECIFIED) {
    errors->push_back({"model.kind",
                       "required (LOGISTIC_REGRESSION, SOFTMAX_REGRESSION, LINEAR_REGRESSION, "
                       "MLP, COX_PH, or GLM with model.glm)"});
  } else if (!known_kind) {
    errors->push_back({"model.kind", "unknown model kind"});
  }
  if (!std::isfinite(m.l2()) || m.l2() < 0) {
    errors->push_back({"model.l2", "must be a finite number >= 0"});
  }
  if (!std::isfinite(m.inverse_regularization()) || m.inverse_regularization() < 0) {
    errors->push_back({"model.inverse_regularization", "must be a finite number > 0"});
  }
  if (m.l2() > 0 && m.inverse_regularization() > 0) {
    errors->push_back(
        {"model.inverse_regularization", "set either l2 or inverse_regularization, not both"});
  }
  if (m.num_classes() > 10000) {
    errors->push_back({"model.num_classes", "must be at most 10000"});
  }
  if (m.kind() == v1::ModelSpec::SOFTMAX_REGRESSION && m.num_classes() < 2) {
    errors->push_back({"model.num_classes", "SOFTMAX_REGRESSION needs num_classes >= 2"});
  }
  if ((m.kind() == v1::ModelSpec::LOGISTIC_REGRESSION ||
       m.kind() == v1::ModelSpec::LINEAR_REGRESSION || m.kind() == v1::ModelSpec::COX_PH) &&
      m.num_classes() != 0) {
    errors->push_back({"model.num_classes", "only SOFTMAX_REGRESSION and MLP take num_classes"});
  }
  if (m.kind() == v1::ModelSpec::MLP) {
    if (m.hidden_layers_size() < 1 || m.hidden_layers_size() > 3) {
      errors->push_back({"model.hidden_layers", "an MLP has 1 to 3 hidden layers"});
    }
    for (int i = 0; i < m.hidden_layers_size(); ++i) {
      if (m.hidden_layers(i) < 1 || m.hidden_layers(i) > 4096) {
        errors->push_back({absl::StrCat("model.hidden_layers[", i, "]"), "must be 1..4096 units"});
      }
    }
  } else if (m.hidden_layers_size() > 0 && known_kind) {
    errors->push_back({"model.hidden_layers", "only an MLP has hidden layers"});
  }
  if (spec.has_dataset()) {
    const v1::DatasetSpec& ds = spec.dataset();
    if (m.kind() == v1::ModelSpec::COX_PH) {
      if (ds.event().empty()) {
        errors->push_back({"dataset.event", "COX_PH needs the event column"});
      } else if (ds.event() == ds.label() || std::find(ds.features().begin(), ds.features().end(),
                                                       ds.event()) != ds.features().end()) {
        errors->push_back({"dataset.event", "must differ from the label and the features"});
      }
    } else if (!ds.event().empty() && known_kind) {
      errors->push_back({"dataset.event", "only COX_PH takes an event column"});
    }
  }
}

// training.class_weights: one per class of a classification model, each in (0, 1e6].
void ValidateClassWeights(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  const v1::TrainingSpec& t = spec.training();
  if (t.class_weights().empty()) return;
  const absl::StatusOr<EvaluationLayout> layout = MakeEvaluationLayout(spec.model());
  const bool classifier = layout.ok() && (layout->kind == EvaluationKind::kBinary ||
                                          layout->kind == EvaluationKind::kMulticlass);
  if (!classifier) {
    errors->push_back({"training.class_weights",
                       "only for a classification model (logistic, softmax, a classifying MLP)"});
    return;
  }
  if (static_cast<uint32_t>(t.class_weights_size()) != layout->num_classes) {
    errors->push_back(
        {"training.class_weights", absl::StrCat("has ", t.class_weights_size(),
                                                " entries; the model has ", layout->num_classes,
                                                " classes (one weight each, class 0 "
                                                "first)")});
  }
  for (int i = 0; i < t.class_weights_size(); ++i) {
    const double w = t.class_weights(i);
    if (!(std::isfinite(w) && w > 0 && w <= 1e6)) {
      errors->push_back(
          {absl::StrCat("training.class_weights[", i, "]"), "must be a finite number in (0, 1e6]"});
    }
  }
}

// training: the local optimiser (a training task only).
void ValidateTraining(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if (!spec.has_training()) {
    errors->push_back({"training", "required (learning_rate at least)"});
    return;
  }
  const v1::TrainingSpec& t = spec.training();
  if (t.local_epochs() > 1000) {
    errors->push_back({"training.local_epochs", "must be 1..1000"});
  }
  if (t.batch_size() > 1000000) {
    errors->push_back({"training.batch_size", "must be 1..1000000"});
  }
  if (!std::isfinite(t.learning_rate()) || t.learning_rate() <= 0) {
    errors->push_back({"training.learning_rate", "must be a finite number > 0"});
  }
  if (!v1::TrainingSpec::Optimizer_IsValid(t.optimizer())) {
    errors->push_back({"training.optimizer", "unknown optimizer (SGD, MOMENTUM or ADAM)"});
  }
  CheckUnitInterval(t.momentum(), "training.momentum", errors);
  CheckUnitInterval(t.adam_beta1(), "training.adam_beta1", errors);
  CheckUnitInterval(t.adam_beta2(), "training.adam_beta2", errors);
  if (t.has_adam_epsilon() && (!std::isfinite(t.adam_epsilon()) || t.adam_epsilon() <= 0)) {
    errors->push_back({"training.adam_epsilon", "must be a finite number > 0"});
  }
  if (!std::isfinite(t.proximal_mu()) || t.proximal_mu() < 0) {
    errors->push_back({"training.proximal_mu", "must be a finite number >= 0"});
  }
  ValidateValidationSplit(spec, errors);
  ValidateClassWeights(spec, errors);
}

// Limits on rounds, cohort and deadlines; the server strategy.
void ValidateRoundsAndStrategy(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if ((spec.rounds() == 0 && !spec.has_analytics() && !IsGlmTask(spec)) || spec.rounds() > 100000) {
    errors->push_back({"rounds", "must be 1..100000"});
  }
  if (spec.min_clients() > 10000) {
    errors->push_back({"min_clients", "must be 1..10000"});
  }
  if (spec.round_deadline_seconds() > 86400) {
    errors->push_back({"round_deadline_seconds", "must be 1..86400"});
  }
  if (spec.max_round_attempts() > 1000) {
    errors->push_back({"max_round_attempts", "must be 1..1000"});
  }
  if (spec.approval_timeout_seconds() > kMaxApprovalTimeoutSeconds) {
    errors->push_back({"approval_timeout_seconds", "must be 1..2592000 (30 days)"});
  }
  if (spec.has_strategy()) {
    const v1::StrategySpec& s = spec.strategy();
    if (!v1::StrategySpec::Kind_IsValid(s.kind())) {
      errors->push_back({"strategy.kind", "unknown strategy"});
    }
    if (!std::isfinite(s.server_learning_rate()) || s.server_learning_rate() < 0) {
      errors->push_back({"strategy.server_learning_rate", "must be a finite number > 0"});
    }
    CheckUnitInterval(s.server_momentum(), "strategy.server_momentum", errors);
    CheckUnitInterval(s.beta1(), "strategy.beta1", errors);
    CheckUnitInterval(s.beta2(), "strategy.beta2", errors);
    if (s.has_tau() && (!std::isfinite(s.tau()) || s.tau() <= 0)) {
      errors->push_back({"strategy.tau", "must be a finite number > 0"});
    }
  }
}

// privacy of a training task: clipping, noise, budget, and an encoding wide enough for the noise.
void ValidateTrainingPrivacy(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if (!spec.has_privacy() || spec.has_analytics()) return;
  const v1::PrivacySpec& p = spec.privacy();
  if (!std::isfinite(p.clip_norm()) || p.clip_norm() <= 0) {
    errors->push_back({"privacy.clip_norm", "required, a finite number > 0"});
  }
  if (!std::isfinite(p.noise_multiplier()) || p.noise_multiplier() <= 0) {
    errors->push_back({"privacy.noise_multiplier", "required, a finite number > 0"});
  }
  CheckBudget(p, errors);
  if (!(p.evaluation_noise_multiplier() >= 0 &&
        p.evaluation_noise_multiplier() <= kMaxEvaluationNoiseMultiplier)) {
    errors->push_back(
        {"privacy.evaluation_noise_multiplier",
         absl::StrCat("must be a finite number in [0, ", kMaxEvaluationNoiseMultiplier,
                      "] (0 = evaluation sums released exactly)")});
  }
  // The secure-aggregation encoding clips every coordinate; it must not clip the noise.
  const double clip =
      spec.secure_aggregation().clip() > 0 ? spec.secure_aggregation().clip() : 10.0;
  const double needed = p.clip_norm() * (1 + 6 * p.noise_multiplier());
  if (std::isfinite(needed) && needed > 0 && clip < needed) {
    errors->push_back(
        {"secure_aggregation.clip",
         absl::StrCat("must be at least privacy.clip_norm * (1 + 6 * "
                      "noise_multiplier) = ",
                      needed, " so that the encoding never clips the privacy noise")});
  }
}

// secure_aggregation: a threshold the sites accept (secagg::SafeThreshold), clip, deadline.
void ValidateSecureAggregation(const v1::TaskSpec& spec, std::vector<FieldError>* errors) {
  if (!spec.has_secure_aggregation()) return;
  const v1::SecureAggregationSpec& sa = spec.secure_aggregation();
  if (sa.threshold() > 10000) {
    errors->push_back({"secure_aggregation.threshold", "must be at most 10000"});
  } else if (sa.threshold() > 0 && sa.threshold() < spec.min_clients()) {
    errors->push_back({"secure_aggregation.threshold", "must be at least min_clients"});
  } else if (const uint32_t n = spec.min_clients() > 0 ? spec.min_clients() : 2;
             sa.threshold() > 0 && sa.threshold() < 2 * n / 3 + 1) {
    // The sites' rule (secagg::SafeThreshold): no cohort of min_clients or more sites
    // accepts a threshold below floor(2n/3) + 1.
    errors->push_back({"secure_aggregation.threshold",
                       absl::StrCat("must be at least ", 2 * n / 3 + 1,
                                    " = floor(2n/3) + 1 for a cohort of min_clients = ", n,
                                    " sites (docs/secure-aggregation.md); sites refuse less")});
  }
  if (!std::isfinite(sa.clip()) || sa.clip() < 0) {
    errors->push_back({"secure_aggregation.clip", "must be a finite number > 0"});
  }
  if (sa.step_deadline_seconds() > 3600) {
    errors->push_back({"secure_aggregation.step_deadline_seconds", "must be 1..3600"});
  }
  if (sa.has_secagg_plus()) {
    const v1::SecAggPlusSpec& plus = sa.secagg_plus();
    if (plus.min_sites() < 4 || plus.min_sites() > 100000) {
      errors->push_back({"secure_aggregation.secagg_plus.min_sites", "must be 4..100000"});
    }
    // 0 stands for the default (ApplyTaskDefaults).
    const double gamma = plus.colluding_fraction() == 0 ? 0.05 : plus.colluding_fraction();
    const double delta = plus.dropout_fraction() == 0 ? 0.05 : plus.dropout_fraction();
    if (!(gamma > 0 && gamma < 1.0 / 3)) {
      errors->push_back(
          {"secure_aggregation.secagg_plus.colluding_fraction", "must be in (0, 1/3)"});
    }
    if (!(delta >= 0 && delta < 1) || !(gamma + delta < 1)) {
      errors->push_back({"secure_aggregation.secagg_plus.dropout_fraction",
                         "must be in [0, 1) with colluding_fraction + dropout_fraction < 1"});
    }
  }
}

}  // namespace

std::vector<FieldError> ExpandFeatureRanges(v1::TaskSpec* spec) {
  std::vector<FieldError> errors;
  if (!spec->has_dataset()) return errors;
  std::vector<std::string> expanded;
  bool any = false;
  for (int i = 0; i < spec->dataset().features_size(); ++i) {
    const std::string& f = spec->dataset().features(i);
    std::string error;
    if (ExpandRange(f, &expanded, &error)) {
      any = true;
      if (!error.empty()) errors.push_back({absl::StrCat("dataset.features[", i, "]"), error});
    } else {
      expanded.push_back(f);
    }
  }
  if (any && errors.empty()) {
    auto* features = spec->mutable_dataset()->mutable_features();
    features->Clear();
    for (std::string& f : expanded) features->Add(std::move(f));
  }
  return errors;
}

std::vector<FieldError> ValidateTaskSpec(const v1::TaskSpec& original) {
  // Ranges ("px{0..63}") are checked, then validation sees the columns they name.
  v1::TaskSpec spec = original;
  std::vector<FieldError> errors = ExpandFeatureRanges(&spec);
  if (!errors.empty()) return errors;
  if (spec.name().empty()) {
    errors.push_back({"name", "required"});
  } else if (!IsValidName(spec.name(), /*allow_upper=*/true)) {
    errors.push_back({"name", "must be 1..64 characters from [A-Za-z0-9._-]"});
  }
  if (spec.description().size() > 1024) {
    errors.push_back({"description", "must be at most 1024 bytes"});
  }

  ValidateDataset(spec, &errors);
  ValidatePreparation(spec, &errors);
  const bool glm = !spec.has_analytics() && IsGlmTask(spec);
  if (spec.has_analytics()) {
    ValidateAnalyticsTask(spec, &errors);
  } else if (glm) {
    internal::ValidateGlmTask(spec, &errors);
  } else {
    ValidateModel(spec, &errors);
    ValidateTraining(spec, &errors);
  }
  ValidateRoundsAndStrategy(spec, &errors);
  if (!glm) ValidateTrainingPrivacy(spec, &errors);
  ValidateSecureAggregation(spec, &errors);
  return errors;
}

void ApplyTaskDefaults(v1::TaskSpec* spec) {
  ExpandFeatureRanges(spec);
  if (spec->min_clients() == 0) spec->set_min_clients(2);
  if (spec->round_deadline_seconds() == 0) spec->set_round_deadline_seconds(300);
  if (spec->max_round_attempts() == 0) spec->set_max_round_attempts(20);
  v1::SecureAggregationSpec* sa = spec->mutable_secure_aggregation();
  if (sa->clip() == 0) sa->set_clip(10.0);
  if (sa->step_deadline_seconds() == 0) sa->set_step_deadline_seconds(60);
  if (sa->has_secagg_plus()) {
    v1::SecAggPlusSpec* plus = sa->mutable_secagg_plus();
    if (plus->colluding_fraction() == 0) plus->set_colluding_fraction(0.05);
    if (plus->dropout_fraction() == 0) plus->set_dropout_fraction(0.05);
  }
  if (spec->has_analytics()) {
    spec->set_rounds(1);
    v1::AnalyticsSpec* a = spec->mutable_analytics();
    if (a->min_cohort() == 0) a->set_min_cohort(spec->min_clients());
    if (a->min_cell_size() == 0) a->set_min_cell_size(kDefaultMinCellSize);
    return;
  }
  if (IsGlmTask(*spec)) {
    internal::ApplyGlmDefaults(spec);
    return;
  }
  v1::TrainingSpec* t = spec->mutable_training();
  if (t->local_epochs() == 0) t->set_local_epochs(1);
  if (t->batch_size() == 0) t->set_batch_size(32);
  if (t->optimizer() == v1::TrainingSpec::OPTIMIZER_UNSPECIFIED) {
    t->set_optimizer(v1::TrainingSpec::SGD);
  }
  if (t->optimizer() == v1::TrainingSpec::MOMENTUM && !t->has_momentum()) t->set_momentum(0.9);
  if (t->optimizer() == v1::TrainingSpec::ADAM) {
    if (!t->has_adam_beta1()) t->set_adam_beta1(0.9);
    if (!t->has_adam_beta2()) t->set_adam_beta2(0.999);
    if (!t->has_adam_epsilon()) t->set_adam_epsilon(1e-8);
  }
  ApplyValidationSplitDefaults(spec);
  v1::StrategySpec* s = spec->mutable_strategy();
  if (s->kind() == v1::StrategySpec::KIND_UNSPECIFIED) s->set_kind(v1::StrategySpec::FEDAVG);
  const bool adaptive = s->kind() == v1::StrategySpec::FEDADAGRAD ||
                        s->kind() == v1::StrategySpec::FEDADAM ||
                        s->kind() == v1::StrategySpec::FEDYOGI;
  if (s->server_learning_rate() == 0) s->set_server_learning_rate(adaptive ? 0.01 : 1.0);
  if (s->kind() == v1::StrategySpec::FEDAVGM && !s->has_server_momentum()) {
    s->set_server_momentum(0.9);
  }
  if (adaptive) {
    if (!s->has_beta1()) s->set_beta1(0.9);
    if (!s->has_beta2()) s->set_beta2(0.99);
    if (!s->has_tau()) s->set_tau(1e-3);
  }
}

}  // namespace tessera::proto
