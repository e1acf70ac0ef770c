// `tessera-client hash TASK_FILE`: the spec hash of a task file, offline.
#ifndef TESSERA_CLIENT_CLI_HASH_H_
#define TESSERA_CLIENT_CLI_HASH_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::client {

// The SHA-256 (64 lowercase hex digits) of the task file at `path` as the coordinator
// stores it: parsed (text format, or JSON for .json), validated with the coordinator's own
// validator, defaults made explicit (proto::ApplyTaskDefaults), then crypto::HashTaskSpec.
// It equals the `spec_sha256` the coordinator logs when the file is submitted, the hash
// `tessera tasks submit --dry-run` prints, and the hash policy.allowed_spec_hashes and
// auto_approve rules list. NOT_FOUND / PERMISSION_DENIED for an unreadable file,
// INVALID_ARGUMENT naming the file, line and field for a bad one.
absl::StatusOr<std::string> TaskFileHash(const std::string& path);

// The command: prints TaskFileHash and a newline on stdout. `args` without the command word.
absl::Status HashCommand(const std::vector<std::string>& args);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CLI_HASH_H_
