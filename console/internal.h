// Helpers shared by the console's commands.
#ifndef TESSERA_COORDINATOR_CONSOLE_INTERNAL_H_
#define TESSERA_COORDINATOR_CONSOLE_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/flags.h"

namespace tessera::console::internal {

// Parses `args`; true when the command should go on (false after printing --help).
// INVALID_ARGUMENT on bad flags or unexpected positional arguments beyond `max_positional`.
absl::StatusOr<bool> ParseFlags(common::FlagParser& flags, const std::vector<std::string>& args,
                                std::vector<std::string>* positional = nullptr,
                                size_t max_positional = 0);

}  // namespace tessera::console::internal

#endif  // TESSERA_COORDINATOR_CONSOLE_INTERNAL_H_
