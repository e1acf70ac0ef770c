#include "common/service_notify.h"

#include <systemd/sd-daemon.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace tessera::common {
namespace {

void Send(const std::string& state) {
  if (!ServiceNotifyEnabled()) return;
  // unset_environment = 0: threads may read the environment concurrently.
  int sent = sd_notify(0, state.c_str());
  if (sent > 0) return;
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) {
    LogWarning("service_notify_failed").With("error", sent < 0 ? std::strerror(-sent) : "");
  }
}

// STATUS= takes one line.
std::string StatusLine(std::string_view status) {
  std::string line(status);
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  return line;
}

absl::Mutex ready_mu;
std::string& LastReadyStatus() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ready_mu) {
  static auto* status = new std::string("ready");
  return *status;
}

}  // namespace

bool ServiceNotifyEnabled() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

void NotifyReady(std::string_view status) {
  std::string line = StatusLine(status);
  {
    absl::MutexLock lock(&ready_mu);
    LastReadyStatus() = line;
  }
  Send(absl::StrCat("READY=1\nSTATUS=", line));
}

void NotifyReloaded() {
  std::string line;
  {
    absl::MutexLock lock(&ready_mu);
    line = LastReadyStatus();
  }
  Send(absl::StrCat("READY=1\nSTATUS=", line));
}

void NotifyStatus(std::string_view status) { Send(absl::StrCat("STATUS=", StatusLine(status))); }

void NotifyReloading() { Send("RELOADING=1\nSTATUS=reloading"); }

void NotifyStopping() { Send("STOPPING=1\nSTATUS=stopping"); }

}  // namespace tessera::common
