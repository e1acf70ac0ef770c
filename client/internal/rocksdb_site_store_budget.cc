// The RocksDB SiteStore's privacy-budget part: the `budget` family (proto/site_budget.proto,
// client/internal/rocksdb_site_store.h).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/internal/rocksdb_site_store.h"
#include "client/internal/site_budget_records.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_rules.h"
#include "common/status.h"
#include "proto/site_budget.pb.h"
#include "proto/site_state.pb.h"

namespace tessera::client::internal {
absl::StatusOr<std::vector<v1::BudgetCharge>> RocksDbSiteStore::ListBudgetCharges() {
  std::vector<v1::BudgetCharge> out;
  RETURN_IF_ERROR(ForEach(Family(kBudgetCf), [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::BudgetCharge charge, DecodeBudgetCharge(directory_, key, value));
    out.push_back(std::move(charge));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status RocksDbSiteStore::PutSessionCharged(const v1::SiteSessionRecord& session,
                                                 const v1::ContributionRecord& contribution,
                                                 const v1::BudgetCharge& charge) {
  return PutSessionWithLedger(session, &contribution, &charge, LedgerRecords());
}

absl::StatusOr<RocksDbSiteStore::BatchPart> RocksDbSiteStore::ChargePart(
    const v1::SiteSessionRecord& session, const v1::BudgetCharge& charge) {
  rocksdb::ColumnFamilyHandle* budget = Family(kBudgetCf);
  if (budget == nullptr) return absl::InternalError("PutSessionCharged: no budget family");
  std::string value;
  if (!charge.SerializeToString(&value)) {
    return absl::InternalError("PutSessionCharged: cannot serialise the charge");
  }
  return [this, budget, key = BudgetChargeKey(charge), value = std::move(value),
          what = absl::StrCat("PutSessionCharged \"", session.session(), "\"")](
             rocksdb::WriteBatch& batch) {
    return FromRocksDb(batch.Put(budget, key, value), directory_, what);
  };
}

absl::Status RocksDbSiteStore::CheckBudgetFamily() {
  return ForEach(Family(kBudgetCf), [&](std::string_view key, std::string_view value) {
    return DecodeBudgetCharge(directory_, key, value).status();
  });
}

}  // namespace tessera::client::internal
