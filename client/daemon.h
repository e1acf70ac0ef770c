// The institution's client daemon: connects out to the coordinator (never listens),
// says Hello, long-polls for work, answers each item through an UpdateSink, and
// reconnects with exponential backoff (with jitter) whenever the coordinator is away.
// Beside it, the daemon serves its local control socket (client/control_server.h: the
// approval queue, policy reload) and reloads its policy on request (client/config_reload.h).
#ifndef TESSERA_CLIENT_DAEMON_H_
#define TESSERA_CLIENT_DAEMON_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "client/update_sink.h"

namespace tessera::v1 {
class ClientConfig;
}  // namespace tessera::v1

namespace tessera::client {

struct ClientRunOptions {
  // Wraps the sink through which every answer leaves the site (after the site store has
  // recorded it): an egress recorder, or in tests a sink that stops the daemon at a chosen
  // step. Unset: answers go straight to the coordinator.
  std::function<std::unique_ptr<UpdateSink>(std::unique_ptr<UpdateSink>)> wrap_sink;
  // The config file the daemon was started from: its policy reloads from it (control socket
  // ReloadPolicy, and SIGHUP when reload_on_hangup). Empty: reloading is refused.
  std::string config_path;
  // Take SIGHUP (blocked by common::BlockHangup in main) as a policy reload request.
  bool reload_on_hangup = false;
};

// Runs until `stop` is notified. `config` must be validated, defaults applied. Fails at
// start (errors naming the file or directory) if the TLS files, a configured dataset or the
// site store (config.data_dir: FAILED_PRECONDITION if unsafe or in use, DATA_LOSS if
// damaged) or the control socket (config.control_socket: FAILED_PRECONDITION if unsafe or in
// use) cannot be used; after that, network errors are retried forever. Writes
// config.ready_file (with the client id) after the first accepted Hello.
absl::Status RunClient(const v1::ClientConfig& config, absl::Notification* stop,
                       const ClientRunOptions& options = {});

// Version string reported in Hello.
const char* ClientVersion();

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_DAEMON_H_
