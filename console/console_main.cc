// tessera: the federation operator's console.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/version.h"
#include "console/console.h"
#include "crypto/tls.h"

namespace {

constexpr char kUsage[] =
    "usage: tessera COMMAND SUBCOMMAND [flags]\n\n"
    "The operator console of a Tessera federation.\n\n"
    "commands:\n"
    "  pki init      create the federation CA\n"
    "  pki keygen    make a key and a CSR (for operators and the coordinator)\n"
    "  pki sign      sign a CSR with a role: institution, operator or coordinator\n"
    "  pki revoke    revoke a certificate (writes the CA's CRL); pki list, pki crl\n"
    "  tasks submit  validate a task file and submit it\n"
    "  tasks list    list tasks\n"
    "  tasks show    a task, its sites' decisions and its rounds' metrics (or --json)\n"
    "  tasks wait    follow a task round by round until it ends\n"
    "  tasks cancel  stop a running task\n"
    "  tasks provenance  which sites made a committed round's sums, verified with the CA\n"
    "  clients list  institutions known to the coordinator, with certificate expiry\n"
    "  clients disable|enable  refuse an institution at every call, or take it back\n"
    "  clients release  invite again an institution quarantined for bad shares\n"
    "  query         run a federated-analytics query file and print its answer\n"
    "  simulate      try a task on a local CSV split among simulated sites\n"
    "  models export a committed model as onnx/json/csv with its signed provenance\n"
    "  models verify check an exported model file against its provenance with the CA\n"
    "  predict       score a CSV locally with an exported model (no network)\n"
    "  dashboard     serve the operator's web dashboard on this machine\n"
    "  admin backup  copy the running coordinator's store into a new folder\n\n"
    "Admin commands reach the coordinator with an operator certificate: --config FILE (a\n"
    "ConsoleConfig; default $TESSERA_CONSOLE_CONFIG) or --coordinator/--ca/--cert/--key.\n"
    "Run 'tessera COMMAND SUBCOMMAND --help' for flags, 'tessera --version' for the version.\n";

bool IsHelp(const std::string& arg) { return arg == "-h" || arg == "--help" || arg == "help"; }

// `tessera COMMAND --help` for a command with subcommands: kUsage's lines of that command.
void PrintGroupUsage(const std::string& command) {
  std::string lines;
  for (absl::string_view line : absl::StrSplit(kUsage, '\n')) {
    if (absl::StartsWith(line, "  " + command + " ")) absl::StrAppend(&lines, line, "\n");
  }
  std::printf(
      "usage: tessera %s SUBCOMMAND [flags]\n\nsubcommands:\n%s\n"
      "Run 'tessera %s SUBCOMMAND --help' for flags.\n",
      command.c_str(), lines.c_str(), command.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // First, before anything uses OpenSSL: it stays up until the process ends (crypto/tls.h).
  if (absl::Status st = tessera::crypto::KeepOpenSslUntilExit(); !st.ok()) {
    std::fprintf(stderr, "tessera: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || IsHelp(args[0])) {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (tessera::common::VersionRequested(args)) {
    std::fputs(tessera::common::VersionLine("tessera").c_str(), stdout);
    return 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  if ((command == "pki" || command == "tasks" || command == "clients") && args.size() == 1 &&
      IsHelp(args[0])) {
    PrintGroupUsage(command);
    return 0;
  }
  absl::Status st;
  if (command == "pki") {
    st = tessera::console::PkiCommand(args);
  } else if (command == "tasks") {
    st = tessera::console::TasksCommand(args);
  } else if (command == "clients") {
    st = tessera::console::ClientsCommand(args);
  } else if (command == "query") {
    st = tessera::console::QueryCommand(args);
  } else if (command == "simulate") {
    st = tessera::console::SimulateCommand(args);
  } else if (command == "models") {
    st = tessera::console::ModelsCommand(args);
  } else if (command == "predict") {
    st = tessera::console::PredictCommand(args);
  } else if (command == "dashboard") {
    st = tessera::console::DashboardCommand(args);
  } else if (command == "admin") {
    st = tessera::console::AdminCommand(args);
  } else {
    st = absl::InvalidArgumentError(absl::StrCat(
        "unknown command '", command,
        "' (pki, tasks, clients, query, simulate, models, predict, dashboard or admin; see "
        "--help)"));
  }
  if (!st.ok()) {
    std::fprintf(stderr, "tessera: %s\n", std::string(st.message()).c_str());
    // docs/operations.md, "Exit codes".
    switch (st.code()) {
      case absl::StatusCode::kInvalidArgument:
        return 2;
      case absl::StatusCode::kCancelled:
        return 3;  // the task was cancelled (tasks wait)
      case absl::StatusCode::kUnavailable:
        return 4;  // the coordinator could not be reached
      default:
        return 1;
    }
  }
  return 0;
}
