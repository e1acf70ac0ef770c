// A training task with a validation split (TrainingSpec.validation_fraction): the curve of
// the selection metric over the evaluated rounds, early stopping, the selected round, and
// the one test session on its model (task_runner.h).
#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/internal/round_records.h"
#include "coordinator/task_runner.h"
#include "proto/model_layout.h"
#include "proto/validation_split.h"

namespace tessera::coordinator {
namespace {

// "0.3121" for the selection reason; a metric is printed as its own number would be.
std::string Value(double v) { return absl::StrCat(v); }

}  // namespace

std::vector<proto::RoundValue> TaskRunner::ValidationCurve(
    const v1::TaskSpec& spec, std::span<const v1::RoundRecord> rounds) {
  std::vector<proto::RoundValue> curve;
  for (const v1::RoundRecord& r : rounds) {
    if (r.round() > 0) ExtendCurve(spec, r.round(), r.metrics(), &curve);
  }
  return curve;
}

void TaskRunner::ExtendCurve(const v1::TaskSpec& spec, uint32_t round,
                             const google::protobuf::RepeatedPtrField<v1::Metric>& metrics,
                             std::vector<proto::RoundValue>* curve) {
  const std::string metric = proto::SelectionMetric(spec);
  for (const v1::Metric& m : metrics) {
    if (m.name() != metric) continue;
    if (!curve->empty() && curve->back().round >= round) return;  // already there
    curve->push_back({round, m.value()});
    return;
  }
}

bool TaskRunner::TrainingOver(const v1::TaskRecord& task,
                              std::span<const proto::RoundValue> curve) {
  if (task.selected_round() > 0) return true;
  if (task.last_committed_round() >= static_cast<int32_t>(task.spec().rounds())) return true;
  return proto::SelectRound(task.spec(), curve).stop;
}

absl::Status TaskRunner::EndTraining(v1::TaskRecord& task, std::span<const proto::RoundValue> curve,
                                     const std::string& why) {
  if (task.selected_round() == 0) {
    const v1::TaskSpec& spec = task.spec();
    const std::string metric = proto::SelectionMetric(spec);
    const proto::Selection selection = proto::SelectRound(spec, curve);
    const auto last = static_cast<uint32_t>(task.last_committed_round());
    std::string ended = why;
    if (ended.empty() && selection.stop) {
      ended = absl::StrCat("early stopping after round ", last, ": no better validation ", metric,
                           " in the ", spec.training().early_stopping().patience(),
                           " evaluated rounds after round ", selection.round);
    } else if (ended.empty()) {
      ended = absl::StrCat("all ", last, " rounds committed");
    }
    if (selection.round == 0) {
      task.set_selected_round(last);
      task.set_selection(absl::StrCat("no round has a validation ", metric,
                                      " (every evaluation failed): the last round, ", last,
                                      ", is tested; ", ended));
    } else {
      task.set_selected_round(selection.round);
      task.set_selection(absl::StrCat("round ", selection.round, " has the best validation ",
                                      metric, ", ", Value(selection.value), "; ", ended));
    }
    task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
    RETURN_IF_ERROR(store_->UpdateTask(task));
    common::LogInfo("round_selected")
        .With("task", task_id_)
        .With("round", task.selected_round())
        .With("why", task.selection());
  }
  return RunTestStage(task);
}

absl::Status TaskRunner::RunTestStage(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const uint32_t selected = task.selected_round();
  ASSIGN_OR_RETURN(std::vector<float> model, store_->GetCheckpoint(task_id_, selected));
  absl::StatusOr<v1::InFlightRound> stored = store_->GetInFlight(task_id_);
  if (stored.ok() && (stored->round() != selected || !stored->final_test()) &&
      stored->releases_size() > 0) {
    // A round that never committed but charged a release: the charge stays on the task. (A
    // crash before the test session's record replaces that one charges them again at the
    // restart: the task's epsilon may be over-counted, never under.)
    for (const v1::PrivacyRelease& r : stored->releases()) *task.add_uncommitted_releases() = r;
    RETURN_IF_ERROR(store_->UpdateTask(task));
  }
  ASSIGN_OR_RETURN(v1::InFlightRound in_flight, InFlightOf(selected));
  if (!in_flight.final_test()) {
    // A fresh record (InFlightOf kept only one of this round, which is a test's: training
    // rounds in flight are later than any committed one).
    in_flight.clear_releases();
    in_flight.set_final_test(true);
  }
  StagePlan plan;
  plan.stage = v1::STAGE_TEST;
  plan.round = selected;
  plan.SetModel(model);
  *plan.first_item.mutable_standardization() = task.standardization();
  plan.first_item.set_l2(task.l2());
  const std::string what = absl::StrCat("test session (round ", selected, "'s model)");
  StageEnd end = RunDurableStage(task, in_flight, plan);
  if (end.kind == StageEnd::Kind::kFailed) {
    return Finish(
        task, v1::TASK_COMPLETED,
        absl::StrCat(task.selection(), "; the ", what, " failed, no test metrics: ", end.reason));
  }
  if (end.kind != StageEnd::Kind::kCompleted) return EndStage(task, end, what);

  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  ASSIGN_OR_RETURN(size_t num_params, proto::NumParameters(spec.model(), d));
  ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, MakeStrategy(spec.strategy(), num_params));
  absl::StatusOr<std::vector<v1::Metric>> metrics =
      EvaluationMetrics(task, selected, end.result.sums,
                        static_cast<uint32_t>(end.result.survivors.size()), *strategy);
  if (!metrics.ok()) {
    return Finish(
        task, v1::TASK_COMPLETED,
        absl::StrCat(task.selection(), "; the ", what,
                     "'s sum was refused, no test metrics: ", metrics.status().message()));
  }
  ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id_));
  auto it = std::find_if(rounds.begin(), rounds.end(),
                         [&](const v1::RoundRecord& r) { return r.round() == selected; });
  if (it == rounds.end()) {
    return absl::DataLossError(
        absl::StrCat(task_id_, ": the selected round ", selected, " has no record"));
  }
  v1::RoundRecord record = std::move(*it);
  // The session ran on the round's model: its provenance and attempts join the round's.
  for (const v1::StageAttempt& a : in_flight.stage_attempts()) *record.add_stage_attempts() = a;
  if (end.result.provenance.has_value()) {
    *record.mutable_provenance()->add_sessions() = *end.result.provenance;
  }
  for (const std::string& drop : in_flight.drops()) {
    record.add_drops(absl::StrCat(drop, " (test session)"));
  }
  *task.mutable_test_metrics() = {metrics->begin(), metrics->end()};
  *task.mutable_test_participants() = {end.result.survivors.begin(), end.result.survivors.end()};
  task.clear_waiting();
  task.set_state(v1::TASK_COMPLETED);
  task.set_state_reason(absl::StrCat(task.selection(), "; round ", selected, " tested"));
  task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
  RETURN_IF_ERROR(store_->CommitRound(task, record, model, nullptr));
  common::LogLine line(common::LogLevel::kInfo, "round_tested");
  line.With("task", task_id_).With("round", selected);
  for (const v1::Metric& m : *metrics) line.With(m.name(), m.value());
  return absl::OkStatus();
}

}  // namespace tessera::coordinator
