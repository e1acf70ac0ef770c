// The coordinator's parts whose behaviour is about time, on a fake clock
// (tests/testing/fake_clock.h): a long-poll's deadline (WorkBoard), a client's status going
// ACTIVE -> STALE -> OFFLINE (ClientRegistry), a certificate's expiry and an instance
// binding's liveness (AccessControl), a secure-aggregation step's deadline
// (SecureStageRunner). Each moves the clock past a threshold and checks the
// behaviour changes there and not a second before; none waits for real time to pass.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/access_control.h"
#include "coordinator/client_registry.h"
#include "coordinator/secure_stage.h"
#include "coordinator/store.h"
#include "coordinator/work_board.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/secure_stage_testing.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::tessera::testing::FakeClock;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

class NullSink : public ResultSink {
 public:
  absl::Status Accept(const std::string&, const v1::PushResultRequest&) override {
    return absl::OkStatus();
  }
};

// A long-poll waits exactly until the board's clock reaches its deadline: the fake clock's
// 30 s pass in no real time, and 29 s of them do not end it.
TEST(WorkBoardClockTest, LongPollEndsWhenTheClockReachesItsDeadline) {
  FakeClock clock;
  WorkBoard board(&clock);
  const absl::Time deadline = clock.Now() + absl::Seconds(30);
  std::shared_ptr<const PostedItem> got;
  absl::Notification returned;
  std::thread puller([&] {
    got = board.Pull("a", deadline);
    returned.Notify();
  });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(absl::Seconds(29));
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Milliseconds(100)))
      << "the long-poll ended before its deadline";
  EXPECT_EQ(board.WaitingPulls("a"), 1);
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(returned.WaitForNotificationWithTimeout(absl::Seconds(10)))
      << "the long-poll outlived its deadline";
  puller.join();
  EXPECT_EQ(got, nullptr);
  EXPECT_EQ(board.WaitingPulls("a"), 0);
}

// An async long-poll holds no thread: the board's timer ends it when the clock reaches its
// deadline, and a later pull with an earlier deadline ends first.
TEST(WorkBoardClockTest, AsyncLongPollEndsWhenTheClockReachesItsDeadline) {
  FakeClock clock;
  WorkBoard board(&clock);
  absl::Mutex mu;
  std::vector<std::string> ended;
  auto recorder = [&](const std::string& name) {
    return [&, name](const std::shared_ptr<const PostedItem>& item) {
      absl::MutexLock lock(&mu);
      ended.push_back(item == nullptr ? name : name + ": an item");
    };
  };
  auto ended_now = [&] {
    absl::MutexLock lock(&mu);
    return ended;
  };
  board.PullAsync("a", clock.Now() + absl::Seconds(30), recorder("late"));
  ASSERT_TRUE(clock.AwaitWaiters(1));  // the timer thread waits for the 30 s deadline
  board.PullAsync("b", clock.Now() + absl::Seconds(10), recorder("early"));
  clock.Advance(absl::Seconds(9));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(ended_now().empty()) << "a long-poll ended before its deadline";
  clock.Advance(absl::Seconds(1));
  {
    absl::MutexLock lock(&mu);
    auto one = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ended.size() >= 1; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&one), absl::Seconds(10)));
  }
  EXPECT_THAT(ended_now(), ::testing::ElementsAre("early"));
  EXPECT_EQ(board.WaitingPulls("a"), 1);
  clock.Advance(absl::Seconds(20));
  {
    absl::MutexLock lock(&mu);
    auto two = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ended.size() >= 2; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&two), absl::Seconds(10)))
        << "the long-poll outlived its deadline";
  }
  EXPECT_THAT(ended_now(), ::testing::ElementsAre("early", "late"));
  EXPECT_EQ(board.WaitingPulls("a"), 0);
}

// Work posted while the poll waits is handed out at once, whatever the clock says.
TEST(WorkBoardClockTest, WorkPostedDuringTheLongPollIsHandedOutWithoutTheClockMoving) {
  FakeClock clock;
  WorkBoard board(&clock);
  std::shared_ptr<const PostedItem> got;
  std::thread puller([&] { got = board.Pull("a", clock.Now() + absl::Seconds(30)); });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  v1::WorkItem item;
  item.set_work_id("w");
  ASSERT_OK(board.Post("w", {{"a", item}}, std::make_shared<NullSink>()));
  puller.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->own.work_id(), "w");
}

class ClientRegistryClockTest : public ::testing::Test {
 protected:
  static v1::ClientStatus StatusOf(const ClientRegistry& registry, const std::string& id) {
    for (const v1::ClientRecord& r : registry.List()) {
      if (r.client_id() == id) return r.status();
    }
    return v1::CLIENT_STATUS_UNSPECIFIED;
  }

  FakeClock clock_;
  std::unique_ptr<Store> store_ = NewMemoryStore();
  int waiting_pulls_ = 0;
  ClientRegistry registry_{store_.get(), &clock_, absl::Seconds(120),
                           [this](const std::string&) { return waiting_pulls_; },
                           absl::Seconds(40)};
};

// STALE after stale_after without a call, OFFLINE (and out of cohorts) after the liveness
// window; a call makes it ACTIVE again.
TEST_F(ClientRegistryClockTest, StatusFollowsTheTimeSinceTheLastCall) {
  ASSERT_OK(registry_.Load());
  ASSERT_OK(registry_.Hello("site-a", "ff", {"ds"}, "1"));
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_ACTIVE);
  clock_.Advance(absl::Seconds(40));
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_ACTIVE) << "stale only past 40 s";
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_STALE);
  EXPECT_THAT(registry_.Connected("ds"), ::testing::ElementsAre("site-a"))
      << "a stale site is still picked";
  clock_.Advance(absl::Seconds(80));
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_OFFLINE);
  EXPECT_THAT(registry_.Connected("ds"), ::testing::IsEmpty());
  registry_.Seen("site-a");
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_ACTIVE);
  EXPECT_THAT(registry_.Connected("ds"), ::testing::ElementsAre("site-a"));
}

// An open long-poll keeps a client ACTIVE however long the clock runs.
TEST_F(ClientRegistryClockTest, AnOpenLongPollKeepsTheClientActive) {
  ASSERT_OK(registry_.Load());
  ASSERT_OK(registry_.Hello("site-a", "ff", {"ds"}, "1"));
  waiting_pulls_ = 1;
  clock_.Advance(absl::Hours(5));
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_ACTIVE);
  waiting_pulls_ = 0;
  EXPECT_EQ(StatusOf(registry_, "site-a"), v1::CLIENT_OFFLINE);
}

crypto::CertificateInfo Certificate(absl::Time not_after) {
  crypto::CertificateInfo info;
  info.node_id = "site-a";
  info.serial_hex = "0a";
  info.not_after = not_after;
  return info;
}

// A certificate is refused from the first instant past its not_after, by the clock's time.
TEST(AccessControlClockTest, CertificateExpiresAtTheClocksTime) {
  FakeClock clock;
  AccessControl access(&clock, AccessControlOptions{});
  const crypto::CertificateInfo info = Certificate(clock.Now() + absl::Hours(1));
  EXPECT_OK(access.CheckCertificate(info));
  clock.Advance(absl::Hours(1));
  EXPECT_OK(access.CheckCertificate(info)) << "valid up to and including not_after";
  clock.Advance(absl::Seconds(1));
  EXPECT_THAT(access.CheckCertificate(info), StatusIs(absl::StatusCode::kUnauthenticated,
                                                      HasSubstr("site-a (serial 0a) expired")));
}

// A bound instance holds its identity while it has a long-poll open or called within
// instance_liveness; then another instance takes over.
TEST(AccessControlClockTest, BindingIsFreedInstanceLivenessAfterTheLastCall) {
  FakeClock clock;
  AccessControlOptions options;
  options.instance_liveness = absl::Seconds(10);
  AccessControl access(&clock, options);
  ASSERT_OK(access.BindInstance("site-a", "instance-1", "ipv4:10.0.0.1:1"));
  access.PullStarted("site-a", "instance-1");
  clock.Advance(absl::Hours(1));
  EXPECT_THAT(access.BindInstance("site-a", "instance-2", "ipv4:10.0.0.2:1"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already connected")))
      << "an open long-poll keeps the binding";
  access.PullEnded("site-a", "instance-1", /*cancelled=*/false);
  clock.Advance(absl::Seconds(9));
  EXPECT_THAT(access.BindInstance("site-a", "instance-2", "ipv4:10.0.0.2:1"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  clock.Advance(absl::Seconds(1));
  EXPECT_OK(access.BindInstance("site-a", "instance-2", "ipv4:10.0.0.2:1"));
  EXPECT_THAT(access.BindInstance("site-a", "instance-1", "ipv4:10.0.0.1:1"),
              StatusIs(absl::StatusCode::kAlreadyExists))
      << "the new instance holds it now";
}

// A secure-aggregation step waits on the runner's clock: sites that never answer are
// dropped as unresponsive when the clock reaches the step's deadline, not a second before,
// and the wait is the clock's (a waiter the fake clock sees), not a real-time one that a
// fake clock could only end by spinning.
TEST(SecureStageClockTest, AStepNobodyAnswersEndsWhenTheClockReachesItsDeadline) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<secagg::testing::Federation> federation,
                       secagg::testing::Federation::Create(3));
  FakeClock clock;
  WorkBoard board(&clock);
  SecureStageRunner runner(&board, &clock, federation->ca_cert_pem());
  SecureStageRequest request = testing::ToyStageRequest(*federation, v1::STAGE_FIT, 3);
  request.first_step_deadline = absl::Minutes(5);
  request.step_deadline = absl::Minutes(1);
  // No wake-ups before the deadline: the only wait is the step's.
  request.answers_report_interval = absl::Hours(1);
  request.approval_poll = absl::Hours(1);
  SecureStageResult result;
  absl::Notification done;
  std::thread run([&] {
    result = runner.Run(request);
    done.Notify();
  });
  ASSERT_TRUE(clock.AwaitWaiters(1)) << "the step does not wait on the runner's clock";
  clock.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(200)))
      << "the step ended before its deadline";
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "the step outlived its deadline";
  run.join();
  EXPECT_FALSE(result.completed);
  EXPECT_THAT(result.unresponsive, ::testing::ElementsAreArray(request.cohort));
  EXPECT_THAT(result.abort, HasSubstr("TOO_FEW"));
}

}  // namespace
}  // namespace tessera::coordinator
