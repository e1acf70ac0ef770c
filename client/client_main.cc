// tessera-client: an institution's client daemon and its set-up commands.
//   tessera-client keygen --name ID [--out-dir DIR]   key pair + CSR for the operator to sign
//   tessera-client check --config FILE                 config, certificate and data check
//   tessera-client run --config FILE                   the daemon
//   tessera-client hash TASK_FILE                      a task file's spec hash (client/cli_hash.h)
//   tessera-client privacy [--config FILE | --store DIR] the site's privacy budget (cli_privacy.h)
//   tessera-client audit verify|show|export            the egress ledger (cli_audit.cc)
//   tessera-client tasks pending|show|approve|reject|reload   the approval queue (cli_tasks.cc)
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/cli_hash.h"
#include "client/cli_privacy.h"
#include "client/cli_renew.h"
#include "client/cli_tasks.h"
#include "client/config_reload.h"
#include "client/csv.h"
#include "client/daemon.h"
#include "client/site_store.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/proto_text.h"
#include "common/signals.h"
#include "common/status.h"
#include "common/version.h"
#include "crypto/grpc_log.h"
#include "crypto/pki_files.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/site_state.pb.h"
#include "proto/validation.h"

// Subcommand groups, each in its own file (client/cli_<name>.cc).
namespace tessera::client {
absl::Status AuditMain(const std::vector<std::string>& args);  // cli_audit.cc
}  // namespace tessera::client

namespace {

using tessera::common::FlagParser;

constexpr char kUsage[] =
    "usage: tessera-client COMMAND [flags]\n\n"
    "The institution's side of a Tessera federation: trains on local data and sends only\n"
    "aggregated updates to the coordinator. It opens no port; every connection goes out.\n\n"
    "commands:\n"
    "  keygen   make this site's private key and a certificate signing request\n"
    "  renew    make a new key and request while the current certificate keeps working\n"
    "  check    check a config file, its certificate and every local dataset\n"
    "  run      run the client daemon\n"
    "  hash     print a task file's spec hash, as the coordinator logs it\n"
    "  privacy  show this site's privacy budget per dataset\n"
    "  audit    verify, show and export the egress ledger (what left this site)\n"
    "  tasks    pending, show, approve, reject tasks; reload the policy (the running daemon)\n\n"
    "Run 'tessera-client COMMAND --help' for a command's flags, --version for the version.\n";

// Parses flags; returns true when the command should go on (no --help).
absl::StatusOr<bool> ParseFlags(FlagParser& flags, const std::vector<std::string>& args) {
  auto positional = flags.Parse(args);
  if (!positional.ok()) return positional.status();
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return false;
  }
  if (!positional->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", positional->front(), "'"));
  }
  return true;
}

absl::StatusOr<tessera::v1::ClientConfig> LoadConfig(const std::string& path) {
  return tessera::client::LoadClientConfig(path);
}

absl::Status Keygen(const std::vector<std::string>& args) {
  std::string name;
  std::string out_dir = ".";
  FlagParser flags("tessera-client keygen --name ID [--out-dir DIR]",
                   "Makes this site's private key (ID.key, mode 0600; it never leaves the site)\n"
                   "and a certificate signing request (ID.csr) to send to the federation\n"
                   "operator, who signs it with 'tessera pki sign'.");
  flags.AddString("name", &name, "this site's id, 1..64 characters from [A-Za-z0-9._-]");
  flags.AddString("out-dir", &out_dir, "directory for the key and the CSR");
  flags.Require("name");
  ASSIGN_OR_RETURN(bool go, ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto paths, tessera::crypto::WriteKeyAndCsr(name, out_dir));
  std::printf("private key: %s (keep it here, mode 0600)\nrequest:     %s (send to the operator)\n",
              paths.key.c_str(), paths.csr.c_str());
  return absl::OkStatus();
}

absl::Status Check(const std::vector<std::string>& args) {
  std::string config_path;
  FlagParser flags("tessera-client check --config FILE",
                   "Checks the config file, the TLS files (key mode, chain to the federation CA,\n"
                   "validity, role), reads every local dataset and opens the site store (a\n"
                   "damaged one is named, as the daemon would), without connecting anywhere.");
  flags.AddString("config", &config_path, "ClientConfig file (text format or .json)");
  flags.Require("config");
  ASSIGN_OR_RETURN(bool go, ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  ASSIGN_OR_RETURN(tessera::v1::ClientConfig config, LoadConfig(config_path));
  ASSIGN_OR_RETURN(tessera::crypto::TlsMaterial tls,
                   tessera::crypto::LoadTlsMaterial(
                       config.tls(), tessera::crypto::Role::kInstitution, absl::Now()));
  std::printf("identity:    %s (federation %s), certificate valid until %s\n",
              tls.identity.node_id.c_str(), tls.identity.federation.c_str(),
              absl::FormatTime("%Y-%m-%d", tls.identity.not_after, absl::UTCTimeZone()).c_str());
  std::printf("coordinator: %s\n", config.coordinator_address().c_str());
  for (const auto& d : config.datasets()) {
    for (const std::string* path : {&d.train_csv(), &d.test_csv()}) {
      if (path->empty()) continue;
      ASSIGN_OR_RETURN(
          tessera::client::CsvTable table,
          tessera::client::LoadCsv(*path, tessera::client::CellPolicy::kMarkNonNumeric));
      std::printf("dataset %-12s %-5s %s: %zu rows, %zu columns\n", d.id().c_str(),
                  path == &d.train_csv() ? "train" : "test", path->c_str(), table.num_rows,
                  table.header.size());
      for (size_t c = 0; c < table.header.size(); ++c) {
        if (table.non_numeric_cells[c] == 0) continue;
        std::printf(
            "  column %s: %zu cells that are not numbers (first on line %zu): tasks "
            "that use it are declined\n",
            table.header[c].c_str(), table.non_numeric_cells[c], table.first_non_numeric_line[c]);
      }
    }
  }
  const tessera::v1::LocalPolicy& policy = config.policy();
  std::printf("policy:      %s; %d automatic approval rule(s); %s\n",
              policy.require_approval()
                  ? "tasks no rule approves wait for the staff (tessera-client tasks)"
                  : "require_approval is off: every task the policy allows runs without a "
                    "decision",
              policy.auto_approve_size(),
              policy.site_budgets_size() > 0 || policy.has_default_site_budget()
                  ? "privacy budget set"
                  : "no privacy budget (the account is kept)");
  std::printf("control:     %s\n", config.control_socket().c_str());
  // The site store: a damaged one would stop the daemon, so say so here first. While the
  // daemon runs, a read-only open checks it as well.
  auto store = tessera::client::OpenSiteStore(config.data_dir());
  if (!store.ok() && store.status().code() == absl::StatusCode::kFailedPrecondition &&
      absl::StrContains(store.status().message(), "in use")) {
    store = tessera::client::OpenSiteStoreReadOnly(config.data_dir());
  }
  if (store.ok()) {
    ASSIGN_OR_RETURN(auto contributions, (*store)->ListContributions());
    ASSIGN_OR_RETURN(auto sessions, (*store)->ListSessions());
    // A vector that spent several parts is recorded once per part: count it once.
    const size_t sent = std::count_if(contributions.begin(), contributions.end(),
                                      [](const tessera::v1::ContributionRecord& c) {
                                        return c.part_keys().empty() || c.key() == c.part_keys(0);
                                      });
    std::printf("site store:  %s: %zu contributions sent, %zu sessions on record\n",
                config.data_dir().c_str(), sent, sessions.size());
  } else {
    return store.status();
  }
  std::printf("ok\n");
  return absl::OkStatus();
}

absl::Status Run(const std::vector<std::string>& args) {
  std::string config_path;
  std::string ready_file;
  bool verbose = false;
  std::string log_format;
  std::string log_file;
  std::string metrics_listen;
  std::string metrics_ready_file;
  FlagParser flags("tessera-client run --config FILE [flags]",
                   "Runs the client daemon: connects out to the coordinator, trains on the local\n"
                   "datasets the config names when a task the local policy accepts asks for it,\n"
                   "and reconnects with backoff whenever the coordinator is away.");
  flags.AddString("config", &config_path, "ClientConfig file (text format or .json)");
  flags.AddString("ready-file", &ready_file, "override ready_file");
  flags.AddBool("verbose", &verbose, "log debug events too");
  flags.AddString("log-format", &log_format, "override log_format: logfmt or json");
  flags.AddString("log-file", &log_file, "override log_file (append; reopened on SIGHUP)");
  flags.AddString("metrics-listen", &metrics_listen,
                  "override metrics_listen_address (/metrics, /healthz, /readyz)");
  flags.AddString("metrics-ready-file", &metrics_ready_file, "override metrics_ready_file");
  flags.Require("config");
  ASSIGN_OR_RETURN(bool go, ParseFlags(flags, args));
  if (!go) return absl::OkStatus();
  if (verbose) tessera::common::SetMinLogLevel(tessera::common::LogLevel::kDebug);
  ASSIGN_OR_RETURN(tessera::v1::ClientConfig config, LoadConfig(config_path));
  if (!ready_file.empty()) config.set_ready_file(ready_file);
  if (!log_format.empty()) config.set_log_format(log_format);
  if (!log_file.empty()) config.set_log_file(log_file);
  if (!metrics_listen.empty()) config.set_metrics_listen_address(metrics_listen);
  if (!metrics_ready_file.empty()) config.set_metrics_ready_file(metrics_ready_file);
  // The flags' values checked as the file's would be.
  RETURN_IF_ERROR(
      tessera::common::FieldErrorsToStatus(tessera::proto::ValidateClientConfig(config), "flags"));
  RETURN_IF_ERROR(tessera::common::ConfigureLogging(config.log_format(), config.log_file()));
  tessera::crypto::RouteGrpcLogs();
  static absl::Notification stop;
  // SIGHUP: a policy reload the daemon takes; blocked before any thread starts.
  tessera::common::BlockHangup();
  tessera::common::StopOnTerminationSignal(&stop);
  tessera::client::ClientRunOptions options;
  options.config_path = config_path;
  options.reload_on_hangup = true;
  return tessera::client::RunClient(config, &stop, options);
}

}  // namespace

int main(int argc, char** argv) {
  // Two malloc heaps instead of glibc's up to 8 per core: gRPC's threads receive the
  // coordinator's messages (a model delta, the share relay) into buffers the work loop
  // frees, and each thread's heap kept, trimmed and faulted in again its own model-sized
  // blocks. At n = 50 a site's peak fell from 104-107 to 97-98 MiB at d = 10^6 and from
  // 53.5 to 52.2 MiB at d = 10^5, its CPU no higher (docs/performance.md, "Two malloc
  // heaps a site").
  mallopt(M_ARENA_MAX, 2);
  // Debian's abseil is built without NDEBUG: every absl::Mutex lock would also run the
  // deadlock detection meant for debug builds (GraphCycles, 0.3 % of a busy federation's CPU
  // samples). The unit tests, which run no daemon's main, keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // First, before anything uses OpenSSL: it stays up until the process ends (crypto/tls.h).
  if (absl::Status st = tessera::crypto::KeepOpenSslUntilExit(); !st.ok()) {
    std::fprintf(stderr, "tessera-client: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (tessera::common::VersionRequested(args)) {
    std::fputs(tessera::common::VersionLine("tessera-client").c_str(), stdout);
    return 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  absl::Status st;
  if (command == "keygen") {
    st = Keygen(args);
  } else if (command == "check") {
    st = Check(args);
  } else if (command == "run") {
    st = Run(args);
  } else if (command == "hash") {
    st = tessera::client::HashCommand(args);
  } else if (command == "privacy") {
    st = tessera::client::PrivacyCommand(args);
  } else if (command == "audit") {
    st = tessera::client::AuditMain(args);
  } else if (command == "tasks") {
    st = tessera::client::TasksCommand(args);
  } else if (command == "renew") {
    st = tessera::client::RenewCommand(args);
  } else {
    st = absl::InvalidArgumentError(
        absl::StrCat("unknown command '", command,
                     "' (keygen, renew, check, run, hash, privacy, audit, tasks; see --help)"));
  }
  if (!st.ok()) {
    std::fprintf(stderr, "tessera-client: %s\n", std::string(st.message()).c_str());
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
