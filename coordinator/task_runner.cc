#include "coordinator/task_runner.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/privacy_accountant.h"
#include "coordinator/strategy.h"
#include "crypto/hash.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/model_layout.h"
#include "secagg/protocol.h"
#include "secagg/stage_encoding.h"

namespace tessera::coordinator {
namespace {

v1::Metric MakeMetric(const std::string& name, double value) {
  v1::Metric m;
  m.set_name(name);
  m.set_value(value);
  return m;
}

void SetModel(std::span<const float> model, v1::WorkItem* item) {
  item->mutable_model()->mutable_values()->Assign(model.begin(), model.end());
  item->set_model_hash(crypto::HashModel(model));
}

// An analytics answer as round metrics, released cells only: "<column>.count", ".sum",
// ".mean", ".variance", and for a histogram ".bin[<lo>,<hi>)" per bin with ".below" and
// ".above"; always "<column>.suppressed_cells". A suppressed cell has no metric at all.
std::vector<v1::Metric> AnalyticsMetrics(const proto::QueryRelease& q) {
  std::vector<v1::Metric> out;
  if (q.main) {
    out = {MakeMetric(q.column + ".count", q.main->count),
           MakeMetric(q.column + ".sum", q.main->sum), MakeMetric(q.column + ".mean", q.main->mean),
           MakeMetric(q.column + ".variance", q.main->variance)};
  }
  for (size_t i = 0; i < q.bins.size() && i + 1 < q.edges.size(); ++i) {
    if (!q.bins[i]) continue;
    out.push_back(MakeMetric(absl::StrCat(q.column, ".bin[", q.edges[i], ",", q.edges[i + 1],
                                          i + 2 == q.edges.size() ? "]" : ")"),
                             *q.bins[i]));
  }
  if (q.below) out.push_back(MakeMetric(q.column + ".below", *q.below));
  if (q.above) out.push_back(MakeMetric(q.column + ".above", *q.above));
  out.push_back(MakeMetric(q.column + ".suppressed_cells", q.suppressed_cells));
  return out;
}

// The secure-aggregation threshold for `n` invited sites: the task's own, or floor(2n/3)+1,
// never below min_clients nor a strict majority.
uint32_t Threshold(const v1::TaskSpec& spec, uint32_t n) {
  uint32_t t = spec.secure_aggregation().threshold() > 0 ? spec.secure_aggregation().threshold()
                                                         : secagg::DefaultThreshold(n);
  return std::max(
      {t, spec.min_clients(), spec.analytics().min_cohort(), secagg::MinimumSafeThreshold(n)});
}

}  // namespace

TaskRunner::TaskRunner(std::string task_id, Store* store, WorkBoard* board,
                       ClientRegistry* registry, const common::Clock* clock,
                       std::string ca_cert_pem, TaskRunnerOptions options)
    : task_id_(std::move(task_id)),
      store_(store),
      board_(board),
      registry_(registry),
      clock_(clock),
      options_(options),
      secure_(board, clock, std::move(ca_cert_pem)) {}

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
  return mu_.AwaitWithTimeout(absl::Condition(&halted), d);
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
  task.set_state(state);
  task.set_state_reason(reason);
  task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
  RETURN_IF_ERROR(store_->UpdateTask(task));
  common::LogInfo("task_finished")
      .With("task", task_id_)
      .With("state", v1::TaskState_Name(state))
      .With("reason", reason);
  return absl::OkStatus();
}

bool TaskRunner::AttemptFailed(uint32_t round, uint32_t attempt, const absl::Status& why,
                               std::vector<std::string>* drops) {
  drops->push_back(absl::StrCat("attempt ", attempt, " failed: ", why.message()));
  common::LogWarning("attempt_failed")
      .With("task", task_id_)
      .With("round", round)
      .With("attempt", attempt)
      .With("why", std::string(why.message()));
  return PauseOrHalt(options_.retry_pause);
}

absl::Status TaskRunner::EndWithoutCommit(v1::TaskRecord& task, const std::string& what) {
  if (halt() == Halt::kCancel) return Finish(task, v1::TASK_CANCELLED, CancelReason());
  if (halt() == Halt::kStop) return absl::OkStatus();
  return Finish(
      task, v1::TASK_FAILED,
      absl::StrCat(what, " failed after ", task.spec().max_round_attempts(), " attempts"));
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
  if (task.spec().has_analytics()) return RunAnalytics(task);
  if (task.last_committed_round() < 0) {
    RETURN_IF_ERROR(RunStatisticsRound(task));
    if (task.state() != v1::TASK_RUNNING || halt() != Halt::kNone) return absl::OkStatus();
  }
  return RunTrainingRounds(task);
}

std::vector<std::string> TaskRunner::WaitForCohort(const v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const uint32_t need = std::max(
      {spec.min_clients(), spec.secure_aggregation().threshold(), spec.analytics().min_cohort()});
  absl::Time next_log = absl::InfinitePast();
  while (halt() == Halt::kNone) {
    std::vector<std::string> cohort = registry_->Connected(spec.dataset().id());
    if (cohort.size() >= need) return cohort;
    if (clock_->Now() >= next_log) {
      common::LogInfo("waiting_for_clients")
          .With("task", task_id_)
          .With("dataset", spec.dataset().id())
          .With("connected", static_cast<uint64_t>(cohort.size()))
          .With("needed", need);
      next_log = clock_->Now() + absl::Seconds(30);
    }
    PauseOrHalt(options_.cohort_poll_interval);
  }
  return {};
}

SecureStageResult TaskRunner::RunStage(const v1::TaskRecord& task, v1::Stage stage, uint32_t round,
                                       uint32_t attempt, const std::vector<std::string>& cohort,
                                       v1::WorkItem first_item, v1::SecAggEncoding encoding) {
  const v1::TaskSpec& spec = task.spec();
  first_item.set_task_id(task_id_);
  first_item.set_round(round);
  first_item.set_stage(stage);
  *first_item.mutable_spec() = spec;
  first_item.set_spec_hash(task.spec_hash());
  SecureStageRequest request;
  request.task_id = task_id_;
  request.round = round;
  request.stage = stage;
  request.attempt = attempt;
  request.cohort = cohort;
  request.first_item = std::move(first_item);
  request.encoding = std::move(encoding);
  request.threshold = Threshold(spec, static_cast<uint32_t>(cohort.size()));
  request.first_step_deadline = absl::Seconds(spec.round_deadline_seconds());
  request.step_deadline = absl::Seconds(spec.secure_aggregation().step_deadline_seconds());
  SecureStageResult result = secure_.Run(request);
  for (const std::string& c : result.unresponsive) registry_->MarkUnresponsive(c);
  for (const std::string& drop : result.drops) {
    common::LogInfo("client_dropped").With("task", task_id_).With("round", round).With("why", drop);
  }
  return result;
}

absl::Status TaskRunner::RunStatisticsRound(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  // Regression and survival tasks pool the label too, as one more column.
  const bool with_label = proto::StatisticsIncludeLabel(spec.model());
  const size_t columns = d + (with_label ? 1 : 0);
  const absl::Time started = clock_->Now();
  std::vector<std::string> drops;
  for (uint32_t attempt = 1; attempt <= spec.max_round_attempts(); ++attempt) {
    std::vector<std::string> cohort = WaitForCohort(task);
    if (cohort.empty()) break;  // halted
    SecureStageResult result =
        RunStage(task, v1::STAGE_STATISTICS, 0, attempt, cohort, v1::WorkItem(),
                 secagg::StatisticsEncoding(columns, static_cast<uint32_t>(cohort.size())));
    drops.insert(drops.end(), result.drops.begin(), result.drops.end());
    if (halt() != Halt::kNone) break;
    absl::StatusOr<proto::PooledStatistics> pooled =
        result.completed
            ? proto::DecodeStatistics(result.sums, columns)
            : absl::StatusOr<proto::PooledStatistics>(absl::AbortedError(result.abort));
    if (!pooled.ok()) {
      if (AttemptFailed(0, attempt, pooled.status(), &drops)) break;
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<float> initial,
                     proto::InitialParameters(spec.model(), d, spec.seed()));
    v1::Standardization* s = task.mutable_standardization();
    s->mutable_mean()->Assign(pooled->mean.begin(), pooled->mean.begin() + d);
    s->mutable_stddev()->Assign(pooled->stddev.begin(), pooled->stddev.begin() + d);
    s->set_num_train_rows(pooled->num_rows);
    if (with_label) {
      s->set_label_mean(pooled->mean[d]);
      s->set_label_stddev(pooled->stddev[d]);
    }
    double l2 = spec.model().l2();
    if (spec.model().inverse_regularization() > 0) {
      l2 = 1.0 / (spec.model().inverse_regularization() * static_cast<double>(pooled->num_rows));
    }
    task.set_l2(l2);
    task.set_last_committed_round(0);
    task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));

    v1::RoundRecord record;
    record.set_task_id(task_id_);
    record.set_round(0);
    for (const std::string& c : result.survivors) record.add_fit_participants(c);
    *record.add_metrics() = MakeMetric("num_train_rows", static_cast<double>(pooled->num_rows));
    record.set_model_hash(crypto::HashModel(initial));
    record.set_started_unix_ms(common::ToUnixMillis(started));
    record.set_committed_unix_ms(common::ToUnixMillis(clock_->Now()));
    record.set_attempts(attempt);
    for (const std::string& drop : drops) record.add_drops(drop);
    RETURN_IF_ERROR(store_->CommitRound(task, record, initial));
    common::LogInfo("round_committed")
        .With("task", task_id_)
        .With("round", 0)
        .With("sites", static_cast<uint64_t>(result.survivors.size()))
        .With("train_rows", pooled->num_rows);
    return absl::OkStatus();
  }
  return EndWithoutCommit(task, "statistics round");
}

absl::Status TaskRunner::RunAnalytics(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const v1::AnalyticsSpec& analytics = spec.analytics();
  const size_t length = proto::AnalyticsLength(analytics);
  const absl::Time started = clock_->Now();
  std::vector<std::string> drops;
  for (uint32_t attempt = 1; attempt <= spec.max_round_attempts(); ++attempt) {
    std::vector<std::string> cohort = WaitForCohort(task);
    if (cohort.empty()) break;  // halted
    SecureStageResult result =
        RunStage(task, v1::STAGE_ANALYTICS, 1, attempt, cohort, v1::WorkItem(),
                 secagg::AnalyticsEncoding(length, static_cast<uint32_t>(cohort.size())));
    drops.insert(drops.end(), result.drops.begin(), result.drops.end());
    if (halt() != Halt::kNone) break;
    absl::StatusOr<std::vector<proto::QueryRelease>> answers =
        result.completed
            ? proto::ReleaseAnalytics(analytics, result.sums)
            : absl::StatusOr<std::vector<proto::QueryRelease>>(absl::AbortedError(result.abort));
    // The secure-aggregation threshold already keeps every sum over at least min_cohort
    // sites; this is the release rule said once more where the answer is made.
    if (answers.ok() && result.survivors.size() < std::max(analytics.min_cohort(), 1u)) {
      answers = absl::FailedPreconditionError(
          absl::StrCat(result.survivors.size(), " sites in the sums, fewer than min_cohort ",
                       analytics.min_cohort(), ": no answer released"));
    }
    if (!answers.ok()) {
      if (AttemptFailed(1, attempt, answers.status(), &drops)) break;
      continue;
    }
    v1::RoundRecord record;
    record.set_task_id(task_id_);
    record.set_round(1);
    for (const std::string& c : result.survivors) record.add_fit_participants(c);
    for (const proto::QueryRelease& q : *answers) {
      for (const v1::Metric& m : AnalyticsMetrics(q)) *record.add_metrics() = m;
    }
    task.set_last_committed_round(1);
    task.set_state(v1::TASK_COMPLETED);
    task.set_state_reason("query answered");
    task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
    record.set_model_hash(crypto::HashModel({}));
    record.set_started_unix_ms(common::ToUnixMillis(started));
    record.set_committed_unix_ms(common::ToUnixMillis(clock_->Now()));
    record.set_attempts(attempt);
    for (const std::string& drop : drops) record.add_drops(drop);
    RETURN_IF_ERROR(store_->CommitRound(task, record, {}));
    common::LogInfo("query_answered")
        .With("task", task_id_)
        .With("sites", static_cast<uint64_t>(result.survivors.size()))
        .With("queries", static_cast<uint64_t>(answers->size()));
    return absl::OkStatus();
  }
  return EndWithoutCommit(task, "query");
}

absl::Status TaskRunner::RunTrainingRounds(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  ASSIGN_OR_RETURN(size_t num_params, proto::NumParameters(spec.model(), d));
  ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(spec.strategy(), num_params));
  const uint32_t last = static_cast<uint32_t>(task.last_committed_round());
  ASSIGN_OR_RETURN(std::vector<float> global, store_->GetCheckpoint(task_id_, last));
  if (global.size() != num_params) {
    return absl::DataLossError(absl::StrCat("checkpoint of ", task_id_, " round ", last, " has ",
                                            global.size(), " parameters, expected ", num_params));
  }
  {
    ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id_));
    if (!rounds.empty()) RETURN_IF_ERROR(strategy->RestoreState(rounds.back().strategy_state()));
  }
  const double pooled_rows = static_cast<double>(task.standardization().num_train_rows());
  ASSIGN_OR_RETURN(const proto::EvaluationLayout layout, proto::MakeEvaluationLayout(spec.model()));

  for (uint32_t round = last + 1; round <= spec.rounds(); ++round) {
    // With differential privacy, a round runs only if the budget covers it: every round is
    // one Gaussian mechanism over the whole cohort (sampling rate 1).
    absl::StatusOr<double> epsilon_after = 0.0;
    if (spec.has_privacy()) {
      epsilon_after =
          GaussianEpsilon(spec.privacy().noise_multiplier(), 1.0, round, spec.privacy().delta());
      if (!epsilon_after.ok()) return epsilon_after.status();
      if (*epsilon_after > spec.privacy().epsilon_budget()) {
        return Finish(task, v1::TASK_COMPLETED,
                      absl::StrCat("privacy budget spent: round ", round, " would reach epsilon ",
                                   *epsilon_after, " > ", spec.privacy().epsilon_budget(), "; ",
                                   round - 1, " rounds committed"));
      }
    }
    const absl::Time started = clock_->Now();
    std::vector<std::string> drops;
    bool committed = false;
    for (uint32_t attempt = 1; attempt <= spec.max_round_attempts() && !committed; ++attempt) {
      std::vector<std::string> cohort = WaitForCohort(task);
      if (cohort.empty()) break;
      const uint32_t n = static_cast<uint32_t>(cohort.size());

      v1::WorkItem fit;
      SetModel(global, &fit);
      *fit.mutable_standardization() = task.standardization();
      fit.set_l2(task.l2());
      SecureStageResult fitted =
          RunStage(task, v1::STAGE_FIT, round, attempt, cohort, std::move(fit),
                   secagg::FitEncoding(num_params, spec.secure_aggregation().clip(), n));
      drops.insert(drops.end(), fitted.drops.begin(), fitted.drops.end());
      if (halt() != Halt::kNone) break;
      absl::StatusOr<proto::AveragedUpdate> update =
          fitted.completed
              ? proto::DecodeFit(fitted.sums, num_params)
              : absl::StatusOr<proto::AveragedUpdate>(absl::AbortedError(fitted.abort));
      absl::StatusOr<std::vector<float>> next =
          update.ok() ? strategy->AggregateFit(round, global, *update)
                      : absl::StatusOr<std::vector<float>>(update.status());
      if (!next.ok()) {
        if (AttemptFailed(round, attempt, next.status(), &drops)) break;
        continue;
      }

      v1::RoundRecord record;
      record.set_task_id(task_id_);
      record.set_round(round);
      for (const std::string& c : fitted.survivors) record.add_fit_participants(c);
      *record.add_metrics() =
          MakeMetric("train_examples", std::round(update->total_examples * pooled_rows));

      if (strategy->ConfigureEvaluate(round)) {
        std::vector<std::string> eval_cohort = registry_->Connected(spec.dataset().id());
        v1::WorkItem eval;
        SetModel(*next, &eval);
        *eval.mutable_standardization() = task.standardization();
        eval.set_l2(task.l2());
        if (eval_cohort.size() >= spec.min_clients()) {
          SecureStageResult evaluated = RunStage(
              task, v1::STAGE_EVALUATE, round, attempt, eval_cohort, std::move(eval),
              secagg::EvaluateEncoding(layout.length, static_cast<uint32_t>(eval_cohort.size())));
          drops.insert(drops.end(), evaluated.drops.begin(), evaluated.drops.end());
          if (halt() != Halt::kNone) break;
          auto decoded = evaluated.completed
                             ? proto::DecodeEvaluation(layout, evaluated.sums)
                             : absl::StatusOr<std::vector<std::pair<std::string, double>>>(
                                   absl::AbortedError(evaluated.abort));
          if (decoded.ok()) {
            std::vector<v1::Metric> metrics;
            for (const auto& [name, value] : *decoded) metrics.push_back(MakeMetric(name, value));
            for (const v1::Metric& m : strategy->AggregateEvaluate(round, std::move(metrics))) {
              *record.add_metrics() = m;
            }
            for (const std::string& c : evaluated.survivors) record.add_eval_participants(c);
          } else {
            drops.push_back(absl::StrCat("evaluation skipped: ", decoded.status().message()));
          }
        } else {
          drops.push_back(absl::StrCat("evaluation skipped: ", eval_cohort.size(),
                                       " sites connected, ", spec.min_clients(), " needed"));
        }
      }
      if (spec.has_privacy()) {
        *record.add_metrics() = MakeMetric("epsilon", *epsilon_after);
        *record.add_metrics() = MakeMetric("delta", spec.privacy().delta());
      }

      task.set_last_committed_round(static_cast<int32_t>(round));
      task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
      if (round == spec.rounds()) {
        task.set_state(v1::TASK_COMPLETED);
        task.set_state_reason("all rounds committed");
      }
      record.set_model_hash(crypto::HashModel(*next));
      record.set_started_unix_ms(common::ToUnixMillis(started));
      record.set_committed_unix_ms(common::ToUnixMillis(clock_->Now()));
      record.set_attempts(attempt);
      for (const std::string& drop : drops) record.add_drops(drop);
      record.set_strategy_state(strategy->SaveState());
      RETURN_IF_ERROR(store_->CommitRound(task, record, *next));
      global = std::move(*next);
      committed = true;

      common::LogLine line(common::LogLevel::kInfo, "round_committed");
      line.With("task", task_id_)
          .With("round", round)
          .With("sites", static_cast<uint64_t>(fitted.survivors.size()));
      for (const v1::Metric& m : record.metrics()) line.With(m.name(), m.value());
    }
    if (committed) continue;
    return EndWithoutCommit(task, absl::StrCat("round ", round));
  }
  if (task.state() == v1::TASK_COMPLETED) {
    common::LogInfo("task_finished")
        .With("task", task_id_)
        .With("state", v1::TaskState_Name(task.state()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
