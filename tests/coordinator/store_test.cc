// The coordinator store's semantics, one suite run against every implementation. What only
// the RocksDB store promises: rocksdb_store_test.cc; the fault-injecting wrapper:
// fault_injecting_store_test.cc.

#include "coordinator/store.h"

#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "tests/coordinator/fault_injecting_store.h"
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
using ::tessera::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// ---------------------------------------------------------------------------
// Semantics every implementation shares.

struct StoreFactory {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& directory)> open;
};

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

class StoreTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, GetParam().open(dir_.File("store"))); }

  // Creates tasks until `id` exists; returns that task's record as stored.
  v1::TaskRecord CreateTasks(int count) {
    v1::TaskRecord last;
    for (int i = 1; i <= count; ++i) {
      absl::StatusOr<std::string> id = store_->CreateTask(MakeTask(absl::StrCat("t", i)));
      EXPECT_OK(id);
      last = MakeTask(absl::StrCat("t", i));
      last.set_task_id(id.value_or(""));
    }
    return last;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, CreateTaskAssignsSequentialIdsAndListsInCreationOrder) {
  std::vector<std::string> expected;
  for (int i = 1; i <= 12; ++i) {
    v1::TaskRecord task = MakeTask(absl::StrCat("t", i));
    task.set_task_id("chosen-by-caller");  // ignored: the store assigns ids
    ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(task));
    EXPECT_EQ(id, absl::StrCat("task-", i));
    expected.push_back(absl::StrCat("task-", i));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  // Numeric, not lexicographic, order: task-10 comes after task-9.
  EXPECT_THAT(TaskIds(tasks), ElementsAreArray(expected));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(tasks[i].spec().name(), absl::StrCat("t", i + 1));

  v1::TaskRecord want = MakeTask("t7");
  want.set_task_id("task-7");
  EXPECT_THAT(store_->GetTask("task-7"), IsOkAndHolds(EqualsProto(want)));
}

TEST_P(StoreTest, ListTasksOfEmptyStoreIsEmpty) {
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  EXPECT_THAT(tasks, IsEmpty());
}

TEST_P(StoreTest, GetTaskOfUnknownOrNonCanonicalIdIsNotFound) {
  CreateTasks(1);
  for (const std::string& id :
       {std::string("task-2"), std::string("task-0"), std::string("task-01"),
        std::string("task-+1"), std::string("Task-1"), std::string("task-1 "), std::string(""),
        std::string("task-1\0", 7), std::string("task-99999999999999999999")}) {
    EXPECT_THAT(store_->GetTask(id), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no task")))
        << "id: " << id;
  }
  EXPECT_OK(store_->GetTask("task-1"));
}

TEST_P(StoreTest, UpdateTaskReplacesTheRecord) {
  v1::TaskRecord task = CreateTasks(2);
  task.set_state(v1::TASK_CANCELLED);
  task.set_state_reason("operator request");
  task.set_updated_unix_ms(42);
  ASSERT_OK(store_->UpdateTask(task));
  EXPECT_THAT(store_->GetTask("task-2"), IsOkAndHolds(EqualsProto(task)));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  EXPECT_THAT(TaskIds(tasks), ElementsAre("task-1", "task-2"));
  EXPECT_EQ(tasks[0].state(), v1::TASK_PENDING);
}

TEST_P(StoreTest, UpdateTaskOfUnknownIdIsNotFoundAndStoresNothing) {
  CreateTasks(1);
  v1::TaskRecord stranger = MakeTask("stranger");
  stranger.set_task_id("task-2");
  EXPECT_THAT(store_->UpdateTask(stranger),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-2")));
  stranger.set_task_id("");
  EXPECT_THAT(store_->UpdateTask(stranger), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(store_->GetTask("task-2"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  EXPECT_THAT(TaskIds(tasks), ElementsAre("task-1"));
  // The failed update did not use up an id.
  EXPECT_THAT(store_->CreateTask(MakeTask("next")), IsOkAndHolds(std::string("task-2")));
}

TEST_P(StoreTest, CommitRoundStoresRoundCheckpointAndTaskTogether) {
  v1::TaskRecord task = CreateTasks(1);
  task.set_state(v1::TASK_RUNNING);
  task.set_last_committed_round(0);
  task.mutable_standardization()->add_mean(1.5);
  const v1::RoundRecord round = MakeRound(task.task_id(), 0);
  const std::vector<float> model = {
      0.0f,
      -0.0f,
      1.0f / 3.0f,
      -2.5e-38f,
      std::numeric_limits<float>::denorm_min(),
      std::numeric_limits<float>::max(),
      std::numeric_limits<float>::lowest(),
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      std::bit_cast<float>(uint32_t{0x7fc12345}),  // quiet NaN with a payload
  };
  ASSERT_OK(store_->CommitRound(task, round, model));

  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store_->ListRounds("task-1"));
  ASSERT_THAT(rounds, SizeIs(1));
  EXPECT_THAT(rounds[0], EqualsProto(round));
  ASSERT_OK_AND_ASSIGN(std::vector<float> checkpoint, store_->GetCheckpoint("task-1", 0));
  EXPECT_EQ(Bits(checkpoint), Bits(model));
  EXPECT_THAT(store_->GetTask("task-1"), IsOkAndHolds(EqualsProto(task)));
  // As bytes: the serialized parameters, bit for bit.
  v1::ModelParameters parameters;
  parameters.mutable_values()->Add(model.begin(), model.end());
  EXPECT_THAT(store_->GetCheckpointBytes("task-1", 0),
              IsOkAndHolds(parameters.SerializeAsString()));

  EXPECT_THAT(store_->GetCheckpoint("task-1", 1),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-1 round 1")));
  EXPECT_THAT(store_->GetCheckpoint("task-2", 0),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(store_->GetCheckpointBytes("task-1", 1),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-1 round 1")));
}

TEST_P(StoreTest, EmptyCheckpointIsStoredNotMissing) {
  v1::TaskRecord task = CreateTasks(1);
  ASSERT_OK(store_->CommitRound(task, MakeRound("task-1", 0), {}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> checkpoint, store_->GetCheckpoint("task-1", 0));
  EXPECT_THAT(checkpoint, IsEmpty());
  EXPECT_THAT(store_->GetCheckpointBytes("task-1", 0), IsOkAndHolds(IsEmpty()));
}

TEST_P(StoreTest, ListRoundsIsInRoundOrderAndPerTask) {
  CreateTasks(10);  // task-1 .. task-10: "task-1" is a prefix of "task-10"
  v1::TaskRecord task1 = MakeTask("t1");
  task1.set_task_id("task-1");
  v1::TaskRecord task10 = MakeTask("t10");
  task10.set_task_id("task-10");
  // 256 and 65536 sort before 1 if the round were encoded little-endian.
  for (uint32_t r : {3u, 1u, 256u, 2u, 0u, 65536u}) {
    ASSERT_OK(
        store_->CommitRound(task1, MakeRound("task-1", r), std::vector<float>{1.0f, float(r)}));
  }
  for (uint32_t r : {1u, 0u}) {
    ASSERT_OK(
        store_->CommitRound(task10, MakeRound("task-10", r), std::vector<float>{10.0f, float(r)}));
  }

  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds1, store_->ListRounds("task-1"));
  EXPECT_THAT(RoundNumbers(rounds1), ElementsAre(0, 1, 2, 3, 256, 65536));
  for (const auto& r : rounds1) EXPECT_EQ(r.task_id(), "task-1");
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds10, store_->ListRounds("task-10"));
  EXPECT_THAT(RoundNumbers(rounds10), ElementsAre(0, 1));
  for (const auto& r : rounds10) EXPECT_EQ(r.task_id(), "task-10");
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds2, store_->ListRounds("task-2"));
  EXPECT_THAT(rounds2, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> unknown, store_->ListRounds("task-11"));
  EXPECT_THAT(unknown, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> prefix, store_->ListRounds("task-"));
  EXPECT_THAT(prefix, IsEmpty());

  EXPECT_THAT(store_->GetCheckpoint("task-1", 256), IsOkAndHolds(ElementsAre(1.0f, 256.0f)));
  EXPECT_THAT(store_->GetCheckpoint("task-10", 1), IsOkAndHolds(ElementsAre(10.0f, 1.0f)));
  EXPECT_THAT(store_->GetCheckpoint("task-1", 1), IsOkAndHolds(ElementsAre(1.0f, 1.0f)));
}

TEST_P(StoreTest, CommitRoundReplacesEarlierRecordOfTheSameRound) {
  v1::TaskRecord task = CreateTasks(1);
  ASSERT_OK(store_->CommitRound(task, MakeRound("task-1", 1), std::vector<float>{1.0f}));
  v1::RoundRecord again = MakeRound("task-1", 1);
  again.set_attempts(2);
  again.add_drops("site-c: deadline exceeded");
  ASSERT_OK(store_->CommitRound(task, again, std::vector<float>{2.0f, 3.0f}));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store_->ListRounds("task-1"));
  EXPECT_THAT(rounds, ElementsAre(EqualsProto(again)));
  EXPECT_THAT(store_->GetCheckpoint("task-1", 1), IsOkAndHolds(ElementsAre(2.0f, 3.0f)));
}

// One session per round: the next round's commit carries the previous round's evaluation
// and rewrites that round's record in the same write.
TEST_P(StoreTest, CommitRoundRewritesThePreviousRoundInTheSameWrite) {
  v1::TaskRecord task = CreateTasks(1);
  ASSERT_OK(store_->CommitRound(task, MakeRound("task-1", 1), std::vector<float>{1.0f}));
  v1::RoundRecord evaluated = MakeRound("task-1", 1);
  evaluated.add_eval_participants("site-a");
  evaluated.set_evaluated_in_round(2);
  const v1::RoundRecord second = MakeRound("task-1", 2);
  task.set_last_committed_round(2);
  ASSERT_OK(store_->CommitRound(task, second, std::vector<float>{2.0f}, &evaluated));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store_->ListRounds("task-1"));
  EXPECT_THAT(rounds, ElementsAre(EqualsProto(evaluated), EqualsProto(second)));
  EXPECT_THAT(store_->GetTask("task-1"), IsOkAndHolds(EqualsProto(task)));
}

TEST_P(StoreTest, CommitRoundRefusesAPreviousRecordOfAnotherRoundOrOneNotCommitted) {
  v1::TaskRecord task = CreateTasks(1);
  ASSERT_OK(store_->CommitRound(task, MakeRound("task-1", 1), std::vector<float>{1.0f}));
  v1::RoundRecord wrong_round = MakeRound("task-1", 0);
  EXPECT_THAT(
      store_->CommitRound(task, MakeRound("task-1", 2), std::vector<float>{2.0f}, &wrong_round),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("round 2 - 1")));
  const v1::RoundRecord not_committed = MakeRound("task-1", 2);
  EXPECT_THAT(
      store_->CommitRound(task, MakeRound("task-1", 3), std::vector<float>{3.0f}, &not_committed),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not committed")));
  // Neither wrote anything: round 1 alone, unchanged.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store_->ListRounds("task-1"));
  EXPECT_THAT(rounds, ElementsAre(EqualsProto(MakeRound("task-1", 1))));
  EXPECT_THAT(store_->GetCheckpoint("task-1", 3), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreTest, CommitRoundWithMismatchedTaskIdIsInvalidAndWritesNothing) {
  CreateTasks(2);
  v1::TaskRecord task = MakeTask("t1");
  task.set_task_id("task-1");
  task.set_state(v1::TASK_RUNNING);
  EXPECT_THAT(store_->CommitRound(task, MakeRound("task-2", 0), std::vector<float>{1.0f}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("task-2")));

  for (const std::string id : {"task-1", "task-2"}) {
    ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(id));
    EXPECT_THAT(rounds, IsEmpty()) << id;
    EXPECT_THAT(store_->GetCheckpoint(id, 0), StatusIs(absl::StatusCode::kNotFound, ::testing::_))
        << id;
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord stored, store_->GetTask(id));
    EXPECT_EQ(stored.state(), v1::TASK_PENDING) << id;
  }
}

TEST_P(StoreTest, CommitRoundOfUnknownTaskIsNotFoundAndWritesNothing) {
  CreateTasks(1);
  v1::TaskRecord ghost = MakeTask("ghost");
  ghost.set_task_id("task-3");
  EXPECT_THAT(store_->CommitRound(ghost, MakeRound("task-3", 0), std::vector<float>{1.0f}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-3")));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store_->ListRounds("task-3"));
  EXPECT_THAT(rounds, IsEmpty());
  EXPECT_THAT(store_->GetCheckpoint("task-3", 0),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(store_->GetTask("task-3"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  EXPECT_THAT(TaskIds(tasks), ElementsAre("task-1"));
}

TEST_P(StoreTest, ClientsAreReplacedByIdAndListedSorted) {
  ASSERT_OK(store_->PutClient(MakeClient("site-c", "cc")));
  ASSERT_OK(store_->PutClient(MakeClient("site-a", "aa")));
  ASSERT_OK(store_->PutClient(MakeClient("Site-B", "bb")));  // 'S' < 's' bytewise
  ASSERT_OK(store_->PutClient(MakeClient("site-a", "a2")));

  ASSERT_OK_AND_ASSIGN(std::vector<v1::ClientRecord> clients, store_->ListClients());
  EXPECT_THAT(ClientIds(clients), ElementsAre("Site-B", "site-a", "site-c"));
  EXPECT_THAT(store_->GetClient("site-a"), IsOkAndHolds(EqualsProto(MakeClient("site-a", "a2"))));
  EXPECT_THAT(store_->GetClient("site-z"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("site-z")));
  EXPECT_THAT(store_->GetClient("site"), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_P(StoreTest, PutClientWithEmptyIdIsInvalid) {
  EXPECT_THAT(store_->PutClient(MakeClient("", "ff")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("client_id")));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ClientRecord> clients, store_->ListClients());
  EXPECT_THAT(clients, IsEmpty());
}

TEST_P(StoreTest, ConcurrentCreateTaskHandsOutEveryIdOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 8;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &ids] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<std::string> id = store_->CreateTask(MakeTask("concurrent"));
        ids[t].push_back(id.ok() ? *id : id.status().ToString());
      }
    });
  }
  for (std::thread& th : threads) th.join();

  std::set<std::string> got;
  for (const auto& per_thread : ids) got.insert(per_thread.begin(), per_thread.end());
  std::set<std::string> want;
  for (int i = 1; i <= kThreads * kPerThread; ++i) want.insert(absl::StrCat("task-", i));
  EXPECT_EQ(got, want);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  EXPECT_THAT(tasks, SizeIs(kThreads * kPerThread));
}

TEST_P(StoreTest, InFlightRoundIsReplacedReadAndRemovedByTheCommit) {
  ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(MakeTask("t")));
  EXPECT_THAT(store_->GetInFlight(id), StatusIs(absl::StatusCode::kNotFound));
  v1::InFlightRound in_flight;
  in_flight.set_task_id(id);
  in_flight.set_round(1);
  in_flight.set_attempt(1);
  in_flight.set_session(id + "/r1/fit/a1");
  in_flight.set_server_snapshot("snapshot-1");
  ASSERT_OK(store_->PutInFlight(in_flight));
  in_flight.set_server_snapshot("snapshot-2");
  in_flight.add_contributed("site-a");
  ASSERT_OK(store_->PutInFlight(in_flight));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(in_flight)));

  // The commit of the round removes it, in the same write.
  v1::TaskRecord task = *store_->GetTask(id);
  task.set_last_committed_round(1);
  ASSERT_OK(store_->CommitRound(task, MakeRound(id, 1), std::vector<float>{1}));
  EXPECT_THAT(store_->GetInFlight(id), StatusIs(absl::StatusCode::kNotFound));

  ASSERT_OK(store_->PutInFlight(in_flight));
  ASSERT_OK(store_->DeleteInFlight(id));
  EXPECT_THAT(store_->GetInFlight(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(store_->DeleteInFlight(id));  // nothing to remove is fine
}

// `task_id`'s round in flight during a FIT_EVALUATE session, with every model-sized field:
// a 4 KiB snapshot, a one-parameter next model (`parameter`) and a strategy state.
v1::InFlightRound SessionInFlight(const std::string& task_id, uint32_t round, float parameter) {
  v1::InFlightRound r;
  r.set_task_id(task_id);
  r.set_round(round);
  r.set_session(absl::StrCat(task_id, "/r", round, "/fit_evaluate/a1"));
  r.set_server_snapshot(std::string(4096, 's'));
  r.mutable_next_model()->add_values(parameter);
  r.set_strategy_state("moments");
  return r;
}

// While a session runs only its answers change between step boundaries: a progress write
// keeps the stored model-sized fields, and what an operator is shown leaves them out.
TEST_P(StoreTest, ProgressWritesKeepTheSnapshotAndTheShownRecordLeavesTheModelSizedFieldsOut) {
  ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(MakeTask("t")));
  v1::InFlightRound in_flight = SessionInFlight(id, 2, 1.5f);
  in_flight.add_cohort("site-a");
  ASSERT_OK(store_->PutInFlight(in_flight));
  in_flight.add_stage_attempts()->set_session(in_flight.session());
  in_flight.add_drops("site-b: no answer");
  ASSERT_OK(store_->PutInFlightProgress(in_flight));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(in_flight)));
  v1::InFlightRound shown = in_flight;
  shown.clear_server_snapshot();
  shown.clear_next_model();
  shown.clear_strategy_state();
  EXPECT_THAT(store_->GetInFlightShown(id), IsOkAndHolds(EqualsProto(shown)));
  // A boundary's write replaces them; a record without them has none.
  in_flight.set_server_snapshot("next step");
  ASSERT_OK(store_->PutInFlight(in_flight));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(in_flight)));
  in_flight.clear_server_snapshot();
  in_flight.clear_next_model();
  in_flight.clear_strategy_state();
  ASSERT_OK(store_->PutInFlight(in_flight));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(in_flight)));

  // The commit removes it all, and so does a delete.
  in_flight.set_server_snapshot("again");
  ASSERT_OK(store_->PutInFlight(in_flight));
  v1::TaskRecord task = *store_->GetTask(id);
  task.set_last_committed_round(2);
  ASSERT_OK(store_->CommitRound(task, MakeRound(id, 2), std::vector<float>{1}));
  EXPECT_THAT(store_->GetInFlight(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetInFlightShown(id), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store_->PutInFlight(in_flight));
  ASSERT_OK(store_->DeleteInFlight(id));
  EXPECT_THAT(store_->GetInFlight(id), StatusIs(absl::StatusCode::kNotFound));
}

// The task runner lets go of a step boundary's snapshot once it is written: a progress
// write of a record without it (or with other model-sized fields) keeps the stored ones.
TEST_P(StoreTest, ProgressWritesKeepTheStoredModelSizedFieldsWhateverTheRecordHolds) {
  ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(MakeTask("t")));
  const v1::InFlightRound stored = SessionInFlight(id, 3, 2.5f);
  ASSERT_OK(store_->PutInFlight(stored));
  v1::InFlightRound held = stored;
  held.clear_server_snapshot();
  held.add_drops("site-b: no answer");
  ASSERT_OK(store_->PutInFlightProgress(held));
  v1::InFlightRound expected = held;
  expected.set_server_snapshot(stored.server_snapshot());
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(expected)));
  held.set_server_snapshot("not this");
  held.clear_next_model();
  held.set_strategy_state("nor this");
  held.add_drops("site-c: no answer");
  ASSERT_OK(store_->PutInFlightProgress(held));
  *expected.mutable_drops() = held.drops();
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(expected)));
  // With nothing stored, a progress write is a whole one.
  ASSERT_OK_AND_ASSIGN(std::string other, store_->CreateTask(MakeTask("u")));
  held.set_task_id(other);
  ASSERT_OK(store_->PutInFlightProgress(held));
  EXPECT_THAT(store_->GetInFlight(other), IsOkAndHolds(EqualsProto(held)));
}

// A boundary's snapshot handed over as pieces (views of the server's relays and sum) is
// stored as the record with those pieces joined as its server_snapshot; a record that holds
// a snapshot of its own besides is refused and changes nothing.
TEST_P(StoreTest, ASnapshotGivenAsPiecesIsStoredJoinedInTheRecord) {
  ASSERT_OK_AND_ASSIGN(std::string id, store_->CreateTask(MakeTask("t")));
  const v1::InFlightRound stored = SessionInFlight(id, 3, 2.5f);
  v1::InFlightRound record = stored;
  record.clear_server_snapshot();
  record.add_drops("site-b: no answer");
  const std::string relay_a(70'000, 'a');
  const std::string relay_b = "relay b";
  const std::vector<std::string_view> pieces = {"head|", relay_a, "", "|mid|", relay_b};
  ASSERT_OK(store_->PutInFlightWithSnapshot(record, pieces));
  v1::InFlightRound expected = record;
  expected.set_server_snapshot(absl::StrCat("head|", relay_a, "|mid|", relay_b));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(expected)));
  // A later progress write keeps it; a boundary's write without one has none.
  record.add_drops("site-c: no answer");
  ASSERT_OK(store_->PutInFlightProgress(record));
  *expected.mutable_drops() = record.drops();
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(expected)));

  v1::InFlightRound both = record;
  both.set_server_snapshot("its own");
  EXPECT_THAT(store_->PutInFlightWithSnapshot(both, pieces),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server snapshot")));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(expected)));

  ASSERT_OK(store_->PutInFlightWithSnapshot(record, {}));
  EXPECT_THAT(store_->GetInFlight(id), IsOkAndHolds(EqualsProto(record)));
}

TEST_P(StoreTest, InFlightRoundOfUnknownTaskIsNotFound) {
  v1::InFlightRound in_flight;
  in_flight.set_task_id("task-9");
  EXPECT_THAT(store_->PutInFlight(in_flight), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreTest, PooledStatisticsAreKeyedByDatasetAndColumnsInOrder) {
  v1::PooledStatisticsRecord record;
  record.set_dataset_id("heart");
  record.add_columns("age");
  record.add_columns("bp");
  record.mutable_standardization()->add_mean(50);
  record.add_participants("site-a");
  record.set_task_id("task-1");
  ASSERT_OK(store_->PutStatistics(record));
  EXPECT_THAT(store_->GetStatistics("heart", {"age", "bp"}), IsOkAndHolds(EqualsProto(record)));
  EXPECT_THAT(store_->GetStatistics("heart", {"bp", "age"}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetStatistics("heart", {"age"}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetStatistics("heart2", {"age", "bp"}),
              StatusIs(absl::StatusCode::kNotFound));
  // A column list that would run into another key if it were only concatenated.
  EXPECT_THAT(store_->GetStatistics("heart", {"agebp"}), StatusIs(absl::StatusCode::kNotFound));
  v1::PooledStatisticsRecord empty;
  empty.set_dataset_id("heart");
  EXPECT_THAT(store_->PutStatistics(empty), StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, StoreTest,
    ::testing::Values(
        StoreFactory{"Memory",
                     [](const std::string&) -> absl::StatusOr<std::unique_ptr<Store>> {
                       return NewMemoryStore();
                     }},
        StoreFactory{"RocksDb", [](const std::string& dir) { return OpenRocksDbStore(dir); }},
        // The wrapper with no fault armed must be a faithful pass-through.
        StoreFactory{"FaultInjectingOverMemory",
                     [](const std::string&) -> absl::StatusOr<std::unique_ptr<Store>> {
                       return std::make_unique<FaultInjectingStore>(NewMemoryStore());
                     }}),
    [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace tessera::coordinator::store_testing
