#include "coordinator/task_runner.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/internal/model_bytes.h"
#include "coordinator/internal/round_records.h"
#include "coordinator/internal/setup_bytes.h"
#include "coordinator/privacy_accountant.h"
#include "coordinator/strategy.h"
#include "coordinator/sum_checks.h"
#include "crypto/hash.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/glm_layout.h"
#include "proto/model_delta.h"
#include "proto/model_layout.h"
#include "proto/validation_split.h"
#include "secagg/protocol.h"
#include "secagg/provenance.h"

namespace tessera::coordinator {

using internal::MakeMetric;
using internal::SetProvenance;
namespace {

// `next` as a delta from `base`, the model the cohort was sent last (proto/model_delta.h),
// for the sites that hold it; null if the encoding fails or saves nothing.
std::shared_ptr<const ModelDeltaBytes> ModelDeltaOf(std::span<const float> base,
                                                    std::span<const float> next) {
  absl::StatusOr<std::string> data = proto::EncodeModelDelta(base, next);
  if (!data.ok() || data->size() >= 4 * next.size()) return nullptr;
  return std::make_shared<const ModelDeltaBytes>(ModelDeltaBytes{
      crypto::HashModel(base), std::make_shared<const std::string>(*std::move(data))});
}

}  // namespace

std::span<const float> TaskRunner::NextModel(const v1::InFlightRound& in_flight) {
  return {in_flight.next_model().values().data(),
          static_cast<size_t>(in_flight.next_model().values_size())};
}

void TaskRunner::StagePlan::SetModel(std::span<const float> values) {
  model = [values]() -> absl::StatusOr<std::shared_ptr<const std::string>> {
    return internal::SerializedModel(values);
  };
  first_item.set_model_hash(crypto::HashModel(values));
}

TaskRunner::TaskRunner(std::string task_id, Store* store, WorkBoard* board,
                       ClientRegistry* registry, const common::Clock* clock,
                       std::string ca_cert_pem, TaskRunnerOptions options)
    : task_id_(std::move(task_id)),
      store_(store),
      board_(board),
      registry_(registry),
      clock_(clock),
      options_(options),
      secure_(board, clock, std::move(ca_cert_pem), options.observer) {}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::Start() {
  thread_ = std::thread([this] { Main(); });
}

void TaskRunner::Cancel(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (halt_ == Halt::kNone) {
      halt_ = Halt::kCancel;
      cancel_reason_ = reason;
    }
  }
  secure_.Cancel();
}

void TaskRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    halt_ = Halt::kStop;
  }
  secure_.Cancel();
  if (thread_.joinable()) thread_.join();
}

bool TaskRunner::Done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

TaskRunner::Halt TaskRunner::halt() const {
  absl::MutexLock lock(&mu_);
  return halt_;
}

std::string TaskRunner::CancelReason() const {
  absl::MutexLock lock(&mu_);
  return cancel_reason_;
}

bool TaskRunner::PauseOrHalt(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto halted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return halt_ != Halt::kNone; };
  // On the runner's clock, as every other wait of the task (a fake clock's in tests).
  return clock_->AwaitWithDeadline(&mu_, absl::Condition(&halted), clock_->Now() + d);
}

void TaskRunner::Main() {
  absl::Status st = RunTask();
  if (!st.ok()) {
    // A store failure: the task keeps its last committed state and resumes from it when
    // the coordinator restarts.
    common::LogError("task_runner_stopped").With("task", task_id_).With("error", st.ToString());
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}

absl::Status TaskRunner::Finish(v1::TaskRecord& task, v1::TaskState state,
                                const std::string& reason) {
  // The round in flight ends with the task: what it charged stays on the task's record.
  absl::StatusOr<v1::InFlightRound> in_flight = store_->GetInFlight(task_id_);
  if (!in_flight.ok() && in_flight.status().code() != absl::StatusCode::kNotFound) {
    return in_flight.status();
  }
  if (in_flight.ok()) {
    for (const v1::PrivacyRelease& r : in_flight->releases()) {
      *task.add_uncommitted_releases() = r;
    }
    if (state == v1::TASK_FAILED) {
      *task.mutable_failed_round_attempts() = in_flight->stage_attempts();
    }
  }
  task.clear_waiting();
  task.set_state(state);
  task.set_state_reason(reason);
  task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
  RETURN_IF_ERROR(store_->UpdateTask(task));
  if (in_flight.ok()) RETURN_IF_ERROR(store_->DeleteInFlight(task_id_));
  common::LogInfo("task_finished")
      .With("task", task_id_)
      .With("state", v1::TaskState_Name(state))
      .With("reason", reason);
  return absl::OkStatus();
}

absl::StatusOr<bool> TaskRunner::UnusableSum(v1::InFlightRound& in_flight, uint32_t round,
                                             const SecureStageResult& result,
                                             const std::string& why) {
  for (v1::StageAttempt& a : *in_flight.mutable_stage_attempts()) {
    if (a.session() != result.attempt.session()) continue;
    a.set_completed(false);
    a.set_outcome(why);
  }
  common::LogWarning("sum_unusable")
      .With("task", task_id_)
      .With("round", round)
      .With("session", result.attempt.session())
      .With("why", why);
  in_flight.set_attempt(in_flight.attempt() + 1);
  if (AttemptFailed(round, in_flight.attempt() - 1, why, &in_flight)) return true;
  RETURN_IF_ERROR(store_->PutInFlight(in_flight));
  return false;
}

bool TaskRunner::AttemptFailed(uint32_t round, uint32_t attempt, const std::string& why,
                               v1::InFlightRound* in_flight) {
  in_flight->add_drops(absl::StrCat("attempt ", attempt, " failed: ", why));
  common::LogWarning("attempt_failed")
      .With("task", task_id_)
      .With("round", round)
      .With("attempt", attempt)
      .With("why", why);
  return PauseOrHalt(options_.retry_pause);
}

absl::Status TaskRunner::EndStage(v1::TaskRecord& task, const StageEnd& end,
                                  const std::string& what) {
  switch (end.kind) {
    case StageEnd::Kind::kHalted:
      if (halt() == Halt::kCancel) {
        return Finish(task, v1::TASK_CANCELLED, CancelReason());
      }
      return absl::OkStatus();  // stopped: the round in flight resumes at the next start
    case StageEnd::Kind::kBudget:
      return Finish(
          task, v1::TASK_COMPLETED,
          absl::StrCat(end.reason, "; ", task.last_committed_round(), " rounds committed"));
    case StageEnd::Kind::kStoreError:
      return absl::UnavailableError(absl::StrCat(what, ": ", end.reason));
    case StageEnd::Kind::kFailed:
    case StageEnd::Kind::kCompleted:
      break;
  }
  // "round 3 failed after 20 attempts: site-c declined ...", "round 3 failed: <why>".
  const bool attempts_out = end.reason.rfind("after ", 0) == 0;
  return Finish(task, v1::TASK_FAILED,
                absl::StrCat(what, " failed", attempts_out ? " " : ": ", end.reason));
}

absl::Status TaskRunner::RunTask() {
  ASSIGN_OR_RETURN(v1::TaskRecord task, store_->GetTask(task_id_));
  if (task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
      task.state() == v1::TASK_CANCELLED) {
    return absl::OkStatus();
  }
  if (task.state() != v1::TASK_RUNNING) {
    task.set_state(v1::TASK_RUNNING);
    task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
    RETURN_IF_ERROR(store_->UpdateTask(task));
  }
  common::LogInfo("task_running")
      .With("task", task_id_)
      .With("name", task.spec().name())
      .With("last_committed_round", task.last_committed_round());
  {
    ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id_));
    committed_releases_.clear();
    for (const v1::RoundRecord& r : rounds) {
      for (const v1::PrivacyRelease& release : r.releases()) {
        committed_releases_.push_back(release.noise_multiplier());
      }
    }
  }
  if (task.spec().has_analytics()) return RunAnalytics(task);
  if (task.last_committed_round() < 0) {
    RETURN_IF_ERROR(RunStatisticsRound(task));
    if (task.state() != v1::TASK_RUNNING || halt() != Halt::kNone) return absl::OkStatus();
  }
  if (proto::IsGlmTask(task.spec())) return RunGlmRounds(task);
  return RunTrainingRounds(task);
}

absl::StatusOr<std::vector<float>> TaskRunner::StoredFitModel(uint32_t round,
                                                              const std::string& hash) {
  ASSIGN_OR_RETURN(std::vector<float> stored, store_->GetCheckpoint(task_id_, round - 1));
  if (crypto::HashModel(stored) != hash) {
    return absl::DataLossError(absl::StrCat("checkpoint of ", task_id_, " round ", round - 1,
                                            " is not the model round ", round, " was sent"));
  }
  return stored;
}

absl::StatusOr<std::shared_ptr<const std::string>> TaskRunner::StoredFitModelBytes(
    uint32_t round, const std::string& hash) {
  ASSIGN_OR_RETURN(std::string stored, store_->GetCheckpointBytes(task_id_, round - 1));
  // HashModel is the SHA-256 of the floats' little-endian words: the packed field's bytes.
  const std::optional<std::string_view> words = internal::PackedModelWords(stored);
  if (!words.has_value() || crypto::Sha256(*words) != hash) {
    return absl::DataLossError(absl::StrCat("checkpoint of ", task_id_, " round ", round - 1,
                                            " is not the model round ", round, " was sent"));
  }
  return std::make_shared<const std::string>(std::move(stored));
}

absl::StatusOr<bool> TaskRunner::RunFit(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                        uint32_t round, std::vector<float>& global,
                                        Strategy& strategy, bool evaluate_previous,
                                        std::shared_ptr<const ModelDeltaBytes> delta) {
  const v1::TaskSpec& spec = task.spec();
  const size_t num_params = global.size();
  StagePlan plan;
  plan.stage = evaluate_previous ? v1::STAGE_FIT_EVALUATE : v1::STAGE_FIT;
  plan.round = round;
  const std::string hash = crypto::HashModel(global);
  plan.first_item.set_model_hash(hash);
  plan.model = [this, round, &hash]() -> absl::StatusOr<std::shared_ptr<const std::string>> {
    return StoredFitModelBytes(round, hash);
  };
  // Not held while the sessions run: read back for the update.
  std::vector<float>().swap(global);
  plan.model_delta = std::move(delta);
  *plan.first_item.mutable_standardization() = task.standardization();
  plan.first_item.set_l2(task.l2());
  if (spec.has_privacy()) plan.noise_multiplier = spec.privacy().noise_multiplier();
  while (true) {
    StageEnd end = RunDurableStage(task, in_flight, plan);
    if (end.kind != StageEnd::Kind::kCompleted) {
      RETURN_IF_ERROR(EndStage(task, end, absl::StrCat("round ", round)));
      return false;
    }
    // A FIT_EVALUATE sum is the FIT sum followed by the previous model's EVALUATE sum. The
    // FIT part is moved into the update (DecodeFit), not copied.
    std::vector<double> fit_sums = std::move(end.result.sums);
    std::vector<double> evaluation_sums;
    if (evaluate_previous) {
      const size_t fit_length = std::min(proto::FitLength(num_params), fit_sums.size());
      evaluation_sums.assign(fit_sums.begin() + static_cast<std::ptrdiff_t>(fit_length),
                             fit_sums.end());
      fit_sums.resize(fit_length);
    }
    const auto survivors = static_cast<uint32_t>(end.result.survivors.size());
    const absl::Status checked = CheckFitSum(fit_sums, num_params, spec.secure_aggregation().clip(),
                                             survivors, spec.has_privacy());
    absl::StatusOr<proto::AveragedUpdate> update =
        checked.ok() ? proto::DecodeFit(std::move(fit_sums), num_params)
                     : absl::StatusOr<proto::AveragedUpdate>(checked);
    if (update.ok() && global.empty()) {
      ASSIGN_OR_RETURN(global, StoredFitModel(round, hash));
    }
    absl::StatusOr<std::vector<float>> next =
        update.ok() ? strategy.AggregateFit(round, global, *update)
                    : absl::StatusOr<std::vector<float>>(update.status());
    if (!next.ok()) {
      ASSIGN_OR_RETURN(bool halted, UnusableSum(in_flight, round, end.result,
                                                std::string(next.status().message())));
      if (!halted) continue;
      RETURN_IF_ERROR(
          EndStage(task, StageEnd{StageEnd::Kind::kHalted, {}, ""}, absl::StrCat("round ", round)));
      return false;
    }
    const double pooled_rows = static_cast<double>(task.standardization().num_train_rows());
    in_flight.set_fit_done(true);
    // Model-sized and done with (8 bytes a parameter): freed before the next model is
    // copied into the record, the coordinator's peak at d = 10^6 otherwise.
    std::vector<double>().swap(update->mean_delta);
    in_flight.mutable_next_model()->mutable_values()->Assign(next->begin(), next->end());
    // Freed before the record is written, which copies the next model twice more for a
    // moment.
    std::vector<float>().swap(*next);
    *in_flight.mutable_fit_participants() = {end.result.survivors.begin(),
                                             end.result.survivors.end()};
    *in_flight.add_metrics() =
        MakeMetric("train_examples", std::round(update->total_examples * pooled_rows));
    in_flight.set_strategy_state(strategy.SaveState());
    if (evaluate_previous) {
      // The previous round's metrics: kept for its record, which this round's commit
      // rewrites. A refused evaluation part costs the metrics only, as a refused EVALUATE
      // sum does.
      in_flight.set_previous_evaluated(true);
      absl::StatusOr<std::vector<v1::Metric>> metrics =
          EvaluationMetrics(task, round - 1, evaluation_sums, survivors, strategy);
      if (metrics.ok()) {
        *in_flight.mutable_previous_metrics() = {metrics->begin(), metrics->end()};
        *in_flight.mutable_previous_eval_participants() = {end.result.survivors.begin(),
                                                           end.result.survivors.end()};
      } else {
        in_flight.set_previous_skipped(std::string(metrics.status().message()));
      }
    }
    if (end.result.provenance.has_value()) *in_flight.add_provenance() = *end.result.provenance;
    return true;
  }
}

absl::StatusOr<std::vector<v1::Metric>> TaskRunner::EvaluationMetrics(const v1::TaskRecord& task,
                                                                      uint32_t round,
                                                                      std::span<const double> sums,
                                                                      uint32_t survivors,
                                                                      Strategy& strategy) const {
  const v1::TaskSpec& spec = task.spec();
  ASSIGN_OR_RETURN(const proto::EvaluationLayout layout, proto::MakeEvaluationLayout(spec.model()));
  proto::EvaluationDecodeOptions decode;
  if (proto::EvaluationNoiseOn(spec)) {
    decode.noise_stddev = proto::EvaluationNoiseStddev(spec.privacy(), layout);
    decode.label_stddev = task.standardization().label_stddev();
  }
  RETURN_IF_ERROR(CheckEvaluationSum(spec.model(), sums, survivors, decode.noise_stddev > 0));
  ASSIGN_OR_RETURN(auto decoded, proto::DecodeEvaluation(layout, sums, decode));
  std::vector<v1::Metric> metrics;
  metrics.reserve(decoded.size());
  for (const auto& [name, value] : decoded) metrics.push_back(MakeMetric(name, value));
  return strategy.AggregateEvaluate(round, std::move(metrics));
}

absl::StatusOr<bool> TaskRunner::RunEvaluation(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                               uint32_t round, Strategy& strategy,
                                               std::shared_ptr<const ModelDeltaBytes> model_delta) {
  const v1::TaskSpec& spec = task.spec();
  StagePlan plan;
  plan.stage = v1::STAGE_EVALUATE;
  plan.round = round;
  plan.SetModel(NextModel(in_flight));
  plan.model_delta = std::move(model_delta);
  *plan.first_item.mutable_standardization() = task.standardization();
  plan.first_item.set_l2(task.l2());
  plan.retry = false;
  plan.wait_for_cohort = false;
  if (proto::EvaluationNoiseOn(spec)) {
    plan.noise_multiplier = spec.privacy().evaluation_noise_multiplier();
  }
  StageEnd end = RunDurableStage(task, in_flight, plan);
  switch (end.kind) {
    case StageEnd::Kind::kCompleted:
      break;
    case StageEnd::Kind::kFailed:
      in_flight.add_drops(absl::StrCat("evaluation skipped: ", end.reason));
      in_flight.set_eval_done(true);
      RETURN_IF_ERROR(store_->PutInFlight(in_flight));
      return true;
    default:
      RETURN_IF_ERROR(EndStage(task, end, absl::StrCat("round ", round)));
      return false;
  }
  in_flight.set_eval_done(true);
  absl::StatusOr<std::vector<v1::Metric>> metrics = EvaluationMetrics(
      task, round, end.result.sums, static_cast<uint32_t>(end.result.survivors.size()), strategy);
  if (!metrics.ok()) {
    // Nothing of a refused sum is kept: the round commits without metrics.
    for (v1::StageAttempt& a : *in_flight.mutable_stage_attempts()) {
      if (a.session() != end.result.attempt.session()) continue;
      a.set_completed(false);
      a.set_outcome(std::string(metrics.status().message()));
    }
    in_flight.add_drops(absl::StrCat("evaluation skipped: ", metrics.status().message()));
    RETURN_IF_ERROR(store_->PutInFlight(in_flight));
    return true;
  }
  for (v1::Metric& m : *metrics) *in_flight.add_metrics() = std::move(m);
  *in_flight.mutable_eval_participants() = {end.result.survivors.begin(),
                                            end.result.survivors.end()};
  if (end.result.provenance.has_value()) *in_flight.add_provenance() = *end.result.provenance;
  RETURN_IF_ERROR(store_->PutInFlight(in_flight));
  return true;
}

absl::StatusOr<bool> TaskRunner::EvaluateFit(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                             uint32_t round, Strategy& strategy, bool fit_stored,
                                             std::vector<float>& global) {
  // The fit's result is stored before the evaluation session (RunFit keeps it in memory:
  // without an evaluation the commit that follows stores it, one synced write instead
  // of two, and at d = 10^6 the new model written once).
  if (!fit_stored) RETURN_IF_ERROR(store_->PutInFlight(in_flight));
  // The evaluated model goes as a delta from the fit's; the fit's model is not needed
  // after that (the round ends with the evaluated one): not held through the session.
  std::shared_ptr<const ModelDeltaBytes> eval_delta = ModelDeltaOf(global, NextModel(in_flight));
  std::vector<float>().swap(global);
  return RunEvaluation(task, in_flight, round, strategy, std::move(eval_delta));
}

absl::Status TaskRunner::RunTrainingRounds(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  ASSIGN_OR_RETURN(size_t num_params, proto::NumParameters(spec.model(), d));
  ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(spec.strategy(), num_params));
  const uint32_t last = static_cast<uint32_t>(task.last_committed_round());
  ASSIGN_OR_RETURN(std::vector<float> global, CheckpointOf(last, num_params));
  ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id_));
  if (!rounds.empty()) RETURN_IF_ERROR(strategy->RestoreState(rounds.back().strategy_state()));
  // With a validation split: the selection metric's curve so far; training may be over
  // already (a restart after the round that ended it).
  const bool split = proto::HasValidationSplit(spec);
  std::vector<proto::RoundValue> curve;
  if (split) {
    curve = ValidationCurve(spec, rounds);
    if (TrainingOver(task, curve)) return EndTraining(task, curve, "");
  }
  // The last committed round's record: one session per round adds its evaluation to it.
  std::optional<v1::RoundRecord> previous;
  if (!rounds.empty()) previous = std::move(rounds.back());
  rounds.clear();
  // `global` as a delta from the model the cohort was sent last, from round 2 on; after a
  // restart the first round's model goes whole.
  std::shared_ptr<const ModelDeltaBytes> delta;

  for (uint32_t round = last + 1; round <= spec.rounds(); ++round) {
    ASSIGN_OR_RETURN(v1::InFlightRound in_flight, InFlightOf(round));
    // With differential privacy a round starts only if the budget covers its releases: its
    // model-update sum, and its evaluation sum when that is noised.
    ASSIGN_OR_RETURN(std::optional<std::string> spent, BudgetSpent(spec, in_flight, round));
    if (spent.has_value()) {
      if (split) return EndTraining(task, curve, *spent);
      return Finish(task, v1::TASK_COMPLETED, *spent);
    }
    const bool fit_stored = in_flight.fit_done();
    if (fit_stored) {
      // Resumed after the update was applied: the strategy's state after it is stored.
      RETURN_IF_ERROR(strategy->RestoreState(in_flight.strategy_state()));
    } else {
      const bool evaluate_previous =
          OneSessionPerRound(spec) && previous.has_value() && EvaluatedLater(*previous, *strategy);
      ASSIGN_OR_RETURN(bool fitted, RunFit(task, in_flight, round, global, *strategy,
                                           evaluate_previous, std::move(delta)));
      if (!fitted) return absl::OkStatus();
    }
    // The round's own evaluation session: every round's when evaluations are noised (or
    // one session per round is off), else only the last round's model, which no later
    // session carries.
    ASSIGN_OR_RETURN(const bool last_round, LastRound(spec, in_flight, round));
    const bool evaluates =
        (!OneSessionPerRound(spec) || last_round) && strategy->ConfigureEvaluate(round);
    if (evaluates && !in_flight.eval_done()) {
      ASSIGN_OR_RETURN(bool evaluated,
                       EvaluateFit(task, in_flight, round, *strategy, fit_stored, global));
      if (!evaluated) return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(
        v1::RoundRecord committed,
        CommitTrainingRound(task, in_flight, round, previous.has_value() ? &*previous : nullptr));
    previous = std::move(committed);
    {
      // The cohort was sent this round's fit model, then the new one if a session evaluated it.
      const std::span<const float> next = NextModel(in_flight);
      delta = ModelDeltaOf(evaluates ? next : std::span<const float>(global), next);
      global.assign(next.begin(), next.end());
    }
    if (split) {
      if (in_flight.previous_evaluated() && in_flight.previous_skipped().empty()) {
        ExtendCurve(spec, round - 1, in_flight.previous_metrics(), &curve);
      }
      ExtendCurve(spec, round, previous->metrics(), &curve);
      if (TrainingOver(task, curve)) return EndTraining(task, curve, "");
    }
  }
  if (task.state() == v1::TASK_COMPLETED) {
    common::LogInfo("task_finished")
        .With("task", task_id_)
        .With("state", v1::TaskState_Name(task.state()));
  }
  return absl::OkStatus();
}

bool TaskRunner::OneSessionPerRound(const v1::TaskSpec& spec) {
  return !proto::EvaluationNoiseOn(spec);
}

bool TaskRunner::EvaluatedLater(const v1::RoundRecord& previous, const Strategy& strategy) {
  if (previous.round() == 0 || !strategy.ConfigureEvaluate(previous.round())) return false;
  // A round that ran its own evaluation session (the last round of a run, or one
  // committed by an older coordinator) is not evaluated again: the sites would refuse.
  for (const v1::StageAttempt& a : previous.stage_attempts()) {
    if (a.stage() == v1::STAGE_EVALUATE) return false;
  }
  return previous.evaluated_in_round() == 0;
}

absl::StatusOr<std::vector<float>> TaskRunner::CheckpointOf(uint32_t round, size_t num_params) {
  ASSIGN_OR_RETURN(std::vector<float> model, store_->GetCheckpoint(task_id_, round));
  if (model.size() != num_params) {
    return absl::DataLossError(absl::StrCat("checkpoint of ", task_id_, " round ", round, " has ",
                                            model.size(), " parameters, expected ", num_params));
  }
  return model;
}

absl::StatusOr<std::optional<std::string>> TaskRunner::BudgetSpent(
    const v1::TaskSpec& spec, const v1::InFlightRound& in_flight, uint32_t round) {
  if (!spec.has_privacy() || in_flight.fit_done() || !in_flight.releases().empty()) {
    return std::nullopt;
  }
  ASSIGN_OR_RETURN(double epsilon, EpsilonWithRound(spec, in_flight));
  if (epsilon <= spec.privacy().epsilon_budget()) return std::nullopt;
  return absl::StrCat("privacy budget spent: round ", round, " would reach epsilon ", epsilon,
                      " > ", spec.privacy().epsilon_budget(), "; ", round - 1, " rounds committed");
}

absl::StatusOr<double> TaskRunner::EpsilonWithRound(const v1::TaskSpec& spec,
                                                    const v1::InFlightRound& in_flight) {
  std::vector<double> charged = ChargedReleases(in_flight);
  charged.push_back(spec.privacy().noise_multiplier());
  if (spec.privacy().evaluation_noise_multiplier() > 0) {
    charged.push_back(spec.privacy().evaluation_noise_multiplier());
  }
  return EpsilonOfReleases(charged, spec.privacy().delta());
}

absl::StatusOr<bool> TaskRunner::LastRound(const v1::TaskSpec& spec,
                                           const v1::InFlightRound& in_flight, uint32_t round) {
  if (round >= spec.rounds()) return true;
  if (!spec.has_privacy()) return false;
  // The next round would not start: its releases on top of this round's exceed the budget.
  ASSIGN_OR_RETURN(const double epsilon, EpsilonWithRound(spec, in_flight));
  return epsilon > spec.privacy().epsilon_budget();
}

}  // namespace tessera::coordinator
