#include "client/policy.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "proto/analytics.h"
#include "proto/preparation.h"

namespace tessera::client {
namespace {

using Verdict = std::optional<PolicyRefusal>;

Verdict Refuse(const char* rule, const std::string& text) {
  return PolicyRefusal{rule, absl::StrCat("policy.", rule, ": ", text)};
}

absl::Status ToStatus(const Verdict& refusal) {
  return refusal ? absl::PermissionDeniedError(refusal->reason) : absl::OkStatus();
}

template <typename List, typename T>
bool Contains(const List& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// An allow-list's verdict on `value`: an empty list allows anything, or nothing with
// deny_by_default.
template <typename List, typename T>
bool Allows(const v1::LocalPolicy& policy, const List& list, const T& value) {
  return list.empty() ? !policy.deny_by_default() : Contains(list, value);
}

const char* KindName(v1::LocalPolicy::TaskKind kind) {
  return kind == v1::LocalPolicy::ANALYTICS ? "analytics" : "training";
}

// allowed_task_names, allowed_spec_hashes, allowed_task_kinds.
Verdict CheckIdentity(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  if (!policy.allowed_task_names().empty() && !Contains(policy.allowed_task_names(), spec.name())) {
    return Refuse("allowed_task_names",
                  absl::StrCat("task name '", spec.name(), "' is not allowed"));
  }
  if (!policy.allowed_spec_hashes().empty()) {
    const std::string hex = crypto::ToHex(crypto::HashTaskSpec(spec));
    if (!Contains(policy.allowed_spec_hashes(), hex)) {
      return Refuse("allowed_spec_hashes", absl::StrCat("task spec ", hex, " is not allowed"));
    }
  }
  const v1::LocalPolicy::TaskKind kind = TaskKindOf(spec);
  if (!Allows(policy, policy.allowed_task_kinds(), kind)) {
    return Refuse("allowed_task_kinds", absl::StrCat(KindName(kind), " tasks are not allowed"));
  }
  return std::nullopt;
}

// allowed_datasets, allowed_columns, allowed_model_kinds.
Verdict CheckData(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  const std::string& dataset = spec.dataset().id();
  if (!Allows(policy, policy.allowed_datasets(), dataset)) {
    return Refuse("allowed_datasets", absl::StrCat("dataset '", dataset, "' is not allowed"));
  }
  const v1::LocalPolicy::ColumnAllowList* columns = nullptr;
  for (const v1::LocalPolicy::ColumnAllowList& entry : policy.allowed_columns()) {
    if (entry.dataset() == dataset) columns = &entry;
  }
  if (columns != nullptr || policy.deny_by_default()) {
    for (const std::string& column : TaskColumns(spec)) {
      if (columns == nullptr || !Contains(columns->columns(), column)) {
        return Refuse("allowed_columns", absl::StrCat("column '", column, "' of dataset '", dataset,
                                                      "' is not allowed"));
      }
    }
  }
  if (TaskKindOf(spec) == v1::LocalPolicy::TRAINING &&
      !Allows(policy, policy.allowed_model_kinds(), spec.model().kind())) {
    return Refuse("allowed_model_kinds",
                  absl::StrCat("model kind ", v1::ModelSpec::Kind_Name(spec.model().kind()),
                               " is not allowed"));
  }
  return std::nullopt;
}

// min_cohort (the task's min_clients), max_rounds, max_local_epochs, min_cell_size.
Verdict CheckSize(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  if (spec.min_clients() < policy.min_cohort()) {
    return Refuse("min_cohort",
                  absl::StrCat("the task's min_clients ", spec.min_clients(),
                               " is below this site's minimum cohort ", policy.min_cohort()));
  }
  if (spec.has_analytics()) {
    const uint32_t k = proto::MinCellSize(spec.analytics());
    if (k < policy.min_cell_size()) {
      return Refuse("min_cell_size", absl::StrCat("the task's analytics.min_cell_size ", k,
                                                  " is below this site's minimum cell size ",
                                                  policy.min_cell_size()));
    }
    return std::nullopt;
  }
  if (policy.max_rounds() > 0 && spec.rounds() > policy.max_rounds()) {
    return Refuse("max_rounds", absl::StrCat("the task's rounds ", spec.rounds(),
                                             " is above this site's cap ", policy.max_rounds()));
  }
  if (policy.max_local_epochs() > 0 && spec.training().local_epochs() > policy.max_local_epochs()) {
    return Refuse("max_local_epochs",
                  absl::StrCat("the task's training.local_epochs ", spec.training().local_epochs(),
                               " is above this site's cap ", policy.max_local_epochs()));
  }
  return std::nullopt;
}

// require_dp_for_training, max_clip_norm, min_noise_multiplier, max_epsilon, max_delta.
Verdict CheckPrivacy(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  const bool training = TaskKindOf(spec) == v1::LocalPolicy::TRAINING;
  if (spec.model().glm().site_fixed_effects() && !policy.allow_site_fixed_effects()) {
    return Refuse("allow_site_fixed_effects",
                  "the task fits site fixed effects, whose sums include this site's own row "
                  "count and column sums; this site's policy does not allow them");
  }
  if (!spec.has_privacy()) {
    if (training && policy.require_dp_for_training()) {
      return Refuse("require_dp_for_training",
                    "the task trains without differential privacy (it sets no privacy)");
    }
    return std::nullopt;
  }
  const v1::PrivacySpec& p = spec.privacy();
  if (training && policy.max_clip_norm() > 0 && p.clip_norm() > policy.max_clip_norm()) {
    return Refuse("max_clip_norm",
                  absl::StrCat("the task's privacy.clip_norm ", p.clip_norm(),
                               " is above this site's cap ", policy.max_clip_norm()));
  }
  if (p.noise_multiplier() < policy.min_noise_multiplier()) {
    return Refuse("min_noise_multiplier",
                  absl::StrCat("the task's privacy.noise_multiplier ", p.noise_multiplier(),
                               " is below this site's floor ", policy.min_noise_multiplier()));
  }
  if (policy.max_epsilon() > 0 && p.epsilon_budget() > policy.max_epsilon()) {
    return Refuse("max_epsilon",
                  absl::StrCat("the task's privacy.epsilon_budget ", p.epsilon_budget(),
                               " is above this site's cap ", policy.max_epsilon()));
  }
  if (policy.max_delta() > 0 && p.delta() > policy.max_delta()) {
    return Refuse("max_delta", absl::StrCat("the task's privacy.delta ", p.delta(),
                                            " is above this site's cap ", policy.max_delta()));
  }
  return std::nullopt;
}

// Every constraint of `rule` holds for `spec` (zero defaults constrain nothing).
bool Matches(const v1::LocalPolicy::AutoApproval& rule, const v1::TaskSpec& spec) {
  const bool training = TaskKindOf(spec) == v1::LocalPolicy::TRAINING;
  auto in = [](const auto& list, const auto& value) {
    return list.empty() || Contains(list, value);
  };
  if (!in(rule.task_names(), spec.name())) return false;
  if (!rule.spec_hashes().empty() &&
      !Contains(rule.spec_hashes(), crypto::ToHex(crypto::HashTaskSpec(spec)))) {
    return false;
  }
  if (!in(rule.datasets(), spec.dataset().id())) return false;
  if (!rule.columns().empty()) {
    for (const std::string& column : TaskColumns(spec)) {
      if (!Contains(rule.columns(), column)) return false;
    }
  }
  if (!rule.model_kinds().empty() &&
      !(training && Contains(rule.model_kinds(), spec.model().kind())))
    return false;
  if (!in(rule.task_kinds(), TaskKindOf(spec))) return false;
  const bool wants_dp =
      rule.require_dp() || rule.max_epsilon() > 0 || rule.min_noise_multiplier() > 0;
  if (wants_dp && !spec.has_privacy()) return false;
  if (rule.max_epsilon() > 0 && spec.privacy().epsilon_budget() > rule.max_epsilon()) return false;
  if (spec.has_privacy() && spec.privacy().noise_multiplier() < rule.min_noise_multiplier()) {
    return false;
  }
  if (rule.max_rounds() > 0 && training && spec.rounds() > rule.max_rounds()) return false;
  if (rule.max_local_epochs() > 0 && training &&
      spec.training().local_epochs() > rule.max_local_epochs()) {
    return false;
  }
  return spec.min_clients() >= rule.min_clients();
}

}  // namespace

v1::LocalPolicy::TaskKind TaskKindOf(const v1::TaskSpec& spec) {
  return spec.has_analytics() ? v1::LocalPolicy::ANALYTICS : v1::LocalPolicy::TRAINING;
}

std::vector<std::string> TaskColumns(const v1::TaskSpec& spec) {
  // The file's columns: a derived feature ("sex=male") is its column's ("sex").
  return proto::FileColumns(spec);
}

namespace {

// The first rule, in the order of the checks, that refuses the task.
Verdict FirstRefusal(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  for (auto check : {&CheckIdentity, &CheckData, &CheckSize, &CheckPrivacy}) {
    if (Verdict refusal = check(policy, spec)) return refusal;
  }
  return std::nullopt;
}

}  // namespace

absl::Status CheckTaskPolicy(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  return ToStatus(FirstRefusal(policy, spec));
}

PolicyDecision Evaluate(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  PolicyDecision decision;
  if (Verdict refusal = FirstRefusal(policy, spec)) {
    decision.verdict = PolicyDecision::kRefuse;
    decision.refusal = *std::move(refusal);
  } else if (std::optional<std::string> rule = AutoApproves(policy, spec)) {
    decision.verdict = PolicyDecision::kAutoApprove;
    decision.auto_approval_rule = *std::move(rule);
  } else {
    decision.verdict = PolicyDecision::kNeedsApproval;
  }
  return decision;
}

absl::Status CheckCohort(const v1::LocalPolicy& policy, uint32_t cohort_size) {
  if (cohort_size < policy.min_cohort()) {
    return ToStatus(Refuse("min_cohort", absl::StrCat("a cohort of ", cohort_size,
                                                      " sites is below this site's minimum cohort ",
                                                      policy.min_cohort())));
  }
  return absl::OkStatus();
}

uint32_t PolicyMinThreshold(const v1::LocalPolicy& policy, uint32_t invited) {
  // A hair below the product, so that 0.7 * 10 = 7.000000000000001 asks for 7, not 8.
  const double product = policy.min_threshold_fraction() * static_cast<double>(invited);
  const auto by_fraction = static_cast<uint32_t>(std::max(0.0, std::ceil(product - 1e-9)));
  return std::max(policy.min_cohort(), by_fraction);
}

absl::Status CheckThreshold(const v1::LocalPolicy& policy, uint32_t threshold, uint32_t invited) {
  v1::LocalPolicy fraction_only;
  fraction_only.set_min_threshold_fraction(policy.min_threshold_fraction());
  const uint32_t least = PolicyMinThreshold(fraction_only, invited);
  if (threshold < least) {
    return ToStatus(Refuse("min_threshold_fraction",
                           absl::StrCat("the session's threshold ", threshold, " for ", invited,
                                        " invited sites is below ", policy.min_threshold_fraction(),
                                        " of them (", least, ")")));
  }
  return absl::OkStatus();
}

std::optional<std::string> AutoApproves(const v1::LocalPolicy& policy, const v1::TaskSpec& spec) {
  for (const v1::LocalPolicy::AutoApproval& rule : policy.auto_approve()) {
    if (Matches(rule, spec)) return rule.name();
  }
  return std::nullopt;
}

}  // namespace tessera::client
