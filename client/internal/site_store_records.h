// How the site's RocksDB store (client/internal/rocksdb_site_store*.cc) reads its records
// back: pure functions, so that what a damaged record does is decided here, tested and
// fuzzed (tests/fuzz/site_records_fuzz.cc) without a database.
//
// Each decoder parses the record stored under `key` and checks it against that key and
// against what the store's writers guarantee; otherwise DATA_LOSS "site store <directory>:
// family <family>, key <hex>: <what is wrong> ..." with the restore advice
// (site_store_files.h), never quoting the value. Thread-safe (no state).
#ifndef TESSERA_CLIENT_INTERNAL_SITE_STORE_RECORDS_H_
#define TESSERA_CLIENT_INTERNAL_SITE_STORE_RECORDS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/site_approval.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"

namespace tessera::client::internal {

// The column families (kBudgetCf is in site_budget_records.h).
inline constexpr char kContributionsCf[] = "contributions";
inline constexpr char kSessionsCf[] = "sessions";
inline constexpr char kMetaCf[] = "meta";
inline constexpr char kLedgerCf[] = "ledger";
inline constexpr char kLedgerCheckpointsCf[] = "ledger_checkpoints";
inline constexpr char kApprovalsCf[] = "approvals";
// The open sessions' secure-aggregation snapshots (SiteSessionRecord.machine), apart from
// their records (format version 2).
inline constexpr char kSessionMachinesCf[] = "session_machines";
// The input words a snapshot names by digest (SiteSessionRecord.machine_input), written
// once a session and dropped with the snapshot.
inline constexpr char kSessionInputsCf[] = "session_inputs";

// DATA_LOSS naming the store, the family and the key (in hex).
absl::Status DamagedRecord(const std::string& directory, const char* family, std::string_view key,
                           const std::string& what);

// contributions: a 32-byte key; the record holds that key and names a session.
absl::StatusOr<v1::ContributionRecord> DecodeContribution(const std::string& directory,
                                                          std::string_view key,
                                                          std::string_view value);
// sessions: the record's session label is the (non-empty) key.
absl::StatusOr<v1::SiteSessionRecord> DecodeSession(const std::string& directory,
                                                    std::string_view key, std::string_view value);
// approvals: approval_rules.h's ApprovalRecordProblem.
absl::StatusOr<v1::ApprovalRecord> DecodeApproval(const std::string& directory,
                                                  std::string_view key, std::string_view value);
// budget: site_budget_records.h's StoredChargeProblem.
absl::StatusOr<v1::BudgetCharge> DecodeBudgetCharge(const std::string& directory,
                                                    std::string_view key, std::string_view value);
// ledger and ledger_checkpoints: an 8-byte key holding the record's sequence.
absl::StatusOr<v1::LedgerEntry> DecodeLedgerEntry(const std::string& directory,
                                                  std::string_view key, std::string_view value);
absl::StatusOr<v1::LedgerCheckpoint> DecodeLedgerCheckpoint(const std::string& directory,
                                                            std::string_view key,
                                                            std::string_view value);

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_SITE_STORE_RECORDS_H_
