// The RocksDB SiteStore's egress ledger: families `ledger` (entries) and
// `ledger_checkpoints`, keyed by the 8-byte big-endian sequence
// (client/internal/rocksdb_site_store.h).

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/internal/rocksdb_site_store.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_ledger_rules.h"
#include "client/internal/site_store_rules.h"
#include "common/status.h"
#include "proto/site_ledger.pb.h"

namespace tessera::client::internal {

absl::Status RocksDbSiteStore::CheckLedger() {
  RETURN_IF_ERROR(ForEach(Family(kLedgerCf), [&](std::string_view key, std::string_view value) {
    return DecodeLedgerEntry(directory_, key, value).status();
  }));
  return ForEach(Family(kLedgerCheckpointsCf), [&](std::string_view key, std::string_view value) {
    return DecodeLedgerCheckpoint(directory_, key, value).status();
  });
}

absl::Status RocksDbSiteStore::AppendLedgerEntry(const v1::LedgerEntry& entry) {
  RETURN_IF_ERROR(Writable("AppendLedgerEntry"));
  const std::string what = absl::StrCat("AppendLedgerEntry ", entry.sequence());
  ASSIGN_OR_RETURN(BatchPart append, LedgerPart(LedgerRecords{&entry, nullptr}, what));
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(append(batch));
  return Write(&batch, what);
}

absl::Status RocksDbSiteStore::PutSessionWithLedger(const v1::SiteSessionRecord& session,
                                                    const v1::ContributionRecord* contribution,
                                                    const v1::BudgetCharge* charge,
                                                    const LedgerRecords& ledger) {
  const char* op = charge != nullptr ? "PutSessionCharged" : "PutSession";
  RETURN_IF_ERROR(Writable(op));
  RETURN_IF_ERROR(CheckPutSessionWithLedger(session, contribution, charge, ledger));
  BatchPart charged;
  if (charge != nullptr) {
    ASSIGN_OR_RETURN(charged, ChargePart(session, *charge));
  }
  ASSIGN_OR_RETURN(BatchPart logged,
                   LedgerPart(ledger, absl::StrCat(op, " \"", session.session(), "\"")));
  if (!charged && !logged) return PutSessionWith(session, contribution, nullptr);
  return PutSessionWith(session, contribution, [&](rocksdb::WriteBatch& batch) {
    if (charged) RETURN_IF_ERROR(charged(batch));
    if (logged) RETURN_IF_ERROR(logged(batch));
    return absl::OkStatus();
  });
}

absl::StatusOr<RocksDbSiteStore::BatchPart> RocksDbSiteStore::LedgerPart(
    const LedgerRecords& ledger, const std::string& what) {
  if (ledger.entry == nullptr) return BatchPart();
  std::string entry_value;
  if (!ledger.entry->SerializeToString(&entry_value)) {
    return absl::InternalError(what + ": cannot serialise the ledger entry");
  }
  std::string checkpoint_value;
  if (ledger.checkpoint != nullptr && !ledger.checkpoint->SerializeToString(&checkpoint_value)) {
    return absl::InternalError(what + ": cannot serialise the ledger checkpoint");
  }
  std::string next_value;
  if (ledger.next != nullptr && !ledger.next->SerializeToString(&next_value)) {
    return absl::InternalError(what + ": cannot serialise the next ledger entry");
  }
  // Runs under the writers' lock (PutSessionWith), as AppendLedgerEntry's checks do.
  return [this, ledger, what, entry_value = std::move(entry_value),
          checkpoint_value = std::move(checkpoint_value),
          next_value = std::move(next_value)](rocksdb::WriteBatch& batch) {
    const v1::LedgerEntry& entry = *ledger.entry;
    uint64_t last = 0;
    absl::StatusOr<v1::LedgerEntry> stored = LastLedgerEntry();
    if (stored.ok()) {
      last = stored->sequence();
    } else if (!absl::IsNotFound(stored.status())) {
      return stored.status();
    }
    RETURN_IF_ERROR(CheckAppendLedgerEntry(entry, last));
    RETURN_IF_ERROR(FromRocksDb(
        batch.Put(Family(kLedgerCf), LedgerKey(entry.sequence()), entry_value), directory_, what));
    if (ledger.next != nullptr) {
      RETURN_IF_ERROR(CheckAppendLedgerEntry(*ledger.next, entry.sequence()));
      RETURN_IF_ERROR(
          FromRocksDb(batch.Put(Family(kLedgerCf), LedgerKey(ledger.next->sequence()), next_value),
                      directory_, what));
    }
    if (ledger.checkpoint == nullptr) return absl::OkStatus();
    const v1::LedgerCheckpoint& checkpoint = *ledger.checkpoint;
    bool entry_exists = checkpoint.sequence() == entry.sequence();
    if (!entry_exists) {
      ASSIGN_OR_RETURN(std::optional<std::string> at,
                       Get(Family(kLedgerCf), LedgerKey(checkpoint.sequence())));
      entry_exists = at.has_value();
    }
    RETURN_IF_ERROR(CheckPutLedgerCheckpoint(checkpoint, entry_exists));
    return FromRocksDb(
        batch.Put(Family(kLedgerCheckpointsCf), LedgerKey(checkpoint.sequence()), checkpoint_value),
        directory_, what);
  };
}

absl::StatusOr<v1::LedgerEntry> RocksDbSiteStore::LastLedgerEntry() {
  rocksdb::ColumnFamilyHandle* cf = Family(kLedgerCf);
  if (cf == nullptr) return NoLedgerEntries();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadAll(), cf));
  it->SeekToLast();
  if (!it->Valid()) {
    RETURN_IF_ERROR(ForEachEnd(it->status(), cf));
    return NoLedgerEntries();
  }
  return DecodeLedgerEntry(directory_, View(it->key()), View(it->value()));
}

absl::StatusOr<std::vector<v1::LedgerEntry>> RocksDbSiteStore::ListLedgerEntries() {
  std::vector<v1::LedgerEntry> out;
  RETURN_IF_ERROR(ForEach(Family(kLedgerCf), [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::LedgerEntry entry, DecodeLedgerEntry(directory_, key, value));
    out.push_back(std::move(entry));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status RocksDbSiteStore::PutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint) {
  RETURN_IF_ERROR(Writable("PutLedgerCheckpoint"));
  const std::string what = absl::StrCat("PutLedgerCheckpoint ", checkpoint.sequence());
  const std::string key = LedgerKey(checkpoint.sequence());
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::optional<std::string> entry, Get(Family(kLedgerCf), key));
  RETURN_IF_ERROR(CheckPutLedgerCheckpoint(checkpoint, entry.has_value()));
  std::string value;
  if (!checkpoint.SerializeToString(&value)) {
    return absl::InternalError(what + ": cannot serialise");
  }
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(
      FromRocksDb(batch.Put(Family(kLedgerCheckpointsCf), key, value), directory_, what));
  return Write(&batch, what);
}

absl::StatusOr<std::vector<v1::LedgerCheckpoint>> RocksDbSiteStore::ListLedgerCheckpoints() {
  std::vector<v1::LedgerCheckpoint> out;
  RETURN_IF_ERROR(
      ForEach(Family(kLedgerCheckpointsCf), [&](std::string_view key, std::string_view value) {
        ASSIGN_OR_RETURN(v1::LedgerCheckpoint checkpoint,
                         DecodeLedgerCheckpoint(directory_, key, value));
        out.push_back(std::move(checkpoint));
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace tessera::client::internal
