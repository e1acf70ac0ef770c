// `tessera-client tasks ...`: the site's staff's commands on the approval queue and the
// policy, talking to the running daemon over its control socket (client/control_server.h).
#ifndef TESSERA_CLIENT_CLI_TASKS_H_
#define TESSERA_CLIENT_CLI_TASKS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tessera::client {

// `args` follow the word "tasks". INVALID_ARGUMENT for bad usage; the daemon's errors as it
// returned them (NOT_FOUND, FAILED_PRECONDITION, ...); UNAVAILABLE if no daemon answers.
absl::Status TasksCommand(const std::vector<std::string>& args);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CLI_TASKS_H_
