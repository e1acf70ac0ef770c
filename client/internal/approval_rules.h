// What both site stores (client/site_store.h) check and say the same way about approval
// records (proto/site_approval.proto): their key, the arguments of PutApproval, the
// finality of decisions, and the texts of their errors.
#ifndef TESSERA_CLIENT_INTERNAL_APPROVAL_RULES_H_
#define TESSERA_CLIENT_INTERNAL_APPROVAL_RULES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/site_approval.pb.h"

namespace tessera::client::internal {

// A spec hash is a SHA-256 digest.
inline constexpr size_t kSpecHashSize = 32;

// The record's key: the task id, a 0 byte, the spec hash (so records sort by task id).
std::string ApprovalKey(std::string_view task_id, std::string_view spec_hash);

// INVALID_ARGUMENT unless the task id is non-empty without a 0 byte and the spec hash has
// 32 bytes; `call` names the operation in the message.
absl::Status CheckApprovalKey(const char* call, std::string_view task_id,
                              std::string_view spec_hash);

// INVALID_ARGUMENT unless PutApproval's record is well formed (site_store.h).
absl::Status CheckPutApproval(const v1::ApprovalRecord& record);

// FAILED_PRECONDITION if `stored` holds a decision and `next` is not the same record.
absl::Status CheckDecisionFinal(const v1::ApprovalRecord& stored, const v1::ApprovalRecord& next);

// The record's problem as a record read from a store, empty if none (the checks of
// CheckPutApproval, plus its key).
std::string ApprovalRecordProblem(std::string_view key, const v1::ApprovalRecord& record);

absl::Status NoApproval(std::string_view task_id, std::string_view spec_hash);

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_APPROVAL_RULES_H_
