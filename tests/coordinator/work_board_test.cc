#include "coordinator/work_board.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

v1::PushResultRequest Contribution(const std::string& work_id, std::vector<double> values) {
  v1::PushResultRequest r;
  r.set_work_id(work_id);
  r.mutable_contribution()->mutable_values()->Assign(values.begin(), values.end());
  return r;
}

v1::WorkItem Item(const std::string& id) {
  v1::WorkItem item;
  item.set_work_id(id);
  return item;
}

TEST(StageCollectorTest, SumsContributionsAndRecordsDeclines) {
  StageCollector c({"a", "b", "c"}, 2, nullptr);
  ASSERT_OK(c.Accept("a", Contribution("w", {1, 2})));
  ASSERT_OK(c.Accept("b", Contribution("w", {10, 20})));
  v1::PushResultRequest decline;
  decline.set_work_id("w");
  decline.mutable_decline()->set_reason(v1::Decline::POLICY_REFUSED);
  decline.mutable_decline()->set_detail("min cohort");
  ASSERT_OK(c.Accept("c", decline));
  EXPECT_TRUE(c.Wait(absl::InfinitePast()));
  StageCollector::Outcome out = c.Close();
  EXPECT_THAT(out.sum, ElementsAre(11, 22));
  EXPECT_THAT(out.contributors, ElementsAre("a", "b"));
  ASSERT_EQ(out.drops.size(), 1u);
  EXPECT_THAT(out.drops[0], HasSubstr("c: declined (POLICY_REFUSED)"));
}

TEST(StageCollectorTest, BadContributionsDropTheClientAndAddNothing) {
  StageCollector c({"a", "b", "c", "d"}, 2, [](std::span<const double> v) {
    return v[0] < 0 ? absl::InvalidArgumentError("negative count") : absl::OkStatus();
  });
  EXPECT_THAT(c.Accept("a", Contribution("w", {1})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 2")));
  EXPECT_THAT(c.Accept("b", Contribution("w", {1, NAN})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")));
  EXPECT_THAT(c.Accept("c", Contribution("w", {-1, 0})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative count")));
  v1::PushResultRequest empty;
  empty.set_work_id("w");
  EXPECT_THAT(c.Accept("d", empty), StatusIs(absl::StatusCode::kInvalidArgument));
  // A dropped client cannot come back with a good answer.
  EXPECT_THAT(c.Accept("a", Contribution("w", {1, 1})), StatusIs(absl::StatusCode::kAlreadyExists));
  StageCollector::Outcome out = c.Close();
  EXPECT_THAT(out.sum, ElementsAre(0, 0));
  EXPECT_THAT(out.contributors, IsEmpty());
  EXPECT_EQ(out.drops.size(), 4u);
}

TEST(StageCollectorTest, OutsidersDuplicatesAndLateAnswersAreRefused) {
  StageCollector c({"a", "b"}, 1, nullptr);
  EXPECT_THAT(c.Accept("mallory", Contribution("w", {1})),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK(c.Accept("a", Contribution("w", {1})));
  EXPECT_THAT(c.Accept("a", Contribution("w", {1})), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(c.Wait(absl::Now() + absl::Milliseconds(1)));
  StageCollector::Outcome out = c.Close();
  EXPECT_THAT(out.sum, ElementsAre(1));
  EXPECT_THAT(out.drops, ElementsAre("b: no answer before the deadline"));
  EXPECT_THAT(c.Accept("b", Contribution("w", {1})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(StageCollectorTest, CancelWakesWait) {
  StageCollector c({"a"}, 1, nullptr);
  std::thread canceller([&c] { c.Cancel(); });
  EXPECT_FALSE(c.Wait(absl::InfiniteFuture()));
  canceller.join();
}

TEST(WorkBoardTest, HandsEachClientItsWorkOnceAndRoutesResults) {
  WorkBoard board;
  auto collector = std::make_shared<StageCollector>(std::vector<std::string>{"a", "b"}, 1, nullptr);
  ASSERT_OK(board.Post(Item("w1"), {"a", "b"}, collector));
  EXPECT_THAT(board.Post(Item("w1"), {"a"}, collector),
              StatusIs(absl::StatusCode::kInvalidArgument));

  auto got = board.Pull("a", absl::Now());
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->work_id(), "w1");
  EXPECT_EQ(board.Pull("a", absl::Now()), nullptr) << "delivered once";
  EXPECT_EQ(board.Pull("c", absl::Now()), nullptr) << "not in the cohort";

  EXPECT_THAT(board.Push("c", Contribution("w1", {5})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(board.Push("a", Contribution("w1", {5})));
  EXPECT_THAT(board.Push("a", Contribution("w1", {5})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  board.Close("w1");
  EXPECT_EQ(board.Pull("b", absl::Now()), nullptr) << "closed work is withdrawn";
  EXPECT_THAT(board.Push("b", Contribution("w1", {5})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(collector->Close().sum, ElementsAre(5));
}

TEST(WorkBoardTest, RedeliverHandsUnansweredWorkOutAgain) {
  WorkBoard board;
  auto collector = std::make_shared<StageCollector>(std::vector<std::string>{"a"}, 1, nullptr);
  ASSERT_OK(board.Post(Item("w1"), {"a"}, collector));
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  board.Redeliver("a");
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  ASSERT_OK(board.Push("a", Contribution("w1", {1})));
  board.Redeliver("a");
  EXPECT_EQ(board.Pull("a", absl::Now()), nullptr) << "answered work is not redelivered";
}

TEST(WorkBoardTest, OldestWorkFirst) {
  WorkBoard board;
  auto c1 = std::make_shared<StageCollector>(std::vector<std::string>{"a"}, 1, nullptr);
  auto c2 = std::make_shared<StageCollector>(std::vector<std::string>{"a"}, 1, nullptr);
  ASSERT_OK(board.Post(Item("z-first"), {"a"}, c1));
  ASSERT_OK(board.Post(Item("a-second"), {"a"}, c2));
  EXPECT_EQ(board.Pull("a", absl::Now())->work_id(), "z-first");
  EXPECT_EQ(board.Pull("a", absl::Now())->work_id(), "a-second");
}

TEST(WorkBoardTest, WaitingPullWakesOnPostAndOnShutdown) {
  WorkBoard board;
  std::shared_ptr<const v1::WorkItem> got;
  std::thread puller([&] { got = board.Pull("a", absl::InfiniteFuture()); });
  // The post can land before or after the pull starts waiting; either way it is found.
  auto collector = std::make_shared<StageCollector>(std::vector<std::string>{"a"}, 1, nullptr);
  ASSERT_OK(board.Post(Item("w"), {"a"}, collector));
  puller.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->work_id(), "w");

  std::thread waiter([&] { got = board.Pull("b", absl::InfiniteFuture()); });
  board.Shutdown();
  waiter.join();
  EXPECT_EQ(got, nullptr);
}

}  // namespace
}  // namespace tessera::coordinator
