// TaskRunner, part two: one stage of a round as durable secure-aggregation sessions —
// the in-flight record at every step boundary, resuming a session after a restart, and the
// privacy charge before unmasking. Who takes part in a session: task_runner_cohort.cc.
#include <algorithm>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/privacy_accountant.h"
#include "coordinator/site_answers.h"
#include "coordinator/site_decisions.h"
#include "coordinator/task_runner.h"
#include "proto/labels.h"
#include "secagg/protocol.h"
#include "secagg/stage_encoding.h"

namespace tessera::coordinator {
namespace {

// The threshold for `n` invited sites: the task's own, or floor(2n/3) + 1 (what every site
// requires), raised to min_clients and the analytics minimum cohort. A task's own threshold
// below floor(2n/3) + 1 is refused: the sites would refuse the session anyway.
absl::StatusOr<uint32_t> Threshold(const v1::TaskSpec& spec, uint32_t n) {
  const uint32_t safe = secagg::SafeThreshold(n, std::nullopt);
  const uint32_t own = spec.secure_aggregation().threshold();
  if (own > 0 && own < safe) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secure_aggregation.threshold ", own, " is below ", safe, " = floor(2n/3) + 1 for the ", n,
        " sites of the cohort: sites refuse it, as a threshold that low would let a "
        "coordinator with one colluding site unmask a site (docs/secure-aggregation.md); "
        "raise it, or leave it 0 for the default"));
  }
  return std::max({own > 0 ? own : safe, spec.min_clients(), spec.analytics().min_cohort()});
}

void AddUnique(const std::vector<std::string>& ids, v1::InFlightRound* in_flight) {
  std::set<std::string> have(in_flight->contributed().begin(), in_flight->contributed().end());
  for (const std::string& id : ids) {
    if (have.insert(id).second) in_flight->add_contributed(id);
  }
}

// Clears the in-flight record's session snapshot and frees its bytes (clear() would keep
// the string's capacity: the running sum's size, megabytes, for the rest of the round).
void ReleaseServerSnapshot(v1::InFlightRound& in_flight) {
  std::string().swap(*in_flight.mutable_server_snapshot());
}

}  // namespace

absl::StatusOr<v1::InFlightRound> TaskRunner::InFlightOf(uint32_t round) {
  absl::StatusOr<v1::InFlightRound> stored = store_->GetInFlight(task_id_);
  if (stored.ok() && stored->round() == round) return stored;
  if (!stored.ok() && stored.status().code() != absl::StatusCode::kNotFound) {
    return stored.status();
  }
  v1::InFlightRound fresh;
  fresh.set_task_id(task_id_);
  fresh.set_round(round);
  fresh.set_attempt(1);
  fresh.set_started_unix_ms(common::ToUnixMillis(clock_->Now()));
  return fresh;
}

std::vector<double> TaskRunner::ChargedReleases(const v1::InFlightRound& in_flight) {
  std::vector<double> all = committed_releases_;
  for (const v1::PrivacyRelease& r : in_flight.releases()) all.push_back(r.noise_multiplier());
  return all;
}

std::optional<TaskRunner::StageEnd> TaskRunner::OpenSession(v1::TaskRecord& task,
                                                            v1::InFlightRound& in_flight,
                                                            const StagePlan& plan,
                                                            SecureStageRequest* request) {
  const v1::TaskSpec& spec = task.spec();
  StageEnd end;
  request->task_id = task_id_;
  request->round = plan.round;
  request->stage = plan.stage;
  request->attempt = in_flight.attempt();
  request->first_item = plan.first_item;
  request->model = plan.model;
  request->model_delta = plan.model_delta;
  request->first_item.set_task_id(task_id_);
  request->first_item.set_round(plan.round);
  request->first_item.set_stage(plan.stage);
  *request->first_item.mutable_spec() = spec;
  request->first_item.set_spec_hash(task.spec_hash());
  request->first_step_deadline = FirstStepDeadline(spec, in_flight);
  request->step_deadline = absl::Seconds(spec.secure_aggregation().step_deadline_seconds());
  if (in_flight.session_stage() == plan.stage && !in_flight.server_snapshot().empty()) {
    // The session this stage was in when the coordinator stopped: continue it.
    v1::SecAggServerSnapshot snapshot;
    if (!snapshot.ParseFromString(in_flight.server_snapshot())) {
      end.kind = StageEnd::Kind::kStoreError;
      end.reason = "the stored session of this stage does not parse";
      return end;
    }
    request->cohort.assign(in_flight.cohort().begin(), in_flight.cohort().end());
    request->threshold = in_flight.threshold();
    request->resume = std::move(snapshot);
    for (const v1::StageAttempt& a : in_flight.stage_attempts()) {
      if (a.session() == in_flight.session()) {
        request->resume_started_unix_ms = a.started_unix_ms();
      }
    }
    ReleaseServerSnapshot(in_flight);  // parsed into the request; the stored one stays
    return std::nullopt;
  }
  // A rejection heard before a restart ends the task all the same.
  if (std::string rejected = RejectionReason(task); !rejected.empty()) {
    end.reason = std::move(rejected);
    return end;
  }
  // Sessions that failed while sites were deciding on the task are not counted.
  if (plan.retry &&
      in_flight.attempt() - in_flight.unspent_attempts() > spec.max_round_attempts()) {
    const std::string cause = FailureCause(in_flight.stage_attempts());
    end.reason = absl::StrCat("after ", spec.max_round_attempts(),
                              spec.max_round_attempts() == 1 ? " attempt: " : " attempts: ",
                              cause.empty() ? "no sum" : cause);
    return end;
  }
  if (std::optional<std::string> overdue = ApprovalOverdue(task, in_flight)) {
    end.reason = *std::move(overdue);
    return end;
  }
  std::set<std::string> contributed;
  if (plan.retry) {
    contributed.insert(in_flight.contributed().begin(), in_flight.contributed().end());
  }
  std::string unreachable;
  std::vector<std::string> cohort;
  const std::set<std::string> excluded = LeftOut(task, in_flight, plan.stage);
  if (plan.wait_for_cohort) {
    cohort = WaitForCohort(task, in_flight, plan.stage, contributed, excluded, &unreachable);
  } else {
    for (const std::string& id : registry_->Connected(spec.dataset().id())) {
      if (!excluded.contains(id)) cohort.push_back(id);
    }
    if (cohort.size() < NeededSites(spec)) {
      unreachable = absl::StrCat(cohort.size(), " sites of the task's cohort connected, ",
                                 NeededSites(spec), " needed");
      cohort.clear();
    }
  }
  if (cohort.empty()) {
    end.kind = unreachable.empty() ? StageEnd::Kind::kHalted : StageEnd::Kind::kFailed;
    end.reason = unreachable;
    return end;
  }
  const uint32_t n = static_cast<uint32_t>(cohort.size());
  // An exact regression's sum must hold every invited site (the whole cohort).
  absl::StatusOr<uint32_t> threshold = plan.stage == v1::STAGE_GLM ? n : Threshold(spec, n);
  absl::StatusOr<v1::SecAggEncoding> encoding = secagg::StageEncoding(spec, plan.stage, n);
  if (!threshold.ok() || !encoding.ok()) {
    end.reason =
        std::string(!threshold.ok() ? threshold.status().message() : encoding.status().message());
    return end;
  }
  // SecAgg+ above the spec's cohort size, when a sparse graph meets its conditions.
  absl::StatusOr<std::optional<v1::SecAggSparse>> sparse = SessionSparseSetup(spec, n);
  if (!sparse.ok()) {
    end.reason = absl::StrCat("secure_aggregation.secagg_plus: ", sparse.status().message());
    return end;
  }
  request->sparse = *std::move(sparse);
  request->cohort = std::move(cohort);
  request->threshold = *threshold;
  request->encoding = std::move(*encoding);
  in_flight.set_session_stage(plan.stage);
  in_flight.set_session(
      SecureStageRunner::SessionLabel(task_id_, plan.round, plan.stage, request->attempt));
  *in_flight.mutable_cohort() = {request->cohort.begin(), request->cohort.end()};
  in_flight.set_threshold(request->threshold);
  ReleaseServerSnapshot(in_flight);
  return std::nullopt;
}

absl::Status TaskRunner::PersistBoundary(const v1::TaskSpec& spec, const StagePlan& plan,
                                         v1::SecAggRound round,
                                         const SecureStageRequest::SnapshotSource& snapshot,
                                         v1::InFlightRound& in_flight) {
  if (round == v1::SECAGG_UNMASKING && plan.noise_multiplier > 0) {
    // Charged before the unmasking step is posted: from then on the coordinator could
    // unmask the noised sum, whatever happens to the session.
    std::vector<double> charged = ChargedReleases(in_flight);
    charged.push_back(plan.noise_multiplier);
    ASSIGN_OR_RETURN(double epsilon, EpsilonOfReleases(charged, spec.privacy().delta()));
    if (epsilon > spec.privacy().epsilon_budget()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "privacy budget spent: unmasking this ", proto::StageLabel(plan.stage),
          " sum would reach epsilon ", epsilon, " > ", spec.privacy().epsilon_budget()));
    }
    v1::PrivacyRelease* release = in_flight.add_releases();
    release->set_stage(plan.stage);
    release->set_attempt(in_flight.attempt());
    release->set_session(in_flight.session());
    release->set_noise_multiplier(plan.noise_multiplier);
    release->set_charged_unix_ms(common::ToUnixMillis(clock_->Now()));
  }
  // The snapshot is written from the server's own bytes (megabytes: the running sum from
  // the masked input on, the share relays before it), never held by the record; the
  // answers written while the step is open (PutInFlightProgress) leave the stored one as
  // it is.
  ReleaseServerSnapshot(in_flight);
  return snapshot([&](std::span<const std::string_view> pieces) {
    return store_->PutInFlightWithSnapshot(in_flight, pieces);
  });
}

std::optional<TaskRunner::StageEnd> TaskRunner::CloseSession(v1::TaskRecord& task,
                                                             v1::InFlightRound& in_flight,
                                                             const StagePlan& plan,
                                                             SecureStageResult result) {
  StageEnd end;
  NoteDecisions(task, result.decisions);
  for (const std::string& c : result.unresponsive) registry_->MarkUnresponsive(c);
  // Sites that honest sites named as culprits are invited to no later session (culprits.h).
  for (const auto& [id, why] : result.quarantine) {
    if (absl::Status st = registry_->Quarantine(id, why); !st.ok()) {
      common::LogError("quarantine_not_stored").With("client", id).With("error", st.ToString());
    }
  }
  for (const std::string& drop : result.drops) {
    common::LogInfo("client_dropped")
        .With("task", task_id_)
        .With("round", plan.round)
        .With("why", drop);
  }
  if (halt() != Halt::kNone) {
    // A shutdown keeps the in-flight record as the last step boundary left it: the
    // restarted coordinator continues this very session.
    end.kind = StageEnd::Kind::kHalted;
    return end;
  }
  if (plan.retry) {
    AddUnique(result.masked_inputs, &in_flight);
    AddUnique(result.already_contributed, &in_flight);
  }
  KeepAttempt(result.attempt, in_flight.mutable_stage_attempts());
  for (const std::string& drop : result.drops) in_flight.add_drops(drop);
  NoteSitesOut(result.attempt, in_flight);
  in_flight.set_session_stage(v1::STAGE_UNSPECIFIED);
  in_flight.clear_session();
  in_flight.clear_cohort();
  in_flight.clear_threshold();
  ReleaseServerSnapshot(in_flight);
  end.result = std::move(result);
  if (!end.result.stopped.ok()) {
    end.kind = end.result.stopped.code() == absl::StatusCode::kResourceExhausted
                   ? StageEnd::Kind::kBudget
                   : StageEnd::Kind::kStoreError;
    end.reason = std::string(end.result.stopped.message());
    return end;
  }
  if (end.result.completed) {
    in_flight.set_approval_wait_started_unix_ms(0);
    end.kind = StageEnd::Kind::kCompleted;
    return end;
  }
  if (std::string rejected = RejectionReason(task); !rejected.empty()) {
    end.kind = StageEnd::Kind::kFailed;
    end.reason = std::move(rejected);
    // The task ends with this session's answers (TaskRecord.failed_round_attempts).
    if (absl::Status kept = store_->PutInFlight(in_flight); !kept.ok()) {
      common::LogWarning("in_flight_not_stored")
          .With("task", task_id_)
          .With("error", kept.ToString());
    }
    return end;
  }
  if (!plan.retry) {
    end.kind = StageEnd::Kind::kFailed;
    const std::string cause = FailureCause(in_flight.stage_attempts());
    end.reason = cause.empty() ? end.result.abort : cause;
    return end;
  }
  // A failed attempt: the next one with the sites that have not contributed. It does not
  // count when sites were deciding on the task; a wait for approvals starts (or goes on).
  const bool deciding = AnyDeciding(end.result.decisions);
  if (!AnyAwaiting(end.result.decisions)) {
    in_flight.set_approval_wait_started_unix_ms(0);
  } else if (in_flight.approval_wait_started_unix_ms() == 0) {
    in_flight.set_approval_wait_started_unix_ms(common::ToUnixMillis(clock_->Now()));
  }
  in_flight.set_attempt(in_flight.attempt() + 1);
  if (deciding) in_flight.set_unspent_attempts(in_flight.unspent_attempts() + 1);
  const std::string why =
      deciding ? absl::StrCat(end.result.abort, " (not counted: sites are deciding on the task)")
               : end.result.abort;
  if (AttemptFailed(plan.round, in_flight.attempt() - 1, why, &in_flight)) {
    end.kind = StageEnd::Kind::kHalted;
    return end;
  }
  if (absl::Status kept = store_->PutInFlight(in_flight); !kept.ok()) {
    end.kind = StageEnd::Kind::kStoreError;
    end.reason = std::string(kept.message());
    return end;
  }
  return std::nullopt;
}

TaskRunner::StageEnd TaskRunner::RunDurableStage(v1::TaskRecord& task, v1::InFlightRound& in_flight,
                                                 const StagePlan& plan) {
  while (true) {
    if (halt() != Halt::kNone) return StageEnd{StageEnd::Kind::kHalted, {}, ""};
    SecureStageRequest request;
    if (std::optional<StageEnd> end = OpenSession(task, in_flight, plan, &request)) return *end;
    request.persist = [&](v1::SecAggRound round, const std::optional<v1::StageAttempt>& attempt,
                          const SecureStageRequest::SnapshotSource& snapshot) {
      if (attempt.has_value()) KeepAttempt(*attempt, in_flight.mutable_stage_attempts());
      return PersistBoundary(task.spec(), plan, round, snapshot, in_flight);
    };
    request.excluded = [this](const std::string& id) { return registry_->Excluded(id); };
    request.approval_poll = options_.approval_poll;
    request.decisions_changed = [&](const SiteDecisions& heard) { NoteDecisions(task, heard); };
    request.attempt_changed = [&](const v1::StageAttempt& attempt) {
      // Shown by `tessera tasks show` while the session runs; the next step boundary
      // writes it again if this write fails.
      KeepAttempt(attempt, in_flight.mutable_stage_attempts());
      // The session's snapshot is the last boundary's: only the answers are written again.
      if (absl::Status kept = store_->PutInFlightProgress(in_flight); !kept.ok()) {
        common::LogWarning("in_flight_not_stored")
            .With("task", task_id_)
            .With("error", kept.ToString());
      }
    };
    if (std::optional<StageEnd> end = CloseSession(task, in_flight, plan, secure_.Run(request))) {
      return *std::move(end);
    }
  }
}

}  // namespace tessera::coordinator
