// The client's config file, and the local policy that a running daemon reloads from it
// (SIGHUP, or `tessera-client tasks reload` through the control socket) without a restart.
//
// A reload re-reads the whole file and validates it as the daemon's start does; a refused
// file changes nothing and the error names the file, line and field. Only the policy is
// swapped in (atomically: an item is answered under the old policy or the new one, never a
// mix); any other field that differs from the running config is reported as needing a
// restart.
#ifndef TESSERA_CLIENT_CONFIG_RELOAD_H_
#define TESSERA_CLIENT_CONFIG_RELOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/config.pb.h"

namespace tessera::client {

// Reads `path` (text format or .json), validates it (proto::ValidateClientConfig) and
// applies the defaults. INVALID_ARGUMENT naming the file, line and field; NOT_FOUND if the
// file cannot be read.
absl::StatusOr<v1::ClientConfig> LoadClientConfig(const std::string& path);

// The daemon's config with the policy in force. Thread-safe.
class LiveConfig {
 public:
  explicit LiveConfig(v1::ClientConfig config) : config_(std::move(config)) {}

  // The config with the policy in force, and its generation (1 at start, +1 per reload).
  v1::ClientConfig Get(uint64_t* generation = nullptr) const;
  uint64_t generation() const;

  // Re-reads `path` and swaps in its policy (above). Returns the top-level fields other than
  // `policy` that differ from the running config (they need a restart). Errors: those of
  // LoadClientConfig; nothing changes then.
  absl::StatusOr<std::vector<std::string>> Reload(const std::string& path);

 private:
  mutable absl::Mutex mu_;
  v1::ClientConfig config_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CONFIG_RELOAD_H_
