// Time, behind an interface so that protocol and round logic can be tested with a fake
// (tests/testing/fake_clock.h). Whatever waits for a deadline, a backoff or an expiry asks
// the clock both what time it is and to wait: a fake clock's waits end when the test
// advances it, not when real time passes.
#ifndef TESSERA_COMMON_CLOCK_H_
#define TESSERA_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace tessera::common {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // With `mu` held (released while blocked, as absl::Mutex::AwaitWithDeadline), waits until
  // `condition` holds or this clock reaches `deadline`; returns whether `condition` holds.
  // The default polls Now() in short real-time slices (right for any clock); the real clock
  // and tests/testing/fake_clock.h wait without polling.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                 absl::Time deadline) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Waits until `notification` is notified or this clock reaches `deadline`; returns
  // whether it was notified. The default polls as AwaitWithDeadline's.
  virtual bool WaitForNotification(absl::Notification* notification, absl::Time deadline) const;

  // Waits until this clock has moved on by `duration` (a retry pause).
  void SleepFor(absl::Duration duration) const;

  // The process-wide real clock. Never null, never destroyed.
  static Clock* Real();
};

int64_t ToUnixMillis(absl::Time t);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_CLOCK_H_
