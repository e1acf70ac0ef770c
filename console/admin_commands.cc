// `tessera tasks ...`: the admin service, reached with an
// operator certificate.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/console.h"
#include "console/internal.h"
#include "console/task_tables.h"
#include "crypto/hash.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/config.pb.h"
#include "proto/config_paths.h"
#include "proto/glm_layout.h"
#include "proto/grpc_status.h"
#include "proto/validation.h"

namespace tessera::console {

namespace internal {

absl::StatusOr<bool> ParseFlags(common::FlagParser& flags, const std::vector<std::string>& args,
                                std::vector<std::string>* positional, size_t max_positional) {
  ASSIGN_OR_RETURN(std::vector<std::string> rest, flags.Parse(args));
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return false;
  }
  if (rest.size() > max_positional) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", rest[max_positional], "' (see --help)"));
  }
  if (positional != nullptr) *positional = std::move(rest);
  return true;
}

}  // namespace internal

namespace internal {

void Connection::Register(common::FlagParser& flags) {
  flags.AddString("config", &config, "ConsoleConfig file (default: $TESSERA_CONSOLE_CONFIG)");
  flags.AddString("coordinator", &coordinator, "coordinator host:port (overrides the config)");
  flags.AddString("server-name", &server_name, "name in the coordinator's certificate");
  flags.AddString("ca", &ca, "federation CA certificate (overrides the config)");
  flags.AddString("cert", &cert, "operator certificate (overrides the config)");
  flags.AddString("key", &key, "operator private key (overrides the config)");
}

absl::StatusOr<v1::ConsoleConfig> Connection::Config() const {
  v1::ConsoleConfig cc;
  std::string path = config;
  if (path.empty()) {
    const char* env = std::getenv("TESSERA_CONSOLE_CONFIG");
    if (env != nullptr) path = env;
  }
  common::TextLocations where;
  if (!path.empty()) {
    RETURN_IF_ERROR(common::LoadProtoFile(path, &cc, &where));
    proto::ResolveRelativePaths(path, &cc);
  }
  if (!coordinator.empty()) cc.set_coordinator_address(coordinator);
  if (!server_name.empty()) cc.set_server_name(server_name);
  if (!ca.empty()) cc.mutable_tls()->set_ca_cert(ca);
  if (!cert.empty()) cc.mutable_tls()->set_cert(cert);
  if (!key.empty()) cc.mutable_tls()->set_key(key);
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateConsoleConfig(cc),
                                              path.empty() ? "console flags" : path, &where));
  return cc;
}

absl::StatusOr<std::unique_ptr<v1::Admin::Stub>> Connection::Connect() const {
  ASSIGN_OR_RETURN(v1::ConsoleConfig cc, Config());
  RETURN_IF_ERROR(crypto::RequireTls13ForProcess());
  ASSIGN_OR_RETURN(crypto::TlsMaterial tls,
                   crypto::LoadTlsMaterial(cc.tls(), crypto::Role::kOperator, absl::Now()));
  return v1::Admin::NewStub(crypto::MakeChannel(cc.coordinator_address(), cc.server_name(), tls));
}

void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
}

absl::Status CallStatus(const grpc::Status& st) {
  absl::Status s = proto::FromGrpcStatus(st);
  if (s.code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(absl::StrCat("coordinator unreachable: ", s.message()));
  }
  return s;
}

std::string FormatMillis(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

}  // namespace internal

namespace {

using common::FlagParser;
using internal::CallStatus;
using internal::Connection;
using internal::FetchTask;
using internal::FormatMillis;
using internal::PrintGlmReport;
using internal::PrintTable;
using internal::SetDeadline;
using internal::ShortState;

absl::Status Submit(const std::vector<std::string>& args) {
  Connection conn;
  bool dry_run = false;
  FlagParser flags("tessera tasks submit [flags] TASK_FILE",
                   "Validates a task file (a TaskSpec in protobuf text format, or .json) and\n"
                   "submits it. Errors name the file, line and field; nothing is stored then.");
  conn.Register(flags);
  flags.AddBool("dry-run", &dry_run, "only validate the file and print its spec hash");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("tasks submit needs a TASK_FILE");
  const std::string& path = positional[0];
  v1::TaskSpec spec;
  common::TextLocations where;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &spec, &where));
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec), path, &where));
  if (dry_run) {
    v1::TaskSpec full = spec;
    proto::ApplyTaskDefaults(&full);
    std::printf("%s: valid; spec sha256 %s\n", path.c_str(),
                crypto::ToHex(crypto::HashTaskSpec(full)).c_str());
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  v1::SubmitTaskRequest request;
  *request.mutable_spec() = std::move(spec);
  v1::SubmitTaskResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(common::Annotate(CallStatus(stub->SubmitTask(&ctx, request, &response)), path));
  std::printf("%s\n", response.task_id().c_str());
  std::fprintf(stderr, "submitted %s as %s (spec sha256 %s)\n", path.c_str(),
               response.task_id().c_str(), crypto::ToHex(response.spec_hash()).c_str());
  return absl::OkStatus();
}

absl::Status List(const std::vector<std::string>& args) {
  Connection conn;
  bool json = false;
  FlagParser flags("tessera tasks list [flags]", "Lists every task with its state and progress.");
  conn.Register(flags);
  flags.AddBool("json", &json, "print JSON");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  v1::ListTasksResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(CallStatus(stub->ListTasks(&ctx, v1::ListTasksRequest(), &response)));
  if (json) {
    std::printf("%s\n", common::ToJson(response).c_str());
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {
      {"TASK", "NAME", "STATE", "ROUNDS", "DATASET", "SUBMITTED (UTC)", "BY"}};
  for (const v1::TaskRecord& t : response.tasks()) {
    rows.push_back({t.task_id(), t.spec().name(), ShortState(t.state()),
                    absl::StrCat(std::max(0, t.last_committed_round()), "/", t.spec().rounds()),
                    t.spec().dataset().id(), FormatMillis(t.created_unix_ms()), t.submitted_by()});
  }
  PrintTable(rows);
  return absl::OkStatus();
}

absl::Status Cancel(const std::vector<std::string>& args) {
  Connection conn;
  std::string reason;
  FlagParser flags("tessera tasks cancel [flags] TASK_ID",
                   "Stops a running task after its current stage; committed rounds stay.");
  conn.Register(flags);
  flags.AddString("reason", &reason, "why, for the record");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("tasks cancel needs a TASK_ID");
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  v1::CancelTaskRequest request;
  request.set_task_id(positional[0]);
  request.set_reason(reason);
  v1::CancelTaskResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(CallStatus(stub->CancelTask(&ctx, request, &response)));
  std::printf("cancel requested for %s\n", positional[0].c_str());
  return absl::OkStatus();
}

}  // namespace

absl::Status TasksCommand(const std::vector<std::string>& args) {
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "tasks needs a subcommand: submit, list, show, wait, cancel or provenance");
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "submit") return Submit(rest);
  if (args[0] == "list") return List(rest);
  if (args[0] == "show") return internal::ShowCommand(rest);
  if (args[0] == "wait") return internal::WaitCommand(rest);
  if (args[0] == "cancel") return Cancel(rest);
  if (args[0] == "provenance") return internal::ProvenanceCommand(rest);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown tasks subcommand '", args[0], "' (submit, list, show, wait, cancel or provenance)"));
}

namespace {

// Polls task `task_id` until it completes; ABORTED if it failed or was cancelled,
// DEADLINE_EXCEEDED after `timeout_seconds`.
absl::StatusOr<v1::GetTaskResponse> WaitForAnswer(v1::Admin::Stub& stub, const std::string& task_id,
                                                  uint64_t timeout_seconds) {
  const absl::Time give_up = absl::Now() + absl::Seconds(static_cast<int64_t>(timeout_seconds));
  while (true) {
    ASSIGN_OR_RETURN(v1::GetTaskResponse task, FetchTask(stub, task_id));
    const v1::TaskState state = task.task().state();
    if (state == v1::TASK_COMPLETED) return task;
    if (state == v1::TASK_FAILED || state == v1::TASK_CANCELLED) {
      return absl::AbortedError(
          absl::StrCat(task_id, " ", ShortState(state), ": ", task.task().state_reason()));
    }
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat(task_id, " has no answer after ", timeout_seconds, " s (still ",
                       ShortState(state), "); see 'tessera tasks show ", task_id, "'"));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// An analytics answer as tables: per column its count, sum, mean, variance and suppressed
// cells, then the privacy parameters if any, then each histogram.
void PrintAnalyticsAnswer(const v1::TaskSpec& spec, const std::string& task_id,
                          const v1::RoundRecord& answer) {
  std::map<std::string, double> values;
  for (const v1::Metric& m : answer.metrics()) values[m.name()] = m.value();
  std::printf("%s: %d sites\n", task_id.c_str(), answer.fit_participants_size());
  // A suppressed cell has no metric at all: it is shown as such, never as a number.
  // Counts as whole numbers, the rest with ten significant digits.
  enum class Shown { kWhole, kTenDigits };
  auto cell = [&](const std::string& name, Shown shown) {
    auto it = values.find(name);
    if (it == values.end()) return std::string("suppressed");
    return shown == Shown::kWhole ? absl::StrFormat("%.0f", it->second)
                                  : absl::StrFormat("%.10g", it->second);
  };
  std::vector<std::vector<std::string>> rows = {
      {"COLUMN", "COUNT", "SUM", "MEAN", "VARIANCE", "SUPPRESSED CELLS"}};
  for (const auto& q : spec.analytics().queries()) {
    const std::string& c = q.column();
    rows.push_back({c, cell(c + ".count", Shown::kWhole), cell(c + ".sum", Shown::kTenDigits),
                    cell(c + ".mean", Shown::kTenDigits), cell(c + ".variance", Shown::kTenDigits),
                    cell(c + ".suppressed_cells", Shown::kWhole)});
  }
  PrintTable(rows);
  if (values.contains("epsilon")) {
    std::printf(
        "\nrecord-level differential privacy: every value carries noise; epsilon %.4g, "
        "delta %.3g\n",
        values["epsilon"], values["delta"]);
  }
  for (const auto& q : spec.analytics().queries()) {
    const int edges = q.histogram_edges_size();
    if (edges == 0) continue;
    std::printf("\nhistogram of %s\n", q.column().c_str());
    std::vector<std::string> labels;
    for (int i = 0; i + 1 < edges; ++i) {
      labels.push_back(absl::StrCat("bin[", q.histogram_edges(i), ",", q.histogram_edges(i + 1),
                                    i + 2 == edges ? "]" : ")"));
    }
    labels.push_back("below");
    labels.push_back("above");
    for (const std::string& label : labels) {
      std::printf("  %-32s %s\n", label.c_str(),
                  cell(q.column() + "." + label, Shown::kWhole).c_str());
    }
  }
}

}  // namespace

absl::Status QueryCommand(const std::vector<std::string>& args) {
  Connection conn;
  bool json = false;
  uint64_t timeout_seconds = 600;
  FlagParser flags(
      "tessera query [flags] QUERY_FILE",
      "Submits a federated-analytics task (a TaskSpec with an `analytics` section:\n"
      "count, sum, mean, variance and histograms of named columns, optionally\n"
      "filtered), waits for its answer and prints it. The coordinator learns only\n"
      "sums over at least analytics.min_cohort sites; below that no answer is released.\n"
      "Every released cell holds at least analytics.min_cell_size rows (default 10);\n"
      "smaller cells, and cells they could be derived from, are shown as suppressed.\n"
      "An exact regression (a TaskSpec with `model { glm { ... } }`) is asked the same\n"
      "way: it prints the fit's coefficients with standard errors, p-values and 95%\n"
      "confidence intervals, as R's summary() does.");
  conn.Register(flags);
  flags.AddBool("json", &json, "print the answer as JSON");
  flags.AddUint("timeout-seconds", &timeout_seconds, "give up waiting after this long");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("query needs a QUERY_FILE");
  const std::string& path = positional[0];
  v1::TaskSpec spec;
  common::TextLocations where;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &spec, &where));
  const bool regression = !spec.has_analytics() && proto::IsGlmTask(spec);
  if (!spec.has_analytics() && !regression) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": a query file needs an `analytics { ... }` section or an exact regression "
                     "(`model { glm { ... } }`)"));
  }
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec), path, &where));
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  v1::SubmitTaskRequest request;
  *request.mutable_spec() = spec;
  v1::SubmitTaskResponse submitted;
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    RETURN_IF_ERROR(
        common::Annotate(CallStatus(stub->SubmitTask(&ctx, request, &submitted)), path));
  }
  ASSIGN_OR_RETURN(v1::GetTaskResponse task,
                   WaitForAnswer(*stub, submitted.task_id(), timeout_seconds));
  if (regression) {
    if (!task.task().has_glm_report()) {
      return absl::InternalError("completed regression without a report");
    }
    if (json) {
      std::printf("%s\n", common::ToJson(task.task().glm_report()).c_str());
    } else {
      std::printf("%s: %d sites\n", submitted.task_id().c_str(),
                  task.task().statistics_cohort_size());
      PrintGlmReport(task.task().glm_report());
    }
    return absl::OkStatus();
  }
  if (task.rounds().empty()) return absl::InternalError("completed query without an answer");
  const v1::RoundRecord& answer = task.rounds(task.rounds_size() - 1);
  if (json) {
    v1::RoundRecord only;
    *only.mutable_metrics() = answer.metrics();
    only.set_task_id(answer.task_id());
    for (const std::string& p : answer.fit_participants()) only.add_fit_participants(p);
    std::printf("%s\n", common::ToJson(only).c_str());
    return absl::OkStatus();
  }
  PrintAnalyticsAnswer(spec, submitted.task_id(), answer);
  return absl::OkStatus();
}

}  // namespace tessera::console
