#include "common/clock.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace tessera::common {
namespace {

// How often the default waits look at a clock they cannot be woken by.
constexpr absl::Duration kPollSlice = absl::Milliseconds(5);

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }

  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithDeadline(condition, deadline);
  }

  bool WaitForNotification(absl::Notification* notification, absl::Time deadline) const override {
    return notification->WaitForNotificationWithDeadline(deadline);
  }
};

}  // namespace

bool Clock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                              absl::Time deadline) const {
  while (!condition.Eval()) {
    const absl::Duration left = deadline - Now();
    if (left <= absl::ZeroDuration()) return false;
    mu->AwaitWithTimeout(condition, std::min(left, kPollSlice));
  }
  return true;
}

bool Clock::WaitForNotification(absl::Notification* notification, absl::Time deadline) const {
  while (!notification->HasBeenNotified()) {
    const absl::Duration left = deadline - Now();
    if (left <= absl::ZeroDuration()) return false;
    notification->WaitForNotificationWithTimeout(std::min(left, kPollSlice));
  }
  return true;
}

void Clock::SleepFor(absl::Duration duration) const {
  absl::Notification never;
  WaitForNotification(&never, Now() + duration);
}

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();  // never destroyed: usable during exit
  return clock;
}

int64_t ToUnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace tessera::common
