// The institution's client daemon: connects out to the coordinator (never listens),
// says Hello, long-polls for work, answers each item through an UpdateSink, and
// reconnects with exponential backoff (with jitter) whenever the coordinator is away.
#ifndef TESSERA_CLIENT_DAEMON_H_
#define TESSERA_CLIENT_DAEMON_H_

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"

namespace tessera::v1 {
class ClientConfig;
}  // namespace tessera::v1

namespace tessera::client {

// Runs until `stop` is notified. `config` must be validated, defaults applied. Fails at
// start (errors naming the file) if the TLS files or a configured dataset cannot be used;
// after that, network errors are retried forever. Writes config.ready_file (with the
// client id) after the first accepted Hello.
absl::Status RunClient(const v1::ClientConfig& config, absl::Notification* stop);

// Version string reported in Hello.
const char* ClientVersion();

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_DAEMON_H_
