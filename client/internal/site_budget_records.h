// What both site stores (client/site_store.h) check and say the same way about budget
// charges (proto/site_budget.proto): their key, PutSessionCharged's arguments, a stored
// record at open.
#ifndef TESSERA_CLIENT_INTERNAL_SITE_BUDGET_RECORDS_H_
#define TESSERA_CLIENT_INTERNAL_SITE_BUDGET_RECORDS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/site_budget.pb.h"
#include "proto/site_state.pb.h"

namespace tessera::client::internal {

inline constexpr char kBudgetCf[] = "budget";

// dataset id, a 0 byte, contribution key: a dataset's charges sort together.
std::string BudgetChargeKey(const v1::BudgetCharge& charge);

// INVALID_ARGUMENT unless `charge` pays for `contribution` of `session` (PutSessionCharged).
absl::Status CheckBudgetCharge(const v1::SiteSessionRecord& session,
                               const v1::ContributionRecord& contribution,
                               const v1::BudgetCharge& charge);

// What is wrong with a stored charge under `key` ("" if nothing): its key is not
// BudgetChargeKey(charge), its dataset is empty, its key is not 32 bytes or its noise
// multiplier not finite and > 0.
std::string StoredChargeProblem(std::string_view key, const v1::BudgetCharge& charge);

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_SITE_BUDGET_RECORDS_H_
