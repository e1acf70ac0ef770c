// The site's own privacy budget: a Rényi-DP account per local dataset, across every task
// and every coordinator, kept in the site store (budget charges, proto/site_budget.proto)
// and limited by policy.site_budgets / policy.default_site_budget (proto/config.proto).
//
// What is charged. Each masked input the site sends takes part in one release of the
// secure sum (dp/rdp.h, "Releases"). A release with Gaussian noise is charged to the
// dataset the input was computed from at its noise multiplier σ: a FIT of a task with
// privacy (σ = privacy.noise_multiplier), an EVALUATE with evaluation noise (σ =
// privacy.evaluation_noise_multiplier), an ANALYTICS answer of a task with privacy (σ =
// privacy.noise_multiplier). Exact releases (pooled statistics, evaluations without noise,
// tasks without privacy) are not differentially private and are not charged: a site that
// must not release them refuses such tasks by policy (require_dp_for_training). The
// dataset's ε composes its charges at the record level (RDP adds, dp::EpsilonOfReleases at
// the budget's δ), as the coordinator composes one task's releases; the site's account
// spans all tasks, so it is never less than any one task's ε.
//
// When. The site checks its budget at a session's first step, before computing anything
// (SecureSessions declines SITE_BUDGET_EXHAUSTED), and again when its masked input is about
// to leave (another session may have spent the budget meanwhile); the charge is written in
// the same synced write as the ContributionRecord of that masked input
// (SiteStore::PutSessionCharged), before it leaves. A session that ends before its masked
// input is sent costs nothing. One charge per contribution key: a contribution is sent at
// most once anyway.
//
// Pure functions of the policy and the charges (no I/O, clock or logging); thread-safe.
#ifndef TESSERA_CLIENT_SITE_BUDGET_H_
#define TESSERA_CLIENT_SITE_BUDGET_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/task.pb.h"

namespace tessera::client {

// δ at which the account of a dataset without a budget is shown (`tessera-client privacy`).
inline constexpr double kDefaultAccountDelta = 1e-5;

// σ of the release a contribution to `stage` of `spec` takes part in; nullopt for an exact
// release (not charged). `spec` is canonical (validated, defaults applied).
std::optional<double> ReleaseNoiseMultiplier(const v1::TaskSpec& spec, v1::Stage stage);

// The budget of `dataset`: its site_budgets entry, else default_site_budget, else nullopt
// (not limited).
std::optional<v1::LocalPolicy::SiteBudget> BudgetOf(const v1::LocalPolicy& policy,
                                                    const std::string& dataset);

// One dataset's account.
struct DatasetAccount {
  std::string dataset;
  int64_t releases = 0;  // charges
  double delta = 0;      // the budget's δ, or `default_delta` without a budget
  double epsilon_spent = 0;
  std::optional<double> epsilon_budget;  // nullopt: not limited
};

// Every dataset that has charges, a site_budgets entry or is in `datasets` (a config's
// datasets), sorted by id. INVALID_ARGUMENT for a charge with a noise multiplier that is
// not finite and > 0, or δ out of (0, 1).
absl::StatusOr<std::vector<DatasetAccount>> Accounts(const v1::LocalPolicy& policy,
                                                     std::span<const v1::BudgetCharge> charges,
                                                     double default_delta = kDefaultAccountDelta,
                                                     std::span<const std::string> datasets = {});

// Whether one more release at `noise_multiplier` from `dataset` fits its budget, given
// `charges` (every charge of the store; other datasets' are ignored, and so is one already
// recorded under `contribution_key`, which this release would replace). OK if the dataset
// has no budget or ε after the release is at most the budget's; RESOURCE_EXHAUSTED
// otherwise, whose message is a fixed text naming the rule and the dataset (it may travel
// as a decline's detail: no number from the account, which spans other tasks). *epsilon_after
// (when given) receives ε after the release, for the site's own log.
absl::Status CheckSiteBudget(const v1::LocalPolicy& policy, const std::string& dataset,
                             std::span<const v1::BudgetCharge> charges,
                             const std::string& contribution_key, double noise_multiplier,
                             double* epsilon_after = nullptr);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_SITE_BUDGET_H_
