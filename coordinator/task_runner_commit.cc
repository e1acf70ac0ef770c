// TaskRunner: a training round's commit (task_runner.h CommitTrainingRound): the round's
// record, its checkpoint, and the previous round's record with the evaluation that came
// with this round's session, in one store write.
#include <optional>
#include <span>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/internal/round_records.h"
#include "coordinator/privacy_accountant.h"
#include "coordinator/task_runner.h"
#include "crypto/hash.h"
#include "proto/validation_split.h"

namespace tessera::coordinator {

using internal::MakeMetric;
using internal::SetProvenance;

absl::StatusOr<v1::RoundRecord> TaskRunner::CommitTrainingRound(v1::TaskRecord& task,
                                                                const v1::InFlightRound& in_flight,
                                                                uint32_t round,
                                                                const v1::RoundRecord* previous) {
  const v1::TaskSpec& spec = task.spec();
  const std::span<const float> next = NextModel(in_flight);
  v1::RoundRecord record;
  record.set_task_id(task_id_);
  record.set_round(round);
  *record.mutable_fit_participants() = in_flight.fit_participants();
  *record.mutable_eval_participants() = in_flight.eval_participants();
  *record.mutable_metrics() = in_flight.metrics();
  if (spec.has_privacy()) {
    ASSIGN_OR_RETURN(double epsilon,
                     EpsilonOfReleases(ChargedReleases(in_flight), spec.privacy().delta()));
    *record.add_metrics() = MakeMetric("epsilon", epsilon);
    *record.add_metrics() = MakeMetric("delta", spec.privacy().delta());
  }
  record.set_model_hash(crypto::HashModel(next));
  record.set_started_unix_ms(in_flight.started_unix_ms());
  record.set_committed_unix_ms(common::ToUnixMillis(clock_->Now()));
  record.set_attempts(in_flight.attempt());
  *record.mutable_drops() = in_flight.drops();
  *record.mutable_stage_attempts() = in_flight.stage_attempts();
  record.set_strategy_state(in_flight.strategy_state());
  *record.mutable_glm_coefficients() = in_flight.glm_next();
  *record.mutable_releases() = in_flight.releases();
  SetProvenance(in_flight.provenance(), &record);
  task.set_last_committed_round(static_cast<int32_t>(round));
  task.set_updated_unix_ms(common::ToUnixMillis(clock_->Now()));
  // With a validation split the task completes when its test session commits.
  if (round == spec.rounds() && task.state() != v1::TASK_COMPLETED &&
      !proto::HasValidationSplit(spec)) {
    task.set_state(v1::TASK_COMPLETED);
    task.set_state_reason("all rounds committed");
  }
  // One session per round: the previous round's evaluation came with this round's fit.
  std::optional<v1::RoundRecord> evaluated;
  if (in_flight.previous_evaluated() && previous != nullptr && previous->round() + 1 == round) {
    evaluated = *previous;
    // A restart resumes the strategy from the last committed round's state alone: the one
    // before (an adaptive strategy's moments, two floats per parameter) is dropped as this
    // commit rewrites its round, instead of staying in every round's record.
    evaluated->clear_strategy_state();
    AddEvaluation(in_flight.previous_metrics(), &*evaluated);
    *evaluated->mutable_eval_participants() = in_flight.previous_eval_participants();
    evaluated->set_evaluated_in_round(round);
    if (in_flight.previous_skipped().empty()) {
      // The session that evaluated it is in its provenance too (it ran on its model).
      for (const v1::SessionProvenance& session : in_flight.provenance()) {
        if (session.stage() == v1::STAGE_FIT_EVALUATE) {
          *evaluated->mutable_provenance()->add_sessions() = session;
        }
      }
    } else {
      evaluated->add_drops(absl::StrCat("evaluation skipped: ", in_flight.previous_skipped(),
                                        " (in round ", round, "'s fit_evaluate session)"));
    }
  }
  RETURN_IF_ERROR(
      store_->CommitRound(task, record, next, evaluated.has_value() ? &*evaluated : nullptr));
  for (const v1::PrivacyRelease& r : in_flight.releases()) {
    committed_releases_.push_back(r.noise_multiplier());
  }
  if (evaluated.has_value() && evaluated->eval_participants_size() > 0) {
    common::LogLine line(common::LogLevel::kInfo, "round_evaluated");
    line.With("task", task_id_).With("round", evaluated->round()).With("in_round", round);
    for (const v1::Metric& m : in_flight.previous_metrics()) line.With(m.name(), m.value());
  }
  common::LogLine line(common::LogLevel::kInfo, "round_committed");
  line.With("task", task_id_)
      .With("round", round)
      .With("sites", static_cast<uint64_t>(in_flight.fit_participants_size()));
  for (const v1::Metric& m : record.metrics()) line.With(m.name(), m.value());
  return record;
}

void TaskRunner::AddEvaluation(const google::protobuf::RepeatedPtrField<v1::Metric>& metrics,
                               v1::RoundRecord* record) {
  // Where a round's own evaluation puts them: after the fit's metrics, before the
  // privacy accounting's (epsilon, delta).
  google::protobuf::RepeatedPtrField<v1::Metric> merged;
  bool added = false;
  for (const v1::Metric& m : record->metrics()) {
    if (!added && m.name() == "epsilon") {
      for (const v1::Metric& e : metrics) *merged.Add() = e;
      added = true;
    }
    *merged.Add() = m;
  }
  if (!added) {
    for (const v1::Metric& e : metrics) *merged.Add() = e;
  }
  record->mutable_metrics()->Swap(&merged);
}

}  // namespace tessera::coordinator
