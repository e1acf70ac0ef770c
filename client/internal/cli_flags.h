// Flag parsing shared by tessera-client's subcommand files (client/cli_*.cc).
#ifndef TESSERA_CLIENT_INTERNAL_CLI_FLAGS_H_
#define TESSERA_CLIENT_INTERNAL_CLI_FLAGS_H_

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/flags.h"

namespace tessera::client::internal {

// Parses `args` into `flags` and `*positional` (at most `max_positional` words).
// Returns false after printing the help when --help was asked for (the command then
// does nothing and exits 0); INVALID_ARGUMENT naming the flag or the extra word.
inline absl::StatusOr<bool> ParseCliFlags(common::FlagParser& flags,
                                          const std::vector<std::string>& args,
                                          std::vector<std::string>* positional,
                                          size_t max_positional) {
  absl::StatusOr<std::vector<std::string>> words = flags.Parse(args);
  if (!words.ok()) return words.status();
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return false;
  }
  if (words->size() > max_positional) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", (*words)[max_positional], "'"));
  }
  *positional = *std::move(words);
  return true;
}

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_CLI_FLAGS_H_
