#include "client/internal/approval_rules.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "client/internal/site_store_rules.h"
#include "common/status.h"
#include "google/protobuf/util/message_differencer.h"

namespace tessera::client::internal {
namespace {

// Empty if the decision is well formed.
std::string DecisionProblem(const v1::ApprovalRecord& record) {
  if (!record.has_decision()) return "";
  const v1::TaskDecision& d = record.decision();
  if (d.kind() != v1::TaskDecision::APPROVED && d.kind() != v1::TaskDecision::REJECTED) {
    return "the decision is neither APPROVED nor REJECTED";
  }
  if (d.kind() == v1::TaskDecision::REJECTED && d.reason().empty()) {
    return "a rejection needs a reason";
  }
  return "";
}

std::string KeyProblem(std::string_view task_id, std::string_view spec_hash) {
  if (task_id.empty()) return "the task id is empty";
  if (task_id.find('\0') != std::string_view::npos) return "the task id holds a 0 byte";
  if (spec_hash.size() != kSpecHashSize) {
    return absl::StrCat("the spec hash has ", spec_hash.size(), " bytes, want ", kSpecHashSize);
  }
  return "";
}

}  // namespace

std::string ApprovalKey(std::string_view task_id, std::string_view spec_hash) {
  std::string key(task_id);
  key.push_back('\0');
  key.append(spec_hash);
  return key;
}

absl::Status CheckApprovalKey(const char* call, std::string_view task_id,
                              std::string_view spec_hash) {
  const std::string problem = KeyProblem(task_id, spec_hash);
  if (problem.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(call, ": ", problem));
}

absl::Status CheckPutApproval(const v1::ApprovalRecord& record) {
  if (absl::Status st = CheckApprovalKey("PutApproval", record.task_id(), record.spec_hash());
      !st.ok()) {
    return st;
  }
  if (const std::string problem = DecisionProblem(record); !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("PutApproval: ", problem));
  }
  return absl::OkStatus();
}

absl::Status CheckDecisionFinal(const v1::ApprovalRecord& stored, const v1::ApprovalRecord& next) {
  if (!stored.has_decision() || google::protobuf::util::MessageDifferencer::Equals(stored, next)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("task ", stored.task_id(), " (spec ", Hex(stored.spec_hash()), ") was already ",
                   stored.decision().kind() == v1::TaskDecision::APPROVED ? "approved" : "rejected",
                   " by ", stored.decision().by(), ": a decision is final"));
}

std::string ApprovalRecordProblem(std::string_view key, const v1::ApprovalRecord& record) {
  if (std::string problem = KeyProblem(record.task_id(), record.spec_hash()); !problem.empty()) {
    return problem;
  }
  if (ApprovalKey(record.task_id(), record.spec_hash()) != key) {
    return absl::StrCat("the record is for task ", record.task_id(), ", spec ",
                        Hex(record.spec_hash()));
  }
  return DecisionProblem(record);
}

absl::Status NoApproval(std::string_view task_id, std::string_view spec_hash) {
  return absl::NotFoundError(absl::StrCat("GetApproval: no record of task ", std::string(task_id),
                                          " with spec ", Hex(spec_hash)));
}

}  // namespace tessera::client::internal
