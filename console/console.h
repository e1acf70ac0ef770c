// The operator console `tessera`: PKI commands (local files) and admin commands (over the
// admin service with an operator certificate). Each command parses its own flags, prints
// its result to stdout, and returns a status; main() prints a failed status as one line on
// stderr and exits non-zero.
#ifndef TESSERA_COORDINATOR_CONSOLE_CONSOLE_H_
#define TESSERA_COORDINATOR_CONSOLE_CONSOLE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tessera::console {

// `tessera pki init|keygen|sign ...`; args start after "pki".
absl::Status PkiCommand(const std::vector<std::string>& args);
// `tessera tasks submit|list|show|wait|cancel|provenance ...`; args start after "tasks".
absl::Status TasksCommand(const std::vector<std::string>& args);
// `tessera clients list ...`; args start after "clients".
absl::Status ClientsCommand(const std::vector<std::string>& args);
// `tessera simulate ...`; args start after "simulate".
absl::Status SimulateCommand(const std::vector<std::string>& args);
// `tessera query FILE ...`; args start after "query".
absl::Status QueryCommand(const std::vector<std::string>& args);
// `tessera models export|verify ...`; args start after "models" (models_commands.cc).
absl::Status ModelsCommand(const std::vector<std::string>& args);
// `tessera predict MODEL DATA.csv ...`; args start after "predict" (predict_command.cc).
absl::Status PredictCommand(const std::vector<std::string>& args);

// `tessera admin backup ...` (admin_backup_command.cc); args start after "admin".
absl::Status AdminCommand(const std::vector<std::string>& args);

// `tessera dashboard ...` (dashboard_command.cc); args start after "dashboard".
absl::Status DashboardCommand(const std::vector<std::string>& args);

}  // namespace tessera::console

#endif  // TESSERA_COORDINATOR_CONSOLE_CONSOLE_H_
