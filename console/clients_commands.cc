// `tessera clients list|disable|enable`: the institutions the coordinator knows, their
// certificates' expiry, and the operator's decision to refuse one (docs/pki.md).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "console/console.h"
#include "console/internal.h"
#include "console/task_tables.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"

namespace tessera::console {
namespace {

using common::FlagParser;
using internal::CallStatus;
using internal::Connection;
using internal::PrintTable;
using internal::SetDeadline;

// Certificates expiring within this many days are flagged.
constexpr int64_t kExpiryWarningDays = 30;

std::string ExpiryCell(const v1::ClientRecord& c, int64_t now_ms) {
  if (c.cert_not_after_unix_ms() == 0) return "?";
  const absl::Time not_after = absl::FromUnixMillis(c.cert_not_after_unix_ms());
  std::string day = absl::FormatTime("%Y-%m-%d", not_after, absl::UTCTimeZone());
  const int64_t days_left = (c.cert_not_after_unix_ms() - now_ms) / (24 * 3600 * 1000);
  if (c.cert_not_after_unix_ms() < now_ms) return day + " EXPIRED";
  if (days_left < kExpiryWarningDays) return absl::StrCat(day, " (", days_left, "d: RENEW)");
  return day;
}

absl::Status List(const std::vector<std::string>& args) {
  Connection conn;
  bool json = false;
  FlagParser flags("tessera clients list [flags]",
                   "Lists the institutions that have connected: id, status, datasets, when\n"
                   "they were last heard from, certificate expiry and fingerprint, version.\n"
                   "STATUS is ACTIVE (a long-poll open, or a call within twice the\n"
                   "coordinator's long_poll_seconds), STALE (none for longer: frozen, cut off,\n"
                   "or computing a long answer), OFFLINE (none for client_liveness_seconds: no\n"
                   "longer invited) or DISABLED (refused by an operator: 'tessera clients\n"
                   "enable'). CERT EXPIRES flags certificates expiring within 30 days (RENEW).\n"
                   "--json gives the thresholds (stale_after_ms, offline_after_ms).");
  conn.Register(flags);
  flags.AddBool("json", &json, "print JSON");
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  v1::ListClientsResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(CallStatus(stub->ListClients(&ctx, v1::ListClientsRequest(), &response)));
  if (json) {
    std::printf("%s\n", common::ToJson(response).c_str());
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {
      {"CLIENT", "STATUS", "DATASETS", "LAST SEEN", "CERT EXPIRES", "CERT SHA256", "VERSION"}};
  for (const v1::ClientRecord& c : response.clients()) {
    int64_t ago = (response.now_unix_ms() - c.last_seen_unix_ms()) / 1000;
    std::string status = v1::ClientStatus_Name(c.status());
    if (status.rfind("CLIENT_", 0) == 0) status = status.substr(7);
    if (c.disabled()) status = "DISABLED";
    rows.push_back({c.client_id(), status, absl::StrJoin(c.dataset_ids(), ","),
                    absl::StrCat(std::max<int64_t>(0, ago), "s ago"),
                    ExpiryCell(c, response.now_unix_ms()), c.cert_fingerprint().substr(0, 16),
                    c.client_version()});
  }
  PrintTable(rows);
  for (const v1::ClientRecord& c : response.clients()) {
    if (!c.disabled()) continue;
    std::printf("%s disabled by %s: %s\n", c.client_id().c_str(), c.disabled_by().c_str(),
                c.disabled_reason().empty() ? "(no reason given)" : c.disabled_reason().c_str());
  }
  return absl::OkStatus();
}

absl::Status SetDisabled(const std::vector<std::string>& args, bool disable) {
  Connection conn;
  std::string reason;
  FlagParser flags(
      disable ? "tessera clients disable ID [--reason TEXT] [flags]"
              : "tessera clients enable ID [flags]",
      disable ? "Refuses the institution ID at every call (its live sessions end; it is not\n"
                "invited again) until 'tessera clients enable ID'. Kept by the coordinator\n"
                "across restarts. To refuse a stolen key for good, revoke its certificate\n"
                "('tessera pki revoke')."
              : "Takes back 'tessera clients disable ID'.");
  conn.Register(flags);
  if (disable) flags.AddString("reason", &reason, "why, shown to the site (at most 200 chars)");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.size() != 1) return absl::InvalidArgumentError("give the client ID");
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ClientRecord record;
  if (disable) {
    v1::DisableClientRequest request;
    request.set_client_id(positional.front());
    request.set_reason(reason);
    v1::DisableClientResponse response;
    RETURN_IF_ERROR(CallStatus(stub->DisableClient(&ctx, request, &response)));
    record = response.client();
  } else {
    v1::EnableClientRequest request;
    request.set_client_id(positional.front());
    v1::EnableClientResponse response;
    RETURN_IF_ERROR(CallStatus(stub->EnableClient(&ctx, request, &response)));
    record = response.client();
  }
  std::printf("%s %s\n", record.client_id().c_str(), record.disabled() ? "DISABLED" : "enabled");
  return absl::OkStatus();
}

}  // namespace

absl::Status ClientsCommand(const std::vector<std::string>& args) {
  if (args.empty()) {
    return absl::InvalidArgumentError("clients needs a subcommand: list, disable or enable");
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "list") return List(rest);
  if (args[0] == "disable") return SetDisabled(rest, true);
  if (args[0] == "enable") return SetDisabled(rest, false);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown clients subcommand '", args[0], "' (list, disable or enable)"));
}

}  // namespace tessera::console
