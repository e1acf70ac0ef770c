// The RocksDB SiteStore: open checks, the contribution and session records, the helpers
// every part uses (client/internal/rocksdb_site_store.h).

#include "client/internal/rocksdb_site_store.h"

#include <unistd.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_rules.h"
#include "common/log.h"
#include "common/status.h"
#include "crypto/secret.h"
#include "proto/site_approval.pb.h"
#include "proto/site_state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/status.h"
#include "rocksdb/write_batch.h"

namespace tessera::client::internal {
namespace {

template <typename Message>
absl::StatusOr<std::string> Serialize(const Message& message, const char* kind) {
  if (message.ByteSizeLong() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("PutSession: ", kind, " is larger than 2 GiB"));
  }
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("PutSession: cannot serialise ", kind));
  }
  return bytes;
}

// The record's wire bytes without its snapshot (`machine`) and the snapshot's input,
// which are stored apart.
absl::StatusOr<std::string> SerializeWithoutSnapshot(const v1::SiteSessionRecord& session) {
  if (session.machine().empty() && session.machine_input().empty()) {
    return Serialize(session, "the session record");
  }
  v1::SiteSessionRecord rest = session;
  crypto::SecretBytes wiped(std::move(*rest.mutable_machine()));  // the copy's, wiped here
  crypto::SecretBytes wiped_input(std::move(*rest.mutable_machine_input()));
  rest.clear_machine();
  rest.clear_machine_input();
  return Serialize(rest, "the session record");
}

}  // namespace

RocksDbSiteStore::RocksDbSiteStore(std::string directory, rocksdb::DB* db,
                                   std::vector<rocksdb::ColumnFamilyHandle*> handles,
                                   std::string logs_at_open, bool read_only)
    : directory_(std::move(directory)),
      db_(db),
      handles_(std::move(handles)),
      logs_at_open_(std::move(logs_at_open)),
      read_only_(read_only) {
  contributions_ = Family(kContributionsCf);
  sessions_ = Family(kSessionsCf);
  meta_ = Family(kMetaCf);
  machines_ = Family(kSessionMachinesCf);
  inputs_ = Family(kSessionInputsCf);
  write_options_.sync = true;
}

RocksDbSiteStore::~RocksDbSiteStore() {
  StopScrubbing();
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    // Refused only for a handle the DB owns itself; nothing to do about it then.
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();  // every write was synced already
  if (high_water_fd_ >= 0) ::close(high_water_fd_);
  absl::MutexLock lock(&keys_mu_);
  if (keys_fd_ >= 0) ::close(keys_fd_);
}

absl::Status RocksDbSiteStore::Init(const std::vector<std::string>& missing_core) {
  if (read_only_) {
    return absl::InternalError("site store: Init on a read-only store (use InitReadOnly)");
  }
  if (contributions_ == nullptr || sessions_ == nullptr || meta_ == nullptr ||
      machines_ == nullptr || inputs_ == nullptr) {
    return absl::InternalError(
        absl::StrCat("site store ", directory_, ": a column family is missing after open"));
  }
  size_t records = 0;
  ASSIGN_OR_RETURN(std::optional<std::string> version, CheckEverything(&records));
  if (version.has_value() && !missing_core.empty()) {
    return DataLoss(directory_,
                    absl::StrCat("column family ", missing_core.front(), " is missing"));
  }
  if (!version.has_value()) {
    // A new store, or one whose creation was interrupted before its first record.
    if (records > 0) {
      return DataLoss(directory_, absl::StrCat("family meta has no ", kFormatVersionKey,
                                               " but the store holds ", records, " records"));
    }
    RETURN_IF_ERROR(WriteFormatVersion());
  }
  RETURN_IF_ERROR(CheckHighWater(records));
  ASSIGN_OR_RETURN(const bool version_1, MoveSnapshotsOut());
  {
    absl::MutexLock lock(&scrubbing_mu_);
    sessions_hold_snapshots_ = version_1;
  }
  RETURN_IF_ERROR(ScrubNow());
  // Only once no plaintext snapshot is left in any file: a crash before this write has
  // the next open scrub again.
  if (version_1) RETURN_IF_ERROR(WriteFormatVersion());
  scrubber_ = std::thread([this] { ScrubInTheBackground(); });
  return absl::OkStatus();
}

absl::Status RocksDbSiteStore::InitReadOnly(std::optional<uint64_t> mark) {
  if (contributions_ == nullptr || sessions_ == nullptr || meta_ == nullptr) {
    return DataLoss(directory_, "a column family is missing");
  }
  size_t records = 0;
  RETURN_IF_ERROR(CheckEverything(&records).status());
  const uint64_t latest = db_->GetLatestSequenceNumber();
  if (mark.has_value() && latest < *mark) {
    return DataLoss(directory_,
                    absl::StrCat("its log ends at write ", latest, ", before write ", *mark,
                                 ", the last that recorded a masked input this site sent (",
                                 kHighWaterFile, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> RocksDbSiteStore::CheckEverything(size_t* records) {
  RETURN_IF_ERROR(FromRocksDb(db_->VerifyChecksum(ReadAll()), directory_,
                              "verifying the block checksums of the table files"));
  RETURN_IF_ERROR(FromRocksDb(db_->VerifyFileChecksums(ReadAll()), directory_,
                              "verifying the whole-file checksums of the table files"));
  ASSIGN_OR_RETURN(std::optional<std::string> version, Get(meta_, kFormatVersionKey));
  if (version.has_value()) RETURN_IF_ERROR(CheckFormatVersion(*version));
  RETURN_IF_ERROR(ForEach(contributions_, [&](std::string_view key, std::string_view value) {
    ++*records;
    return DecodeContribution(directory_, key, value).status();
  }));
  std::set<std::string, std::less<>> with_inline_snapshot;
  RETURN_IF_ERROR(ForEach(sessions_, [&](std::string_view key, std::string_view value) {
    ++*records;
    ASSIGN_OR_RETURN(v1::SiteSessionRecord record, DecodeSession(directory_, key, value));
    if (!record.machine().empty()) with_inline_snapshot.emplace(key);
    return absl::OkStatus();
  }));
  // Every snapshot apart belongs to a session record that holds none itself (they are
  // written and deleted together).
  RETURN_IF_ERROR(ForEach(machines_, [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(std::optional<std::string> record, Get(sessions_, key));
    if (!record.has_value()) {
      return DamagedRecord(directory_, kSessionMachinesCf, key,
                           "a session snapshot without its session record");
    }
    if (value.empty() || with_inline_snapshot.contains(key)) {
      return DamagedRecord(directory_, kSessionMachinesCf, key,
                           value.empty() ? "an empty session snapshot"
                                         : "a second snapshot of a session whose record holds one");
    }
    // Its key must be there and open it (a read-only open runs beside the daemon, which
    // may drop a key meanwhile: it does not check them).
    if (read_only_) return absl::OkStatus();
    absl::StatusOr<crypto::SecretBytes> opened = OpenSnapshot(std::string(key), value);
    if (opened.status().code() == absl::StatusCode::kNotFound) {
      return DamagedRecord(
          directory_, kSessionMachinesCf, key,
          absl::StrCat("the key of this session's snapshot is missing from ", kSessionKeysFile));
    }
    return opened.status();
  }));
  // Every input kept apart belongs to a snapshot apart (they are dropped together).
  if (inputs_ != nullptr) {
    RETURN_IF_ERROR(ForEach(inputs_, [&](std::string_view key, std::string_view value) {
      ASSIGN_OR_RETURN(std::optional<std::string> machine, Get(machines_, key));
      if (!machine.has_value() || value.empty()) {
        return DamagedRecord(
            directory_, kSessionInputsCf, key,
            value.empty() ? "an empty session input" : "a session input without its snapshot");
      }
      if (read_only_) return absl::OkStatus();
      absl::Status opened = OpenSnapshot(std::string(key), value, kSessionInputsCf).status();
      if (opened.code() == absl::StatusCode::kNotFound) {
        return DamagedRecord(
            directory_, kSessionInputsCf, key,
            absl::StrCat("the key of this session's input is missing from ", kSessionKeysFile));
      }
      return opened;
    }));
  }
  RETURN_IF_ERROR(CheckAddedFamilies());
  return version;
}

absl::Status RocksDbSiteStore::CheckAddedFamilies() {
  RETURN_IF_ERROR(CheckBudgetFamily());
  RETURN_IF_ERROR(CheckLedger());
  RETURN_IF_ERROR(ForEach(Family(kApprovalsCf), [&](std::string_view key, std::string_view value) {
    return DecodeApproval(directory_, key, value).status();
  }));
  return absl::OkStatus();
}

absl::StatusOr<v1::ContributionRecord> RocksDbSiteStore::GetContribution(const std::string& key) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, Get(contributions_, key));
  if (!value.has_value()) return NoContribution(key);
  return DecodeContribution(directory_, key, *value);
}

absl::StatusOr<std::vector<v1::ContributionRecord>> RocksDbSiteStore::ListContributions() {
  std::vector<v1::ContributionRecord> out;
  RETURN_IF_ERROR(ForEach(contributions_, [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::ContributionRecord record, DecodeContribution(directory_, key, value));
    out.push_back(std::move(record));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::SiteSessionRecord> RocksDbSiteStore::GetSession(const std::string& session) {
  ASSIGN_OR_RETURN(v1::SiteSessionRecord record, GetSessionWithoutSecrets(session));
  RETURN_IF_ERROR(AddSnapshot(record));
  return record;
}

absl::StatusOr<v1::SiteSessionRecord> RocksDbSiteStore::GetSessionWithoutSecrets(
    const std::string& session) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, Get(sessions_, session));
  if (!value.has_value()) return NoSession(session);
  return DecodeSession(directory_, session, *value);
}

absl::StatusOr<std::vector<v1::SiteSessionRecord>> RocksDbSiteStore::ListSessions() {
  std::vector<v1::SiteSessionRecord> out;
  RETURN_IF_ERROR(ForEach(sessions_, [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::SiteSessionRecord record, DecodeSession(directory_, key, value));
    out.push_back(std::move(record));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status RocksDbSiteStore::AddSnapshot(v1::SiteSessionRecord& record) {
  ASSIGN_OR_RETURN(std::optional<crypto::SecretBytes> machine,
                   GetSealed(machines_, kSessionMachinesCf, record.session()));
  if (!machine.has_value()) return absl::OkStatus();
  std::optional<crypto::SecretBytes> input;
  if (inputs_ != nullptr) {
    ASSIGN_OR_RETURN(input, GetSealed(inputs_, kSessionInputsCf, record.session()));
  }
  record.set_machine(std::string(machine->view()));
  if (input.has_value()) record.set_machine_input(std::string(input->view()));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<crypto::SecretBytes>> RocksDbSiteStore::GetSealed(
    rocksdb::ColumnFamilyHandle* family, const char* family_name, const std::string& label) {
  ASSIGN_OR_RETURN(std::optional<std::string> sealed, Get(family, label));
  if (!sealed.has_value()) return std::nullopt;
  absl::StatusOr<crypto::SecretBytes> opened = OpenSnapshot(label, *sealed, family_name);
  if (read_only_ && opened.status().code() == absl::StatusCode::kNotFound) {
    return std::nullopt;  // the session ended after the read
  }
  if (opened.status().code() == absl::StatusCode::kNotFound) {
    return DamagedRecord(directory_, family_name, label, std::string(opened.status().message()));
  }
  RETURN_IF_ERROR(opened.status());
  return std::optional<crypto::SecretBytes>(*std::move(opened));
}

absl::StatusOr<bool> RocksDbSiteStore::MoveSnapshotsOut() {
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch batch;
  const char* what = "moving the sessions' snapshots out of their records (format version 2)";
  int moved = 0;
  RETURN_IF_ERROR(ForEach(sessions_, [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::SiteSessionRecord record, DecodeSession(directory_, key, value));
    if (record.machine().empty()) return absl::OkStatus();
    crypto::SecretBytes machine(std::move(*record.mutable_machine()));
    record.clear_machine();
    ASSIGN_OR_RETURN(std::string bytes, Serialize(record, "the session record"));
    ASSIGN_OR_RETURN(std::string sealed, SealSnapshot(record.session(), machine.view()));
    RETURN_IF_ERROR(FromRocksDb(batch.Put(machines_, key, sealed), directory_, what));
    RETURN_IF_ERROR(FromRocksDb(batch.Put(sessions_, key, bytes), directory_, what));
    ++moved;
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(std::optional<std::string> version, Get(meta_, kFormatVersionKey));
  const bool version_1 = version.has_value() && *version != FormatVersionBytes();
  if (moved == 0) return version_1;
  RETURN_IF_ERROR(Write(&batch, what));
  common::LogInfo("site_store_snapshots_moved").With("sessions", moved);
  return version_1;
}

absl::Status RocksDbSiteStore::PutSession(const v1::SiteSessionRecord& session,
                                          const v1::ContributionRecord* contribution) {
  RETURN_IF_ERROR(Writable("PutSession"));
  RETURN_IF_ERROR(CheckPutSession(session, contribution));
  return PutSessionWith(session, contribution, nullptr);
}

absl::Status RocksDbSiteStore::PutSessionWith(
    const v1::SiteSessionRecord& session, const v1::ContributionRecord* contribution,
    const std::function<absl::Status(rocksdb::WriteBatch&)>& more) {
  const std::string& label = session.session();
  // The record without its snapshot, which goes to the snapshots' family.
  ASSIGN_OR_RETURN(std::string session_value, SerializeWithoutSnapshot(session));
  // One record per key the contribution spends (one, or each part's), all or none written.
  std::vector<std::pair<std::string, std::string>> contribution_values;
  if (contribution != nullptr) {
    for (const v1::ContributionRecord& record : RecordsPerKey(*contribution)) {
      ASSIGN_OR_RETURN(std::string value, Serialize(record, "the contribution record"));
      contribution_values.emplace_back(record.key(), std::move(value));
    }
  }
  const std::string what = absl::StrCat("PutSession \"", label, "\"");

  absl::MutexLock lock(&mu_);
  // A snapshot replaced by none: its key is cleared by the next scrub (format version 2:
  // no record in the sessions family holds a snapshot after Init).
  ASSIGN_OR_RETURN(std::optional<std::string> stored_machine, Get(machines_, label));
  const bool drops_secrets = stored_machine.has_value() && session.machine().empty();
  std::string sealed;
  std::string sealed_input;
  if (!session.machine().empty()) {
    ASSIGN_OR_RETURN(sealed, SealSnapshot(label, session.machine()));
  }
  if (!session.machine_input().empty()) {
    ASSIGN_OR_RETURN(sealed_input, SealSnapshot(label, session.machine_input(), kSessionInputsCf));
  }
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : contribution_values) {
    ASSIGN_OR_RETURN(std::optional<std::string> stored, Get(contributions_, key));
    if (stored.has_value()) {
      ASSIGN_OR_RETURN(v1::ContributionRecord owner, DecodeContribution(directory_, key, *stored));
      RETURN_IF_ERROR(CheckContributionOwner(owner, label));
    }
    RETURN_IF_ERROR(FromRocksDb(batch.Put(contributions_, key, value), directory_, what));
  }
  RETURN_IF_ERROR(FromRocksDb(batch.Put(sessions_, label, session_value), directory_, what));
  RETURN_IF_ERROR(FromRocksDb(
      sealed.empty() ? batch.Delete(machines_, label) : batch.Put(machines_, label, sealed),
      directory_, what));
  // The input apart: written when given, kept while a snapshot is, dropped with it.
  if (!sealed_input.empty()) {
    RETURN_IF_ERROR(FromRocksDb(batch.Put(inputs_, label, sealed_input), directory_, what));
  } else if (sealed.empty()) {
    RETURN_IF_ERROR(FromRocksDb(batch.Delete(inputs_, label), directory_, what));
  }
  if (more) RETURN_IF_ERROR(more(batch));
  RETURN_IF_ERROR(Write(&batch, what));
  if (contribution != nullptr) {
    // Outside the log, so that a log that lost this write at a record boundary (which
    // recovery cannot tell from a log that never had it) is caught at the next open.
    RETURN_IF_ERROR(WriteHighWater(db_->GetLatestSequenceNumber()));
  }
  // Off the caller's path: the write is on disk, and the answer it records may leave while
  // the old versions are scrubbed (site_store.h).
  if (drops_secrets) WantScrub();
  return absl::OkStatus();
}

absl::Status RocksDbSiteStore::ScrubNow() {
  RETURN_IF_ERROR(Writable("ScrubNow"));
  absl::MutexLock lock(&scrubbing_mu_);
  return Scrub();
}

absl::Status RocksDbSiteStore::DeleteSession(const std::string& session) {
  RETURN_IF_ERROR(Writable("DeleteSession"));
  const std::string what = absl::StrCat("DeleteSession \"", session, "\"");
  {
    absl::MutexLock lock(&mu_);
    rocksdb::WriteBatch batch;
    RETURN_IF_ERROR(FromRocksDb(batch.Delete(sessions_, session), directory_, what));
    RETURN_IF_ERROR(FromRocksDb(batch.Delete(machines_, session), directory_, what));
    RETURN_IF_ERROR(FromRocksDb(batch.Delete(inputs_, session), directory_, what));
    RETURN_IF_ERROR(Write(&batch, what));
  }
  // The scrub takes the writers' lock after its own (rocksdb_site_store.h).
  return common::Annotate(ScrubNow(), what +
                                          ": the record is deleted, but clearing its "
                                          "session's key failed (retry)");
}

// ---- Shared helpers

rocksdb::ColumnFamilyHandle* RocksDbSiteStore::Family(std::string_view name) const {
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    if (h->GetName() == name) return h;
  }
  return nullptr;
}

absl::Status RocksDbSiteStore::Writable(const char* call) const {
  if (!read_only_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("site store ", directory_, ": ", call,
                   " on a store opened read-only (OpenSiteStoreReadOnly)"));
}

rocksdb::ReadOptions RocksDbSiteStore::ReadAll() {
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  options.fill_cache = false;
  return options;
}

absl::StatusOr<std::optional<std::string>> RocksDbSiteStore::Get(rocksdb::ColumnFamilyHandle* cf,
                                                                 const rocksdb::Slice& key) {
  if (cf == nullptr) return std::nullopt;
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::nullopt;
  RETURN_IF_ERROR(FromRocksDb(
      s, directory_, absl::StrCat("reading family ", cf->GetName(), ", key ", Hex(View(key)))));
  return value;
}

absl::Status RocksDbSiteStore::ForEachEnd(const rocksdb::Status& s,
                                          rocksdb::ColumnFamilyHandle* cf) {
  return FromRocksDb(s, directory_, absl::StrCat("reading family ", cf->GetName()));
}

absl::Status RocksDbSiteStore::Write(rocksdb::WriteBatch* batch, const std::string& what) {
  return FromRocksDb(db_->Write(write_options_, batch), directory_, what);
}

}  // namespace tessera::client::internal
