// The rendezvous between round drivers and the federation service.
//
// A round driver runs a stage by posting one work item for a cohort of clients, with a
// StageCollector that receives their results, then waits on the collector until every
// member reported or the stage deadline passed, and closes the item. The federation
// service's handlers, on gRPC threads, hand work out (Pull, a long-poll) and route results
// in (Push). The collector keeps a running sum of contributions: memory O(vector length),
// not O(clients x length).
//
// A client that misbehaves (wrong length, non-finite or impossible values, a push for work
// it was not given) gets an error and, where it was part of the stage, is dropped from it
// with a recorded reason; nothing a client sends can crash the coordinator.
//
// Thread-safe.
#ifndef TESSERA_COORDINATOR_WORK_BOARD_H_
#define TESSERA_COORDINATOR_WORK_BOARD_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator {

// Collects one stage's results. Created by the round driver, fed by WorkBoard::Push.
class StageCollector {
 public:
  // Checks a contribution's values beyond length and finiteness (e.g. that a count is a
  // non-negative integer); returns INVALID_ARGUMENT with a reason to drop the client.
  using Check = std::function<absl::Status(std::span<const double>)>;

  // `cohort`: the clients asked; `vector_length`: the length every contribution must have.
  StageCollector(std::vector<std::string> cohort, size_t vector_length, Check check);

  // A client's result. Errors: PERMISSION_DENIED if `client_id` is not in the cohort;
  // ALREADY_EXISTS if it already reported; FAILED_PRECONDITION once the stage is closed;
  // INVALID_ARGUMENT for a bad contribution (the client is then dropped from the stage).
  // A Decline is accepted (OK) and recorded as a drop with its reason.
  absl::Status Accept(const std::string& client_id, const v1::PushResultRequest& result);

  // Blocks until every cohort member has contributed, declined or been dropped, or until
  // `deadline`, or Cancel(). Returns true if everyone answered.
  bool Wait(absl::Time deadline);

  // Wakes Wait() early (task cancelled or coordinator shutting down).
  void Cancel();

  struct Outcome {
    std::vector<double> sum;                // over contributors; zeros if none
    std::vector<std::string> contributors;  // sorted
    std::vector<std::string> drops;         // "client: reason", sorted by client
  };
  // Closes the stage (later Accepts fail) and returns what was collected. Clients that
  // never answered are listed in drops as "client: no answer before the deadline".
  Outcome Close();

 private:
  bool AllAnswered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::set<std::string> cohort_;
  const size_t vector_length_;
  const Check check_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<double> sum_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> contributors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> drops_ ABSL_GUARDED_BY(mu_);
};

class WorkBoard {
 public:
  WorkBoard() = default;
  WorkBoard(const WorkBoard&) = delete;
  WorkBoard& operator=(const WorkBoard&) = delete;

  // Makes `item` available to each client of `cohort`; their results go to `collector`
  // until Close(item.work_id()). INVALID_ARGUMENT if the work id is already open.
  absl::Status Post(v1::WorkItem item, const std::vector<std::string>& cohort,
                    std::shared_ptr<StageCollector> collector);

  // Withdraws the work item: queued copies disappear and later pushes are refused.
  void Close(const std::string& work_id);

  // The oldest work item not yet handed to `client_id`; waits until one is posted,
  // `deadline` passes (null) or Shutdown() (null).
  std::shared_ptr<const v1::WorkItem> Pull(const std::string& client_id, absl::Time deadline);

  // Routes a result to the stage's collector. FAILED_PRECONDITION if `client_id` has no
  // open work item with that id (never posted to it, closed, or already answered); other
  // errors as StageCollector::Accept.
  absl::Status Push(const std::string& client_id, const v1::PushResultRequest& result);

  // Makes every open item of `client_id` deliverable again (the client reconnected and may
  // have lost what it was working on).
  void Redeliver(const std::string& client_id);

  // Number of Pull calls waiting now for `client_id`.
  int WaitingPulls(const std::string& client_id) const;

  // Wakes every Pull and makes later ones return at once.
  void Shutdown();

 private:
  struct OpenWork {
    std::shared_ptr<const v1::WorkItem> item;
    std::shared_ptr<StageCollector> collector;
    std::set<std::string> undelivered;  // cohort members it was not handed to yet
    std::set<std::string> pending;      // cohort members that have not answered yet
  };

  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Ordered by posting sequence, so clients get the oldest work first.
  std::map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<uint64_t, OpenWork>> open_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> waiting_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_WORK_BOARD_H_
