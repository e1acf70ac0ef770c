#include "coordinator/work_board.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// Records every answer; refuses those whose work id ends in "!" (to show the board passes
// the sink's verdict back).
class RecordingSink : public ResultSink {
 public:
  absl::Status Accept(const std::string& client_id, const v1::PushResultRequest& r) override {
    absl::MutexLock lock(&mu_);
    answers_.emplace_back(client_id, r.work_id());
    return r.decline().detail() == "refuse" ? absl::InvalidArgumentError("refused by the sink")
                                            : absl::OkStatus();
  }
  std::vector<std::pair<std::string, std::string>> answers() {
    absl::MutexLock lock(&mu_);
    return answers_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> answers_;
};

v1::WorkItem Item(const std::string& id, uint32_t round = 0) {
  v1::WorkItem item;
  item.set_work_id(id);
  item.set_round(round);
  return item;
}

v1::PushResultRequest Answer(const std::string& work_id, const std::string& detail = "") {
  v1::PushResultRequest r;
  r.set_work_id(work_id);
  r.mutable_decline()->set_detail(detail);
  return r;
}

std::map<std::string, v1::WorkItem> ItemsFor(const std::string& id,
                                             const std::vector<std::string>& clients) {
  std::map<std::string, v1::WorkItem> items;
  uint32_t i = 0;
  for (const std::string& c : clients) items[c] = Item(id, ++i);
  return items;
}

TEST(WorkBoardTest, EachClientGetsItsOwnItemOnceAndAnswersOnce) {
  WorkBoard board;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a", "b"}), sink));
  EXPECT_THAT(board.Post("w1", ItemsFor("w1", {"a"}), sink),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already open")));

  auto got_a = board.Pull("a", absl::Now());
  auto got_b = board.Pull("b", absl::Now());
  ASSERT_NE(got_a, nullptr);
  ASSERT_NE(got_b, nullptr);
  EXPECT_EQ(got_a->own.round(), 1u) << "each client gets the item made for it";
  EXPECT_EQ(got_b->own.round(), 2u);
  EXPECT_EQ(board.Pull("a", absl::Now()), nullptr) << "delivered once";
  EXPECT_EQ(board.Pull("c", absl::Now()), nullptr) << "no item for c";

  EXPECT_THAT(board.Push("c", Answer("w1")), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(board.Push("a", Answer("w1")));
  EXPECT_THAT(board.Push("a", Answer("w1")), StatusIs(absl::StatusCode::kFailedPrecondition))
      << "one answer per item";
  EXPECT_THAT(board.Push("b", Answer("w1", "refuse")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("refused by the sink")));
  EXPECT_THAT(sink->answers(), ElementsAre(Pair("a", "w1"), Pair("b", "w1")));
}

TEST(WorkBoardTest, ClosedWorkIsWithdrawnAndLateAnswersRefused) {
  WorkBoard board;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a", "b"}), sink));
  board.Close("w1");
  EXPECT_EQ(board.Pull("a", absl::Now()), nullptr);
  EXPECT_THAT(board.Push("b", Answer("w1")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(sink->answers().empty());
}

TEST(WorkBoardTest, ReofferForApprovalDeliversTheItemAgainForOneMoreAnswer) {
  WorkBoard board;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a", "b"}), sink));
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  ASSERT_OK(board.Push("a", Answer("w1", "awaiting approval")));
  EXPECT_FALSE(board.Reoffer("w1", "c")) << "no item for c";
  EXPECT_FALSE(board.Reoffer("w2", "a")) << "no such work";
  ASSERT_TRUE(board.Reoffer("w1", "a"));
  auto again = board.Pull("a", absl::Now());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->own.round(), 1u) << "the same item";
  ASSERT_OK(board.Push("a", Answer("w1")));
  EXPECT_THAT(board.Push("a", Answer("w1")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(sink->answers(), ElementsAre(Pair("a", "w1"), Pair("a", "w1")));
  board.Close("w1");
  EXPECT_FALSE(board.Reoffer("w1", "a")) << "closed";
}

TEST(WorkBoardTest, ItemsMustCarryThePostedWorkId) {
  WorkBoard board;
  std::map<std::string, v1::WorkItem> items;
  items["a"] = Item("other");
  EXPECT_THAT(board.Post("w1", items, std::make_shared<RecordingSink>()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("carries work id other")));
}

TEST(WorkBoardTest, RedeliverHandsUnansweredWorkOutAgain) {
  WorkBoard board;
  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a"}), std::make_shared<RecordingSink>()));
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  board.Redeliver("a");
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  ASSERT_OK(board.Push("a", Answer("w1")));
  board.Redeliver("a");
  EXPECT_EQ(board.Pull("a", absl::Now()), nullptr) << "answered work is not redelivered";
}

TEST(WorkBoardTest, OldestWorkFirst) {
  WorkBoard board;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_OK(board.Post("z-first", ItemsFor("z-first", {"a"}), sink));
  ASSERT_OK(board.Post("a-second", ItemsFor("a-second", {"a"}), sink));
  EXPECT_EQ(board.Pull("a", absl::Now())->own.work_id(), "z-first");
  EXPECT_EQ(board.Pull("a", absl::Now())->own.work_id(), "a-second");
}

TEST(WorkBoardTest, WaitingPullWakesOnPostAndOnShutdown) {
  WorkBoard board;
  std::shared_ptr<const PostedItem> got;
  std::thread puller([&] { got = board.Pull("a", absl::InfiniteFuture()); });
  // The post can land before or after the pull starts waiting; either way it is found.
  ASSERT_OK(board.Post("w", ItemsFor("w", {"a"}), std::make_shared<RecordingSink>()));
  puller.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->own.work_id(), "w");

  std::thread waiter([&] { got = board.Pull("b", absl::InfiniteFuture()); });
  board.Shutdown();
  waiter.join();
  EXPECT_EQ(got, nullptr);
}

// Which clients fetched a work item (the others were not connected), kept through a
// redelivery, and nothing once the work is closed.
TEST(WorkBoardTest, FetchedNamesTheClientsAnItemWasHandedTo) {
  WorkBoard board;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a", "b", "c"}), sink));
  EXPECT_TRUE(board.Fetched("w1").empty());
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  ASSERT_NE(board.Pull("b", absl::Now()), nullptr);
  board.Redeliver("a");  // a reconnected: it still fetched the item once
  EXPECT_THAT(board.Fetched("w1"), ElementsAre("a", "b"));
  board.Close("w1");
  EXPECT_TRUE(board.Fetched("w1").empty());
  EXPECT_TRUE(board.Fetched("never-posted").empty());
}

// What async pulls ended with, in order: the work id handed out, or "" for null.
class PullLog {
 public:
  WorkBoard::PullDone Recorder(const std::string& name) {
    return [this, name](const std::shared_ptr<const PostedItem>& item) {
      absl::MutexLock lock(&mu_);
      ended_.emplace_back(name, item == nullptr ? "" : item->own.work_id());
    };
  }
  std::vector<std::pair<std::string, std::string>> ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> ended_;
};

TEST(WorkBoardAsyncTest, AnItemDeliverableNowEndsThePullBeforeItReturns) {
  WorkBoard board;
  PullLog log;
  ASSERT_OK(board.Post("w", ItemsFor("w", {"a"}), std::make_shared<RecordingSink>()));
  EXPECT_EQ(board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("p1")), 0u);
  EXPECT_THAT(log.ended(), ElementsAre(Pair("p1", "w")));
  EXPECT_EQ(board.Pull("a", absl::Now()), nullptr) << "handed out once";
}

// Waiting async pulls hold no thread; a post hands each client's item to its oldest
// waiting pull, and only to that client's.
TEST(WorkBoardAsyncTest, PostEndsTheOldestWaitingPullOfEachClientItIsFor) {
  WorkBoard board;
  PullLog log;
  const uint64_t a1 = board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("a1"));
  const uint64_t a2 = board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("a2"));
  board.PullAsync("b", absl::InfiniteFuture(), log.Recorder("b1"));
  EXPECT_NE(a1, 0u);
  EXPECT_NE(a2, a1);
  EXPECT_EQ(board.WaitingPulls("a"), 2);
  EXPECT_TRUE(log.ended().empty());

  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a"}), std::make_shared<RecordingSink>()));
  EXPECT_THAT(log.ended(), ElementsAre(Pair("a1", "w1")));
  EXPECT_EQ(board.WaitingPulls("a"), 1);
  ASSERT_OK(board.Post("w2", ItemsFor("w2", {"a", "b"}), std::make_shared<RecordingSink>()));
  EXPECT_THAT(log.ended(), ElementsAre(Pair("a1", "w1"), Pair("a2", "w2"), Pair("b1", "w2")));
  EXPECT_EQ(board.WaitingPulls("a"), 0);
  EXPECT_EQ(board.WaitingPulls("b"), 0);
}

TEST(WorkBoardAsyncTest, CancelledPullEndsOnceWithNothingAndTakesNoLaterItem) {
  WorkBoard board;
  PullLog log;
  const uint64_t ticket = board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("gone"));
  board.CancelPull(ticket);
  board.CancelPull(ticket);  // already ended: nothing
  EXPECT_THAT(log.ended(), ElementsAre(Pair("gone", "")));
  ASSERT_OK(board.Post("w", ItemsFor("w", {"a"}), std::make_shared<RecordingSink>()));
  EXPECT_EQ(log.ended().size(), 1u);
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr) << "the item waits for the next pull";
}

TEST(WorkBoardAsyncTest, RedeliverAndReofferEndAWaitingPullWithTheItem) {
  WorkBoard board;
  PullLog log;
  auto sink = std::make_shared<RecordingSink>();
  ASSERT_OK(board.Post("w", ItemsFor("w", {"a"}), sink));
  ASSERT_NE(board.Pull("a", absl::Now()), nullptr);
  board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("after-reconnect"));
  board.Redeliver("a");  // a said Hello again: its unanswered item comes back
  EXPECT_THAT(log.ended(), ElementsAre(Pair("after-reconnect", "w")));

  ASSERT_OK(board.Push("a", Answer("w")));
  board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("asked-again"));
  EXPECT_TRUE(board.Reoffer("w", "a"));
  EXPECT_THAT(log.ended(), ElementsAre(Pair("after-reconnect", "w"), Pair("asked-again", "w")));
}

TEST(WorkBoardAsyncTest, WakeEndsOnlyThatClientsPullsAndShutdownEndsAllAndLaterOnes) {
  WorkBoard board;
  PullLog log;
  board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("a1"));
  board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("a2"));
  board.PullAsync("b", absl::InfiniteFuture(), log.Recorder("b1"));
  board.Wake("a");
  EXPECT_THAT(log.ended(), ElementsAre(Pair("a1", ""), Pair("a2", "")));
  EXPECT_EQ(board.WaitingPulls("b"), 1);
  board.Shutdown();
  EXPECT_THAT(log.ended(), ElementsAre(Pair("a1", ""), Pair("a2", ""), Pair("b1", "")));
  EXPECT_EQ(board.PullAsync("b", absl::InfiniteFuture(), log.Recorder("late")), 0u);
  EXPECT_EQ(log.ended().back(), std::make_pair(std::string("late"), std::string("")));
}

// The done callback may call the board (the federation service re-queues a pull).
TEST(WorkBoardAsyncTest, DoneMayCallTheBoard) {
  WorkBoard board;
  PullLog log;
  board.PullAsync("a", absl::InfiniteFuture(), [&](const std::shared_ptr<const PostedItem>& item) {
    ASSERT_NE(item, nullptr);
    board.PullAsync("a", absl::InfiniteFuture(), log.Recorder("second"));
  });
  ASSERT_OK(board.Post("w1", ItemsFor("w1", {"a"}), std::make_shared<RecordingSink>()));
  EXPECT_EQ(board.WaitingPulls("a"), 1);
  ASSERT_OK(board.Post("w2", ItemsFor("w2", {"a"}), std::make_shared<RecordingSink>()));
  EXPECT_THAT(log.ended(), ElementsAre(Pair("second", "w2")));
}

}  // namespace
}  // namespace tessera::coordinator
