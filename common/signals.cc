#include "common/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "common/log.h"

namespace tessera::common {

void StopOnTerminationSignal(absl::Notification* stop) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, stop]() {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    LogInfo("signal_received").With("signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop->Notify();
    if (sigwait(&set, &sig) == 0) _exit(128 + sig);
  }).detach();
}

void BlockHangup() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool WaitForHangup(absl::Duration timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  const timespec wait = absl::ToTimespec(timeout);
  return sigtimedwait(&set, nullptr, &wait) == SIGHUP;
}

}  // namespace tessera::common
