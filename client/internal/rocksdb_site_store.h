// Private to the client library: the RocksDB SiteStore (client/site_store.h states what it
// promises; OpenSiteStore and OpenSiteStoreReadOnly in client/site_store.cc make one).
//
// On-disk layout (one column family per kind; values are serialised protos):
//   contributions  32-byte contribution key   -> v1::ContributionRecord (record.key == key)
//   sessions       session label              -> v1::SiteSessionRecord (record.session == key),
//                  `machine` empty (from format version 2)
//   session_machines  session label           -> the record's `machine`, sealed (AES-256-GCM)
//                  under the session's own key, only while it is not empty: an open
//                  session's (added in format version 2)
//   session_inputs  session label             -> the record's `machine_input`, sealed under
//                  the same key (bound to being an input), written once a session, deleted
//                  with the snapshot (added family)
// Beside RocksDB's files, SESSION_KEYS: a slot of 64 bytes per open session, the SHA-256 of
// its label and its 32-byte key (SECRET), written (synced) before the first snapshot
// sealed under it and overwritten with zeros once the session's snapshot is gone
// (rocksdb_site_store_keys.cc).
//   meta           "format_version"           -> 4-byte big-endian kFormatVersion
//   budget         dataset id, 0, contribution key -> v1::BudgetCharge (added after v1)
//   ledger         8-byte big-endian sequence -> v1::LedgerEntry (added after v1)
//   ledger_checkpoints  the same key        -> v1::LedgerCheckpoint (added after v1)
//   approvals      task id, 0, 32-byte hash   -> v1::ApprovalRecord (added family)
// Keys sort bytewise, which is the order the List calls promise.
//
// Why the snapshots are sealed, each session under a key of its own (format version 2):
// a session's snapshot is written at every step, so old versions of it sit in RocksDB's
// write-ahead logs and table files. Version 1 kept them in plaintext inside the session
// records and scrubbed them when the session ended: it flushed every family and compacted
// the sessions family, which rewrote every session record kept for the hour (masked input
// answers included) and created a table file per family at every session's end: at
// d = 10^5 most of a site's CPU per session. Now no snapshot is ever on disk in
// plaintext; when a session ends its key is overwritten (the scrub), and every version
// sealed under it is noise, wherever RocksDB keeps it. A version 1 store is converted by
// its first writable open (every open session's snapshot sealed and moved out, then the
// sessions family flushed and compacted once by the open's scrub); the read-only open
// reads either layout.
//
// Families. The core families (kCoreFamilies) exist in every store since format version 1:
// a store that has a format version but lacks one is damaged. Families added later
// (kAddedFamilies, each with its part's records) are created by the first writable open of
// an older store; a read-only open of such a store opens them not at all, and reads them as
// empty (Family() returns nullptr; Get and ForEach treat that as a family with no records).
// To add a family: append its name to kAddedFamilies, append its methods to SiteStore and
// define them in a file of their own (rocksdb_site_store_<part>.cc), and check its records
// in CheckAddedFamilies.
//
// Implementation files: rocksdb_site_store.cc (open checks, records, the shared helpers),
// rocksdb_site_store_upkeep.cc (format version, scrubbing, the high-water mark),
// rocksdb_site_store_ledger.cc (the egress ledger's families), rocksdb_site_store_keys.cc
// (the sessions' keys, SESSION_KEYS).
//
// Every write is synced. PutSession reads before it writes (the contribution's owner, the
// stored snapshot) and the scrub must not interleave with writes, so writers are
// serialised by mu_; readers take no lock (RocksDB reads are thread-safe).
#ifndef TESSERA_CLIENT_INTERNAL_ROCKSDB_SITE_STORE_H_
#define TESSERA_CLIENT_INTERNAL_ROCKSDB_SITE_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/site_budget_records.h"
#include "client/internal/site_store_records.h"
#include "client/site_store.h"
#include "common/status.h"
#include "crypto/secret.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/write_batch.h"

namespace tessera::client::internal {

inline constexpr char kFormatVersionKey[] = "format_version";
inline constexpr std::array<const char*, 3> kCoreFamilies = {kContributionsCf, kSessionsCf,
                                                             kMetaCf};
// The families (site_store_records.h) of format version 1, and those added after it, in the
// order they were added.
inline constexpr std::array<const char*, 6> kAddedFamilies = {
    kBudgetCf,  // rocksdb_site_store_budget.cc
    kLedgerCf,  // rocksdb_site_store_ledger.cc
    kLedgerCheckpointsCf,
    kApprovalsCf,        // rocksdb_site_store_approvals.cc
    kSessionMachinesCf,  // format version 2: the sessions' snapshots (this file)
    kSessionInputsCf,    // the snapshots' inputs kept apart (this file)
};

// Memtables (site_store.cc). Every family's is small and flushed as it fills, except the
// two that take a session's model-sized values (the input, kept apart, and the record
// holding the masked input until the next step): theirs hold a whole session's values, so
// that a flush comes after the session ended, from the scrub that follows it
// (FlushSessionMemtables), and drops those versions, superseded or deleted by then,
// instead of writing a live 4d-byte value to a table file (and reading it back for the
// file check) in the middle of the session.
inline constexpr size_t kFamilyMemtableBytes = size_t{4} << 20;
inline constexpr size_t kSessionMemtableBytes = size_t{32} << 20;
// All memtables together: beyond it RocksDB flushes the largest family, live values and
// all (a model of more than about 7 million parameters).
inline constexpr size_t kStoreMemtableBytes = size_t{64} << 20;
// The scrub after a session's end flushes those two families once their memtable holds
// this much (the memory they hold between flushes: what the small families hold).
inline constexpr size_t kFlushAfterSessionBytes = kFamilyMemtableBytes;

// Beside RocksDB's files: the sequence number of the last write that recorded a masked
// input (site_store.h, "Never silently forget what left").
inline constexpr char kHighWaterFile[] = "CONTRIBUTED_UP_TO";
// Beside RocksDB's files: the open sessions' keys (rocksdb_site_store_keys.cc).
inline constexpr char kSessionKeysFile[] = "SESSION_KEYS";

// The high-water mark in `directory`, nullopt without one; DATA_LOSS if it is damaged.
absl::StatusOr<std::optional<uint64_t>> ReadHighWater(const std::string& directory);

inline std::string_view View(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

class RocksDbSiteStore final : public SiteStore {
 public:
  // Takes ownership of `db` and `handles` (every family opened). `logs_at_open`: the
  // write-ahead logs the open replayed (recovery replaces them). `read_only`: opened by
  // OpenSiteStoreReadOnly (writes refused, nothing scrubbed).
  RocksDbSiteStore(std::string directory, rocksdb::DB* db,
                   std::vector<rocksdb::ColumnFamilyHandle*> handles, std::string logs_at_open,
                   bool read_only);
  ~RocksDbSiteStore() override;

  // Checks everything stored (see site_store.h), writes the format version of a new store
  // and scrubs. `missing_core` lists the core families that did not exist before this
  // open. Called once, before the store is shared.
  absl::Status Init(const std::vector<std::string>& missing_core);

  // The read-only open's checks: the same as Init's, against the high-water mark read
  // before the open (`mark`, nullopt without one), and nothing written: no format version,
  // no mark, no scrub.
  absl::Status InitReadOnly(std::optional<uint64_t> mark);

  // ---- SiteStore
  absl::StatusOr<v1::ContributionRecord> GetContribution(const std::string& key) override;
  absl::StatusOr<std::vector<v1::ContributionRecord>> ListContributions() override;
  absl::StatusOr<v1::SiteSessionRecord> GetSession(const std::string& session) override;
  absl::StatusOr<v1::SiteSessionRecord> GetSessionWithoutSecrets(
      const std::string& session) override;
  absl::StatusOr<std::vector<v1::SiteSessionRecord>> ListSessions() override;
  absl::Status PutSession(const v1::SiteSessionRecord& session,
                          const v1::ContributionRecord* contribution) override;
  absl::Status ScrubNow() override;
  absl::Status DeleteSession(const std::string& session) override;
  absl::Status AppendLedgerEntry(const v1::LedgerEntry& entry) override;
  absl::StatusOr<v1::LedgerEntry> LastLedgerEntry() override;
  absl::StatusOr<std::vector<v1::LedgerEntry>> ListLedgerEntries() override;
  absl::Status PutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint) override;
  absl::StatusOr<std::vector<v1::LedgerCheckpoint>> ListLedgerCheckpoints() override;
  absl::StatusOr<v1::ApprovalRecord> GetApproval(const std::string& task_id,
                                                 const std::string& spec_hash) override;
  absl::StatusOr<std::vector<v1::ApprovalRecord>> ListApprovals() override;
  absl::Status PutApproval(const v1::ApprovalRecord& record) override;

  // ---- The privacy budget (rocksdb_site_store_budget.cc)
  absl::StatusOr<std::vector<v1::BudgetCharge>> ListBudgetCharges() override;
  absl::Status PutSessionCharged(const v1::SiteSessionRecord& session,
                                 const v1::ContributionRecord& contribution,
                                 const v1::BudgetCharge& charge) override;
  absl::Status PutSessionWithLedger(const v1::SiteSessionRecord& session,
                                    const v1::ContributionRecord* contribution,
                                    const v1::BudgetCharge* charge,
                                    const LedgerRecords& ledger) override;

 private:
  // ---- Shared helpers (rocksdb_site_store.cc)

  // The family `name`, nullptr if this store has none (an added family on a read-only
  // open of an older store).
  rocksdb::ColumnFamilyHandle* Family(std::string_view name) const;

  // FAILED_PRECONDITION naming `call` on a read-only store.
  absl::Status Writable(const char* call) const;

  static rocksdb::ReadOptions ReadAll();

  // nullopt if the key (or the family) is absent.
  absl::StatusOr<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf,
                                                 const rocksdb::Slice& key);

  // Calls `visit(key, value)` for every record of `cf` (none if `cf` is null) in key
  // order; stops at the first error.
  template <typename Visit>
  absl::Status ForEach(rocksdb::ColumnFamilyHandle* cf, Visit visit);

  // ForEach's end: the iterator's status, naming the family.
  absl::Status ForEachEnd(const rocksdb::Status& s, rocksdb::ColumnFamilyHandle* cf);

  absl::Status Write(rocksdb::WriteBatch* batch, const std::string& what);

  // PutSession's write (arguments already checked), with `more` (when set) adding other
  // parts' records to the same batch, under the writers' lock: what another part writes
  // with a contribution.
  absl::Status PutSessionWith(const v1::SiteSessionRecord& session,
                              const v1::ContributionRecord* contribution,
                              const std::function<absl::Status(rocksdb::WriteBatch&)>& more);

  // The checks Init and InitReadOnly share: checksums, the format version (nullopt if the
  // store has none yet), every record. *records counts the contributions and sessions.
  absl::StatusOr<std::optional<std::string>> CheckEverything(size_t* records);

  // Every record of the added families parsed and checked (appended to by each part).
  absl::Status CheckAddedFamilies();
  absl::Status CheckBudgetFamily();  // rocksdb_site_store_budget.cc

  // What PutSessionCharged adds to the session's batch (arguments checked already:
  // CheckPutSessionWithLedger): `charge` under its key. Runs under the writers' lock
  // (PutSessionWith's `more`).
  using BatchPart = std::function<absl::Status(rocksdb::WriteBatch&)>;
  absl::StatusOr<BatchPart> ChargePart(const v1::SiteSessionRecord& session,
                                       const v1::BudgetCharge& charge);

  // ---- Upkeep (rocksdb_site_store_upkeep.cc)

  absl::Status CheckFormatVersion(std::string_view bytes);
  // kFormatVersion as stored: 4 bytes, big-endian.
  static std::string FormatVersionBytes();
  absl::Status WriteFormatVersion();

  // Makes dropped snapshots unreadable (site_store.h, "Secrets on disk"): overwrites the
  // key of every session without a snapshot; at a version 1 store's open, first flushes
  // every family and compacts the sessions and snapshots families, so that no plaintext
  // snapshot stays in any file.
  absl::Status Scrub() ABSL_EXCLUSIVE_LOCKS_REQUIRED(scrubbing_mu_);
  // Starts (without waiting) a flush of the sessions and inputs families whose memtable
  // holds at least kFlushAfterSessionBytes (above). Called by Scrub.
  void FlushSessionMemtables();

  // Format version 2: seals every snapshot still inside its session record (a version 1
  // store) and moves it to the snapshots' family, in one write. True for a version 1
  // store: Init then scrubs the plaintext versions out of the files and only then records
  // version 2.
  absl::StatusOr<bool> MoveSnapshotsOut();

  // `record` with its snapshot from the snapshots' family, opened, if it has one there,
  // and the snapshot's input kept apart, if any. A read-only store leaves `machine` (and
  // `machine_input`) empty if the key is gone (the session ended after the read).
  absl::Status AddSnapshot(v1::SiteSessionRecord& record);
  // The sealed value of `label` in `family` (a snapshots' family), opened; nullopt if none.
  absl::StatusOr<std::optional<crypto::SecretBytes>> GetSealed(rocksdb::ColumnFamilyHandle* family,
                                                               const char* family_name,
                                                               const std::string& label);

  // ---- Session keys (rocksdb_site_store_keys.cc)

  // `machine` sealed under session `label`'s key, made (and written to SESSION_KEYS,
  // synced) if the session has none yet; bound to `family` (the snapshot or its input).
  absl::StatusOr<std::string> SealSnapshot(const std::string& label, std::string_view machine,
                                           const char* family = kSessionMachinesCf)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The snapshot (or input, `family`) `sealed` of session `label`. NOT_FOUND if its key is
  // not in SESSION_KEYS, DATA_LOSS (naming the family and key) if it does not open under
  // the key.
  absl::StatusOr<crypto::SecretBytes> OpenSnapshot(const std::string& label,
                                                   std::string_view sealed,
                                                   const char* family = kSessionMachinesCf);
  // Overwrites (synced) the key of every session that has no snapshot.
  absl::Status ForgetEndedKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads SESSION_KEYS (once; a read-only store at every call, to see the daemon's new
  // keys), creating it in a writable store.
  absl::Status LoadKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(keys_mu_);
  std::string KeysPath() const;

  // The scrubber thread: scrubs whenever a write dropped secrets; a failed scrub is logged
  // and tried again a second later (and at close, and at the next open).
  void ScrubInTheBackground();

  // Asks the scrubber thread for a scrub.
  void WantScrub();

  // Stops the scrubber thread, then scrubs if a scrub is still due.
  void StopScrubbing();

  // The high-water mark: 8 bytes of the sequence number (big-endian), then the same bytes
  // inverted, rewritten in place and synced after every write that records a masked input.
  absl::Status WriteHighWater(uint64_t sequence);

  // The log must reach the high-water mark: a store whose log ends before the last write
  // that recorded a masked input has lost the record of something that left the site.
  absl::Status CheckHighWater(size_t records);

  // ---- The egress ledger (rocksdb_site_store_ledger.cc)

  // Every ledger record parsed and checked against its key (part of CheckAddedFamilies).
  absl::Status CheckLedger();

  // What PutSessionWithLedger and AppendLedgerEntry add to a batch: the entry (checked
  // against the last stored one, under the writers' lock), the next entry (checked against
  // the entry) and the checkpoint (a checkpoint or a next entry comes only with its entry:
  // CheckPutSessionWithLedger). The records must outlive the part. No entry: nothing.
  absl::StatusOr<BatchPart> LedgerPart(const LedgerRecords& ledger, const std::string& what);

  const std::string directory_;
  const std::unique_ptr<rocksdb::DB> db_;
  // Every handle opened (ours and any family a newer version added); destroyed before db_.
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* contributions_ = nullptr;
  rocksdb::ColumnFamilyHandle* sessions_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  // session_machines; null on a read-only open of a version 1 store.
  rocksdb::ColumnFamilyHandle* machines_ = nullptr;
  // session_inputs; null on a read-only open of a store that never had it.
  rocksdb::ColumnFamilyHandle* inputs_ = nullptr;
  rocksdb::WriteOptions write_options_;
  const std::string logs_at_open_;
  // The high-water mark file, open once the store recorded a masked input.
  int high_water_fd_ = -1;
  const bool read_only_;

  // Serialises writers, and key files' creation and removal.
  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(scrubbing_mu_);
  // One scrub at a time (writers go on meanwhile: RocksDB's flush and compaction run
  // beside writes).
  absl::Mutex scrubbing_mu_ ABSL_ACQUIRED_AFTER(scrub_mu_);
  // SESSION_KEYS as read: its file, the label digest in each slot (empty: free), and the
  // keys by label digest.
  absl::Mutex keys_mu_ ABSL_ACQUIRED_AFTER(mu_);
  int keys_fd_ ABSL_GUARDED_BY(keys_mu_) = -1;
  bool keys_loaded_ ABSL_GUARDED_BY(keys_mu_) = false;
  std::vector<std::string> key_slots_ ABSL_GUARDED_BY(keys_mu_);
  absl::flat_hash_map<std::string, crypto::SecretBytes> keys_ ABSL_GUARDED_BY(keys_mu_);
  // Wakes the scrubber.
  absl::Mutex scrub_mu_;
  bool scrub_wanted_ ABSL_GUARDED_BY(scrub_mu_) = false;
  // The files may hold a plaintext snapshot (a version 1 store's): until the open's scrub
  // flushed and compacted them. A version 2 store's open rewrites nothing.
  bool sessions_hold_snapshots_ ABSL_GUARDED_BY(scrubbing_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(scrub_mu_) = false;
  std::thread scrubber_;
};

template <typename Visit>
absl::Status RocksDbSiteStore::ForEach(rocksdb::ColumnFamilyHandle* cf, Visit visit) {
  if (cf == nullptr) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadAll(), cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RETURN_IF_ERROR(visit(View(it->key()), View(it->value())));
  }
  return ForEachEnd(it->status(), cf);
}

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_ROCKSDB_SITE_STORE_H_
