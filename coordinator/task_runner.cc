#include "coordinator/task_runner.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/strategy.h"
#include "crypto/hash.h"
#include "proto/contribution_layout.h"
#include "proto/model_layout.h"

namespace tessera::coordinator {
namespace {

bool IsCount(double v) { return v >= 0 && v == std::floor(v) && v < 9.0e15; }

absl::Status CheckStatistics(std::span<const double> v, size_t d) {
  if (!IsCount(v[0]) || v[0] < 1) {
    return absl::InvalidArgumentError("row count must be a positive integer");
  }
  for (size_t j = 0; j < d; ++j) {
    if (v[1 + d + j] < 0) return absl::InvalidArgumentError("a sum of squares is negative");
  }
  return absl::OkStatus();
}

absl::Status CheckFit(std::span<const double> v) {
  if (!IsCount(v[0]) || v[0] < 1) {
    return absl::InvalidArgumentError("example count must be a positive integer");
  }
  return absl::OkStatus();
}

absl::Status CheckEvaluate(std::span<const double> v) {
  if (!IsCount(v[0])) return absl::InvalidArgumentError("example count must be an integer >= 0");
  if (v[1] < 0) return absl::InvalidArgumentError("loss sum is negative");
  if (!IsCount(v[2]) || v[2] > v[0]) {
    return absl::InvalidArgumentError("correct count must be an integer in [0, example count]");
  }
  return absl::OkStatus();
}

const char* StageName(v1::Stage stage) {
  switch (stage) {
    case v1::STAGE_STATISTICS:
      return "statistics";
    case v1::STAGE_FIT:
      return "fit";
    case v1::STAGE_EVALUATE:
      return "evaluate";
    default:
      return "unknown";
  }
}

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

}  // namespace

TaskRunner::TaskRunner(std::string task_id, Store* store, WorkBoard* board,
                       ClientRegistry* registry, const common::Clock* clock,
                       TaskRunnerOptions options)
    : task_id_(std::move(task_id)),
      store_(store),
      board_(board),
      registry_(registry),
      clock_(clock),
      options_(options) {}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::Start() { thread_ = std::thread([this] { Main(); }); }

void TaskRunner::Cancel(const std::string& reason) {
  std::shared_ptr<StageCollector> stage;
  {
    absl::MutexLock lock(&mu_);
    if (halt_ == Halt::kNone) {
      halt_ = Halt::kCancel;
      cancel_reason_ = reason;
    }
    stage = active_stage_;
  }
  if (stage != nullptr) stage->Cancel();
}

void TaskRunner::Stop() {
  std::shared_ptr<StageCollector> stage;
  {
    absl::MutexLock lock(&mu_);
    halt_ = Halt::kStop;
    stage = active_stage_;
  }
  if (stage != nullptr) stage->Cancel();
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
  if (task.last_committed_round() < 0) {
    RETURN_IF_ERROR(RunStatisticsRound(task));
    if (task.state() != v1::TASK_RUNNING || halt() != Halt::kNone) return absl::OkStatus();
  }
  return RunTrainingRounds(task);
}

std::vector<std::string> TaskRunner::WaitForCohort(const v1::TaskRecord& task) {
  const uint32_t need = task.spec().min_clients();
  absl::Time next_log = absl::InfinitePast();
  while (halt() == Halt::kNone) {
    std::vector<std::string> cohort = registry_->Connected(task.spec().dataset().id());
    if (cohort.size() >= need) return cohort;
    if (clock_->Now() >= next_log) {
      common::LogInfo("waiting_for_clients")
          .With("task", task_id_)
          .With("dataset", task.spec().dataset().id())
          .With("connected", static_cast<uint64_t>(cohort.size()))
          .With("needed", need);
      next_log = clock_->Now() + absl::Seconds(30);
    }
    PauseOrHalt(options_.cohort_poll_interval);
  }
  return {};
}

TaskRunner::StageResult TaskRunner::RunStage(
    v1::WorkItem item, const std::vector<std::string>& cohort, size_t vector_length,
    std::function<absl::Status(std::span<const double>)> check, absl::Duration deadline) {
  absl::Time close_at = clock_->Now() + deadline;
  item.set_cohort_size(static_cast<uint32_t>(cohort.size()));
  item.set_deadline_unix_ms(common::ToUnixMillis(close_at));
  const std::string work_id = item.work_id();
  const v1::Stage stage = item.stage();
  const uint32_t round = item.round();
  auto collector = std::make_shared<StageCollector>(cohort, vector_length, std::move(check));
  {
    absl::MutexLock lock(&mu_);
    if (halt_ != Halt::kNone) return {};
    active_stage_ = collector;
  }
  common::LogInfo("stage_open")
      .With("task", task_id_)
      .With("round", round)
      .With("stage", StageName(stage))
      .With("work", work_id)
      .With("cohort", static_cast<uint64_t>(cohort.size()));
  absl::Status posted = board_->Post(std::move(item), cohort, collector);
  if (!posted.ok()) {
    // Work ids are unique per attempt; a clash is a bug in this runner.
    common::LogError("stage_post_failed").With("work", work_id).With("error", posted.ToString());
  } else {
    collector->Wait(close_at);
  }
  board_->Close(work_id);
  StageCollector::Outcome outcome = collector->Close();
  {
    absl::MutexLock lock(&mu_);
    active_stage_.reset();
  }
  common::LogInfo("stage_closed")
      .With("task", task_id_)
      .With("round", round)
      .With("stage", StageName(stage))
      .With("contributors", static_cast<uint64_t>(outcome.contributors.size()))
      .With("dropped", static_cast<uint64_t>(outcome.drops.size()));
  for (const std::string& drop : outcome.drops) {
    common::LogInfo("client_dropped").With("task", task_id_).With("work", work_id).With("why", drop);
  }
  return {std::move(outcome.sum), std::move(outcome.contributors), std::move(outcome.drops)};
}

absl::Status TaskRunner::RunStatisticsRound(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  const absl::Time started = clock_->Now();
  std::vector<std::string> drops;
  for (uint32_t attempt = 1; attempt <= spec.max_round_attempts(); ++attempt) {
    std::vector<std::string> cohort = WaitForCohort(task);
    if (cohort.empty()) break;  // halted
    v1::WorkItem item;
    item.set_work_id(absl::StrCat(task_id_, "/r0/statistics/a", attempt));
    item.set_task_id(task_id_);
    item.set_round(0);
    item.set_stage(v1::STAGE_STATISTICS);
    *item.mutable_spec() = spec;
    item.set_spec_hash(task.spec_hash());
    StageResult result =
        RunStage(std::move(item), cohort, proto::StatisticsLength(d),
                 [d](std::span<const double> v) { return CheckStatistics(v, d); },
                 absl::Seconds(spec.round_deadline_seconds()));
    drops.insert(drops.end(), result.drops.begin(), result.drops.end());
    if (halt() != Halt::kNone) break;
    if (result.contributors.size() < spec.min_clients()) {
      common::LogWarning("attempt_failed")
          .With("task", task_id_)
          .With("round", 0)
          .With("attempt", attempt)
          .With("contributors", static_cast<uint64_t>(result.contributors.size()))
          .With("needed", spec.min_clients());
      if (PauseOrHalt(options_.retry_pause)) break;
      continue;
    }
    auto pooled = proto::DecodeStatistics(result.sum, d);
    if (!pooled.ok()) {
      drops.push_back(absl::StrCat("statistics rejected: ", pooled.status().message()));
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<float> initial,
                     proto::InitialParameters(spec.model(), d, spec.seed()));
    v1::Standardization* s = task.mutable_standardization();
    s->mutable_mean()->Assign(pooled->mean.begin(), pooled->mean.end());
    s->mutable_stddev()->Assign(pooled->stddev.begin(), pooled->stddev.end());
    s->set_num_train_rows(pooled->num_rows);
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
    for (const std::string& c : result.contributors) record.add_fit_participants(c);
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
        .With("sites", static_cast<uint64_t>(result.contributors.size()))
        .With("train_rows", pooled->num_rows);
    return absl::OkStatus();
  }
  if (halt() == Halt::kCancel) {
    return Finish(task, v1::TASK_CANCELLED, CancelReason());
  }
  if (halt() == Halt::kStop) return absl::OkStatus();
  return Finish(task, v1::TASK_FAILED,
                absl::StrCat("statistics round failed after ", spec.max_round_attempts(),
                             " attempts with fewer than ", spec.min_clients(), " sites"));
}

absl::Status TaskRunner::RunTrainingRounds(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  ASSIGN_OR_RETURN(size_t num_params, proto::NumParameters(spec.model(), d));
  ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(spec.strategy()));
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

  for (uint32_t round = last + 1; round <= spec.rounds(); ++round) {
    const absl::Time started = clock_->Now();
    std::vector<std::string> drops;
    bool committed = false;
    for (uint32_t attempt = 1; attempt <= spec.max_round_attempts() && !committed; ++attempt) {
      std::vector<std::string> cohort = WaitForCohort(task);
      if (cohort.empty()) break;
      const std::string prefix = absl::StrCat(task_id_, "/r", round, "/");

      v1::WorkItem fit;
      fit.set_work_id(absl::StrCat(prefix, "fit/a", attempt));
      fit.set_task_id(task_id_);
      fit.set_round(round);
      fit.set_stage(v1::STAGE_FIT);
      *fit.mutable_spec() = spec;
      fit.set_spec_hash(task.spec_hash());
      SetModel(global, &fit);
      *fit.mutable_standardization() = task.standardization();
      fit.set_l2(task.l2());
      StageResult fitted = RunStage(std::move(fit), cohort, proto::FitLength(num_params), CheckFit,
                                    absl::Seconds(spec.round_deadline_seconds()));
      drops.insert(drops.end(), fitted.drops.begin(), fitted.drops.end());
      if (halt() != Halt::kNone) break;
      if (fitted.contributors.size() < spec.min_clients()) {
        common::LogWarning("attempt_failed")
            .With("task", task_id_)
            .With("round", round)
            .With("attempt", attempt)
            .With("contributors", static_cast<uint64_t>(fitted.contributors.size()))
            .With("needed", spec.min_clients());
        if (PauseOrHalt(options_.retry_pause)) break;
        continue;
      }
      auto update = proto::DecodeFit(fitted.sum, num_params);
      absl::StatusOr<std::vector<float>> next =
          update.ok() ? strategy->AggregateFit(round, global, *update)
                      : absl::StatusOr<std::vector<float>>(update.status());
      if (!next.ok()) {
        drops.push_back(absl::StrCat("fit aggregate rejected: ", next.status().message()));
        common::LogWarning("aggregate_rejected")
            .With("task", task_id_)
            .With("round", round)
            .With("error", next.status().ToString());
        continue;
      }

      v1::RoundRecord record;
      record.set_task_id(task_id_);
      record.set_round(round);
      for (const std::string& c : fitted.contributors) record.add_fit_participants(c);
      *record.add_metrics() = MakeMetric("train_examples", update->total_examples);

      if (strategy->ConfigureEvaluate(round)) {
        std::vector<std::string> eval_cohort = registry_->Connected(spec.dataset().id());
        v1::WorkItem eval;
        eval.set_work_id(absl::StrCat(prefix, "evaluate/a", attempt));
        eval.set_task_id(task_id_);
        eval.set_round(round);
        eval.set_stage(v1::STAGE_EVALUATE);
        *eval.mutable_spec() = spec;
        eval.set_spec_hash(task.spec_hash());
        SetModel(*next, &eval);
        *eval.mutable_standardization() = task.standardization();
        eval.set_l2(task.l2());
        StageResult evaluated =
            RunStage(std::move(eval), eval_cohort, proto::kEvaluateLength, CheckEvaluate,
                     absl::Seconds(spec.round_deadline_seconds()));
        drops.insert(drops.end(), evaluated.drops.begin(), evaluated.drops.end());
        if (halt() != Halt::kNone) break;
        if (evaluated.contributors.size() >= spec.min_clients()) {
          auto metrics = strategy->AggregateEvaluate(round, evaluated.sum);
          if (metrics.ok()) {
            for (const v1::Metric& m : *metrics) *record.add_metrics() = m;
            for (const std::string& c : evaluated.contributors) record.add_eval_participants(c);
          } else {
            drops.push_back(absl::StrCat("evaluation skipped: ", metrics.status().message()));
          }
        } else {
          drops.push_back(absl::StrCat("evaluation skipped: ", evaluated.contributors.size(),
                                       " sites reported, ", spec.min_clients(), " needed"));
        }
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
      line.With("task", task_id_).With("round", round).With(
          "sites", static_cast<uint64_t>(fitted.contributors.size()));
      for (const v1::Metric& m : record.metrics()) line.With(m.name(), m.value());
    }
    if (committed) continue;
    if (halt() == Halt::kCancel) {
      return Finish(task, v1::TASK_CANCELLED, CancelReason());
    }
    if (halt() == Halt::kStop) return absl::OkStatus();
    return Finish(task, v1::TASK_FAILED,
                  absl::StrCat("round ", round, " failed after ", spec.max_round_attempts(),
                               " attempts with fewer than ", spec.min_clients(), " sites"));
  }
  if (task.state() == v1::TASK_COMPLETED) {
    common::LogInfo("task_finished")
        .With("task", task_id_)
        .With("state", v1::TaskState_Name(task.state()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
