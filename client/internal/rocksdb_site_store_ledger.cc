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
    return ParseLedgerEntry(key, value).status();
  }));
  return ForEach(Family(kLedgerCheckpointsCf), [&](std::string_view key, std::string_view value) {
    return ParseLedgerCheckpoint(key, value).status();
  });
}

absl::StatusOr<v1::LedgerEntry> RocksDbSiteStore::ParseLedgerEntry(std::string_view key,
                                                                   std::string_view bytes) {
  const std::optional<uint64_t> sequence = LedgerKeySequence(key);
  if (!sequence.has_value()) return Damaged(kLedgerCf, key, "the key is not 8 bytes");
  v1::LedgerEntry entry;
  if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Damaged(kLedgerCf, key, absl::StrCat("entry ", *sequence, " does not parse"));
  }
  if (entry.sequence() != *sequence) {
    return Damaged(
        kLedgerCf, key,
        absl::StrCat("entry ", *sequence, " holds the record of entry ", entry.sequence()));
  }
  return entry;
}

absl::StatusOr<v1::LedgerCheckpoint> RocksDbSiteStore::ParseLedgerCheckpoint(
    std::string_view key, std::string_view bytes) {
  const std::optional<uint64_t> sequence = LedgerKeySequence(key);
  if (!sequence.has_value()) return Damaged(kLedgerCheckpointsCf, key, "the key is not 8 bytes");
  v1::LedgerCheckpoint checkpoint;
  if (!checkpoint.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Damaged(kLedgerCheckpointsCf, key,
                   absl::StrCat("checkpoint at entry ", *sequence, " does not parse"));
  }
  if (checkpoint.sequence() != *sequence) {
    return Damaged(
        kLedgerCheckpointsCf, key,
        absl::StrCat("checkpoint at entry ", *sequence,
                     " holds the record of the checkpoint at entry ", checkpoint.sequence()));
  }
  return checkpoint;
}

absl::Status RocksDbSiteStore::AppendLedgerEntry(const v1::LedgerEntry& entry) {
  RETURN_IF_ERROR(Writable("AppendLedgerEntry"));
  const std::string what = absl::StrCat("AppendLedgerEntry ", entry.sequence());
  absl::MutexLock lock(&mu_);
  uint64_t last = 0;
  absl::StatusOr<v1::LedgerEntry> stored = LastLedgerEntry();
  if (stored.ok()) {
    last = stored->sequence();
  } else if (!absl::IsNotFound(stored.status())) {
    return stored.status();
  }
  RETURN_IF_ERROR(CheckAppendLedgerEntry(entry, last));
  std::string value;
  if (!entry.SerializeToString(&value)) return absl::InternalError(what + ": cannot serialise");
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocksDb(batch.Put(Family(kLedgerCf), LedgerKey(entry.sequence()), value),
                              directory_, what));
  return Write(&batch, what);
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
  return ParseLedgerEntry(View(it->key()), View(it->value()));
}

absl::StatusOr<std::vector<v1::LedgerEntry>> RocksDbSiteStore::ListLedgerEntries() {
  std::vector<v1::LedgerEntry> out;
  RETURN_IF_ERROR(ForEach(Family(kLedgerCf), [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::LedgerEntry entry, ParseLedgerEntry(key, value));
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
        ASSIGN_OR_RETURN(v1::LedgerCheckpoint checkpoint, ParseLedgerCheckpoint(key, value));
        out.push_back(std::move(checkpoint));
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace tessera::client::internal
