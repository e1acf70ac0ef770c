// `tessera clients list|disable|enable|release`: the institutions the coordinator knows,
// their certificates' expiry, the operator's decision to refuse one (docs/pki.md), and the
// release of a site the coordinator quarantined (docs/operations.md).
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
                   "enable'), or QUARANTINED (other sites named it as the sender of shares\n"
                   "that do not authenticate; not invited until 'tessera clients release').\n"
                   "CERT EXPIRES flags certificates expiring within 30 days (RENEW).\n"
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
    if (c.has_quarantine()) status = "QUARANTINED";
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
  for (const v1::ClientRecord& c : response.clients()) {
    if (!c.has_quarantine()) continue;
    const v1::ClientQuarantine& q = c.quarantine();
    std::printf(
        "%s quarantined since %s, named by %s in session %s: %s ('tessera clients "
        "release %s' to invite it again)\n",
        c.client_id().c_str(),
        absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(q.since_unix_ms()),
                         absl::UTCTimeZone())
            .c_str(),
        absl::StrJoin(q.named_by(), ", ").c_str(), q.session().c_str(), q.reason().c_str(),
        c.client_id().c_str());
  }
  return absl::OkStatus();
}

// An operator's decision on one site: disable, enable (takes back a disable) or release (ends
// a quarantine).
enum class Decision { kDisable, kEnable, kRelease };

FlagParser DecisionFlags(Decision decision) {
  switch (decision) {
    case Decision::kDisable:
      return FlagParser(
          "tessera clients disable ID [--reason TEXT] [flags]",
          "Refuses the institution ID at every call (its live sessions end; it is not\n"
          "invited again) until 'tessera clients enable ID'. Kept by the coordinator\n"
          "across restarts. To refuse a stolen key for good, revoke its certificate\n"
          "('tessera pki revoke').");
    case Decision::kEnable:
      return FlagParser("tessera clients enable ID [flags]",
                        "Takes back 'tessera clients disable ID'.");
    case Decision::kRelease:
      break;
  }
  return FlagParser("tessera clients release ID [flags]",
                    "Ends the quarantine of the institution ID: other sites named it as the\n"
                    "sender of secure-aggregation shares that do not authenticate, so the\n"
                    "coordinator stopped inviting it. Check (and repair) the site first; it is\n"
                    "invited again from its next session.");
}

absl::Status Decide(const std::vector<std::string>& args, Decision decision) {
  Connection conn;
  std::string reason;
  FlagParser flags = DecisionFlags(decision);
  conn.Register(flags);
  if (decision == Decision::kDisable) {
    flags.AddString("reason", &reason, "why, shown to the site (at most 200 chars)");
  }
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.size() != 1) return absl::InvalidArgumentError("give the client ID");
  ASSIGN_OR_RETURN(auto stub, conn.Connect());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ClientRecord record;
  if (decision == Decision::kDisable) {
    v1::DisableClientRequest request;
    request.set_client_id(positional.front());
    request.set_reason(reason);
    v1::DisableClientResponse response;
    RETURN_IF_ERROR(CallStatus(stub->DisableClient(&ctx, request, &response)));
    record = response.client();
  } else if (decision == Decision::kEnable) {
    v1::EnableClientRequest request;
    request.set_client_id(positional.front());
    v1::EnableClientResponse response;
    RETURN_IF_ERROR(CallStatus(stub->EnableClient(&ctx, request, &response)));
    record = response.client();
  } else {
    v1::ReleaseClientRequest request;
    request.set_client_id(positional.front());
    v1::ReleaseClientResponse response;
    RETURN_IF_ERROR(CallStatus(stub->ReleaseClient(&ctx, request, &response)));
    record = response.client();
  }
  std::printf("%s %s\n", record.client_id().c_str(),
              decision == Decision::kRelease ? "released"
              : record.disabled()            ? "DISABLED"
                                             : "enabled");
  return absl::OkStatus();
}

}  // namespace

absl::Status ClientsCommand(const std::vector<std::string>& args) {
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "clients needs a subcommand: list, disable, enable or release");
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "list") return List(rest);
  if (args[0] == "disable") return Decide(rest, Decision::kDisable);
  if (args[0] == "enable") return Decide(rest, Decision::kEnable);
  if (args[0] == "release") return Decide(rest, Decision::kRelease);
  return absl::InvalidArgumentError(absl::StrCat("unknown clients subcommand '", args[0],
                                                 "' (list, disable, enable or release)"));
}

}  // namespace tessera::console
