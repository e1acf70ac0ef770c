// `tessera tasks show` and `tessera tasks wait`: a task's state, why it does not progress
// (waiting for sites, each site's answers, the reason it failed) and its rounds.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/internal.h"
#include "console/task_tables.h"
#include "proto/admin.grpc.pb.h"
#include "simulation/diagnostics.h"

namespace tessera::console::internal {
namespace {

// A failed call that a coordinator restart (or a moment of network trouble) explains:
// UNAVAILABLE while it is down, CANCELLED for a call its shutdown cut short,
// DEADLINE_EXCEEDED while it is starting.
bool RideOut(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable || st.code() == absl::StatusCode::kCancelled ||
         st.code() == absl::StatusCode::kDeadlineExceeded;
}

// --metric: the test metric `metric` once there is one, else its value in the last round
// that has it; NOT_FOUND if none has.
absl::Status PrintOneMetric(const v1::GetTaskResponse& task, const std::string& task_id,
                            const std::string& metric) {
  auto print_if_there = [&](const auto& metrics) {
    for (const v1::Metric& m : metrics) {
      if (m.name() != metric) continue;
      std::printf("%s\n", FormatMetric(metric, m.value()).c_str());
      return true;
    }
    return false;
  };
  if (print_if_there(task.task().test_metrics())) return absl::OkStatus();
  for (auto r = task.rounds().rbegin(); r != task.rounds().rend(); ++r) {
    if (print_if_there(r->metrics())) return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat(task_id, " has no committed round with metric '", metric, "'"));
}

}  // namespace

using common::FlagParser;

absl::Status ShowCommand(const std::vector<std::string>& args) {
  Connection conn;
  bool json = false;
  bool sites = false;
  std::string metric;
  FlagParser flags(
      "tessera tasks show [flags] TASK_ID",
      "Shows a task: its state and the reason for it, why it waits (\"waiting for N sites\n"
      "holding dataset X (have M)\"), each site's decision on it (APPROVED,\n"
      "AWAITING_APPROVAL, REJECTED with the site's reason, BUDGET_EXHAUSTED,\n"
      "POLICY_REFUSED), each invited site's answer in every session of the round in flight\n"
      "(CONTRIBUTED, DECLINED <reason>, DROPPED at <step>, NOT_CONNECTED, NO_ANSWER, ...)\n"
      "and of the round a failed task failed in, and the metrics of each committed round\n"
      "(round 0 is the statistics round). Metrics come from federated evaluation on the\n"
      "sites' held-out rows; with a validation split (training.validation_fraction) on\n"
      "their validation rows, then the selected round and its test metrics.");
  conn.Register(flags);
  flags.AddBool("json", &json, "print the task, its rounds and its round in flight as JSON");
  flags.AddBool("sites", &sites, "also print each site's answers in every committed round");
  flags.AddString("metric", &metric,
                  "print only this metric of the last round that has it (e.g. accuracy); with a "
                  "validation split, the test metric once there is one");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("tasks show needs a TASK_ID");
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  ASSIGN_OR_RETURN(v1::GetTaskResponse task, FetchTask(*stub, positional[0]));
  if (!metric.empty()) return PrintOneMetric(task, positional[0], metric);
  if (json) {
    std::printf("%s\n", common::ToJson(task).c_str());
    return absl::OkStatus();
  }
  PrintTaskSummary(task.task());
  {
    const std::vector<v1::RoundRecord> rounds(task.rounds().begin(), task.rounds().end());
    for (const std::string& w : simulation::DriftWarnings(task.task().spec(), rounds)) {
      std::printf("warning   %s\n", w.c_str());
    }
  }
  PrintSiteDecisions(task.task());
  if (task.has_in_flight()) {
    PrintAttempts(
        absl::StrCat(task.in_flight().final_test() ? "the test session of round " : "round ",
                     task.in_flight().round(), " in flight, attempt ", task.in_flight().attempt(),
                     ": each site's answer"),
        task.in_flight().stage_attempts());
    for (const v1::SiteOut& out : task.in_flight().sites_out()) {
      std::printf("out of round %u: %s\n", task.in_flight().round(), out.reason().c_str());
    }
  }
  PrintAttempts("the round the task failed in: each site's answer",
                task.task().failed_round_attempts());
  if (sites) {
    for (const v1::RoundRecord& r : task.rounds()) {
      PrintAttempts(absl::StrCat("round ", r.round(), ": each site's answer"), r.stage_attempts());
    }
  }
  if (task.rounds().empty()) return absl::OkStatus();
  std::printf("\n");
  std::vector<std::string> names = MetricNames(task.rounds());
  std::vector<std::vector<std::string>> rows = {RoundHeader(names)};
  for (const auto& r : task.rounds()) rows.push_back(RoundRow(r, names));
  PrintTable(rows);
  if (task.task().has_glm_report()) PrintGlmReport(task.task().glm_report());
  PrintSelection(task.task());
  return absl::OkStatus();
}

absl::Status WaitCommand(const std::vector<std::string>& args) {
  Connection conn;
  uint64_t poll_ms = 1000;
  uint64_t unreachable_seconds = 300;
  FlagParser flags("tessera tasks wait [flags] TASK_ID",
                   "Follows a task: prints each round's metrics as it commits, and returns when\n"
                   "the task ends. Rides out coordinator restarts. Exit 0 if the task completed,\n"
                   "1 if it failed, 3 if it was cancelled, 4 if the coordinator stayed\n"
                   "unreachable for --unreachable-seconds, 2 for bad input.");
  conn.Register(flags);
  flags.AddUint("poll-ms", &poll_ms, "how often to ask the coordinator, in milliseconds");
  flags.AddUint("unreachable-seconds", &unreachable_seconds,
                "give up (exit 4) when the coordinator has not answered for this long");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("tasks wait needs a TASK_ID");
  if (poll_ms == 0) return absl::InvalidArgumentError("--poll-ms must be positive");
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  int printed = 0;  // last round printed; round 0 (statistics) is not a training round
  std::vector<std::string> names;
  std::vector<size_t> widths;
  absl::Time last_answer = absl::Now();
  std::string waiting;  // the task's waiting message last printed
  while (true) {
    auto task = FetchTask(*stub, positional[0]);
    if (!task.ok()) {
      // Ride out a coordinator restart; give up on anything else.
      if (!RideOut(task.status())) return task.status();
      // The next call on a fresh channel. The old one, in TRANSIENT_FAILURE, fails calls at
      // once, and between our calls nothing polls it: its reconnection's TLS handshake then
      // only moves on gRPC's 5-s backup poller and times out (its connect timeout is the
      // 250-ms minimum backoff, crypto/tls.h), so a restarted coordinator was seen again only
      // 30-60 s later. A fresh channel's first call waits for its own handshake.
      ASSIGN_OR_RETURN(stub, conn.Connect());
      if (absl::Now() - last_answer > absl::Seconds(static_cast<int64_t>(unreachable_seconds))) {
        return absl::UnavailableError(
            absl::StrCat("the coordinator has not answered for ", unreachable_seconds,
                         " s (--unreachable-seconds); ", positional[0],
                         " may still be running: ", task.status().message()));
      }
    } else {
      last_answer = absl::Now();
      for (const auto& r : task->rounds()) {
        if (static_cast<int>(r.round()) <= printed) continue;
        if (names.empty()) {
          // Columns from the first training round; every round of a task has the same.
          for (const auto& m : r.metrics()) names.push_back(m.name());
          std::vector<std::string> header = RoundHeader(names);
          for (const std::string& h : header) widths.push_back(std::max<size_t>(h.size(), 8));
          std::printf("%s\n", PadRow(header, widths).c_str());
        }
        std::printf("%s\n", PadRow(RoundRow(r, names), widths).c_str());
        std::fflush(stdout);
        printed = static_cast<int>(r.round());
      }
      const v1::TaskRecord& t = task->task();
      // Why the task does not progress, each time it changes (stderr: stdout keeps the
      // round lines).
      if (t.waiting().message() != waiting) {
        waiting = t.waiting().message();
        if (!waiting.empty())
          std::fprintf(stderr, "%s: %s\n", t.task_id().c_str(), waiting.c_str());
      }
      if (t.state() == v1::TASK_COMPLETED) {
        std::printf("%s %s after %d rounds\n", t.task_id().c_str(), ShortState(t.state()).c_str(),
                    t.last_committed_round());
        PrintSelection(t);
        return absl::OkStatus();
      }
      const std::string ended =
          absl::StrCat(t.task_id(), " ", ShortState(t.state()), ": ", t.state_reason());
      if (t.state() == v1::TASK_FAILED) return absl::AbortedError(ended);
      if (t.state() == v1::TASK_CANCELLED) return absl::CancelledError(ended);
    }
    absl::SleepFor(absl::Milliseconds(static_cast<int64_t>(poll_ms)));
  }
}

}  // namespace tessera::console::internal
