// The rendezvous between round drivers and the federation service.
//
// A round driver posts one work item per client of a step (the items of one step share a
// work id but may differ per client: secure aggregation sends each client its own
// shares), with a ResultSink that receives the clients' answers; it waits on the sink and
// then closes the work id. The federation service's handlers, on gRPC threads, hand work
// out (Pull, a long-poll) and route answers in (Push).
//
// A client that pushes for work it was not given gets an error; a client may answer each
// item once. Nothing a client sends can crash the coordinator: the sink judges content.
// A long-poll's deadline is a time of the board's clock (common/clock.h), which also waits
// for it.
//
// Thread-safe.
#ifndef TESSERA_COORDINATOR_WORK_BOARD_H_
#define TESSERA_COORDINATOR_WORK_BOARD_H_

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator {

// Receives the answers to one posted work id. Implementations are thread-safe.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // One client's answer. An error is returned to the client; the sink records whatever it
  // needs (e.g. that the client is dropped).
  virtual absl::Status Accept(const std::string& client_id,
                              const v1::PushResultRequest& result) = 0;
};

class WorkBoard {
 public:
  // `clock` must outlive the board.
  explicit WorkBoard(const common::Clock* clock = common::Clock::Real()) : clock_(clock) {}
  WorkBoard(const WorkBoard&) = delete;
  WorkBoard& operator=(const WorkBoard&) = delete;

  // Makes items[c] available to each client c; answers go to `sink` until Close(work_id).
  // Every item's work_id must equal `work_id`. INVALID_ARGUMENT if the work id is already
  // open or an item carries another id.
  absl::Status Post(const std::string& work_id, std::map<std::string, v1::WorkItem> items,
                    std::shared_ptr<ResultSink> sink);

  // Withdraws the work: queued items disappear and later answers are refused.
  void Close(const std::string& work_id);

  // The oldest work item not yet handed to `client_id`; waits until one is posted,
  // the clock reaches `deadline` (null) or Shutdown() (null).
  std::shared_ptr<const v1::WorkItem> Pull(const std::string& client_id, absl::Time deadline);

  // Routes an answer to the work's sink. FAILED_PRECONDITION if `client_id` has no open
  // item with that work id (never given, closed, or already answered); otherwise the
  // sink's verdict. The item counts as answered either way.
  absl::Status Push(const std::string& client_id, const v1::PushResultRequest& result);

  // Makes every unanswered item of `client_id` deliverable again (the client reconnected
  // and may have lost what it was working on).
  void Redeliver(const std::string& client_id);

  // Offers `client_id` its item of `work_id` again, answered or not: its next Pull gets it
  // and it may answer it once more (a site that declined for want of its staff's approval
  // is asked again, so that an approval takes effect at its next poll). False if the work
  // is closed or has no item for the client.
  bool Reoffer(const std::string& work_id, const std::string& client_id);

  // The clients `work_id`'s item was handed to at least once (empty once it is closed): the
  // others never fetched it (not connected).
  std::set<std::string> Fetched(const std::string& work_id) const;

  // Number of Pull calls waiting now for `client_id`.
  int WaitingPulls(const std::string& client_id) const;

  // Wakes the waiting Pull calls of `client_id`, which return null (its identity was just
  // revoked or disabled: the handler re-checks the caller before giving anything out).
  void Wake(const std::string& client_id);

  // Wakes every Pull and makes later ones return at once.
  void Shutdown();

 private:
  struct OpenWork {
    uint64_t seq = 0;
    std::map<std::string, std::shared_ptr<const v1::WorkItem>> items;
    std::shared_ptr<ResultSink> sink;
    std::set<std::string> undelivered;  // clients it was not handed to yet
    std::set<std::string> pending;      // clients that have not answered yet
    std::set<std::string> fetched;      // clients it was handed to at least once
  };
  // The oldest open work with an undelivered item for `client_id`, or null.
  OpenWork* Deliverable(const std::string& client_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const common::Clock* const clock_;
  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Ordered by posting sequence, so clients get the oldest work first.
  std::map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, OpenWork> open_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> waiting_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> wakes_ ABSL_GUARDED_BY(mu_);  // Wake() calls per client
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_WORK_BOARD_H_
