#include "client/cli_tasks.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "client/config_reload.h"
#include "client/internal/cli_flags.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_status.h"
#include "proto/site_control.grpc.pb.h"

namespace tessera::client {
namespace {

constexpr char kTasksUsage[] =
    "usage: tessera-client tasks COMMAND [ID] [flags]\n\n"
    "The site's decisions on the tasks the coordinator asks it to work on, through the running\n"
    "daemon's control socket (only the daemon's user and root may use it).\n\n"
    "commands:\n"
    "  pending          tasks waiting for this site's decision (id, name, spec hash, first seen)\n"
    "  show ID          a task's whole spec, what would leave the site, its spec hash, decisions\n"
    "  approve ID       approve it (binds the id and the spec hash); its next attempt runs\n"
    "  reject ID        reject it, --reason required (sent to the coordinator)\n"
    "  reload           re-read the daemon's config file and swap in its policy\n\n"
    "flags (every command):\n"
    "  --config FILE    the daemon's ClientConfig (its control_socket, default\n"
    "                   <data_dir>/control.sock)\n"
    "  --socket PATH    the control socket, instead of --config\n"
    "approve, reject:\n"
    "  --reason TEXT    why (required to reject)\n"
    "  --hash HEX       the spec hash shown by 'show' (needed if the id has several pending)\n";

std::string Time(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string Status(const v1::ApprovalRecord& r) {
  if (!r.has_decision()) return "pending";
  const v1::TaskDecision& d = r.decision();
  std::string out = absl::StrCat(d.kind() == v1::TaskDecision::APPROVED ? "approved" : "rejected",
                                 " by ", d.by(), " at ", Time(d.at_unix_ms()));
  if (!d.reason().empty()) absl::StrAppend(&out, ": ", d.reason());
  return out;
}

absl::StatusOr<std::unique_ptr<v1::SiteControl::Stub>> Connect(const std::string& config_path,
                                                               std::string socket) {
  if (socket.empty() && config_path.empty()) {
    return absl::InvalidArgumentError("give --config FILE (the daemon's config) or --socket PATH");
  }
  if (socket.empty()) {
    ASSIGN_OR_RETURN(v1::ClientConfig config, LoadClientConfig(config_path));
    socket = config.control_socket();
  }
  if (!common::PathExists(socket)) {
    return absl::UnavailableError(absl::StrCat("no control socket at ", socket,
                                               " (is the daemon running with this config?)"));
  }
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  return v1::SiteControl::NewStub(channel);
}

// The daemon's answer as a status; a refused or dropped connection explained.
absl::Status Call(const grpc::Status& st) {
  absl::Status status = proto::FromGrpcStatus(st);
  if (status.code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(
        absl::StrCat("the daemon did not answer on its control socket (", status.message(),
                     "); only the daemon's own user and root may use it"));
  }
  return status;
}

void Deadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
}

absl::Status Pending(v1::SiteControl::Stub& stub) {
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::ListPendingResponse response;
  RETURN_IF_ERROR(Call(stub.ListPending(&ctx, v1::ListPendingRequest(), &response)));
  if (response.pending().empty()) {
    std::printf("no task is waiting for this site's decision\n");
    return absl::OkStatus();
  }
  std::printf("%-20s %-28s %-64s %s\n", "TASK", "NAME", "SPEC_SHA256", "FIRST_SEEN");
  for (const v1::ApprovalRecord& r : response.pending()) {
    std::printf("%-20s %-28s %-64s %s\n", r.task_id().c_str(), r.spec().name().c_str(),
                crypto::ToHex(r.spec_hash()).c_str(), Time(r.first_seen_unix_ms()).c_str());
  }
  return absl::OkStatus();
}

void PrintEgress(const v1::ShowTaskResponse& response) {
  std::printf("dataset:      %s\ncolumns:      %s\n", response.dataset().c_str(),
              absl::StrJoin(response.columns(), ", ").c_str());
  std::printf(
      "what would leave this site (each a masked vector, only ever seen summed over the "
      "cohort):\n");
  for (const v1::StageEgress& s : response.stages()) {
    std::printf(
        "  %-10s %llu values (%llu words), %s: %s\n", s.stage().c_str(),
        static_cast<unsigned long long>(s.values()), static_cast<unsigned long long>(s.words()),
        s.dp() ? absl::StrCat("DP (", s.dp_detail(), ")").c_str() : "no DP", s.holds().c_str());
    if (!s.skipped().empty()) std::printf("             not sent: %s\n", s.skipped().c_str());
  }
}

absl::Status Show(v1::SiteControl::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::ShowTaskRequest request;
  request.set_task_id(id);
  v1::ShowTaskResponse response;
  RETURN_IF_ERROR(Call(stub.ShowTask(&ctx, request, &response)));
  const v1::ApprovalRecord& r = *response.records().rbegin();
  std::printf("task:         %s\nname:         %s\nspec_sha256:  %s\nfirst seen:   %s\n",
              r.task_id().c_str(), r.spec().name().c_str(), crypto::ToHex(r.spec_hash()).c_str(),
              Time(r.first_seen_unix_ms()).c_str());
  std::printf("status:       %s\npolicy:       %s\n", Status(r).c_str(), response.policy().c_str());
  PrintEgress(response);
  for (int i = response.records_size() - 2; i >= 0; --i) {
    const v1::ApprovalRecord& old = response.records(i);
    std::printf("earlier spec: %s, first seen %s, %s\n", crypto::ToHex(old.spec_hash()).c_str(),
                Time(old.first_seen_unix_ms()).c_str(), Status(old).c_str());
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(r.spec(), &text);
  std::printf("spec:\n  %s\n", absl::StrReplaceAll(text, {{"\n", "\n  "}}).c_str());
  return absl::OkStatus();
}

absl::Status Decide(v1::SiteControl::Stub& stub, bool approve, const std::string& id,
                    const std::string& hash, const std::string& reason) {
  if (!approve && reason.empty()) {
    return absl::InvalidArgumentError("reject needs --reason TEXT (sent to the coordinator)");
  }
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::DecideRequest request;
  request.set_task_id(id);
  request.set_spec_sha256(hash);
  request.set_reason(reason);
  if (const char* sudo = std::getenv("SUDO_USER")) request.set_sudo_user(sudo);
  v1::DecideResponse response;
  RETURN_IF_ERROR(Call(approve ? stub.Approve(&ctx, request, &response)
                               : stub.Reject(&ctx, request, &response)));
  std::printf("task %s (spec %s) %s\n", id.c_str(),
              crypto::ToHex(response.record().spec_hash()).c_str(),
              Status(response.record()).c_str());
  return absl::OkStatus();
}

absl::Status Reload(v1::SiteControl::Stub& stub) {
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::ReloadPolicyResponse response;
  RETURN_IF_ERROR(Call(stub.ReloadPolicy(&ctx, v1::ReloadPolicyRequest(), &response)));
  std::printf("policy reloaded from %s\n", response.config_file().c_str());
  if (!response.needs_restart().empty()) {
    std::printf("changed, taking effect at the next start only: %s\n",
                absl::StrJoin(response.needs_restart(), ", ").c_str());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status TasksCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kTasksUsage, args.empty() ? stderr : stdout);
    return args.empty() ? absl::InvalidArgumentError("tasks: a command is required")
                        : absl::OkStatus();
  }
  const std::string& command = args[0];
  const bool needs_id = command == "show" || command == "approve" || command == "reject";
  if (!needs_id && command != "pending" && command != "reload") {
    return absl::InvalidArgumentError(absl::StrCat("unknown tasks command '", command,
                                                   "' (pending, show, approve, reject or reload)"));
  }
  std::string config_path, socket, reason, hash;
  common::FlagParser flags(
      absl::StrCat(
          "tessera-client tasks ", command, needs_id ? " ID" : "",
          " [--config FILE | --socket PATH]",
          command == "approve" || command == "reject" ? " [--reason TEXT] [--hash HEX]" : ""),
      "See 'tessera-client tasks --help'.");
  flags.AddString("config", &config_path, "the daemon's ClientConfig file");
  flags.AddString("socket", &socket, "the daemon's control socket (instead of --config)");
  if (command == "approve" || command == "reject") {
    flags.AddString("reason", &reason, "why (required to reject; sent to the coordinator)");
    flags.AddString("hash", &hash, "the spec hash (lowercase hex) the decision binds");
  }
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseCliFlags(
                                flags, std::vector<std::string>(args.begin() + 1, args.end()),
                                &positional, needs_id ? 1 : 0));
  if (!go) return absl::OkStatus();
  if (needs_id && positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("tasks ", command, " needs a task ID"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<v1::SiteControl::Stub> stub, Connect(config_path, socket));
  if (command == "pending") return Pending(*stub);
  if (command == "reload") return Reload(*stub);
  if (command == "show") return Show(*stub, positional[0]);
  return Decide(*stub, command == "approve", positional[0], hash, reason);
}

}  // namespace tessera::client
