// The site daemon's pause between attempts to reach the coordinator: exponential (doubling
// from `initial` up to `max`) with jitter (each pause a uniform 50-100 % of the current
// step, so that sites cut off together do not all come back in the same instant), back to
// `initial` after a session that worked. Times are the clock's (common/clock.h), so a test
// drives the schedule with a fake one.
//
// Not thread-safe: the daemon's connection loop owns it.
#ifndef TESSERA_CLIENT_RECONNECT_BACKOFF_H_
#define TESSERA_CLIENT_RECONNECT_BACKOFF_H_

#include "absl/random/random.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::client {

class ReconnectBackoff {
 public:
  // `clock` must outlive the backoff; 0 < initial <= max.
  ReconnectBackoff(const common::Clock* clock, absl::Duration initial, absl::Duration max);

  // The step the next pause is drawn from (for the log's retry_in_ms).
  absl::Duration step() const { return step_; }

  // When the next attempt is due: now + a jittered pause of the current step; the step then
  // doubles (at most `max`).
  absl::Time NextAttempt();

  // The coordinator was reached: the next pause is drawn from `initial` again.
  void Reset() { step_ = initial_; }

  // Waits until the clock reaches `until` or `stop` is notified; returns whether stopped.
  bool WaitUntil(absl::Time until, absl::Notification* stop) const {
    return clock_->WaitForNotification(stop, until);
  }

  const common::Clock* clock() const { return clock_; }

 private:
  const common::Clock* const clock_;
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration step_;
  absl::BitGen bitgen_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_RECONNECT_BACKOFF_H_
