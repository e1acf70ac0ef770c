// One stage of a round (statistics, fit, evaluate or analytics) run as one
// secure-aggregation session over the work board: five steps, each one work item per
// client, each closed when every expected client has answered or at the step's deadline.
// The SecAggServer state machine (secagg/server.h) judges every answer; this runner only
// moves messages and time.
//
// Durable: the server's snapshot is handed to the request's `persist` callback at every step
// boundary — right after the session opens, and after each step closes — before the next
// step's work items are posted, so nothing is asked of the sites that the coordinator's
// store does not record. A request may instead resume a session from such a snapshot (after
// a coordinator restart): the runner posts the step the snapshot stopped at again, under the
// same work id, and the sites answer it from their own stores. A persist callback that
// fails stops the session before anything more is posted (a privacy budget that cannot pay
// for the unmasking, a store that cannot write).
//
// The first step's items carry the task spec, the global model and the standardisation, so
// a client computes its contribution (trains) before it advertises its keys; that step has
// the task's round deadline, later steps the (shorter) step deadline. The set-up binds the
// spec hash, N and the standardisation the first items carry.
//
// Sites deciding on the task (site_decisions.h): a site that declines the first step with
// AWAITING_APPROVAL is not dropped at once. It stays expected, and its item is offered to it
// again every `approval_poll` until the step closes, so that its staff's approval takes
// effect at its next poll and it joins this very session. The step closes as usual when every
// other site has answered, if enough sites advertised keys to reach the threshold without the
// ones still awaiting approval, or else at the step's deadline; sites still awaiting approval
// are then dropped (SECAGG_DROP_CLIENT_ABORTED, not as unresponsive). A site that declines
// REJECTED_BY_SITE ends the session at once, without a sum (its task is to fail). Every
// decision heard is reported (`decisions_changed`) and returned with the result.
//
// Culprits: a site that aborts naming an invited peer (Decline.culprit: the peer's share
// did not authenticate) is heard; when the session ends, the peers named by sites that were
// not named themselves (culprits.h) are returned as SecureStageResult::quarantine.
//
// Thread-safe: Cancel may be called from any thread while Run blocks in another.
#ifndef TESSERA_COORDINATOR_SECURE_STAGE_H_
#define TESSERA_COORDINATOR_SECURE_STAGE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/site_answers.h"
#include "coordinator/site_decisions.h"
#include "coordinator/work_board.h"
#include "proto/federation.pb.h"
#include "proto/provenance.pb.h"
#include "proto/secagg.pb.h"
#include "proto/secagg_state.pb.h"
#include "proto/task.pb.h"

namespace tessera::secagg {
class SecAggServer;
}  // namespace tessera::secagg

namespace tessera::coordinator {

class SessionSink;
struct SecureStageResult;

// Told about the steps of every session: for logging and auditing, and for the end-to-end
// suite, which stops the coordinator at chosen points with it. StepPersisted is called on
// the runner's thread, AnswerAccepted on the thread that delivers the answer; neither under
// a lock of the runner. Implementations must be thread-safe and quick.
class StageObserver {
 public:
  virtual ~StageObserver() = default;
  // The state before `step` is durable and the step's work items are about to be posted.
  virtual void StepPersisted(const std::string& session, v1::SecAggRound step) = 0;
  // The session accepted `client`'s answer to `step`.
  virtual void AnswerAccepted(const std::string& session, v1::SecAggRound step,
                              const std::string& client) = 0;
  // The session ended (with a sum or not): `result` is what Run returns. Called on the
  // runner's thread. Default: nothing (metrics use it: coordinator/monitoring.h).
  virtual void SessionEnded(const std::string& session, const SecureStageResult& result) {}
};

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
  // Makes first_item's model as serialized v1::ModelParameters (internal/model_bytes.h
  // SerializedModel): called when the first step is posted, kept apart and shared by its
  // items (not copied per site), and let go of once that step closes (megabytes for a large
  // model, not held through the later steps); first_item then holds only the model's
  // hash. An error (a model read back from the store) stops the session before its first
  // step (SecureStageResult::stopped). Null: first_item.model, if any.
  using ModelSource = std::function<absl::StatusOr<std::shared_ptr<const std::string>>()>;
  ModelSource model;
  // first_item's model as its delta from the model the cohort was sent last, for the sites
  // that hold that one (work_board.h ModelDeltaVariant); null: none.
  std::shared_ptr<const ModelDeltaBytes> model_delta;
  v1::SecAggEncoding encoding;
  uint32_t threshold = 0;
  // SecAgg+'s graph parameters (secagg/neighbourhood.h SparseSetup); unset: full Bonawitz.
  std::optional<v1::SecAggSparse> sparse;
  absl::Duration first_step_deadline = absl::Minutes(5);
  absl::Duration step_deadline = absl::Minutes(1);
  // Continue this session (its snapshot at a step boundary) instead of opening a new one;
  // cohort, threshold and encoding are then the snapshot's.
  std::optional<v1::SecAggServerSnapshot> resume;
  // Receives the server's snapshot at every step boundary, before that step is posted:
  // the round it opens, the session's attempt record if it changed since attempt_changed
  // (or this) last had it (the closed step's answers: to be stored in the same write, one
  // synced write a boundary; none at the opening), and the snapshot's source: called
  // once, it hands `write` the snapshot serialized as pieces that view the server's share
  // relays and running sum (SecAggServer::SnapshotInPieces; megabytes for a large model or
  // cohort, never copied on the way to the store) and returns what `write` returns. The
  // server is locked while `write` runs. A non-OK status, the source's included, stops
  // the session there (SecureStageResult::stopped).
  using SnapshotWriter = std::function<absl::Status(std::span<const std::string_view> snapshot)>;
  using SnapshotSource = std::function<absl::Status(const SnapshotWriter& write)>;
  std::function<absl::Status(v1::SecAggRound round, const std::optional<v1::StageAttempt>& attempt,
                             const SnapshotSource& snapshot)>
      persist;
  // Whether an invited site has been refused since the cohort was picked (revoked, expired,
  // disabled: ClientRegistry::Excluded). Such a site is dropped as the session opens, as
  // Expel drops it from a running one: a refusal that came between the cohort's choice and
  // the session's start would otherwise keep the first step waiting for it until its
  // deadline. Asked again as each step closes (SessionSink::Expel). Null: none is.
  std::function<bool(const std::string& client_id)> excluded;
  // How often, while the first step is open, its item is offered again to the sites that
  // declined it AWAITING_APPROVAL.
  absl::Duration approval_poll = absl::Seconds(5);
  // Told, on the runner's thread, every decision heard in this session so far, each time
  // one changes (may be empty).
  std::function<void(const SiteDecisions&)> decisions_changed;
  // Told, on the runner's thread, the session's attempt record (each invited site's answer
  // so far, site_answers.h) whenever a site's answer changed while a step is open (seen at
  // the step's wake-ups, not at the one that closes it), and at a step boundary when there
  // is no `persist` to take it. The ended session's record is SecureStageResult::attempt
  // instead. May be empty.
  std::function<void(const v1::StageAttempt&)> attempt_changed;
  // How often, while a step is open, attempt_changed is told of answers that arrived.
  absl::Duration answers_report_interval = absl::Seconds(1);
  // When the session began, for a resumed one (its attempt record's started_unix_ms); 0:
  // now.
  int64_t resume_started_unix_ms = 0;
};

struct SecureStageResult {
  bool completed = false;
  // Decoded sums over the survivors (when completed).
  std::vector<double> sums;
  // Clients whose inputs are in the sums, sorted.
  std::vector<std::string> survivors;
  // Clients whose masked input the session accepted, whether or not it then completed:
  // under the sites' once-only rule they cannot contribute to this stage again.
  std::vector<std::string> masked_inputs;
  // Clients that declined as having contributed to this stage already.
  std::vector<std::string> already_contributed;
  // Sites to quarantine, by client id: named as the culprit of their aborts by sites that
  // were not named themselves (culprits.h), with the reason, who named them, when, and
  // this task and session. The caller records them (ClientRegistry::Quarantine).
  std::map<std::string, v1::ClientQuarantine> quarantine;
  // "client: step: reason: detail", one per dropped client.
  std::vector<std::string> drops;
  // Clients dropped because they did not answer a step in time.
  std::vector<std::string> unresponsive;
  // Why the session ended without a sum ("SECAGG_SERVER_TOO_FEW_CLIENTS: ...").
  std::string abort;
  // Set when the persist callback refused a step boundary: the session stopped there.
  absl::Status stopped;
  // The sites' decisions on the task heard in this session (site_decisions.h).
  SiteDecisions decisions;
  // When completed: which sites' inputs make up the sum, with their consistency signatures
  // (secagg/provenance.h); `session` is the session's label.
  std::optional<v1::SessionProvenance> provenance;
  // The session with each invited site's answer (ended_unix_ms, completed, outcome set).
  v1::StageAttempt attempt;
};

// The `sparse` of a session inviting `invited` sites under `spec`: SecAgg+'s parameters
// when spec.secure_aggregation.secagg_plus is set, `invited` is at least its min_sites and
// a sparse graph meets the conditions for every list the session may end up with
// (secagg::SparseSetup, sigma = 40, eta = 30); nullopt (full Bonawitz) otherwise.
// INVALID_ARGUMENT for fractions SparseSetup refuses (validation keeps them out).
absl::StatusOr<std::optional<v1::SecAggSparse>> SessionSparseSetup(const v1::TaskSpec& spec,
                                                                   uint32_t invited);

class SecureStageRunner {
 public:
  // `board` and `clock` must outlive the runner, and `observer` (may be null) too;
  // `ca_cert_pem` is the federation CA.
  SecureStageRunner(WorkBoard* board, const common::Clock* clock, std::string ca_cert_pem,
                    StageObserver* observer = nullptr);

  // Runs the session to its end (sum, abort, a refused persist, or cancellation).
  SecureStageResult Run(const SecureStageRequest& request);

  // Ends the running session (if any) and every later one at once.
  void Cancel();

  // Drops `client_id` from the running session (if any) now and at each of its later steps,
  // with SECAGG_DROP_BAD_CERTIFICATE and `why`: the coordinator serves the site no more
  // (revoked, expired, disabled). An input it sent before stays in the sum, as for any
  // dropout after the masked-input step. Later sessions do not invite it (the registry).
  void Expel(const std::string& client_id, const std::string& why);

  // The certificates of the running session `session`'s advertisement list by SHA-256, for
  // listed site `requester` (SecAggServer::ListedCertificates); NOT_FOUND if that session is
  // not the one running.
  absl::StatusOr<std::vector<std::string>> ListedCertificates(
      const std::string& session, const std::string& requester,
      const std::vector<std::string>& sha256s);

  // The label of a stage's session: "<task>/r<round>/<stage>/a<attempt>".
  static std::string SessionLabel(const std::string& task_id, uint32_t round, v1::Stage stage,
                                  uint32_t attempt);

 private:
  // The request's server: created (its opening persisted) or restored. An error, with the
  // abort (and `stopped`) set in `result`, if there is none.
  absl::StatusOr<std::unique_ptr<secagg::SecAggServer>> OpenServer(
      const SecureStageRequest& request, SecureStageResult* result);
  // Posts each step, waits for it, closes it and persists the next boundary, until the
  // session ends or a persist is refused.
  void RunSteps(const SecureStageRequest& request, const std::string& session, size_t invited,
                const std::shared_ptr<SessionSink>& sink, SecureStageResult* result);
  // Waits for one posted step to be answered or its deadline; in the first step, offers
  // the item again every request.approval_poll to the sites awaiting approval. Reports the
  // decisions heard, and drops the sites still awaiting approval when the step closes.
  void WaitForStep(const SecureStageRequest& request, const std::string& work_id,
                   absl::Time deadline, bool first_step, SessionSink& sink);
  // The session's outcome into `result`: drops, contributors, the decoded sum or the abort.
  void Collect(const SecureStageRequest& request, SessionSink& sink,
               const v1::SecAggEncoding& encoding, SecureStageResult* result);
  // The session's attempt record from what the sink saw.
  v1::StageAttempt AttemptOf(const SecureStageRequest& request, const SessionFacts& facts) const;
  // Tells request.attempt_changed the running session's record if it changed.
  void ReportAttempt(const SecureStageRequest& request, SessionSink& sink, bool ended);
  // The running session's record if it changed since it was last reported.
  std::optional<v1::StageAttempt> ChangedAttempt(const SecureStageRequest& request,
                                                 SessionSink& sink);

  WorkBoard* const board_;
  const common::Clock* const clock_;
  const std::string ca_cert_pem_;
  StageObserver* const observer_;
  // When the running session began (Run's thread only).
  int64_t started_unix_ms_ = 0;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<SessionSink> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SECURE_STAGE_H_
