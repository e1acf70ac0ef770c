// crypto::KeepOpenSslUntilExit (crypto/tls.h): a thread still running while the process
// exits (as gRPC's are when a daemon stops) can still use OpenSSL after the atexit
// handlers have run. Each case runs in a fresh child process (a death test), where
// nothing has initialised OpenSSL yet.
#include <openssl/rand.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/synchronization/notification.h"
#include "crypto/tls.h"
#include "gtest/gtest.h"

namespace tessera::crypto {
namespace {

// A thread that, once the process is exiting, draws random bytes (a handshake would) and
// ends; what it got decides the exit code. Its atexit handler is registered before OpenSSL
// is first initialised, so it runs after any handler OpenSSL registers.
absl::Notification* exiting = nullptr;
std::thread* late_thread = nullptr;
std::atomic<int> late_result{-1};

void AtExit() {
  exiting->Notify();
  late_thread->join();
  std::_Exit(late_result.load() == 1 ? 0 : 3);
}

void ExitWithALateOpenSslThread(bool keep) {
  exiting = new absl::Notification;
  std::atexit(AtExit);
  if (keep && !KeepOpenSslUntilExit().ok()) std::_Exit(4);
  unsigned char byte = 0;
  if (RAND_bytes(&byte, 1) != 1) std::_Exit(5);  // OpenSSL initialised, in use
  late_thread = new std::thread([] {
    unsigned char bytes[16];
    RAND_bytes(bytes, sizeof(bytes));  // this thread's own generator
    exiting->WaitForNotification();
    late_result = RAND_bytes(bytes, sizeof(bytes));
  });
  std::exit(0);
}

bool ExitedCleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
bool DidNotExitCleanly(int status) { return !ExitedCleanly(status); }

TEST(OpenSslExitTest, AThreadStillRunningAtExitCanUseOpenSslAfterTheExitHandlers) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ExitWithALateOpenSslThread(/*keep=*/true), ExitedCleanly, "");
}

// The same without it: OpenSSL's own exit handler tears it down first, and the late
// thread's call crashes the process (SIGSEGV with Debian's OpenSSL 3.0) or fails. That is
// what a daemon stopping during a reconnect's handshake risked.
TEST(OpenSslExitTest, WithoutItOpenSslIsTornDownUnderARunningThread) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ExitWithALateOpenSslThread(/*keep=*/false), DidNotExitCleanly, "");
}

}  // namespace
}  // namespace tessera::crypto
