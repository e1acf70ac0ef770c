#include "common/worker_pool.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::common {
namespace {

TEST(WorkerPoolTest, OneThreadRunsClosuresInTheOrderScheduled) {
  std::vector<int> order;
  absl::Mutex mu;
  {
    WorkerPool pool(1, "test-pool");
    for (int i = 0; i < 100; ++i) {
      pool.Schedule([&, i] {
        absl::MutexLock lock(&mu);
        order.push_back(i);
      });
    }
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

TEST(WorkerPoolTest, DestructorRunsEverythingScheduledIncludingFromClosures) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(3, "test-pool");
    for (int i = 0; i < 50; ++i) {
      pool.Schedule([&] {
        ++ran;
        pool.Schedule([&] { ++ran; });
      });
    }
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(WorkerPoolTest, ClosuresRunConcurrentlyOnSeveralThreads) {
  // Two closures that each wait for the other: only two threads at once can finish them.
  WorkerPool pool(2, "test-pool");
  absl::Notification a_started, b_started, done_a, done_b;
  pool.Schedule([&] {
    a_started.Notify();
    b_started.WaitForNotification();
    done_a.Notify();
  });
  pool.Schedule([&] {
    b_started.Notify();
    a_started.WaitForNotification();
    done_b.Notify();
  });
  EXPECT_TRUE(done_a.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(done_b.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(pool.threads(), 2);
}

TEST(WorkerPoolTest, QueuedCountsClosuresNotYetStarted) {
  WorkerPool pool(1, "test-pool");
  absl::Notification release, started;
  pool.Schedule([&] {
    started.Notify();
    release.WaitForNotification();
  });
  started.WaitForNotification();
  pool.Schedule([] {});
  pool.Schedule([] {});
  EXPECT_EQ(pool.Queued(), 2u);
  release.Notify();
}

}  // namespace
}  // namespace tessera::common
