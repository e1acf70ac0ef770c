// A disk whose syncs are slow, for benchmarks: preloaded into a process (LD_PRELOAD), it
// makes every fsync and fdatasync wait TESSERA_SLOW_SYNC_US microseconds (default 2000;
// anything but a non-negative number: no wait) before doing the real one, as a disk
// without a write cache would (a SATA disk's flush takes milliseconds; this machine's
// virtual disk about 40 µs). docs/performance.md, "One write for an answer and its ledger
// entry", runs the logistic regression with it. Benchmark aid only: nothing in Tessera
// links it.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

namespace {

// TESSERA_SLOW_SYNC_US as a number of microseconds; 2000 when unset; 0 (no wait) for a
// value that is not a non-negative number.
long SyncDelayMicros() {
  const char* set = std::getenv("TESSERA_SLOW_SYNC_US");
  if (set == nullptr) return 2000;
  char* end = nullptr;
  errno = 0;
  const long us = std::strtol(set, &end, 10);
  if (errno != 0 || end == set || *end != '\0' || us < 0) return 0;
  return us;
}

void WaitAsASlowDisk() {
  static const long us = SyncDelayMicros();
  if (us == 0) return;
  timespec wait{us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&wait, &wait) != 0 && errno == EINTR) {
  }
}

template <typename Fn>
Fn Real(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fsync(int fd) {
  static const auto real = Real<int (*)(int)>("fsync");
  WaitAsASlowDisk();
  return real(fd);
}

extern "C" int fdatasync(int fd) {
  static const auto real = Real<int (*)(int)>("fdatasync");
  WaitAsASlowDisk();
  return real(fd);
}
