// The site daemon's reconnect backoff on a fake clock: the pauses double up to the cap with
// their jitter, start again after a good session, and a wait ends when the clock reaches the
// attempt's time or at once on a stop request, never by real time passing.
#include "client/reconnect_backoff.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace tessera::client {
namespace {

using ::tessera::testing::FakeClock;

TEST(ReconnectBackoffTest, PausesDoubleWithJitterUpToTheCapAndResetAfterASession) {
  FakeClock clock;
  ReconnectBackoff backoff(&clock, absl::Milliseconds(500), absl::Seconds(30));
  absl::Duration step = absl::Milliseconds(500);
  for (int attempt = 0; attempt < 12; ++attempt) {
    SCOPED_TRACE(attempt);
    EXPECT_EQ(backoff.step(), step);
    const absl::Duration pause = backoff.NextAttempt() - clock.Now();
    EXPECT_GE(pause, step / 2);
    EXPECT_LE(pause, step);
    step = std::min(step * 2, absl::Seconds(30));
  }
  EXPECT_EQ(backoff.step(), absl::Seconds(30)) << "capped";
  backoff.Reset();
  EXPECT_EQ(backoff.step(), absl::Milliseconds(500));
}

TEST(ReconnectBackoffTest, WaitEndsWhenTheClockReachesTheAttempt) {
  FakeClock clock;
  ReconnectBackoff backoff(&clock, absl::Seconds(8), absl::Seconds(60));
  const absl::Time due = backoff.NextAttempt();
  absl::Notification stop, waited;
  bool stopped = true;
  std::thread waiter([&] {
    stopped = backoff.WaitUntil(due, &stop);
    waited.Notify();
  });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.SetTime(due - absl::Milliseconds(1));
  EXPECT_FALSE(waited.WaitForNotificationWithTimeout(absl::Milliseconds(100)))
      << "the wait ended before the attempt was due";
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(waited.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  EXPECT_FALSE(stopped);
}

TEST(ReconnectBackoffTest, AStopEndsTheWaitAtOnce) {
  FakeClock clock;
  ReconnectBackoff backoff(&clock, absl::Seconds(8), absl::Seconds(60));
  absl::Notification stop;
  bool stopped = false;
  std::thread waiter([&] { stopped = backoff.WaitUntil(backoff.NextAttempt(), &stop); });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  stop.Notify();
  waiter.join();
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace tessera::client
