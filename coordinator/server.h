// The coordinator daemon: TLS identity, store, core and gRPC server on one port.
#ifndef TESSERA_COORDINATOR_SERVER_H_
#define TESSERA_COORDINATOR_SERVER_H_

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"

namespace tessera::v1 {
class CoordinatorConfig;
}  // namespace tessera::v1

namespace tessera::coordinator {

class StageObserver;

// Runs until `stop` is notified, then shuts down in order (task runners, then the
// server with a short grace period). `config` must be validated, defaults applied.
// Writes config.ready_file with the bound "host:port" once calls are accepted, after
// every unfinished task was resumed. Errors name what failed: TLS files, store directory
// (a damaged one is refused: store.h), address, a resource limit out of range (limits.h:
// message cap, gRPC's thread and memory quota, per-site pulls and Hello rate, all in force
// on the server). `observer` (may be null; must outlive the call) is told about every session
// step (coordinator/secure_stage.h). `reload_on_hangup`: take SIGHUP (blocked by
// common::BlockHangup in main) to reopen the log file and re-read config.crl_file.
absl::Status RunCoordinator(const v1::CoordinatorConfig& config, absl::Notification* stop,
                            StageObserver* observer = nullptr, bool reload_on_hangup = false);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVER_H_
