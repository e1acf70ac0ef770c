// `tessera dashboard`: the operator's web dashboard on this machine, over the admin service
// with the operator's own certificate (dashboard/dashboard.h).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/signals.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/console.h"
#include "console/internal.h"
#include "dashboard/dashboard.h"
#include "dashboard/grpc_admin_source.h"

namespace tessera::console {

absl::Status DashboardCommand(const std::vector<std::string>& args) {
  // Before any thread starts (gRPC's included), so that every thread inherits the mask.
  static absl::Notification stop;
  common::StopOnTerminationSignal(&stop);
  internal::Connection conn;
  dashboard::DashboardOptions options;
  std::string ready_file;
  uint64_t poll_ms = static_cast<uint64_t>(options.poll_ms);
  common::FlagParser flags(
      "tessera dashboard [flags]",
      "Serves the operator's web dashboard on this machine: tasks, live round progress,\n"
      "metric curves, each site's participation and declines per round, clients and their\n"
      "last contact, privacy spent. It reads the coordinator through the admin service with\n"
      "the operator's certificate, like the other commands; the coordinator opens no port\n"
      "for it. Runs until Ctrl-C (SIGINT) or SIGTERM.");
  conn.Register(flags);
  flags.AddString("listen", &options.listen, "host:port of the page (port 0: any free port)");
  flags.AddUint("poll-ms", &poll_ms, "how often an open page asks the coordinator (ms)");
  flags.AddString("ready-file", &ready_file, "write the page's URL to this file once serving");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  if (poll_ms < 100 || poll_ms > 600'000) {
    return absl::InvalidArgumentError("--poll-ms must be from 100 to 600000");
  }
  options.poll_ms = static_cast<int>(poll_ms);
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  auto board = dashboard::Dashboard::Start(options, dashboard::GrpcAdminSource(std::move(stub)));
  if (board.status().code() == absl::StatusCode::kUnavailable) {
    // The page's address could not be bound: not the coordinator's fault (exit 4 says that).
    return absl::FailedPreconditionError(board.status().message());
  }
  if (!board.ok()) return board.status();
  std::printf("tessera dashboard: %s (Ctrl-C to stop)\n", (*board)->url().c_str());
  std::fflush(stdout);
  if (!ready_file.empty()) RETURN_IF_ERROR(common::WriteReadyFile(ready_file, (*board)->url()));
  stop.WaitForNotification();
  (*board)->Stop();
  return absl::OkStatus();
}

}  // namespace tessera::console
