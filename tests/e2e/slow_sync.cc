// A disk whose syncs are slow, for benchmarks: preloaded into a process (LD_PRELOAD), it
// makes every fsync and fdatasync wait TESSERA_SLOW_SYNC_US microseconds (default 2000)
// before doing the real one, as a disk without a write cache would (a SATA disk's flush
// takes milliseconds; this machine's virtual disk about 40 µs). docs/performance.md,
// "One write for an answer and its ledger entry", runs the logistic regression with it.
// Benchmark aid only: nothing in Tessera links it.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

namespace {

void WaitAsASlowDisk() {
  static const long us = [] {
    const char* set = std::getenv("TESSERA_SLOW_SYNC_US");
    return set != nullptr ? std::atol(set) : 2000L;
  }();
  timespec wait{us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&wait, &wait) != 0) {
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
