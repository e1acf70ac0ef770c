// The site's approval queue: what this site's staff decided about the tasks it was asked to
// work on, kept in the site store (proto/site_approval.proto).
//
// A work item's task that the local policy does not refuse (client/policy.h) is admitted
// here before any local data is read:
//   - a recorded decision on (task id, spec hash) holds: APPROVED runs, REJECTED declines
//     REJECTED_BY_SITE with the staff's reason as the detail;
//   - otherwise an auto_approve rule of the policy that matches approves it (recorded, by
//     "policy.auto_approve: <rule>");
//   - otherwise, with policy.require_approval, the task is *pending*: recorded (the whole
//     spec, its hash, when first seen) and declined AWAITING_APPROVAL until the staff decide
//     (`tessera-client tasks approve|reject`, through the daemon's control socket); without
//     it, the task runs (nothing recorded).
// An approval binds the task id AND the spec hash: a changed spec under the same id is
// another record, pending again. A decision is final (the store refuses to change it).
//
// Thread-safe: the daemon's loop admits work while the control socket's threads decide;
// read-modify-write sequences are serialised here, and the store is thread-safe.
#ifndef TESSERA_CLIENT_APPROVALS_H_
#define TESSERA_CLIENT_APPROVALS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "proto/site_approval.pb.h"
#include "proto/task.pb.h"

namespace tessera::client {

class SiteStore;

// Longest reason accepted with a decision, in bytes (it travels in a decline).
inline constexpr size_t kMaxDecisionReason = 500;

class ApprovalQueue {
 public:
  // `store` must outlive the queue.
  explicit ApprovalQueue(SiteStore* store);

  // The queue's verdict on a task the policy does not refuse (above): nullopt to run it, or
  // the decline to send. `spec` is the work item's canonical spec and `spec_hash` its
  // 32-byte hash (checked against each other already). A store failure is logged and
  // declined COMPUTE_ERROR (the coordinator retries later); nothing else is logged here.
  std::optional<v1::Decline> Admit(const std::string& task_id, const v1::TaskSpec& spec,
                                   const std::string& spec_hash, const v1::LocalPolicy& policy,
                                   absl::Time now);

  // Every pending record (no decision), sorted by task id, then spec hash.
  absl::StatusOr<std::vector<v1::ApprovalRecord>> Pending();

  // Every record of `task_id`, oldest first seen first. NOT_FOUND if the site was never
  // asked for it.
  absl::StatusOr<std::vector<v1::ApprovalRecord>> Records(const std::string& task_id);

  // Records `decision` (kind, by, reason; its time is `now`) on the pending record of
  // `task_id` whose spec hash is `spec_sha256` (lowercase hex), or, with `spec_sha256`
  // empty, on the task id's only pending record. Returns the record as stored.
  // INVALID_ARGUMENT: a rejection without a reason, a reason longer than
  // kMaxDecisionReason or with control characters, a malformed hash. NOT_FOUND: no such
  // task id or spec. FAILED_PRECONDITION: already decided (naming who), or several pending
  // specs and no hash given (listing them).
  absl::StatusOr<v1::ApprovalRecord> Decide(const std::string& task_id,
                                            const std::string& spec_sha256,
                                            v1::TaskDecision decision, absl::Time now);

 private:
  SiteStore* const store_;
  absl::Mutex mu_;  // serialises read-modify-write sequences on the store
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_APPROVALS_H_
