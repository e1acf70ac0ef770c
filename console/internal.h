// Helpers shared by the console's commands.
#ifndef TESSERA_COORDINATOR_CONSOLE_INTERNAL_H_
#define TESSERA_COORDINATOR_CONSOLE_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/flags.h"

namespace tessera::v1 {
class ModelProvenance;
}  // namespace tessera::v1

namespace tessera::console::internal {

// Parses `args`; true when the command should go on (false after printing --help).
// INVALID_ARGUMENT on bad flags or unexpected positional arguments beyond `max_positional`.
absl::StatusOr<bool> ParseFlags(common::FlagParser& flags, const std::vector<std::string>& args,
                                std::vector<std::string>* positional = nullptr,
                                size_t max_positional = 0);

// "onnx", "json" or "csv" from FILE's extension (.onnx, .json, .csv); INVALID_ARGUMENT
// otherwise (models_commands.cc).
absl::StatusOr<std::string> ExportFormatOfPath(const std::string& path);

// `tessera simulate --export FILE`: writes FILE, FILE.provenance and the simulation CA's
// certificate FILE.simulation-ca.pem, after verifying the record with that CA.
// FAILED_PRECONDITION (nothing written) when the task committed no training round
// (`file` empty).
absl::Status WriteSimulationExport(const std::string& path, const std::string& file,
                                   const v1::ModelProvenance& record, const std::string& ca_pem);

}  // namespace tessera::console::internal

#endif  // TESSERA_COORDINATOR_CONSOLE_INTERNAL_H_
