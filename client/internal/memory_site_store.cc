// The in-memory SiteStore (NewMemorySiteStore, client/site_store.h): sorted maps under
// one mutex. std::map<std::string> orders keys bytewise (char_traits<char> compares as
// unsigned char), like RocksDB, so both stores list in the same order.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/approval_rules.h"
#include "client/internal/site_budget_records.h"
#include "client/internal/site_store_ledger_rules.h"
#include "client/internal/site_store_rules.h"
#include "client/site_store.h"
#include "common/status.h"
#include "proto/site_approval.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"

namespace tessera::client {
namespace {

// A copy of `record` without the session's secrets (GetSessionWithoutSecrets, ListSessions).
v1::SiteSessionRecord WithoutSecrets(v1::SiteSessionRecord record) {
  record.clear_machine();
  record.clear_machine_input();
  return record;
}

class MemorySiteStore final : public SiteStore {
 public:
  absl::StatusOr<v1::ContributionRecord> GetContribution(const std::string& key) override {
    absl::MutexLock lock(&mu_);
    auto it = contributions_.find(key);
    if (it == contributions_.end()) return internal::NoContribution(key);
    return it->second;
  }

  absl::StatusOr<std::vector<v1::ContributionRecord>> ListContributions() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::ContributionRecord> out;
    out.reserve(contributions_.size());
    for (const auto& [key, record] : contributions_) out.push_back(record);
    return out;
  }

  absl::StatusOr<v1::SiteSessionRecord> GetSession(const std::string& session) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return internal::NoSession(session);
    return it->second;
  }

  absl::StatusOr<v1::SiteSessionRecord> GetSessionWithoutSecrets(
      const std::string& session) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return internal::NoSession(session);
    return WithoutSecrets(it->second);
  }

  absl::StatusOr<std::vector<v1::SiteSessionRecord>> ListSessions() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::SiteSessionRecord> out;
    out.reserve(sessions_.size());
    for (const auto& [label, record] : sessions_) out.push_back(WithoutSecrets(record));
    return out;
  }

  absl::Status PutSession(const v1::SiteSessionRecord& session,
                          const v1::ContributionRecord* contribution) override {
    RETURN_IF_ERROR(internal::CheckPutSession(session, contribution));
    absl::MutexLock lock(&mu_);
    return Put(session, contribution);
  }

  absl::Status DeleteSession(const std::string& session) override {
    absl::MutexLock lock(&mu_);
    sessions_.erase(session);
    return absl::OkStatus();
  }

  // Nothing is on disk to scrub.
  absl::Status ScrubNow() override { return absl::OkStatus(); }

  absl::StatusOr<std::vector<v1::BudgetCharge>> ListBudgetCharges() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::BudgetCharge> out;
    out.reserve(charges_.size());
    for (const auto& [key, charge] : charges_) out.push_back(charge);
    return out;
  }

  absl::Status PutSessionCharged(const v1::SiteSessionRecord& session,
                                 const v1::ContributionRecord& contribution,
                                 const v1::BudgetCharge& charge) override {
    return PutSessionWithLedger(session, &contribution, &charge, LedgerRecords());
  }

  absl::Status PutSessionWithLedger(const v1::SiteSessionRecord& session,
                                    const v1::ContributionRecord* contribution,
                                    const v1::BudgetCharge* charge,
                                    const LedgerRecords& ledger) override {
    RETURN_IF_ERROR(internal::CheckPutSessionWithLedger(session, contribution, charge, ledger));
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckLedger(ledger));
    RETURN_IF_ERROR(Put(session, contribution));
    if (charge != nullptr) charges_[internal::BudgetChargeKey(*charge)] = *charge;
    PutLedger(ledger);
    return absl::OkStatus();
  }

  absl::Status AppendLedgerEntry(const v1::LedgerEntry& entry) override {
    const LedgerRecords appended{&entry, nullptr};
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckLedger(appended));
    PutLedger(appended);
    return absl::OkStatus();
  }

  absl::StatusOr<v1::LedgerEntry> LastLedgerEntry() override {
    absl::MutexLock lock(&mu_);
    if (ledger_.empty()) return internal::NoLedgerEntries();
    return ledger_.rbegin()->second;
  }

  absl::StatusOr<std::vector<v1::LedgerEntry>> ListLedgerEntries() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::LedgerEntry> out;
    for (const auto& [sequence, entry] : ledger_) out.push_back(entry);
    return out;
  }

  absl::Status PutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint) override {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        internal::CheckPutLedgerCheckpoint(checkpoint, ledger_.contains(checkpoint.sequence())));
    checkpoints_[checkpoint.sequence()] = checkpoint;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::LedgerCheckpoint>> ListLedgerCheckpoints() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::LedgerCheckpoint> out;
    for (const auto& [sequence, checkpoint] : checkpoints_) out.push_back(checkpoint);
    return out;
  }

  absl::StatusOr<v1::ApprovalRecord> GetApproval(const std::string& task_id,
                                                 const std::string& spec_hash) override {
    RETURN_IF_ERROR(internal::CheckApprovalKey("GetApproval", task_id, spec_hash));
    absl::MutexLock lock(&mu_);
    auto it = approvals_.find(internal::ApprovalKey(task_id, spec_hash));
    if (it == approvals_.end()) return internal::NoApproval(task_id, spec_hash);
    return it->second;
  }

  absl::StatusOr<std::vector<v1::ApprovalRecord>> ListApprovals() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::ApprovalRecord> out;
    out.reserve(approvals_.size());
    for (const auto& [key, record] : approvals_) out.push_back(record);
    return out;
  }

  absl::Status PutApproval(const v1::ApprovalRecord& record) override {
    RETURN_IF_ERROR(internal::CheckPutApproval(record));
    const std::string key = internal::ApprovalKey(record.task_id(), record.spec_hash());
    absl::MutexLock lock(&mu_);
    auto it = approvals_.find(key);
    if (it != approvals_.end()) RETURN_IF_ERROR(internal::CheckDecisionFinal(it->second, record));
    approvals_[key] = record;
    return absl::OkStatus();
  }

 private:
  // PutSession's write, arguments checked: all of it or (ALREADY_EXISTS) nothing.
  // The ledger records against what is stored: the entry next in sequence, the checkpoint
  // over it or over a stored entry.
  absl::Status CheckLedger(const LedgerRecords& ledger) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ledger.entry == nullptr) return absl::OkStatus();
    const uint64_t last = ledger_.empty() ? 0 : ledger_.rbegin()->first;
    RETURN_IF_ERROR(internal::CheckAppendLedgerEntry(*ledger.entry, last));
    if (ledger.next != nullptr) {
      RETURN_IF_ERROR(internal::CheckAppendLedgerEntry(*ledger.next, ledger.entry->sequence()));
    }
    if (ledger.checkpoint == nullptr) return absl::OkStatus();
    const uint64_t at = ledger.checkpoint->sequence();
    return internal::CheckPutLedgerCheckpoint(
        *ledger.checkpoint, at == ledger.entry->sequence() || ledger_.contains(at));
  }

  void PutLedger(const LedgerRecords& ledger) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ledger.entry != nullptr) ledger_[ledger.entry->sequence()] = *ledger.entry;
    if (ledger.next != nullptr) ledger_[ledger.next->sequence()] = *ledger.next;
    if (ledger.checkpoint != nullptr) {
      checkpoints_[ledger.checkpoint->sequence()] = *ledger.checkpoint;
    }
  }

  absl::Status Put(const v1::SiteSessionRecord& session, const v1::ContributionRecord* contribution)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (contribution != nullptr) {
      const std::vector<v1::ContributionRecord> records = internal::RecordsPerKey(*contribution);
      for (const v1::ContributionRecord& record : records) {
        auto it = contributions_.find(record.key());
        if (it != contributions_.end()) {
          RETURN_IF_ERROR(internal::CheckContributionOwner(it->second, session.session()));
        }
      }
      for (const v1::ContributionRecord& record : records) contributions_[record.key()] = record;
    }
    // The input kept apart stays with its snapshot (SiteSessionRecord.machine_input).
    v1::SiteSessionRecord& stored = sessions_[session.session()];
    std::string input;
    if (!session.machine().empty() && session.machine_input().empty()) {
      input = std::move(*stored.mutable_machine_input());
    }
    stored = session;
    if (!input.empty()) stored.set_machine_input(std::move(input));
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  std::map<std::string, v1::ContributionRecord> contributions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::SiteSessionRecord> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::BudgetCharge> charges_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, v1::LedgerEntry> ledger_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, v1::LedgerCheckpoint> checkpoints_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::ApprovalRecord> approvals_ ABSL_GUARDED_BY(mu_);  // by ApprovalKey
};

}  // namespace

std::unique_ptr<SiteStore> NewMemorySiteStore() { return std::make_unique<MemorySiteStore>(); }

}  // namespace tessera::client
