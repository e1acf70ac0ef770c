#include "client/cli_hash.h"

#include <cstdio>

#include "client/internal/cli_flags.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "proto/task.pb.h"
#include "proto/validation.h"

namespace tessera::client {

absl::StatusOr<std::string> TaskFileHash(const std::string& path) {
  v1::TaskSpec spec;
  common::TextLocations where;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &spec, &where));
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec), path, &where));
  // What the coordinator does on submission before it hashes and logs spec_sha256
  // (coordinator/coordinator.cc, SubmitTask).
  proto::ApplyTaskDefaults(&spec);
  return crypto::ToHex(crypto::HashTaskSpec(spec));
}

absl::Status HashCommand(const std::vector<std::string>& args) {
  common::FlagParser flags(
      "tessera-client hash TASK_FILE",
      "Prints the SHA-256 of a task file's spec (64 hex digits), computed here without any\n"
      "network: the file is validated and its defaults made explicit, as the coordinator\n"
      "does. It is the spec_sha256 the coordinator logs for the task and the hash that\n"
      "policy.allowed_spec_hashes and auto_approve rules list.");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseCliFlags(flags, args, &positional, 1));
  if (!go) return absl::OkStatus();
  if (positional.empty()) return absl::InvalidArgumentError("hash needs a TASK_FILE");
  ASSIGN_OR_RETURN(std::string hash, TaskFileHash(positional[0]));
  std::printf("%s\n", hash.c_str());
  return absl::OkStatus();
}

}  // namespace tessera::client
