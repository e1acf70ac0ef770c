// What both site stores (client/site_store.h) check and say the same way: the arguments
// of PutSession (and PutSessionWithLedger), the once-only rule for contribution keys, and the texts
// of their errors.
#ifndef TESSERA_CLIENT_INTERNAL_SITE_STORE_RULES_H_
#define TESSERA_CLIENT_INTERNAL_SITE_STORE_RULES_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "client/site_store.h"
#include "proto/site_state.pb.h"

namespace tessera::client::internal {

// A contribution key is a SHA-256 digest.
inline constexpr size_t kContributionKeySize = 32;

// Lowercase hex of `bytes`: how keys appear in messages (session labels too, since a
// damaged one may hold any byte).
std::string Hex(std::string_view bytes);

// INVALID_ARGUMENT unless PutSession's arguments are well formed: a non-empty label, no
// machine_input without a machine and, with a contribution, a 32-byte key, the same label,
// session.contribution_key() equal to the key, and part keys that are either none or
// distinct 32-byte keys starting with the key and equal to the session's.
absl::Status CheckPutSession(const v1::SiteSessionRecord& session,
                             const v1::ContributionRecord* contribution);

// INVALID_ARGUMENT unless PutSessionWithLedger's arguments are well formed: CheckPutSession's
// rules; a charge only with a contribution, and CheckBudgetCharge's rules for it; a ledger
// checkpoint only with its entry. (The ledger records against what is stored —
// CheckAppendLedgerEntry, CheckPutLedgerCheckpoint — are checked under the store's lock.)
absl::Status CheckPutSessionWithLedger(const v1::SiteSessionRecord& session,
                                       const v1::ContributionRecord* contribution,
                                       const v1::BudgetCharge* charge, const LedgerRecords& ledger);

// The records a contribution is stored as, one per key it spends: itself for a one-part
// contribution, else one copy per part key (its `key` set to that part key).
std::vector<v1::ContributionRecord> RecordsPerKey(const v1::ContributionRecord& contribution);

// ALREADY_EXISTS unless `stored` (the contribution recorded under the new one's key) was
// recorded by `session`.
absl::Status CheckContributionOwner(const v1::ContributionRecord& stored,
                                    const std::string& session);

absl::Status NoContribution(const std::string& key);
absl::Status NoSession(const std::string& session);

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_SITE_STORE_RULES_H_
