// The test wrapper FaultInjectingStore (tests/coordinator/fault_injecting_store.h): writes
// past the budget fail UNAVAILABLE and change nothing; Heal restores them.

#include "tests/coordinator/fault_injecting_store.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "tests/coordinator/store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::coordinator::store_testing {
namespace {

using ::tessera::coordinator::testing::FaultInjectingStore;
using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// ---------------------------------------------------------------------------
// FaultInjectingStore.

class FaultInjectingStoreTest : public ::testing::Test {
 protected:
  FaultInjectingStoreTest() {
    auto base = NewMemoryStore();
    base_ = base.get();
    store_ = std::make_unique<FaultInjectingStore>(std::move(base));
  }

  Store* base_;  // owned by store_; inspected directly to see what reached it
  std::unique_ptr<FaultInjectingStore> store_;
};

TEST_F(FaultInjectingStoreTest, WritesAfterTheBudgetFailUnavailableAndChangeNothing) {
  store_->FailWritesAfter(2);
  ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(MakeTask("t1")));
  ASSERT_OK(store_->PutClient(MakeClient("site-a", "aa")));

  v1::TaskRecord task = MakeTask("t1");
  task.set_task_id(id);
  v1::TaskRecord changed = task;
  changed.set_state(v1::TASK_FAILED);
  EXPECT_THAT(store_->CommitRound(changed, MakeRound(id, 0), std::vector<float>{1.0f}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("CommitRound")));
  EXPECT_THAT(store_->CreateTask(MakeTask("t2")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("CreateTask")));
  EXPECT_THAT(store_->UpdateTask(changed),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("UpdateTask")));
  EXPECT_THAT(store_->PutClient(MakeClient("site-b", "bb")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("PutClient")));

  // Nothing reached the base store.
  EXPECT_THAT(base_->GetTask(id), IsOkAndHolds(EqualsProto(task)));
  EXPECT_THAT(base_->ListTasks(), IsOkAndHolds(SizeIs(1)));
  EXPECT_THAT(base_->ListRounds(id), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(base_->GetCheckpoint(id, 0), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(base_->ListClients(), IsOkAndHolds(SizeIs(1)));
  // Reads still pass through.
  EXPECT_THAT(store_->GetTask(id), IsOkAndHolds(EqualsProto(task)));
  EXPECT_THAT(store_->GetClient("site-a"), IsOkAndHolds(::testing::_));
}

TEST_F(FaultInjectingStoreTest, FailWritesAfterZeroFailsTheVeryNextWrite) {
  store_->FailWritesAfter(0);
  EXPECT_THAT(store_->CreateTask(MakeTask("t1")),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_THAT(base_->ListTasks(), IsOkAndHolds(IsEmpty()));
}

TEST_F(FaultInjectingStoreTest, HealRestoresWrites) {
  store_->FailWritesAfter(0);
  EXPECT_THAT(store_->CreateTask(MakeTask("t1")),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  store_->Heal();
  // The refused CreateTask used up no id.
  ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(MakeTask("t1")));
  EXPECT_EQ(id, "task-1");
  v1::TaskRecord task = MakeTask("t1");
  task.set_task_id(id);
  ASSERT_OK(store_->CommitRound(task, MakeRound(id, 0), std::vector<float>{1.0f}));
  ASSERT_OK(store_->PutClient(MakeClient("site-a", "aa")));
  EXPECT_THAT(base_->ListRounds(id), IsOkAndHolds(SizeIs(1)));
  EXPECT_THAT(base_->ListClients(), IsOkAndHolds(SizeIs(1)));
}

TEST_F(FaultInjectingStoreTest, WithoutFailWritesAfterNothingFails) {
  for (int i = 1; i <= 20; ++i) {
    EXPECT_THAT(store_->CreateTask(MakeTask("t")), IsOkAndHolds(absl::StrCat("task-", i)));
  }
}

}  // namespace
}  // namespace tessera::coordinator::store_testing
