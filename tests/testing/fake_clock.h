// A clock that moves only when the test says so (common/clock.h), for the tests that are
// about time: deadlines, backoff, expiry, liveness. Its waits (AwaitWithDeadline,
// WaitForNotification, SleepFor) end when their condition holds or when Advance/SetTime
// takes the clock to their deadline, never because real time passed; a test that must
// advance only once a thread waits calls AwaitWaiters first.
//
// Advance wakes waiters at once: it locks and unlocks each waiter's mutex (TryLock, so it
// never blocks on one), which makes absl re-evaluate the waiter's condition; a waiter whose
// mutex was busy at that moment looks again within a millisecond.
//
// Thread-safe.
#ifndef TESSERA_TESTS_TESTING_FAKE_CLOCK_H_
#define TESSERA_TESTS_TESTING_FAKE_CLOCK_H_

#include <cstdint>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::testing {

class FakeClock final : public common::Clock {
 public:
  // Starts at `start` (default: 2023-11-14 22:13:20 UTC, an arbitrary fixed time).
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000));

  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool WaitForNotification(absl::Notification* notification, absl::Time deadline) const override;

  // Moves the clock on by `d` (>= 0) and wakes the waits whose deadline it reached.
  void Advance(absl::Duration d);
  // Sets the clock to `t`, which must not be earlier than Now().
  void SetTime(absl::Time t);

  // Number of threads waiting on this clock now.
  int waiters() const;
  // Blocks (in real time, at most `timeout`) until at least `n` threads wait on this clock;
  // returns whether they do.
  bool AwaitWaiters(int n, absl::Duration timeout = absl::Seconds(30)) const;

 private:
  void Register(absl::Mutex* mu) const;
  void Unregister(absl::Mutex* mu) const;
  bool Reached(absl::Time deadline) const { return Now() >= deadline; }

  // A leaf lock (nothing is locked under it): conditions evaluated under a waiter's mutex
  // read the time. absl::Time, not nanoseconds: a deadline may fall between two.
  mutable absl::Mutex time_mu_;
  absl::Time now_ ABSL_GUARDED_BY(time_mu_);
  mutable absl::Mutex mu_;
  // Waiters by the mutex they wait under (the clock's own for notification waits).
  mutable std::map<absl::Mutex*, int> waiting_ ABSL_GUARDED_BY(mu_);
  mutable int count_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by every Advance: notification waits wake on it.
  mutable uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_FAKE_CLOCK_H_
