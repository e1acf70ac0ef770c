// Runs one task's rounds, on a thread of its own, from where it stopped.
//
// Round 0 is the statistics round: the sites' feature counts, sums and sums of squares
// give the pooled mean and standard deviation every site then standardises with, and the
// pooled row count resolves the L2 penalty. Pooled statistics are computed once per dataset
// and columns and kept in the store: a later task over the same columns reuses them (the
// sites would refuse to send their statistics again). Each training round r then commits,
// in one store write, the round record, the new checkpoint and the task record, after
// FIT (sites train from the global model and send their weighted deltas) and EVALUATE
// (sites evaluate a model on their held-out rows).
//
// One session per round: round r's session is a FIT_EVALUATE one — each site evaluates the
// model it receives (round r - 1's) and trains from it, in one vector — so the model
// travels once and the n-dependent key work is paid once per round. Round r - 1's metrics
// are added to its record in the same write that commits round r (CommitRound with
// `previous`; RoundRecord.evaluated_in_round). Round 1 is a plain FIT (the initial model
// is not evaluated), and the last round — the spec's last, or with privacy the last the
// budget pays for — evaluates its own model in an EVALUATE session before it commits. A
// task with evaluation noise runs FIT and EVALUATE as two sessions per round (each noised
// sum is a release of its own), and a round that already ran its own EVALUATE session (a
// task resumed from an older coordinator) is not evaluated again. A refused evaluation
// part leaves the evaluated round without metrics (a drop line in its record says why);
// the fit part is used as from a FIT session.
//
// A validation split (TrainingSpec.validation_fraction; task_runner_selection.cc): the
// evaluations are on the sites' validation rows; after each commit the round with the best
// validation metric is kept, early stopping ends training when its patience runs out, and
// then the task records the selected round and one STAGE_TEST session evaluates that
// round's checkpoint on the test rows; its commit rewrites the selected round's record and
// completes the task with TaskRecord.test_metrics.
//
// Every stage is one secure-aggregation session (secure_stage.h): the coordinator learns
// only the sum over the surviving sites, at least `threshold` of them. The round in flight
// is durable (v1::InFlightRound in the store, rewritten at every step boundary before the
// step is posted): a restarted coordinator continues the very session it was in, with the
// same cohort and nonce, instead of asking the sites again — they would refuse, since a site
// sends each contribution once. For the same reason a failed attempt (a session that ends
// without a sum) is retried only with sites that have not sent a masked input for the stage
// yet, and the stage ends, naming the reason, as soon as too few such sites are left.
// A site that honest sites named as the culprit of their aborts (a share from it did not
// authenticate) is quarantined when the session ends (ClientRegistry::Quarantine,
// coordinator/culprits.h): the retry, and every later session, runs without it.
// An aborted evaluation leaves the round without metrics (it still commits).
//
// Threshold: floor(2n/3) + 1 for n invited sites (secagg::SafeThreshold, what every site
// requires), raised to min_clients and the analytics minimum cohort; a task's explicit
// threshold below the rule for its cohort fails the stage at once with that reason.
//
// Sites deciding on the task (site_decisions.h): each site's decision heard in a session's
// first step is kept in the task record (TaskRecord.site_decisions, written as it changes).
// A site awaiting its staff's approval is offered the work again while the first step is
// open (secure_stage.h); a session that ends without a sum while sites were deciding does not
// count toward max_round_attempts, and the stage waits for approvals — each new session's
// first step then stays open up to approval_session_hold — until
// TaskSpec.approval_timeout_seconds has passed since the first such session; then the task
// fails naming the sites still awaiting approval. A site whose staff reject the task
// (REJECTED_BY_SITE) ends it: the session stops and the task fails with the site's name and
// reason ("site-b rejected the task: <reason>"); one site's veto is final, the task is not
// quietly run without it. A site out of its own privacy budget (SITE_BUDGET_EXHAUSTED) is
// left out of every later cohort of the task, which goes on if the other sites still reach
// the stage's minimum and fails otherwise, naming the site and its reason ("site-b refused
// the task: its privacy budget is exhausted: <reason>; only 2 known sites ...").
//
// Diagnostics (site_answers.h): each session's record with every invited site's answer is
// kept in the in-flight record (InFlightRound.stage_attempts, rewritten as sites answer and
// at every step boundary), committed with the round (RoundRecord.stage_attempts) and, when
// the task fails, kept on the task (TaskRecord.failed_round_attempts); a stage that runs out
// of attempts fails naming the sites and what they did ("statistics round failed after 20
// attempts: site-c declined POLICY_REFUSED: <rule>; last session: ..."). While a stage waits
// for its cohort, TaskRecord.waiting says why ("waiting for 3 sites holding dataset X (have
// 2)"); it is cleared when the cohort is there or the task ends.
//
// One cohort per round: the sites whose statistics are in the pooled standardisation (round
// 0's participants, TaskRecord.statistics_cohort) are the only ones invited to the task's
// FIT and EVALUATE sessions, so no site trains or evaluates on rows the standardisation left
// out. The statistics stage makes each site check its rows as training will (the label
// too), so a site that could not train declines there and is not counted. A site that
// declines a stage for a cause no retry can fix (DATASET_MISSING, DATA_ERROR,
// POLICY_REFUSED) is out of the round (InFlightRound.sites_out, with the site and its reason,
// in the round's drop lines and the task's diagnostics); when the sites left cannot reach
// the stage's minimum, the stage ends at once naming each such site and its cause
// ("statistics round failed: site-c declined DATA_ERROR: ...; only 2 known sites ...").
//
// Checked sums (sum_checks.h): every decoded sum is checked before it is used — a FIT sum
// must hold summed row shares in [0, 1] and an averaged update within the spec's clip, the
// statistics, evaluation and analytics sums must be consistent (integral non-negative
// counts, non-negative sums of squares, correct <= count, ...). A refused sum is a failed
// attempt (its StageAttempt says "sum refused (<check>): ...") and nothing of it is used:
// no model is committed from it. Secure aggregation hides which site sent the bad input,
// so the sites of the refused session are not blamed; under the once-only rule they cannot
// contribute to that stage again, so the retry invites only sites that were not in it, and
// the stage fails naming the refusal when too few are left. A refused evaluation sum
// leaves the round without metrics (as an aborted evaluation does).
//
// Provenance: the provenance of every session whose sum a round uses (which sites' inputs
// made it, with their consistency signatures, secagg/provenance.h) is kept in the in-flight
// record as soon as the sum is used, and committed with the round (RoundRecord.provenance);
// round 0's is kept with the pooled statistics.
//
// Privacy: every noised sum (model updates with `privacy`, evaluation sums with
// evaluation noise, an analytics answer with `privacy`) is charged to the task's ledger, durably,
// before the unmasking step of its session is posted — failed attempts and crashes included; a
// round starts only if the budget covers its releases, and a session whose release the budget
// cannot pay for stops before its unmasking (an analytics task then ends FAILED without an answer).
// The task's epsilon composes every charged release.
//
// Thread-safe: Cancel and Stop may be called from any thread.
#ifndef TESSERA_COORDINATOR_TASK_RUNNER_H_
#define TESSERA_COORDINATOR_TASK_RUNNER_H_

#include <functional>
#include <memory>
#include <optional>
#include <set>
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
#include "coordinator/site_decisions.h"
#include "coordinator/store.h"
#include "coordinator/strategy.h"
#include "coordinator/work_board.h"
#include "proto/state.pb.h"
#include "proto/validation_split.h"

namespace tessera::proto {
struct QueryRelease;
}  // namespace tessera::proto

namespace tessera::coordinator {

struct TaskRunnerOptions {
  // How often the runner looks again for enough connected clients.
  absl::Duration cohort_poll_interval = absl::Milliseconds(200);
  // Pause between a failed attempt and the next one.
  absl::Duration retry_pause = absl::Seconds(1);
  // Told about every session step (may be null; must outlive the runner).
  StageObserver* observer = nullptr;
  // How often, while a session's first step is open, a site that declined it
  // AWAITING_APPROVAL is offered the work again.
  absl::Duration approval_poll = absl::Seconds(5);
  // While the task waits for approvals, how long the first step of each new session stays
  // open (at least round_deadline_seconds, at most until the approval timeout): sites that
  // approved do not compute their contribution again every few minutes.
  absl::Duration approval_session_hold = absl::Hours(1);
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

  // Coordinator shutdown: stops without changing the task's stored state (the round in
  // flight stays where its last step boundary left it), joins.
  void Stop();

  // Drops `client_id` from the running secure-aggregation session, if any
  // (SecureStageRunner::Expel).
  void Expel(const std::string& client_id, const std::string& why) {
    secure_.Expel(client_id, why);
  }

  // SecureStageRunner::ListedCertificates of this task's running session.
  absl::StatusOr<std::vector<std::string>> ListedCertificates(
      const std::string& session, const std::string& requester,
      const std::vector<std::string>& sha256s) {
    return secure_.ListedCertificates(session, requester, sha256s);
  }

  // True once the thread has returned (task finished, failed, cancelled or stopped).
  bool Done() const;

  const std::string& task_id() const { return task_id_; }

 private:
  enum class Halt { kNone, kCancel, kStop };

  // One stage as durable sessions (task_runner_stage.cc).
  struct StagePlan {
    v1::Stage stage = v1::STAGE_UNSPECIFIED;
    uint32_t round = 0;
    // What the first step's items carry besides the spec (model hash, standardisation, l2).
    v1::WorkItem first_item;
    // Makes the model serialized when a session posts its first step
    // (SecureStageRequest::model); first_item holds its hash. Set by SetModel, or by RunFit
    // to read the round's model back from the store.
    SecureStageRequest::ModelSource model;
    // The model is `values`, a view of the caller's vector (which outlives the stage).
    void SetModel(std::span<const float> values);
    // Its model as a delta for the sites that hold the base (SecureStageRequest::model_delta).
    std::shared_ptr<const ModelDeltaBytes> model_delta;
    // > 0: the stage's sum is noised with this multiplier and charged when it can be
    // unmasked.
    double noise_multiplier = 0;
    // Whether failed attempts are retried (with sites that have not contributed yet).
    bool retry = true;
    // Whether to wait for enough connected sites; if not, too few is a failed stage.
    bool wait_for_cohort = true;
  };
  struct StageEnd {
    enum class Kind {
      kCompleted,   // a session completed: `result.sums`
      kFailed,      // no sum, and no attempt left or no cohort possible: `reason`
      kHalted,      // cancelled or stopped meanwhile
      kBudget,      // the privacy budget cannot pay for the release: `reason`
      kStoreError,  // the in-flight record could not be written: `reason`
    };
    Kind kind = Kind::kFailed;
    SecureStageResult result;
    std::string reason;
  };

  void Main();
  absl::Status RunTask();
  absl::Status RunStatisticsRound(v1::TaskRecord& task);
  absl::Status RunTrainingRounds(v1::TaskRecord& task);
  // A task with a validation split (TrainingSpec.validation_fraction;
  // task_runner_selection.cc). The selection metric's value of every evaluated round
  // committed so far, in round order.
  static std::vector<proto::RoundValue> ValidationCurve(const v1::TaskSpec& spec,
                                                        std::span<const v1::RoundRecord> rounds);
  // Appends `round`'s value of the selection metric when `metrics` has it.
  static void ExtendCurve(const v1::TaskSpec& spec, uint32_t round,
                          const google::protobuf::RepeatedPtrField<v1::Metric>& metrics,
                          std::vector<proto::RoundValue>* curve);
  // Whether training is over: a round already selected, the last round committed, or early
  // stopping's patience run out on `curve`.
  static bool TrainingOver(const v1::TaskRecord& task, std::span<const proto::RoundValue> curve);
  // Ends training (`why`: what ended it, "" to derive it): selects the round on `curve`
  // (the last committed round when none was evaluated), writes task.selected_round and
  // .selection, and runs the test session.
  absl::Status EndTraining(v1::TaskRecord& task, std::span<const proto::RoundValue> curve,
                           const std::string& why);
  // The STAGE_TEST session on the selected round's checkpoint, retried as a fit is; its
  // metrics into task.test_metrics and its session into the selected round's record, in
  // one commit that completes the task. A failed session or a refused sum completes the
  // task without test metrics, its state_reason saying why.
  absl::Status RunTestStage(v1::TaskRecord& task);
  // An exact regression (ModelSpec.GlmSpec, task_runner_glm.cc): one STAGE_GLM session a
  // round over every site of the statistics cohort (threshold: all of them; a retry is
  // possible only while no site has sent its input, so a site lost mid-round fails the
  // task, naming the stage's cause), the Newton step of glm_rounds.h, the report committed
  // into TaskRecord.glm_report with the round the fit converged in (or the last), which
  // ends the task COMPLETED. A collinear design or a diverging fit fails the task.
  absl::Status RunGlmRounds(v1::TaskRecord& task);
  // One round's session and step up to the next coefficients (and the report), kept in
  // `in_flight`; false if the task ended meanwhile (its state says how).
  absl::StatusOr<bool> RunGlmStage(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                   uint32_t round, const std::vector<std::string>& sites,
                                   const std::vector<double>& beta,
                                   const std::vector<double>& history,
                                   std::optional<double> null_deviance);
  // A federated-analytics task: one secure sum of the queries' statistics (round 1). With
  // privacy the sum is noised and charged before it can be unmasked; a budget that cannot
  // pay for it ends the task FAILED, "privacy budget spent: ...", with no answer.
  absl::Status RunAnalytics(v1::TaskRecord& task);
  // Commits the answer (round 1) with its metrics (epsilon and delta with privacy) and
  // the task's charged releases; the task is then COMPLETED.
  absl::Status CommitAnalytics(v1::TaskRecord& task, const v1::InFlightRound& in_flight,
                               const std::vector<std::string>& survivors,
                               const std::vector<proto::QueryRelease>& answers);
  // The round's FIT stage up to an applied update, kept in `in_flight` (fit_done, the new
  // model, the participants, train_examples, the strategy's state), in memory only: the
  // caller stores it before anything that may take long (an evaluation session), or
  // commits the round with it. A crash before either resumes the session from its last
  // boundary (the sites answer its last step again with their stored answers), as one
  // after the session's end always could. false if the stage ended without an update (the
  // task's state says how).
  // With `evaluate_previous` the session is a FIT_EVALUATE one: it also evaluates `global`,
  // the previous round's model, whose metrics and evaluators it keeps in `in_flight`
  // (previous_evaluated; a refused evaluation part is a drop line, the fit goes on).
  // `delta`: `global` as a delta for the sites that hold the model the cohort was sent
  // last (null: none).
  // `global` (round - 1's checkpoint) is let go of while the sessions run (4 MB at
  // d = 10^6) and read back from the store: each session's first step serializes it from
  // there, and the update is applied to it; it holds the model again once RunFit returns
  // true. A checkpoint that does not read back as `global` is DATA_LOSS.
  absl::StatusOr<bool> RunFit(v1::TaskRecord& task, v1::InFlightRound& in_flight, uint32_t round,
                              std::vector<float>& global, Strategy& strategy,
                              bool evaluate_previous, std::shared_ptr<const ModelDeltaBytes> delta);
  // The update's result, held by the record from the fit's end (a view of it).
  static std::span<const float> NextModel(const v1::InFlightRound& in_flight);
  // Round `round`'s fit model read back from the store (the checkpoint of round - 1), if
  // its hash is `hash`; DATA_LOSS otherwise.
  absl::StatusOr<std::vector<float>> StoredFitModel(uint32_t round, const std::string& hash);
  // The same model as the sites are sent it (internal::SerializedModel's bytes), read
  // without decoding its floats: the store's bytes themselves when they are written so.
  absl::StatusOr<std::shared_ptr<const std::string>> StoredFitModelBytes(uint32_t round,
                                                                         const std::string& hash);
  // The metrics of round `round`'s model from an evaluation sum over `survivors` sites:
  // checked (sum_checks.h), decoded and passed through the strategy; the refusal otherwise.
  absl::StatusOr<std::vector<v1::Metric>> EvaluationMetrics(const v1::TaskRecord& task,
                                                            uint32_t round,
                                                            std::span<const double> sums,
                                                            uint32_t survivors,
                                                            Strategy& strategy) const;
  // Whether a training round's evaluation travels with the next round's fit (one session
  // per round, STAGE_FIT_EVALUATE): unless the task noises its evaluations, which are
  // releases of their own.
  static bool OneSessionPerRound(const v1::TaskSpec& spec);
  // Whether the next round's session evaluates `previous`'s model: a training round the
  // strategy evaluates, which ran no evaluation session of its own and was not evaluated yet.
  static bool EvaluatedLater(const v1::RoundRecord& previous, const Strategy& strategy);
  // The checkpoint of `round`; DATA_LOSS if it does not hold `num_params` parameters.
  absl::StatusOr<std::vector<float>> CheckpointOf(uint32_t round, size_t num_params);
  // With differential privacy, why round `round` must not start (the budget does not cover
  // its releases: its model-update sum, and its evaluation sum when that is noised);
  // nothing if it may (or has started already).
  absl::StatusOr<std::optional<std::string>> BudgetSpent(const v1::TaskSpec& spec,
                                                         const v1::InFlightRound& in_flight,
                                                         uint32_t round);
  // The task's epsilon if one more round's releases (its fit, and its evaluation when
  // noised) were charged on top of those so far.
  absl::StatusOr<double> EpsilonWithRound(const v1::TaskSpec& spec,
                                          const v1::InFlightRound& in_flight);
  // Whether `round` is the task's last: the spec's last round, or with privacy the budget
  // cannot pay for another. Its model is then evaluated in a session of its own.
  absl::StatusOr<bool> LastRound(const v1::TaskSpec& spec, const v1::InFlightRound& in_flight,
                                 uint32_t round);
  // `metrics` (an evaluation's) into `record`'s, where the round's own evaluation puts them.
  static void AddEvaluation(const google::protobuf::RepeatedPtrField<v1::Metric>& metrics,
                            v1::RoundRecord* record);
  // The round's evaluation of in_flight.next_model(); its metrics go into `in_flight`. A
  // failed evaluation is a drop line, not a failed round. false if the task stopped.
  // `model_delta` is the evaluated model as a delta from the round's fit model, which the
  // cohort holds (null: none), for the sites that say so.
  absl::StatusOr<bool> RunEvaluation(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                     uint32_t round, Strategy& strategy,
                                     std::shared_ptr<const ModelDeltaBytes> model_delta);
  // Round `round`'s own evaluation session of its fit's result (in_flight's next model),
  // which is stored first unless `fit_stored` (RunFit keeps it in memory); `global`, the
  // fit model, is released before the session (the evaluated model goes as a delta from
  // it). As RunEvaluation: false if the task stopped.
  absl::StatusOr<bool> EvaluateFit(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                   uint32_t round, Strategy& strategy, bool fit_stored,
                                   std::vector<float>& global);
  // Commits `round` and, when its session evaluated the previous round's model, `previous`
  // (round - 1's committed record) with those metrics, in one write; returns the record.
  absl::StatusOr<v1::RoundRecord> CommitTrainingRound(v1::TaskRecord& task,
                                                      const v1::InFlightRound& in_flight,
                                                      uint32_t round,
                                                      const v1::RoundRecord* previous);
  // Commits round 0 from pooled statistics (computed now or reused).
  absl::Status CommitStatistics(v1::TaskRecord& task, const v1::PooledStatisticsRecord& pooled,
                                const v1::InFlightRound& in_flight, bool reused);

  // Runs `plan` until a session completes, resuming the session `in_flight` holds, keeping
  // `in_flight` in the store at every step boundary (task_runner_stage.cc).
  StageEnd RunDurableStage(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                           const StagePlan& plan);
  // Fills `request` for the stage's next session: the one `in_flight` holds (to resume), or
  // a new one over a cohort without the sites that already contributed. A StageEnd when
  // there is none to run (halted, attempts out, no cohort possible, a refused threshold).
  std::optional<StageEnd> OpenSession(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                      const StagePlan& plan, SecureStageRequest* request);
  // The session's state at a step boundary (the serialized snapshot before `round`, taken
  // from `snapshot` once the previous one is let go of) into `in_flight` and the store,
  // after charging the stage's release to the privacy budget if `round` is the unmasking.
  // RESOURCE_EXHAUSTED if the budget cannot pay for it (the session stops there).
  absl::Status PersistBoundary(const v1::TaskSpec& spec, const StagePlan& plan,
                               v1::SecAggRound round,
                               const SecureStageRequest::SnapshotSource& snapshot,
                               v1::InFlightRound& in_flight);
  // Records a session's outcome in `in_flight`; the stage's end, or nullopt for another
  // attempt (already recorded and paused for).
  std::optional<StageEnd> CloseSession(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                       const StagePlan& plan, SecureStageResult result);
  // Who takes part in a session, and the wait for them (task_runner_cohort.cc).
  // TaskSpec.approval_timeout_seconds (its default when unset).
  static absl::Duration ApprovalTimeout(const v1::TaskSpec& spec);
  // Why the stage ends when its wait for approvals has lasted longer than the timeout,
  // naming the sites still awaiting approval; nullopt otherwise.
  std::optional<std::string> ApprovalOverdue(const v1::TaskRecord& task,
                                             const v1::InFlightRound& in_flight) const;
  // The first step's deadline of a new session: round_deadline_seconds, longer while the
  // stage waits for approvals.
  absl::Duration FirstStepDeadline(const v1::TaskSpec& spec,
                                   const v1::InFlightRound& in_flight) const;
  // Folds the decisions heard into the task record and writes it if one changed.
  void NoteDecisions(v1::TaskRecord& task, const SiteDecisions& heard);
  // The smallest cohort the task can run a stage with: min_clients, the secure-aggregation
  // threshold and the analytics minimum cohort, at least 1.
  static uint32_t NeededSites(const v1::TaskSpec& spec);
  // Waits until at least the cohort the task needs is connected among the sites holding
  // its dataset, leaving out `contributed` and `excluded` (LeftOut); returns them. Empty if halted
  // meanwhile, or if too few known sites are left (then `*unreachable` says why, the sites' own
  // reasons first). While it waits, task.waiting says why (written when it changes, cleared at the
  // end).
  std::vector<std::string> WaitForCohort(v1::TaskRecord& task, const v1::InFlightRound& in_flight,
                                         v1::Stage stage, const std::set<std::string>& contributed,
                                         const std::set<std::string>& excluded,
                                         std::string* unreachable);
  // The wait for a cohort in words (site_answers.h): `cohort` are the connected sites that
  // may take part, `need` the sites the stage needs.
  v1::TaskWaiting Waiting(const v1::TaskRecord& task, const std::vector<std::string>& cohort,
                          const std::set<std::string>& contributed,
                          const std::set<std::string>& excluded, uint32_t need) const;
  // Sets (or, with nullopt, clears) task.waiting and writes the task if it changed.
  void NoteWaiting(v1::TaskRecord& task, const std::optional<v1::TaskWaiting>& waiting);
  // The in-flight record of `round` (a fresh one if the store has none for it).
  absl::StatusOr<v1::InFlightRound> InFlightOf(uint32_t round);
  // The noise multipliers of every release charged to the task so far: committed rounds'
  // and the round in flight's.
  std::vector<double> ChargedReleases(const v1::InFlightRound& in_flight);

  // A completed session whose sum cannot be used (`why`: a refused check, a failed decode):
  // its attempt record says so (not completed, outcome `why`), the attempt counts as failed
  // (AttemptFailed) and `in_flight` is stored. true if the runner was halted meanwhile.
  absl::StatusOr<bool> UnusableSum(v1::InFlightRound& in_flight, uint32_t round,
                                   const SecureStageResult& result, const std::string& why);
  // The sites a new session of `stage` leaves out besides those that contributed: sites that
  // rejected the task or are out of budget, sites out of the round (in_flight.sites_out),
  // and for FIT and EVALUATE the sites holding the dataset outside the statistics cohort.
  std::set<std::string> LeftOut(const v1::TaskRecord& task, const v1::InFlightRound& in_flight,
                                v1::Stage stage) const;
  // Records in `in_flight` every site of `attempt` that declined for a cause no retry can
  // fix: out of the round, with a drop line and a log line.
  void NoteSitesOut(const v1::StageAttempt& attempt, v1::InFlightRound& in_flight);
  // Records a failed attempt (drop line and log) and pauses before the next; true if the
  // runner was halted meanwhile.
  bool AttemptFailed(uint32_t round, uint32_t attempt, const std::string& why,
                     v1::InFlightRound* in_flight);
  // A stage that ended without a sum: cancelled, stopped, out of budget or failed.
  absl::Status EndStage(v1::TaskRecord& task, const StageEnd& end, const std::string& what);

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
  // Noise multipliers of the releases of committed rounds (loaded when the task starts).
  std::vector<double> committed_releases_;

  mutable absl::Mutex mu_;
  Halt halt_ ABSL_GUARDED_BY(mu_) = Halt::kNone;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;

  SecureStageRunner secure_;
  std::thread thread_;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_TASK_RUNNER_H_
