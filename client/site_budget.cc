#include "client/site_budget.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dp/rdp.h"
#include "proto/evaluation.h"

namespace tessera::client {
namespace {

// The noise multipliers charged to `dataset`, leaving out the charge of `skip_key`.
std::vector<double> Charged(std::span<const v1::BudgetCharge> charges, const std::string& dataset,
                            const std::string& skip_key) {
  std::vector<double> sigmas;
  for (const v1::BudgetCharge& c : charges) {
    if (c.dataset_id() != dataset) continue;
    if (!skip_key.empty() && c.contribution_key() == skip_key) continue;
    sigmas.push_back(c.noise_multiplier());
  }
  return sigmas;
}

}  // namespace

std::optional<double> ReleaseNoiseMultiplier(const v1::TaskSpec& spec, v1::Stage stage) {
  if (!spec.has_privacy()) return std::nullopt;
  switch (stage) {
    case v1::STAGE_FIT:
    case v1::STAGE_ANALYTICS:
    // Its evaluation part is never noised: the coordinator asks for one only without
    // evaluation noise, and the site refuses it otherwise (work_processor.h).
    case v1::STAGE_FIT_EVALUATE:
      return spec.privacy().noise_multiplier();
    case v1::STAGE_EVALUATE:
      if (proto::EvaluationNoiseOn(spec)) return spec.privacy().evaluation_noise_multiplier();
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<v1::LocalPolicy::SiteBudget> BudgetOf(const v1::LocalPolicy& policy,
                                                    const std::string& dataset) {
  for (const v1::LocalPolicy::SiteBudget& b : policy.site_budgets()) {
    if (b.dataset() == dataset) return b;
  }
  if (policy.has_default_site_budget()) return policy.default_site_budget();
  return std::nullopt;
}

absl::StatusOr<std::vector<DatasetAccount>> Accounts(const v1::LocalPolicy& policy,
                                                     std::span<const v1::BudgetCharge> charges,
                                                     double default_delta,
                                                     std::span<const std::string> datasets) {
  std::map<std::string, std::vector<double>> by_dataset;
  for (const std::string& id : datasets) by_dataset[id];
  for (const v1::LocalPolicy::SiteBudget& b : policy.site_budgets()) by_dataset[b.dataset()];
  for (const v1::BudgetCharge& c : charges) {
    by_dataset[c.dataset_id()].push_back(c.noise_multiplier());
  }
  std::vector<DatasetAccount> accounts;
  for (const auto& [dataset, sigmas] : by_dataset) {
    DatasetAccount account;
    account.dataset = dataset;
    account.releases = static_cast<int64_t>(sigmas.size());
    account.delta = default_delta;
    if (std::optional<v1::LocalPolicy::SiteBudget> budget = BudgetOf(policy, dataset)) {
      account.delta = budget->delta();
      account.epsilon_budget = budget->epsilon();
    }
    absl::StatusOr<double> epsilon = dp::EpsilonOfReleases(sigmas, account.delta);
    if (!epsilon.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the account of dataset '", dataset, "': ", epsilon.status().message()));
    }
    account.epsilon_spent = *epsilon;
    accounts.push_back(std::move(account));
  }
  return accounts;
}

absl::Status CheckSiteBudget(const v1::LocalPolicy& policy, const std::string& dataset,
                             std::span<const v1::BudgetCharge> charges,
                             const std::string& contribution_key, double noise_multiplier,
                             double* epsilon_after) {
  std::optional<v1::LocalPolicy::SiteBudget> budget = BudgetOf(policy, dataset);
  if (!budget.has_value()) return absl::OkStatus();
  std::vector<double> sigmas = Charged(charges, dataset, contribution_key);
  sigmas.push_back(noise_multiplier);
  absl::StatusOr<double> epsilon = dp::EpsilonOfReleases(sigmas, budget->delta());
  // An account that cannot be computed is refused like an exhausted one: safe.
  if (epsilon_after != nullptr) *epsilon_after = epsilon.ok() ? *epsilon : INFINITY;
  if (epsilon.ok() && *epsilon <= budget->epsilon()) return absl::OkStatus();
  const bool own = policy.site_budgets().end() !=
                   std::find_if(policy.site_budgets().begin(), policy.site_budgets().end(),
                                [&](const auto& b) { return b.dataset() == dataset; });
  return absl::ResourceExhaustedError(absl::StrCat(
      "policy.", own ? "site_budgets" : "default_site_budget",
      ": this contribution would take this site's privacy budget for dataset '", dataset,
      "' past its epsilon (`tessera-client privacy` at the site shows the account)"));
}

}  // namespace tessera::client
