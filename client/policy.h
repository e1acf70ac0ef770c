// The site's local policy (config LocalPolicy, proto/config.proto): what this institution
// accepts, as pure functions of the policy and the task. No I/O, clock or logging; safe to
// call from any thread.
//
// Every refusal is PERMISSION_DENIED whose message starts with the rule, written as the
// policy field's path, then a fixed text naming the task's setting and the policy's limit:
//   "policy.allowed_columns: column 'age' of dataset 'heart' is not allowed"
//   "policy.max_epsilon: the task's privacy.epsilon_budget 8 is above this site's cap 4"
// The text carries the task's own settings (names, numbers from the spec) and the site's
// limits, never a value computed from data, so it may travel to the coordinator as the
// detail of a POLICY_REFUSED decline. When several rules refuse a task, the first in the
// order of the checks below is named.
//
// The rules (docs/operations.md, "Policy reference"):
//   task            allowed_task_names, allowed_spec_hashes
//   kind            allowed_task_kinds (TRAINING or ANALYTICS)
//   data            allowed_datasets, allowed_columns (features, label, event, analytics
//                   query and filter columns)
//   model           allowed_model_kinds (training tasks)
//   size            min_cohort (task min_clients, and the invited cohort), max_rounds and
//                   max_local_epochs (training tasks), min_cell_size (analytics tasks)
//   privacy         require_dp_for_training; for tasks with privacy: max_clip_norm
//                   (training), min_noise_multiplier, max_epsilon, max_delta
//   session         min_threshold_fraction (and min_cohort) on the session's threshold,
//                   checked when the set-up arrives (CheckThreshold)
// deny_by_default turns every empty allow-list (datasets, model kinds, task kinds) and
// every dataset without an allowed_columns entry from "anything" into "nothing".
//
// Preconditions: `policy` passed proto::ValidateClientConfig; `spec` is canonical — it
// passed proto::ValidateTaskSpec and had proto::ApplyTaskDefaults applied (feature ranges
// expanded), as every work item's spec is once the WorkProcessor checked it.
#ifndef TESSERA_CLIENT_POLICY_H_
#define TESSERA_CLIENT_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/config.pb.h"
#include "proto/task.pb.h"

namespace tessera::client {

// TRAINING or ANALYTICS.
v1::LocalPolicy::TaskKind TaskKindOf(const v1::TaskSpec& spec);

// Every file column the task touches, sorted and unique (proto::FileColumns): the columns
// of its features (a derived "sex=male" is "sex"), label, event, GLM offset and weights and
// prepared columns; query and filter columns of an analytics task.
std::vector<std::string> TaskColumns(const v1::TaskSpec& spec);

// A rule that refuses a task: `rule` is the policy field ("allowed_columns"), `reason` the
// whole fixed text, starting with "policy.<rule>: ".
struct PolicyRefusal {
  std::string rule;
  std::string reason;
};

// The policy's decision on a task spec (every rule above but the cohort and session ones,
// which depend on the work item), for the approval queue:
//   kRefuse         a rule refuses it: decline POLICY_REFUSED with refusal.reason;
//   kAutoApprove    the policy allows it and auto_approve rule `auto_approval_rule` (the
//                   first that matches) approves it: no one need decide;
//   kNeedsApproval  the policy allows it and no auto_approve rule matches: the site's
//                   staff decide. (Whether a site that keeps no approval queue runs such a
//                   task is its caller's choice; the WorkProcessor alone runs it.)
struct PolicyDecision {
  enum Verdict { kRefuse, kAutoApprove, kNeedsApproval };
  Verdict verdict = kNeedsApproval;
  PolicyRefusal refusal;           // kRefuse
  std::string auto_approval_rule;  // kAutoApprove
};
PolicyDecision Evaluate(const v1::LocalPolicy& policy, const v1::TaskSpec& spec);

// Evaluate's refusal as a status: OK or PERMISSION_DENIED with the refusal's reason. Spec hashes
// are those of the canonical spec (crypto::HashTaskSpec), as the coordinator logs them and
// `tessera-client hash` prints them.
absl::Status CheckTaskPolicy(const v1::LocalPolicy& policy, const v1::TaskSpec& spec);

// min_cohort against the number of sites invited to a stage: OK or PERMISSION_DENIED
// naming policy.min_cohort.
absl::Status CheckCohort(const v1::LocalPolicy& policy, uint32_t cohort_size);

// The least secure-aggregation threshold the policy accepts for `invited` sites:
// max(min_cohort, ceil(min_threshold_fraction * invited)). The protocol's own rule,
// floor(2n/3) + 1, applies on top (secagg::SafeThreshold).
uint32_t PolicyMinThreshold(const v1::LocalPolicy& policy, uint32_t invited);

// The session's `threshold` for `invited` sites against min_threshold_fraction: OK or
// PERMISSION_DENIED naming policy.min_threshold_fraction.
absl::Status CheckThreshold(const v1::LocalPolicy& policy, uint32_t threshold, uint32_t invited);

// Automatic approval: the name of the first rule of policy.auto_approve whose every
// constraint the task meets, or nullopt. A task the policy refuses must be refused whatever
// this says: call it only for a task CheckTaskPolicy accepted. Used by the approval queue,
// which records the rule's name with the approval.
std::optional<std::string> AutoApproves(const v1::LocalPolicy& policy, const v1::TaskSpec& spec);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_POLICY_H_
