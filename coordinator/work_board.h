// The rendezvous between round drivers and the federation service.
//
// A round driver posts one work item per client of a step (the items of one step share a
// work id but may differ per client: secure aggregation sends each client its own
// shares), with a ResultSink that receives the clients' answers; it waits on the sink and
// then closes the work id. The federation service's handlers hand work out (a long-poll:
// PullAsync, which holds no thread while it waits, or the blocking Pull) and route answers
// in (Push).
//
// A client that pushes for work it was not given gets an error; a client may answer each
// item once. Nothing a client sends can crash the coordinator: the sink judges content.
// A long-poll's deadline is a time of the board's clock (common/clock.h), which also waits
// for it (PullAsync's deadlines on one timer thread of the board's, started by the first).
//
// Thread-safe.
#ifndef TESSERA_COORDINATOR_WORK_BOARD_H_
#define TESSERA_COORDINATOR_WORK_BOARD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator {

// A model as its delta from another (proto/model_delta.h).
struct ModelDeltaBytes {
  std::string base_hash;                    // model_hash of the base
  std::shared_ptr<const std::string> data;  // the encoding; not null
};

// A step's model as its difference from the model the cohort was sent last
// (WorkItem.model_delta, proto/model_delta.h), for the sites that say they hold that model
// (PullWorkRequest.held_model_hashes): about half the model's bytes. Immutable once posted.
struct ModelDeltaVariant {
  // model_hash of the base.
  std::string base_hash;
  // As PostedItem::shared, with model_delta in place of the model (or of model_size).
  std::shared_ptr<const std::string> shared;
  // The delta's data when it travels apart (ModelDelta.data_size), or null.
  std::shared_ptr<const std::string> data;
};

// Bytes that follow a client's own fields on the wire (PostedItem::own_tail): `head`, then
// `*shared` if not null — the share relay as the secure-aggregation server keeps it (n
// shares), shared rather than copied into the item.
struct OwnTail {
  std::string head;
  std::shared_ptr<const std::string> shared;

  bool empty() const { return head.empty() && (shared == nullptr || shared->empty()); }
  // head and *shared, joined: a copy.
  std::string Joined() const { return shared == nullptr ? head : head + *shared; }
};

// One client's work item as the board hands it out. What every client's item of a step
// carries alike (the set-up's spec, model and standardisation: megabytes for a large model)
// is kept once per step, serialized, in `shared`, and never copied into each client's item:
// a step posted to n clients holds one copy of the model, and the federation service sends
// those bytes as they are (coordinator/work_wire.h). Immutable once posted.
struct PostedItem {
  // The client's own fields (work id, its secure-aggregation message, ...).
  v1::WorkItem own;
  // WorkItem wire bytes with none of `own`'s fields, or null. The whole item is `own`
  // (and own_tail) followed by these bytes on the wire (protobuf concatenation = merge).
  std::shared_ptr<const std::string> shared;
  // The step's model as serialized ModelParameters when it travels apart from the item
  // (WorkItem.model_size, Federation.PullModelChunk), or null.
  std::shared_ptr<const std::string> model;
  // The step's model as a delta, for sites that hold its base, or null.
  std::shared_ptr<const ModelDeltaVariant> delta;
  // More of the client's own fields as WorkItem wire bytes, or empty: its share relay (n
  // shares), kept serialized rather than as a message, in two parts (OwnTail). The
  // client's part is `own` followed by own_tail.head and *own_tail.shared.
  OwnTail own_tail = {};

  // The whole item: `own` with `own_tail` and `shared` merged in and the model apart put
  // back in (then model_size is cleared): a copy, for in-process callers. An unparsable
  // `own_tail`, `shared` or `model` is a bug of the poster; the result then holds `own` only.
  v1::WorkItem Whole() const;
};

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
  ~WorkBoard();  // Shutdown(), then joins the timer thread

  // Makes items[c] available to each client c; answers go to `sink` until Close(work_id).
  // Every item's work_id must equal `work_id`. `shared` (PostedItem::shared) and `model`
  // (PostedItem::model), if not null, are part of every client's item. INVALID_ARGUMENT if
  // the work id is already open or an item carries another id.
  // `largest_answer` bounds the size of one client's answer to this work (0: nothing
  // beyond the message cap), for LargestAnswer. `delta` (PostedItem::delta), if not null,
  // goes with every client's item too. `own_tails[c]`, if any, is client c's
  // PostedItem::own_tail.
  absl::Status Post(const std::string& work_id, std::map<std::string, v1::WorkItem> items,
                    std::shared_ptr<ResultSink> sink,
                    const std::shared_ptr<const std::string>& shared = nullptr,
                    const std::shared_ptr<const std::string>& model = nullptr,
                    uint64_t largest_answer = 0,
                    const std::shared_ptr<const ModelDeltaVariant>& delta = nullptr,
                    std::map<std::string, OwnTail> own_tails = {});

  // The largest answer, in bytes, that open work still awaiting `client_id`'s answer may
  // need (the largest `largest_answer` posted with it); 0 if none.
  uint64_t LargestAnswer(const std::string& client_id) const;

  // The model `work_id` carries apart, for `client_id` to fetch: null unless the work is
  // open and has an item for the client that was handed to it, with a model apart. With
  // `delta`: the item's model delta's data apart (ModelDeltaVariant::data) instead.
  std::shared_ptr<const std::string> ModelFor(const std::string& work_id,
                                              const std::string& client_id,
                                              bool delta = false) const;

  // Withdraws the work: queued items disappear and later answers are refused.
  void Close(const std::string& work_id);

  // The oldest work item not yet handed to `client_id`; waits until one is posted,
  // the clock reaches `deadline` (null) or Shutdown() (null).
  std::shared_ptr<const PostedItem> Pull(const std::string& client_id, absl::Time deadline);

  // What an asynchronous pull ends with: the item handed out, or null (the deadline
  // passed, the client was woken, the pull was cancelled or the board shut down).
  using PullDone = std::function<void(std::shared_ptr<const PostedItem>)>;

  // Pull without a waiting thread: `done` runs exactly once, with what Pull would return,
  // never under the board's lock, on the thread that ends the wait: this one if an item is
  // deliverable now or the board is shut down (then the result is 0); otherwise the one
  // posting, redelivering or re-offering the item, waking the client, cancelling or
  // shutting down, or the board's timer thread at `deadline`. `done` should be quick (it
  // may run on a round driver's thread); it may call the board. Returns a ticket for
  // CancelPull. Waiting async pulls are served oldest first, and count in WaitingPulls.
  uint64_t PullAsync(const std::string& client_id, absl::Time deadline, PullDone done);

  // Ends the async pull `ticket` now with null (its caller went away); nothing if it has
  // already ended.
  void CancelPull(uint64_t ticket);

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

  // Number of Pull and PullAsync calls waiting now for `client_id`.
  int WaitingPulls(const std::string& client_id) const;

  // Wakes the waiting Pull and PullAsync calls of `client_id`, which end with null (its identity
  // was just revoked or disabled: the handler re-checks the caller before giving anything out).
  void Wake(const std::string& client_id);

  // Wakes every Pull and PullAsync and makes later ones end at once.
  void Shutdown();

 private:
  struct OpenWork {
    uint64_t seq = 0;
    std::map<std::string, std::shared_ptr<const PostedItem>> items;
    std::shared_ptr<ResultSink> sink;
    std::set<std::string> undelivered;  // clients it was not handed to yet
    std::set<std::string> pending;      // clients that have not answered yet
    std::set<std::string> fetched;      // clients it was handed to at least once
    uint64_t largest_answer = 0;
  };
  struct AsyncPull {
    std::string client_id;
    absl::Time deadline;
    PullDone done;
  };
  // Async pulls that ended, with what each gets; run (outside the lock) by RunEnded.
  using Ended = std::vector<std::pair<PullDone, std::shared_ptr<const PostedItem>>>;

  // The oldest open work with an undelivered item for `client_id`, or null.
  OpenWork* Deliverable(const std::string& client_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `w`'s item for `client_id` handed out (and fetched) and returns it.
  std::shared_ptr<const PostedItem> HandOut(OpenWork* w, const std::string& client_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `client_id`'s deliverable items to its waiting async pulls, oldest first.
  void MatchLocked(const std::string& client_id, Ended* ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends async pull `ticket` with `item`.
  void EndLocked(uint64_t ticket, std::shared_ptr<const PostedItem> item, Ended* ended)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunEnded(Ended& ended);
  // The timer thread: ends async pulls whose deadline has passed, until Shutdown.
  void ExpireLoop();

  const common::Clock* const clock_;
  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Ordered by posting sequence, so clients get the oldest work first.
  std::map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, OpenWork> open_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> waiting_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> wakes_ ABSL_GUARDED_BY(mu_);  // Wake() calls per client
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // Async pulls by ticket (oldest first), by client, and by deadline.
  std::map<uint64_t, AsyncPull> async_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::set<uint64_t>> async_of_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, uint64_t>> deadlines_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  // Bumped when the earliest deadline moves earlier or at Shutdown: the timer re-plans.
  uint64_t timer_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread timer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_WORK_BOARD_H_
