// Runs one task's rounds, on a thread of its own, from its last committed round.
//
// Round 0 is the statistics round: the sites' feature counts, sums and sums of squares
// give the pooled mean and standard deviation every site then standardises with, and the
// pooled row count resolves the L2 penalty. Each training round r then runs two stages —
// FIT (sites train from the global model and send their weighted deltas) and EVALUATE
// (sites evaluate the new model on their held-out rows) — and commits, in one store write,
// the round record, the new checkpoint and the task record. A crash before the commit
// redoes the round; nothing committed is lost.
//
// Every stage is one secure-aggregation session (secure_stage.h): the coordinator learns
// only the sum over the surviving sites, at least `threshold` of them. A stage asks every
// connected site that holds the task's dataset (at least min_clients; the runner waits for
// them). A session that aborts (fewer than threshold survivors, unrecoverable shares) is a
// failed attempt, recorded, and the round is tried again with a fresh cohort, without the
// sites that did not answer; after max_round_attempts the task fails. An aborted
// evaluation leaves the round without metrics (it still commits).
//
// Thread-safe: Cancel and Stop may be called from any thread.
#ifndef TESSERA_COORDINATOR_TASK_RUNNER_H_
#define TESSERA_COORDINATOR_TASK_RUNNER_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/client_registry.h"
#include "coordinator/secure_stage.h"
#include "coordinator/store.h"
#include "coordinator/work_board.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {

struct TaskRunnerOptions {
  // How often the runner looks again for enough connected clients.
  absl::Duration cohort_poll_interval = absl::Milliseconds(200);
  // Pause between a failed attempt and the next one.
  absl::Duration retry_pause = absl::Seconds(1);
};

class TaskRunner {
 public:
  // Pointers must outlive the runner. `ca_cert_pem`: the federation CA, which every site's
  // certificate in a secure-aggregation session must chain to.
  TaskRunner(std::string task_id, Store* store, WorkBoard* board, ClientRegistry* registry,
             const common::Clock* clock, std::string ca_cert_pem, TaskRunnerOptions options);
  // Stops (as Stop) and joins.
  ~TaskRunner();
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // Starts the thread. Call once.
  void Start();

  // Operator cancel: the task ends as CANCELLED with `reason` as soon as the current wait
  // or stage returns; nothing after the last commit is kept.
  void Cancel(const std::string& reason);

  // Coordinator shutdown: stops without changing the task's stored state, joins.
  void Stop();

  // True once the thread has returned (task finished, failed, cancelled or stopped).
  bool Done() const;

  const std::string& task_id() const { return task_id_; }

 private:
  enum class Halt { kNone, kCancel, kStop };

  void Main();
  absl::Status RunTask();
  absl::Status RunStatisticsRound(v1::TaskRecord& task);
  absl::Status RunTrainingRounds(v1::TaskRecord& task);
  // A federated-analytics task: one secure sum of the queries' statistics (round 1).
  absl::Status RunAnalytics(v1::TaskRecord& task);

  // Waits until at least min_clients connected clients hold the dataset; returns them.
  // Empty if halted meanwhile.
  std::vector<std::string> WaitForCohort(const v1::TaskRecord& task);

  // Runs `stage` of `round` as one secure-aggregation session over `cohort`.
  SecureStageResult RunStage(const v1::TaskRecord& task, v1::Stage stage, uint32_t round,
                             uint32_t attempt, const std::vector<std::string>& cohort,
                             v1::WorkItem first_item, v1::SecAggEncoding encoding);

  // Records a failed attempt (drop line and log) and pauses before the next; true if the
  // runner was halted meanwhile.
  bool AttemptFailed(uint32_t round, uint32_t attempt, const absl::Status& why,
                     std::vector<std::string>* drops);
  // After the attempts of a stage ran out without a commit: cancelled, stopped, or failed.
  absl::Status EndWithoutCommit(v1::TaskRecord& task, const std::string& what);

  absl::Status Finish(v1::TaskRecord& task, v1::TaskState state, const std::string& reason);
  Halt halt() const;
  std::string CancelReason() const;
  // Sleeps up to `d`; returns early (true) when halted.
  bool PauseOrHalt(absl::Duration d);

  const std::string task_id_;
  Store* const store_;
  WorkBoard* const board_;
  ClientRegistry* const registry_;
  const common::Clock* const clock_;
  const TaskRunnerOptions options_;

  mutable absl::Mutex mu_;
  Halt halt_ ABSL_GUARDED_BY(mu_) = Halt::kNone;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;

  SecureStageRunner secure_;
  std::thread thread_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_TASK_RUNNER_H_
