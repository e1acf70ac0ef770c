// TaskRunner's rounds of an exact regression (ModelSpec.GlmSpec): one STAGE_GLM session a
// round over every site of the cohort, the Newton step of coordinator/glm_rounds.h, and the
// report committed with the round the fit converged in.
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/glm_rounds.h"
#include "coordinator/internal/round_records.h"
#include "coordinator/task_runner.h"
#include "crypto/hash.h"

namespace tessera::coordinator {

using internal::MakeMetric;

absl::Status TaskRunner::RunGlmRounds(v1::TaskRecord& task) {
  const v1::TaskSpec& spec = task.spec();
  const std::vector<std::string> sites(task.statistics_cohort().begin(),
                                       task.statistics_cohort().end());
  if (sites.empty()) {
    return Finish(task, v1::TASK_FAILED, "an exact regression needs its statistics cohort");
  }
  const std::string objective_name = GlmObjectiveMetric(spec);
  // The objective of every committed Newton round, in order, and the null deviance.
  std::vector<double> history;
  std::optional<double> null_deviance;
  ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id_));
  std::optional<v1::RoundRecord> previous;
  for (v1::RoundRecord& r : rounds) {
    if (r.round() == 0) continue;
    for (const v1::Metric& m : r.metrics()) {
      if (m.name() == objective_name) history.push_back(m.value());
      if (m.name() == "null_deviance") null_deviance = m.value();
    }
    previous = std::move(r);
  }
  const uint32_t last = static_cast<uint32_t>(task.last_committed_round());
  if (history.size() != last) {
    return absl::DataLossError(absl::StrCat(task_id_, " has ", last, " rounds committed and ",
                                            history.size(), " with a ", objective_name));
  }
  std::vector<double> beta;
  if (last == 0) {
    ASSIGN_OR_RETURN(beta, GlmFirstCoefficients(spec, sites.size()));
  } else if (previous.has_value()) {
    beta.assign(previous->glm_coefficients().begin(), previous->glm_coefficients().end());
  }
  ASSIGN_OR_RETURN(const std::vector<double> first, GlmFirstCoefficients(spec, sites.size()));
  if (beta.size() != first.size()) {
    return absl::DataLossError(absl::StrCat(task_id_, " round ", last, " keeps ", beta.size(),
                                            " coefficients, the task has ", first.size()));
  }

  for (uint32_t round = last + 1; round <= spec.rounds(); ++round) {
    ASSIGN_OR_RETURN(v1::InFlightRound in_flight, InFlightOf(round));
    if (!in_flight.fit_done()) {
      ASSIGN_OR_RETURN(bool stepped,
                       RunGlmStage(task, in_flight, round, sites, beta, history, null_deviance));
      if (!stepped) return absl::OkStatus();
    }
    const bool reported = in_flight.has_glm_report();
    if (reported) {
      *task.mutable_glm_report() = in_flight.glm_report();
      task.set_state(v1::TASK_COMPLETED);
      task.set_state_reason(
          in_flight.glm_report().converged()
              ? absl::StrCat("converged after ", round, " rounds (",
                             in_flight.glm_report().iterations(), " Newton steps)")
              : absl::StrCat("did not converge in ", round,
                             " rounds: the report is at the last round's coefficients"));
    }
    ASSIGN_OR_RETURN(
        v1::RoundRecord committed,
        CommitTrainingRound(task, in_flight, round, previous.has_value() ? &*previous : nullptr));
    previous = std::move(committed);
    for (const v1::Metric& m : in_flight.metrics()) {
      if (m.name() == objective_name) history.push_back(m.value());
      if (m.name() == "null_deviance") null_deviance = m.value();
    }
    beta.assign(in_flight.glm_next().begin(), in_flight.glm_next().end());
    if (reported) {
      common::LogInfo("glm_fitted")
          .With("task", task_id_)
          .With("rounds", round)
          .With("converged", task.glm_report().converged());
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TaskRunner::RunGlmStage(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                             uint32_t round, const std::vector<std::string>& sites,
                                             const std::vector<double>& beta,
                                             const std::vector<double>& history,
                                             std::optional<double> null_deviance) {
  const v1::TaskSpec& spec = task.spec();
  StagePlan plan;
  plan.stage = v1::STAGE_GLM;
  plan.round = round;
  plan.first_item.mutable_glm_coefficients()->Assign(beta.begin(), beta.end());
  plan.first_item.set_model_hash(crypto::HashCoefficients(beta));
  // The pooled means a prepared task imputes with (Standardization.imputed_means).
  *plan.first_item.mutable_standardization() = task.standardization();
  if (spec.model().glm().site_fixed_effects()) {
    *plan.first_item.mutable_glm_sites() = {sites.begin(), sites.end()};
  }
  while (true) {
    StageEnd end = RunDurableStage(task, in_flight, plan);
    if (end.kind != StageEnd::Kind::kCompleted) {
      RETURN_IF_ERROR(EndStage(task, end, absl::StrCat("round ", round)));
      return false;
    }
    GlmRoundInput input;
    input.spec = &spec;
    input.sites = sites;
    input.round = round;
    input.coefficients = beta;
    input.sum = end.result.sums;
    input.history = history;
    input.pooled_rows = task.standardization().num_train_rows();
    input.null_deviance = null_deviance;
    absl::StatusOr<GlmRoundOutput> out =
        end.result.survivors.size() == sites.size()
            ? GlmRound(input)
            : absl::StatusOr<GlmRoundOutput>(absl::InvalidArgumentError(absl::StrCat(
                  "the sum is over ", end.result.survivors.size(), " sites, the cohort has ",
                  sites.size(), ": an exact regression needs every site in every round")));
    if (!out.ok()) {
      // A collinear design or a diverging fit: no retry changes it (the sums would be the
      // same), and the sites would not send them again anyway.
      if (absl::IsFailedPrecondition(out.status())) {
        RETURN_IF_ERROR(Finish(task, v1::TASK_FAILED,
                               absl::StrCat("round ", round, ": ", out.status().message())));
        return false;
      }
      ASSIGN_OR_RETURN(bool halted, UnusableSum(in_flight, round, end.result,
                                                std::string(out.status().message())));
      if (!halted) continue;
      RETURN_IF_ERROR(
          EndStage(task, StageEnd{StageEnd::Kind::kHalted, {}, ""}, absl::StrCat("round ", round)));
      return false;
    }
    in_flight.set_fit_done(true);
    // The checkpoint holds them as float32 (every task's checkpoints are float32).
    std::vector<float> rounded(out->next.begin(), out->next.end());
    in_flight.mutable_next_model()->mutable_values()->Assign(rounded.begin(), rounded.end());
    in_flight.mutable_glm_next()->Assign(out->next.begin(), out->next.end());
    *in_flight.mutable_fit_participants() = {end.result.survivors.begin(),
                                             end.result.survivors.end()};
    *in_flight.add_metrics() = MakeMetric(GlmObjectiveMetric(spec), out->objective);
    if (out->null_deviance.has_value()) {
      *in_flight.add_metrics() = MakeMetric("null_deviance", *out->null_deviance);
    }
    if (out->report.has_value()) *in_flight.mutable_glm_report() = *out->report;
    if (end.result.provenance.has_value()) *in_flight.add_provenance() = *end.result.provenance;
    RETURN_IF_ERROR(store_->PutInFlight(in_flight));
    return true;
  }
}

}  // namespace tessera::coordinator
