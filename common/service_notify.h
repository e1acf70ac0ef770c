// Readiness and state notifications to the service manager (systemd's sd_notify protocol,
// `Type=notify` units; docs/packaging.md). Every function is a no-op when the process was
// not started with NOTIFY_SOCKET (a daemon run by hand, by a test or in a container), so
// the daemons call them unconditionally.
//
// Thread safety: every function may be called from any thread. Errors: a notification that
// cannot be sent is logged once as a warning (common/log.h) and otherwise ignored — a daemon
// does not stop because its supervisor stopped listening. Nothing secret is ever sent: the
// status lines name addresses, identities and states only.
#ifndef TESSERA_COMMON_SERVICE_NOTIFY_H_
#define TESSERA_COMMON_SERVICE_NOTIFY_H_

#include <string_view>

namespace tessera::common {

// True if NOTIFY_SOCKET is set (the process runs under a service manager that listens).
bool ServiceNotifyEnabled();

// READY=1 with STATUS=`status`: the daemon serves (call after its ready file is written).
// Also ends a reload (NotifyReloading).
void NotifyReady(std::string_view status);
// STATUS=`status` alone: what the daemon is doing, shown by `systemctl status`.
void NotifyStatus(std::string_view status);
// RELOADING=1: a reload (SIGHUP) started; NotifyReady or NotifyReloaded ends it.
void NotifyReloading();
// READY=1 again with the status of the last NotifyReady: a reload is over.
void NotifyReloaded();
// STOPPING=1: a graceful stop started.
void NotifyStopping();

}  // namespace tessera::common

#endif  // TESSERA_COMMON_SERVICE_NOTIFY_H_
