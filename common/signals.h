// Graceful stop for daemons on SIGINT / SIGTERM; SIGHUP as a reload request.
#ifndef TESSERA_COMMON_SIGNALS_H_
#define TESSERA_COMMON_SIGNALS_H_

#include <functional>

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

// For a daemon that takes SIGHUP for nothing else: starts a detached thread that takes each
// SIGHUP (BlockHangup first) and reopens the log file (common/log.h ReopenLogFile), logging
// an error if that fails. `before` and `after` (optional) run on that thread around each
// reopen — e.g. to tell the service manager that a reload runs (common/service_notify.h).
void ReopenLogFileOnHangup(std::function<void()> before = nullptr,
                           std::function<void()> after = nullptr);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_SIGNALS_H_
