// Graceful stop for daemons on SIGINT / SIGTERM; SIGHUP as a reload request.
#ifndef TESSERA_COMMON_SIGNALS_H_
#define TESSERA_COMMON_SIGNALS_H_

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace tessera::common {

// Blocks SIGINT and SIGTERM in the calling thread — call it first in main(), before any
// thread starts, so every thread inherits the mask — and starts a detached thread that
// waits for either signal and notifies `stop` (which must live until exit). A second
// signal ends the process at once.
void StopOnTerminationSignal(absl::Notification* stop);

// SIGHUP as a request (a daemon's reload): BlockHangup blocks it in the calling thread —
// call it first in main(), before any thread starts, StopOnTerminationSignal's included —
// so that it stays pending until a thread takes it with WaitForHangup, which returns true if
// one arrived within `timeout`.
void BlockHangup();
bool WaitForHangup(absl::Duration timeout);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_SIGNALS_H_
