// Relative paths in config files: a path written in a config file (TLS files, data_dir,
// ready_file, control_socket, a dataset's CSVs, metrics_ready_file, log_file) is relative to the folder of that file, not
// to the working directory of whoever starts the program. So `cert: "alice.crt"` in
// ~/.tessera/console.textproto means ~/.tessera/alice.crt from any directory, and a config
// moved with its files keeps working.
//
// Call right after loading the file and before applying command-line overrides (a path
// given as a flag stays relative to the working directory, as every command line is).
// Absolute and empty paths are left as they are. Pure functions on the message; no file
// system access beyond making `config_path`'s folder absolute (std::filesystem::absolute).
#ifndef TESSERA_PROTO_CONFIG_PATHS_H_
#define TESSERA_PROTO_CONFIG_PATHS_H_

#include <string>

#include "proto/config.pb.h"

namespace tessera::proto {

// `path` relative to the folder of `config_path`; `path` itself when empty or absolute.
std::string ResolveConfigPath(const std::string& config_path, const std::string& path);

void ResolveRelativePaths(const std::string& config_path, v1::CoordinatorConfig* config);
void ResolveRelativePaths(const std::string& config_path, v1::ClientConfig* config);
void ResolveRelativePaths(const std::string& config_path, v1::ConsoleConfig* config);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_CONFIG_PATHS_H_
