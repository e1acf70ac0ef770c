// TaskRunner: who takes part in a stage's session — the sites left out, the wait for a large
// enough cohort (and task.waiting while it lasts), the sites' decisions on the task and the
// approval timeout.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "coordinator/site_answers.h"
#include "coordinator/site_decisions.h"
#include "coordinator/task_runner.h"
#include "proto/validation.h"

namespace tessera::coordinator {
namespace {

// Declines that no retry of the round can change: the site lacks the dataset, its data
// cannot serve the task, or its policy refuses it.
bool Unfixable(const v1::SiteAnswer& a) {
  if (a.kind() != v1::SITE_ANSWER_DECLINED) return false;
  switch (a.decline_reason()) {
    case v1::Decline::DATASET_MISSING:
    case v1::Decline::DATA_ERROR:
    case v1::Decline::POLICY_REFUSED:
      return true;
    default:
      return false;
  }
}

// The outcome of the last ended session of `stage` when a check refused its sum, else "".
std::string RefusedSum(const v1::InFlightRound& in_flight, v1::Stage stage) {
  for (int i = in_flight.stage_attempts_size() - 1; i >= 0; --i) {
    const v1::StageAttempt& a = in_flight.stage_attempts(i);
    if (a.stage() != stage || a.ended_unix_ms() == 0) continue;
    return a.outcome().rfind("sum refused", 0) == 0 ? a.outcome() : "";
  }
  return "";
}

// Why a stage cannot gather `need` sites any more: the sites' own reasons first (a
// rejection, an exhausted budget, a cause no retry fixes), then the count, then a refused
// sum of the stage's last session.
std::string Unreachable(const v1::TaskRecord& task, const v1::InFlightRound& in_flight,
                        v1::Stage stage, size_t known, size_t contributed, uint32_t need) {
  std::vector<std::string> parts;
  if (std::string excluded = ExclusionReasons(task); !excluded.empty()) {
    parts.push_back(std::move(excluded));
  }
  for (const v1::SiteOut& out : in_flight.sites_out()) parts.push_back(out.reason());
  if (contributed == 0) {
    parts.push_back(absl::StrCat(
        "only ", known, " known sites holding the dataset can still take part, ", need, " needed"));
  } else {
    parts.push_back(absl::StrCat(
        "only ", known, " known sites holding the dataset have not contributed to this stage yet (",
        contributed, " have: ALREADY_CONTRIBUTED), ", need, " needed"));
  }
  if (std::string refused = RefusedSum(in_flight, stage); !refused.empty()) {
    parts.push_back(absl::StrCat("last session: ", refused));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace

uint32_t TaskRunner::NeededSites(const v1::TaskSpec& spec) {
  return std::max({spec.min_clients(), spec.secure_aggregation().threshold(),
                   spec.analytics().min_cohort(), 1u});
}

v1::TaskWaiting TaskRunner::Waiting(const v1::TaskRecord& task,
                                    const std::vector<std::string>& cohort,
                                    const std::set<std::string>& contributed,
                                    const std::set<std::string>& excluded, uint32_t need) const {
  const std::string& dataset = task.spec().dataset().id();
  const std::set<std::string> connected(cohort.begin(), cohort.end());
  std::vector<std::string> not_connected;
  std::vector<std::string> quarantined;
  std::vector<std::string> disabled;
  std::set<std::string> known_datasets;
  size_t contributed_holders = 0;
  size_t excluded_holders = 0;
  for (const v1::ClientRecord& c : registry_->List()) {
    known_datasets.insert(c.dataset_ids().begin(), c.dataset_ids().end());
    if (std::find(c.dataset_ids().begin(), c.dataset_ids().end(), dataset) ==
        c.dataset_ids().end()) {
      continue;
    }
    if (contributed.contains(c.client_id())) {
      ++contributed_holders;
    } else if (excluded.contains(c.client_id())) {
      ++excluded_holders;
    } else if (c.has_quarantine()) {
      quarantined.push_back(c.client_id());
    } else if (c.disabled()) {
      disabled.push_back(c.client_id());
    } else if (!connected.contains(c.client_id())) {
      not_connected.push_back(c.client_id());
    }
  }
  return MakeWaiting(dataset, need, static_cast<uint32_t>(cohort.size()), not_connected,
                     contributed_holders, excluded_holders, known_datasets, quarantined, disabled);
}

void TaskRunner::NoteWaiting(v1::TaskRecord& task, const std::optional<v1::TaskWaiting>& waiting) {
  if (!waiting.has_value()) {
    if (!task.has_waiting()) return;
    task.clear_waiting();
  } else {
    if (task.has_waiting() && SameWaiting(task.waiting(), *waiting)) return;
    const int64_t since =
        task.has_waiting() ? task.waiting().since_unix_ms() : common::ToUnixMillis(clock_->Now());
    *task.mutable_waiting() = *waiting;
    task.mutable_waiting()->set_since_unix_ms(since);
    common::LogInfo("task_waiting").With("task", task_id_).With("why", waiting->message());
  }
  // Shown by `tessera tasks show`; a failed write is retried with the next change.
  if (absl::Status kept = store_->UpdateTask(task); !kept.ok()) {
    common::LogWarning("task_waiting_not_stored")
        .With("task", task_id_)
        .With("error", kept.ToString());
  }
}

std::set<std::string> TaskRunner::LeftOut(const v1::TaskRecord& task,
                                          const v1::InFlightRound& in_flight,
                                          v1::Stage stage) const {
  std::set<std::string> out = ExcludedSites(task);
  for (const v1::SiteOut& site : in_flight.sites_out()) out.insert(site.client_id());
  const bool uses_statistics = stage == v1::STAGE_FIT || stage == v1::STAGE_EVALUATE ||
                               stage == v1::STAGE_FIT_EVALUATE || stage == v1::STAGE_GLM ||
                               stage == v1::STAGE_TEST;
  if (!uses_statistics || task.statistics_cohort().empty()) return out;
  const std::set<std::string> cohort(task.statistics_cohort().begin(),
                                     task.statistics_cohort().end());
  for (const v1::ClientRecord& c : registry_->List()) {
    if (!cohort.contains(c.client_id())) out.insert(c.client_id());
  }
  return out;
}

void TaskRunner::NoteSitesOut(const v1::StageAttempt& attempt, v1::InFlightRound& in_flight) {
  std::map<std::string, std::string> out;
  for (const v1::SiteOut& site : in_flight.sites_out()) out[site.client_id()] = site.reason();
  bool changed = false;
  for (const v1::SiteAnswer& a : attempt.sites()) {
    if (!Unfixable(a) || out.contains(a.client_id())) continue;
    out[a.client_id()] = DescribeAnswer(a);
    changed = true;
    in_flight.add_drops(absl::StrCat(a.client_id(), " is out of the round: ", DescribeAnswer(a)));
    common::LogWarning("site_out_of_round")
        .With("task", task_id_)
        .With("round", attempt.round())
        .With("client", a.client_id())
        .With("why", DescribeAnswer(a));
  }
  if (!changed) return;
  in_flight.clear_sites_out();
  for (const auto& [id, reason] : out) {
    v1::SiteOut* site = in_flight.add_sites_out();
    site->set_client_id(id);
    site->set_reason(reason);
  }
}

std::vector<std::string> TaskRunner::WaitForCohort(v1::TaskRecord& task,
                                                   const v1::InFlightRound& in_flight,
                                                   v1::Stage stage,
                                                   const std::set<std::string>& contributed,
                                                   const std::set<std::string>& excluded,
                                                   std::string* unreachable) {
  const v1::TaskSpec& spec = task.spec();
  // An exact regression's round needs every site of the cohort (a sum over fewer would be
  // another population's).
  const uint32_t need =
      stage == v1::STAGE_GLM
          ? std::max(NeededSites(spec), static_cast<uint32_t>(task.statistics_cohort_size()))
          : NeededSites(spec);
  auto left_out = [&](const std::string& id) {
    return contributed.contains(id) || excluded.contains(id);
  };
  absl::Time next_log = absl::InfinitePast();
  while (halt() == Halt::kNone) {
    std::vector<std::string> cohort;
    for (const std::string& id : registry_->Connected(spec.dataset().id())) {
      if (!left_out(id)) cohort.push_back(id);
    }
    if (cohort.size() >= need) {
      NoteWaiting(task, std::nullopt);
      return cohort;
    }
    NoteWaiting(task, Waiting(task, cohort, contributed, excluded, need));
    if (!contributed.empty() || !excluded.empty()) {
      size_t known = 0;
      for (const v1::ClientRecord& c : registry_->List()) {
        const bool holds = std::find(c.dataset_ids().begin(), c.dataset_ids().end(),
                                     spec.dataset().id()) != c.dataset_ids().end();
        if (holds && !left_out(c.client_id())) ++known;
      }
      if (known < need) {
        *unreachable = Unreachable(task, in_flight, stage, known, contributed.size(), need);
        return {};
      }
    }
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

absl::Duration TaskRunner::ApprovalTimeout(const v1::TaskSpec& spec) {
  // Unset (ApplyTaskDefaults leaves it so, proto/validation.h): the default applies.
  const uint32_t seconds = spec.approval_timeout_seconds() > 0
                               ? spec.approval_timeout_seconds()
                               : proto::kDefaultApprovalTimeoutSeconds;
  return absl::Seconds(seconds);
}

std::optional<std::string> TaskRunner::ApprovalOverdue(const v1::TaskRecord& task,
                                                       const v1::InFlightRound& in_flight) const {
  const int64_t started = in_flight.approval_wait_started_unix_ms();
  if (started == 0) return std::nullopt;
  const absl::Duration timeout = ApprovalTimeout(task.spec());
  if (clock_->Now() - absl::FromUnixMillis(started) < timeout) return std::nullopt;
  const std::vector<std::string> pending = SitesAwaitingApproval(task);
  return absl::StrCat("still awaiting approval after ", absl::ToInt64Seconds(timeout),
                      " s (approval_timeout_seconds): ",
                      pending.empty() ? "no site awaits it any more, but no session completed"
                                      : absl::StrJoin(pending, ", "));
}

absl::Duration TaskRunner::FirstStepDeadline(const v1::TaskSpec& spec,
                                             const v1::InFlightRound& in_flight) const {
  const absl::Duration round_deadline = absl::Seconds(spec.round_deadline_seconds());
  const int64_t started = in_flight.approval_wait_started_unix_ms();
  if (started == 0) return round_deadline;
  // Waiting for approvals: the step stays open longer (sites that approved computed their
  // contribution already), but not past the approval timeout.
  const absl::Duration left =
      ApprovalTimeout(spec) - (clock_->Now() - absl::FromUnixMillis(started));
  return std::max(round_deadline, std::min(options_.approval_session_hold, left));
}

void TaskRunner::NoteDecisions(v1::TaskRecord& task, const SiteDecisions& heard) {
  if (heard.empty()) return;
  std::map<std::string, v1::SiteDecision> before;
  for (const v1::SiteDecision& d : task.site_decisions()) before[d.client_id()] = d;
  if (!MergeDecisions(heard, common::ToUnixMillis(clock_->Now()), &task)) return;
  for (const auto& [id, d] : heard) {
    auto old = before.find(id);
    if (old != before.end() && old->second.state() == d.state() &&
        old->second.reason() == d.reason()) {
      continue;
    }
    common::LogInfo("site_decision")
        .With("task", task_id_)
        .With("client", id)
        .With("decision", v1::SiteDecisionState_Name(d.state()))
        .With("reason", d.reason());
  }
  // Shown by `tessera tasks show` while the task waits; a failed write is retried with the
  // next change (and the next commit carries the decisions anyway).
  if (absl::Status kept = store_->UpdateTask(task); !kept.ok()) {
    common::LogWarning("site_decisions_not_stored")
        .With("task", task_id_)
        .With("error", kept.ToString());
  }
}

}  // namespace tessera::coordinator
