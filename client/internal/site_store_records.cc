#include "client/internal/site_store_records.h"

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/internal/approval_rules.h"
#include "client/internal/site_budget_records.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_ledger_rules.h"
#include "client/internal/site_store_rules.h"

namespace tessera::client::internal {
namespace {

template <typename Record>
bool Parse(std::string_view bytes, Record* record) {
  return record->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace

absl::Status DamagedRecord(const std::string& directory, const char* family, std::string_view key,
                           const std::string& what) {
  return DataLoss(directory, absl::StrCat("family ", family, ", key ", Hex(key), ": ", what));
}

absl::StatusOr<v1::ContributionRecord> DecodeContribution(const std::string& directory,
                                                          std::string_view key,
                                                          std::string_view value) {
  auto damaged = [&](const std::string& what) {
    return DamagedRecord(directory, kContributionsCf, key, what);
  };
  if (key.size() != kContributionKeySize) {
    return damaged(absl::StrCat("the key has ", key.size(), " bytes, want ", kContributionKeySize));
  }
  v1::ContributionRecord record;
  if (!Parse(value, &record)) return damaged("the record does not parse");
  if (record.key() != key)
    return damaged(absl::StrCat("the record is for key ", Hex(record.key())));
  if (record.session().empty()) return damaged("the record names no session");
  return record;
}

absl::StatusOr<v1::SiteSessionRecord> DecodeSession(const std::string& directory,
                                                    std::string_view key, std::string_view value) {
  v1::SiteSessionRecord record;
  if (!Parse(value, &record)) {
    return DamagedRecord(directory, kSessionsCf, key, "the record does not parse");
  }
  if (key.empty() || record.session() != key) {
    return DamagedRecord(directory, kSessionsCf, key,
                         absl::StrCat("the record is for session ", Hex(record.session())));
  }
  return record;
}

absl::StatusOr<v1::ApprovalRecord> DecodeApproval(const std::string& directory,
                                                  std::string_view key, std::string_view value) {
  v1::ApprovalRecord record;
  if (!Parse(value, &record)) {
    return DamagedRecord(directory, kApprovalsCf, key, "the record does not parse");
  }
  if (const std::string problem = ApprovalRecordProblem(key, record); !problem.empty()) {
    return DamagedRecord(directory, kApprovalsCf, key, problem);
  }
  return record;
}

absl::StatusOr<v1::BudgetCharge> DecodeBudgetCharge(const std::string& directory,
                                                    std::string_view key, std::string_view value) {
  v1::BudgetCharge charge;
  if (!Parse(value, &charge)) {
    return DamagedRecord(directory, kBudgetCf, key, "the record does not parse");
  }
  if (const std::string problem = StoredChargeProblem(key, charge); !problem.empty()) {
    return DamagedRecord(directory, kBudgetCf, key, problem);
  }
  return charge;
}

absl::StatusOr<v1::LedgerEntry> DecodeLedgerEntry(const std::string& directory,
                                                  std::string_view key, std::string_view value) {
  const std::optional<uint64_t> sequence = LedgerKeySequence(key);
  if (!sequence.has_value()) {
    return DamagedRecord(directory, kLedgerCf, key, "the key is not 8 bytes");
  }
  v1::LedgerEntry entry;
  if (!Parse(value, &entry)) {
    return DamagedRecord(directory, kLedgerCf, key,
                         absl::StrCat("entry ", *sequence, " does not parse"));
  }
  if (entry.sequence() != *sequence) {
    return DamagedRecord(
        directory, kLedgerCf, key,
        absl::StrCat("entry ", *sequence, " holds the record of entry ", entry.sequence()));
  }
  return entry;
}

absl::StatusOr<v1::LedgerCheckpoint> DecodeLedgerCheckpoint(const std::string& directory,
                                                            std::string_view key,
                                                            std::string_view value) {
  const std::optional<uint64_t> sequence = LedgerKeySequence(key);
  if (!sequence.has_value()) {
    return DamagedRecord(directory, kLedgerCheckpointsCf, key, "the key is not 8 bytes");
  }
  v1::LedgerCheckpoint checkpoint;
  if (!Parse(value, &checkpoint)) {
    return DamagedRecord(directory, kLedgerCheckpointsCf, key,
                         absl::StrCat("checkpoint at entry ", *sequence, " does not parse"));
  }
  if (checkpoint.sequence() != *sequence) {
    return DamagedRecord(
        directory, kLedgerCheckpointsCf, key,
        absl::StrCat("checkpoint at entry ", *sequence,
                     " holds the record of the checkpoint at entry ", checkpoint.sequence()));
  }
  return checkpoint;
}

}  // namespace tessera::client::internal
