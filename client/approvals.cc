#include "client/approvals.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/policy.h"
#include "client/site_store.h"
#include "common/log.h"
#include "common/status.h"
#include "crypto/hash.h"

namespace tessera::client {
namespace {

v1::Decline MakeDecline(v1::Decline::Reason reason, std::string detail) {
  v1::Decline decline;
  decline.set_reason(reason);
  decline.set_detail(std::move(detail));
  return decline;
}

v1::Decline StoreFailed(const std::string& task_id, const absl::Status& st) {
  common::LogError("approval_store_error").With("task", task_id).With("error", st.ToString());
  return MakeDecline(v1::Decline::COMPUTE_ERROR,
                     "the site cannot read or record its approvals (details in the site's log)");
}

absl::Status CheckReason(const v1::TaskDecision& decision) {
  if (decision.kind() == v1::TaskDecision::REJECTED && decision.reason().empty()) {
    return absl::InvalidArgumentError("a rejection needs a reason (--reason TEXT)");
  }
  if (decision.reason().size() > kMaxDecisionReason) {
    return absl::InvalidArgumentError(absl::StrCat("the reason has ", decision.reason().size(),
                                                   " bytes, at most ", kMaxDecisionReason));
  }
  for (char c : decision.reason()) {
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("the reason holds a control character");
    }
  }
  return absl::OkStatus();
}

bool IsPending(const v1::ApprovalRecord& record) { return !record.has_decision(); }

}  // namespace

ApprovalQueue::ApprovalQueue(SiteStore* store) : store_(store) {}

std::optional<v1::Decline> ApprovalQueue::Admit(const std::string& task_id,
                                                const v1::TaskSpec& spec,
                                                const std::string& spec_hash,
                                                const v1::LocalPolicy& policy, absl::Time now) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::ApprovalRecord> stored = store_->GetApproval(task_id, spec_hash);
  if (!stored.ok() && stored.status().code() != absl::StatusCode::kNotFound) {
    return StoreFailed(task_id, stored.status());
  }
  if (stored.ok() && stored->has_decision()) {
    if (stored->decision().kind() == v1::TaskDecision::APPROVED) return std::nullopt;
    return MakeDecline(v1::Decline::REJECTED_BY_SITE, stored->decision().reason());
  }
  const PolicyDecision verdict = Evaluate(policy, spec);
  if (verdict.verdict == PolicyDecision::kRefuse) {
    return MakeDecline(v1::Decline::POLICY_REFUSED, verdict.refusal.reason);
  }
  if (verdict.verdict == PolicyDecision::kNeedsApproval && !policy.require_approval()) {
    return std::nullopt;
  }
  v1::ApprovalRecord record;
  if (stored.ok()) {
    record = *std::move(stored);
  } else {
    record.set_task_id(task_id);
    record.set_spec_hash(spec_hash);
    *record.mutable_spec() = spec;
    record.set_first_seen_unix_ms(absl::ToUnixMillis(now));
  }
  if (verdict.verdict == PolicyDecision::kAutoApprove) {
    v1::TaskDecision* decision = record.mutable_decision();
    decision->set_kind(v1::TaskDecision::APPROVED);
    decision->set_by(absl::StrCat("policy.auto_approve: ", verdict.auto_approval_rule));
    decision->set_at_unix_ms(absl::ToUnixMillis(now));
    if (absl::Status st = store_->PutApproval(record); !st.ok()) return StoreFailed(task_id, st);
    common::LogInfo("task_auto_approved")
        .With("task", task_id)
        .With("spec_sha256", crypto::ToHex(spec_hash))
        .With("rule", verdict.auto_approval_rule);
    return std::nullopt;
  }
  // Only the value was moved out of `stored` above; its status is still there.
  if (!stored.ok()) {  // NOLINT(bugprone-use-after-move)
    if (absl::Status st = store_->PutApproval(record); !st.ok()) return StoreFailed(task_id, st);
    common::LogInfo("task_pending")
        .With("task", task_id)
        .With("name", spec.name())
        .With("spec_sha256", crypto::ToHex(spec_hash));
  }
  return MakeDecline(v1::Decline::AWAITING_APPROVAL,
                     absl::StrCat("task ", task_id, " (spec ", crypto::ToHex(spec_hash),
                                  ") awaits this site's approval"));
}

absl::StatusOr<std::vector<v1::ApprovalRecord>> ApprovalQueue::Pending() {
  ASSIGN_OR_RETURN(std::vector<v1::ApprovalRecord> all, store_->ListApprovals());
  std::vector<v1::ApprovalRecord> out;
  for (v1::ApprovalRecord& record : all) {
    if (IsPending(record)) out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<std::vector<v1::ApprovalRecord>> ApprovalQueue::Records(const std::string& task_id) {
  ASSIGN_OR_RETURN(std::vector<v1::ApprovalRecord> all, store_->ListApprovals());
  std::vector<v1::ApprovalRecord> out;
  for (v1::ApprovalRecord& record : all) {
    if (record.task_id() == task_id) out.push_back(std::move(record));
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat("this site was never asked to work on task ", task_id));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.first_seen_unix_ms() < b.first_seen_unix_ms();
  });
  return out;
}

absl::StatusOr<v1::ApprovalRecord> ApprovalQueue::Decide(const std::string& task_id,
                                                         const std::string& spec_sha256,
                                                         v1::TaskDecision decision,
                                                         absl::Time now) {
  RETURN_IF_ERROR(CheckReason(decision));
  std::string wanted;
  if (!spec_sha256.empty()) {
    if (spec_sha256.size() != 64 ||
        !std::all_of(spec_sha256.begin(), spec_sha256.end(),
                     [](char c) { return absl::ascii_isxdigit(c) && !absl::ascii_isupper(c); })) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec hash '", spec_sha256, "' is not 64 lowercase hex digits"));
    }
    wanted = absl::HexStringToBytes(spec_sha256);
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<v1::ApprovalRecord> records, Records(task_id));
  std::vector<v1::ApprovalRecord*> candidates;
  for (v1::ApprovalRecord& record : records) {
    if (wanted.empty() ? IsPending(record) : record.spec_hash() == wanted) {
      candidates.push_back(&record);
    }
  }
  if (candidates.empty() && !wanted.empty()) {
    return absl::NotFoundError(
        absl::StrCat("this site was never asked for task ", task_id, " with spec ", spec_sha256));
  }
  if (candidates.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " has no pending spec: it was already decided (tasks show ",
                     task_id, ")"));
  }
  if (candidates.size() > 1) {
    std::vector<std::string> hashes;
    hashes.reserve(candidates.size());
    for (const v1::ApprovalRecord* r : candidates) hashes.push_back(crypto::ToHex(r->spec_hash()));
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " has ", candidates.size(),
                     " pending specs; name one with --hash: ", absl::StrJoin(hashes, ", ")));
  }
  // A record already decided: the store refuses the change (FAILED_PRECONDITION naming who).
  v1::ApprovalRecord record = *candidates.front();
  decision.set_at_unix_ms(absl::ToUnixMillis(now));
  *record.mutable_decision() = std::move(decision);
  RETURN_IF_ERROR(store_->PutApproval(record));
  common::LogInfo(record.decision().kind() == v1::TaskDecision::APPROVED ? "task_approved"
                                                                         : "task_rejected")
      .With("task", task_id)
      .With("spec_sha256", crypto::ToHex(record.spec_hash()))
      .With("by", record.decision().by());
  return record;
}

}  // namespace tessera::client
