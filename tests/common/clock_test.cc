// The clock's waits (common/clock.h) on the real clock, on the fake one
// (tests/testing/fake_clock.h) and on a clock that only tells the time (the default waits).
#include "common/clock.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace tessera::common {
namespace {

using ::tessera::testing::FakeClock;

// Only Now(): the base class's waits poll it.
class SettableClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::FromUnixNanos(now_ns_.load()); }
  void Set(absl::Time t) { now_ns_.store(absl::ToUnixNanos(t)); }

 private:
  std::atomic<int64_t> now_ns_{0};
};

TEST(ClockTest, RealClockWaitsEndAtTheConditionOrAPastDeadline) {
  const Clock* clock = Clock::Real();
  absl::Mutex mu;
  bool flag = false;
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(clock->AwaitWithDeadline(&mu, absl::Condition(&flag), clock->Now()));
  flag = true;
  EXPECT_TRUE(clock->AwaitWithDeadline(&mu, absl::Condition(&flag), absl::InfiniteFuture()));
  absl::Notification n;
  EXPECT_FALSE(clock->WaitForNotification(&n, clock->Now() - absl::Seconds(1)));
  n.Notify();
  EXPECT_TRUE(clock->WaitForNotification(&n, absl::InfiniteFuture()));
}

// An AwaitWithDeadline on the fake clock ends when another thread makes the condition
// true (no time passes) or when the clock reaches the deadline, not before.
TEST(ClockTest, FakeClockAwaitEndsAtTheConditionOrTheFakeDeadline) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  std::atomic<int> result{-1};
  auto wait = [&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&flag), clock.Now() + absl::Hours(1));
  };
  std::thread first(wait);
  ASSERT_TRUE(clock.AwaitWaiters(1));
  {
    absl::MutexLock lock(&mu);
    flag = true;
  }
  first.join();
  EXPECT_EQ(result, 1);

  flag = false;
  result = -1;
  const absl::Time start = clock.Now();
  std::thread second(wait);
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(absl::Minutes(59));
  absl::SleepFor(absl::Milliseconds(50));  // room to end early, which must not happen
  EXPECT_EQ(result, -1) << "ended before the deadline";
  clock.Advance(absl::Minutes(1));
  second.join();
  EXPECT_EQ(result, 0);
  EXPECT_EQ(clock.Now() - start, absl::Hours(1));
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(ClockTest, FakeClockSleepForEndsWhenTheClockMovesOnThatFar) {
  FakeClock clock;
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(absl::Seconds(5));
    woke = true;
  });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(absl::Seconds(4));
  absl::SleepFor(absl::Milliseconds(50));  // room to end early, which must not happen
  EXPECT_FALSE(woke);
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke);
}

// The base class's waits follow any clock's time, here one set by hand.
TEST(ClockTest, DefaultWaitsFollowTheClocksOwnTime) {
  SettableClock clock;
  clock.Set(absl::FromUnixSeconds(100));
  absl::Notification n;
  std::atomic<bool> notified{true};
  std::thread waiter([&] { notified = clock.WaitForNotification(&n, absl::FromUnixSeconds(200)); });
  clock.Set(absl::FromUnixSeconds(200));
  waiter.join();
  EXPECT_FALSE(notified);

  absl::Mutex mu;
  bool flag = false;
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(clock.AwaitWithDeadline(&mu, absl::Condition(&flag), absl::FromUnixSeconds(200)));
}

}  // namespace
}  // namespace tessera::common
