// One stage of a round (statistics, fit or evaluate) run as one secure-aggregation session
// over the work board: five steps, each one work item per client, each closed when every
// expected client has answered or at the step's deadline. The SecAggServer state machine
// (secagg/server.h) judges every answer; this runner only moves messages and time.
//
// The first step's items carry the task spec, the global model and the standardisation, so
// a client computes its contribution (trains) before it advertises its keys; that step has
// the task's round deadline, later steps the (shorter) step deadline.
//
// Thread-safe: Cancel may be called from any thread while Run blocks in another.
#ifndef TESSERA_COORDINATOR_SECURE_STAGE_H_
#define TESSERA_COORDINATOR_SECURE_STAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/work_board.h"
#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"

namespace tessera::coordinator {

class SessionSink;

struct SecureStageRequest {
  std::string task_id;
  uint32_t round = 0;
  v1::Stage stage = v1::STAGE_UNSPECIFIED;
  uint32_t attempt = 1;
  // Invited clients (sorted, no duplicates).
  std::vector<std::string> cohort;
  // What every client's first item carries besides the session set-up: spec, spec hash,
  // model and its hash, standardisation, l2.
  v1::WorkItem first_item;
  v1::SecAggEncoding encoding;
  uint32_t threshold = 0;
  absl::Duration first_step_deadline = absl::Minutes(5);
  absl::Duration step_deadline = absl::Minutes(1);
};

struct SecureStageResult {
  bool completed = false;
  // Decoded sums over the survivors (when completed).
  std::vector<double> sums;
  // Clients whose inputs are in the sums, sorted.
  std::vector<std::string> survivors;
  // "client: step: reason: detail", one per dropped client.
  std::vector<std::string> drops;
  // Clients dropped because they did not answer a step in time.
  std::vector<std::string> unresponsive;
  // Why the session ended without a sum ("SECAGG_SERVER_TOO_FEW_CLIENTS: ...").
  std::string abort;
};

class SecureStageRunner {
 public:
  // `board` and `clock` must outlive the runner; `ca_cert_pem` is the federation CA.
  SecureStageRunner(WorkBoard* board, const common::Clock* clock, std::string ca_cert_pem);

  // Runs the session to its end (sum, abort, or cancellation).
  SecureStageResult Run(const SecureStageRequest& request);

  // Ends the running session (if any) and every later one at once.
  void Cancel();

 private:
  WorkBoard* const board_;
  const common::Clock* const clock_;
  const std::string ca_cert_pem_;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<SessionSink> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SECURE_STAGE_H_
