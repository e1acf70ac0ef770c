#include "client/internal/site_budget_records.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "client/internal/site_store_rules.h"

namespace tessera::client::internal {

std::string BudgetChargeKey(const v1::BudgetCharge& charge) {
  return absl::StrCat(charge.dataset_id(), std::string(1, '\0'), charge.contribution_key());
}

absl::Status CheckBudgetCharge(const v1::SiteSessionRecord& session,
                               const v1::ContributionRecord& contribution,
                               const v1::BudgetCharge& charge) {
  auto bad = [](const char* what) {
    return absl::InvalidArgumentError(absl::StrCat("PutSessionCharged: ", what));
  };
  if (charge.contribution_key() != contribution.key()) {
    return bad("the charge's contribution key is not the contribution's");
  }
  if (charge.dataset_id().empty() || charge.dataset_id() != contribution.dataset_id()) {
    return bad("the charge's dataset is empty or not the contribution's");
  }
  if (charge.session() != session.session()) return bad("the charge's session is not the session");
  if (!std::isfinite(charge.noise_multiplier()) || charge.noise_multiplier() <= 0) {
    return bad("the charge's noise multiplier must be finite and > 0");
  }
  return absl::OkStatus();
}

std::string StoredChargeProblem(std::string_view key, const v1::BudgetCharge& charge) {
  if (charge.dataset_id().empty()) return "the charge names no dataset";
  if (charge.contribution_key().size() != kContributionKeySize) {
    return "the charge's contribution key is not 32 bytes";
  }
  if (key != BudgetChargeKey(charge)) return "the key is not the charge's dataset and contribution";
  if (!std::isfinite(charge.noise_multiplier()) || charge.noise_multiplier() <= 0) {
    return "the charge's noise multiplier is not finite and > 0";
  }
  return "";
}

}  // namespace tessera::client::internal
