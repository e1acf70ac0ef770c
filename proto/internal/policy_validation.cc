#include "proto/internal/policy_validation.h"

#include <cmath>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/analytics.h"
#include "proto/config.pb.h"
#include "proto/internal/names.h"
#include "proto/task.pb.h"

namespace tessera::proto::internal {
namespace {

using common::FieldError;
using v1::LocalPolicy;

std::string At(const std::string& path, int i) { return absl::StrCat(path, "[", i, "]"); }

// A dataset id of this config, named once in `seen` (when given).
void CheckDataset(const std::string& id, const std::string& path,
                  const std::set<std::string>& datasets, std::set<std::string>* seen,
                  std::vector<FieldError>* errors) {
  if (id.empty()) {
    errors->push_back({path, "required"});
  } else if (datasets.count(id) == 0) {
    errors->push_back(
        {path, absl::StrCat("'", id, "' is not a dataset of this config (datasets[].id)")});
  } else if (seen != nullptr && !seen->insert(id).second) {
    errors->push_back({path, absl::StrCat("dataset '", id, "' appears twice")});
  }
}

template <typename Kinds>
void CheckKinds(const Kinds& kinds, const std::string& path, std::vector<FieldError>* errors) {
  std::set<int> seen;
  for (int i = 0; i < kinds.size(); ++i) {
    if (kinds[i] == 0) {
      errors->push_back({At(path, i), "must name a kind (not *_UNSPECIFIED)"});
    } else if (!seen.insert(kinds[i]).second) {
      errors->push_back({At(path, i), "appears twice"});
    }
  }
}

template <typename Hashes>
void CheckHashes(const Hashes& hashes, const std::string& path, std::vector<FieldError>* errors) {
  for (int i = 0; i < hashes.size(); ++i) {
    if (!IsLowerHexSha256(hashes[i])) {
      errors->push_back({At(path, i), "must be 64 lowercase hex digits (SHA-256)"});
    }
  }
}

template <typename Columns>
void CheckColumns(const Columns& columns, const std::string& path,
                  std::vector<FieldError>* errors) {
  for (int i = 0; i < columns.size(); ++i) {
    if (!IsValidColumnName(columns[i])) {
      errors->push_back(
          {At(path, i), "must be a CSV header name (1..256 bytes, no comma or quote)"});
    }
  }
}

// A limit that is off at 0: finite and >= 0.
void CheckLimit(double v, const std::string& path, std::vector<FieldError>* errors) {
  if (!std::isfinite(v) || v < 0) {
    errors->push_back({path, "must be a finite number > 0 (or 0: no limit)"});
  }
}

void CheckDataRules(const LocalPolicy& policy, const std::set<std::string>& datasets,
                    std::vector<FieldError>* errors) {
  std::set<std::string> allowed;
  for (int i = 0; i < policy.allowed_datasets_size(); ++i) {
    CheckDataset(policy.allowed_datasets(i), At("policy.allowed_datasets", i), datasets, &allowed,
                 errors);
  }
  std::set<std::string> with_columns;
  for (int i = 0; i < policy.allowed_columns_size(); ++i) {
    const LocalPolicy::ColumnAllowList& entry = policy.allowed_columns(i);
    const std::string path = At("policy.allowed_columns", i);
    CheckDataset(entry.dataset(), path + ".dataset", datasets, &with_columns, errors);
    if (entry.columns().empty()) {
      errors->push_back(
          {path + ".columns", "at least one column (leave the dataset out to allow any column)"});
    }
    CheckColumns(entry.columns(), path + ".columns", errors);
  }
  if (policy.deny_by_default()) {
    // A dataset allowed without columns could run no task: say so rather than refuse
    // every task on it.
    for (int i = 0; i < policy.allowed_datasets_size(); ++i) {
      const std::string& id = policy.allowed_datasets(i);
      if (datasets.count(id) > 0 && with_columns.count(id) == 0) {
        errors->push_back({At("policy.allowed_datasets", i),
                           absl::StrCat("with deny_by_default, dataset '", id,
                                        "' needs an allowed_columns entry (no column is "
                                        "allowed otherwise)")});
      }
    }
  }
  CheckKinds(policy.allowed_model_kinds(), "policy.allowed_model_kinds", errors);
  CheckKinds(policy.allowed_task_kinds(), "policy.allowed_task_kinds", errors);
}

void CheckPrivacyRules(const LocalPolicy& policy, std::vector<FieldError>* errors) {
  if (!std::isfinite(policy.min_threshold_fraction()) || policy.min_threshold_fraction() < 0 ||
      policy.min_threshold_fraction() > 1) {
    errors->push_back({"policy.min_threshold_fraction", "must be in [0, 1]"});
  }
  if (const double gamma = policy.min_secagg_plus_colluding_fraction();
      gamma != 0 && !(gamma >= 0.05 && gamma < 1.0 / 3)) {
    errors->push_back(
        {"policy.min_secagg_plus_colluding_fraction", "must be in [0.05, 1/3) (or 0: 0.05)"});
  }
  CheckLimit(policy.max_clip_norm(), "policy.max_clip_norm", errors);
  CheckLimit(policy.min_noise_multiplier(), "policy.min_noise_multiplier", errors);
  CheckLimit(policy.max_epsilon(), "policy.max_epsilon", errors);
  if (!std::isfinite(policy.max_delta()) || policy.max_delta() < 0 || policy.max_delta() >= 1) {
    errors->push_back({"policy.max_delta", "must be in (0, 1) (or 0: no limit)"});
  }
}

void CheckAutoApproval(const LocalPolicy::AutoApproval& rule, const std::string& path,
                       const std::set<std::string>& datasets, std::vector<FieldError>* errors) {
  if (rule.name().empty()) {
    errors->push_back({path + ".name", "required"});
  } else if (!IsValidName(rule.name(), /*allow_upper=*/true)) {
    errors->push_back({path + ".name", "must be 1..64 characters from [A-Za-z0-9._-]"});
  }
  CheckHashes(rule.spec_hashes(), path + ".spec_hashes", errors);
  for (int i = 0; i < rule.datasets_size(); ++i) {
    CheckDataset(rule.datasets(i), At(path + ".datasets", i), datasets, nullptr, errors);
  }
  CheckColumns(rule.columns(), path + ".columns", errors);
  CheckKinds(rule.model_kinds(), path + ".model_kinds", errors);
  CheckKinds(rule.task_kinds(), path + ".task_kinds", errors);
  CheckLimit(rule.max_epsilon(), path + ".max_epsilon", errors);
  CheckLimit(rule.min_noise_multiplier(), path + ".min_noise_multiplier", errors);
  const bool constrains =
      !rule.task_names().empty() || !rule.spec_hashes().empty() || !rule.datasets().empty() ||
      !rule.columns().empty() || !rule.model_kinds().empty() || !rule.task_kinds().empty() ||
      rule.require_dp() || rule.max_epsilon() != 0 || rule.min_noise_multiplier() != 0 ||
      rule.max_rounds() != 0 || rule.max_local_epochs() != 0 || rule.min_clients() != 0;
  if (!constrains) {
    errors->push_back({path, "sets no constraint: it would approve every task the policy allows"});
  }
}

// A budget's ε and δ.
void CheckBudget(const LocalPolicy::SiteBudget& budget, const std::string& path,
                 std::vector<FieldError>* errors) {
  if (!std::isfinite(budget.epsilon()) || budget.epsilon() <= 0) {
    errors->push_back({path + ".epsilon", "must be a finite number > 0"});
  }
  if (!(budget.delta() > 0 && budget.delta() < 1)) {
    errors->push_back({path + ".delta", "must be in (0, 1)"});
  }
}

}  // namespace

void ValidateLocalPolicy(const LocalPolicy& policy, const std::set<std::string>& datasets,
                         std::vector<FieldError>* errors) {
  CheckHashes(policy.allowed_spec_hashes(), "policy.allowed_spec_hashes", errors);
  if (policy.min_cell_size() > kMaxMinCellSize) {
    errors->push_back({"policy.min_cell_size", absl::StrCat("must be 1..", kMaxMinCellSize)});
  }
  CheckDataRules(policy, datasets, errors);
  CheckPrivacyRules(policy, errors);
  std::set<std::string> names;
  for (int i = 0; i < policy.auto_approve_size(); ++i) {
    const std::string path = At("policy.auto_approve", i);
    CheckAutoApproval(policy.auto_approve(i), path, datasets, errors);
    if (!policy.auto_approve(i).name().empty() &&
        !names.insert(policy.auto_approve(i).name()).second) {
      errors->push_back({path + ".name",
                         absl::StrCat("rule '", policy.auto_approve(i).name(), "' appears twice")});
    }
  }
  std::set<std::string> budgets;
  for (int i = 0; i < policy.site_budgets_size(); ++i) {
    const std::string path = At("policy.site_budgets", i);
    CheckDataset(policy.site_budgets(i).dataset(), path + ".dataset", datasets, &budgets, errors);
    CheckBudget(policy.site_budgets(i), path, errors);
  }
  if (policy.has_default_site_budget()) {
    if (!policy.default_site_budget().dataset().empty()) {
      errors->push_back({"policy.default_site_budget.dataset",
                         "must be empty (the default covers every dataset without a budget of "
                         "its own in site_budgets)"});
    }
    CheckBudget(policy.default_site_budget(), "policy.default_site_budget", errors);
  }
}

}  // namespace tessera::proto::internal
