// Tests of the coordinator store: one suite of semantics run against every
// implementation, then what only the RocksDB store promises (durability across reopen and
// SIGKILL, the directory lock, corruption detection and its on-disk layout), then the
// fault-injecting wrapper.

#include "coordinator/store.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/coordinator/fault_injecting_store.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace tessera::coordinator {
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

v1::TaskRecord MakeTask(const std::string& name) {
  v1::TaskRecord task;
  task.mutable_spec()->set_name(name);
  task.mutable_spec()->set_rounds(5);
  task.set_spec_hash(std::string("\x00\x01\xfe\xff", 4));
  task.set_state(v1::TASK_PENDING);
  task.set_submitted_by("operator-1");
  task.set_created_unix_ms(1700000000123);
  task.set_last_committed_round(-1);
  return task;
}

v1::RoundRecord MakeRound(const std::string& task_id, uint32_t round) {
  v1::RoundRecord record;
  record.set_task_id(task_id);
  record.set_round(round);
  record.add_fit_participants("site-a");
  record.add_fit_participants("site-b");
  record.add_eval_participants("site-a");
  v1::Metric* loss = record.add_metrics();
  loss->set_name("loss");
  loss->set_value(0.25 + round);
  record.set_model_hash(std::string(32, static_cast<char>(round)));
  record.set_started_unix_ms(1000 * round);
  record.set_committed_unix_ms(1000 * round + 500);
  record.set_attempts(1);
  return record;
}

v1::ClientRecord MakeClient(const std::string& id, const std::string& fingerprint) {
  v1::ClientRecord client;
  client.set_client_id(id);
  client.set_cert_fingerprint(fingerprint);
  client.set_status(v1::CLIENT_ACTIVE);
  client.add_dataset_ids("heart");
  return client;
}

std::vector<uint32_t> Bits(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  for (float v : values) bits.push_back(std::bit_cast<uint32_t>(v));
  return bits;
}

std::vector<std::string> TaskIds(const std::vector<v1::TaskRecord>& tasks) {
  std::vector<std::string> ids;
  for (const auto& t : tasks) ids.push_back(t.task_id());
  return ids;
}

std::vector<uint32_t> RoundNumbers(const std::vector<v1::RoundRecord>& rounds) {
  std::vector<uint32_t> numbers;
  for (const auto& r : rounds) numbers.push_back(r.round());
  return numbers;
}

std::vector<std::string> ClientIds(const std::vector<v1::ClientRecord>& clients) {
  std::vector<std::string> ids;
  for (const auto& c : clients) ids.push_back(c.client_id());
  return ids;
}

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

  EXPECT_THAT(store_->GetCheckpoint("task-1", 1),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("task-1 round 1")));
  EXPECT_THAT(store_->GetCheckpoint("task-2", 0),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_P(StoreTest, EmptyCheckpointIsStoredNotMissing) {
  v1::TaskRecord task = CreateTasks(1);
  ASSERT_OK(store_->CommitRound(task, MakeRound("task-1", 0), {}));
  ASSERT_OK_AND_ASSIGN(std::vector<float> checkpoint, store_->GetCheckpoint("task-1", 0));
  EXPECT_THAT(checkpoint, IsEmpty());
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

// ---------------------------------------------------------------------------
// RocksDB only.

// The on-disk layout the store documents, restated independently so that a change to it
// (which would orphan existing data) fails these tests.
std::string TaskKey(uint64_t seq) {
  std::string key;
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}
std::string RoundKey(const std::string& task_id, uint32_t round) {
  std::string key = task_id;
  key.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(round >> shift));
  return key;
}

// Not a protobuf encoding: 0x0f is field 1 with the invalid wire type 7.
const std::string kGarbage = "\x0fnot a proto";

// Writes `value` under `key` in column family `family` of the (closed) database in `dir`,
// behind the store's back.
void PutRaw(const std::string& dir, const std::string& family, const std::string& key,
            const std::string& value) {
  rocksdb::DBOptions options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, families, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* target = nullptr;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == family) target = h;
  }
  ASSERT_NE(target, nullptr) << "no column family " << family;
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  s = db->Put(write_options, target, key, value);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (rocksdb::ColumnFamilyHandle* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
}

class RocksDbStoreTest : public ::testing::Test {
 protected:
  // A nested path that does not exist yet: opening creates it.
  std::string path() const { return dir_.File("state/coordinator"); }

  // A store with task-1 (round 0 committed, model {1, 2}) and client site-a; closed.
  void Populate() {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK_AND_ASSIGN(std::string id, store->CreateTask(MakeTask("t1")));
    v1::TaskRecord task = MakeTask("t1");
    task.set_task_id(id);
    ASSERT_OK(store->CommitRound(task, MakeRound(id, 0), std::vector<float>{1.0f, 2.0f}));
    ASSERT_OK(store->PutClient(MakeClient("site-a", "aa")));
  }

  TempDir dir_;
};

TEST_F(RocksDbStoreTest, EverythingSurvivesCloseAndReopenAndIdsContinue) {
  v1::TaskRecord task2 = MakeTask("t2");
  v1::RoundRecord round = MakeRound("task-2", 4);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    for (int i = 1; i <= 3; ++i) ASSERT_OK(store->CreateTask(MakeTask(absl::StrCat("t", i))));
    task2.set_task_id("task-2");
    task2.set_state(v1::TASK_RUNNING);
    task2.set_last_committed_round(4);
    ASSERT_OK(store->CommitRound(task2, round, std::vector<float>{0.5f, -0.25f}));
    ASSERT_OK(store->PutClient(MakeClient("site-b", "bb")));
    ASSERT_OK(store->PutClient(MakeClient("site-a", "aa")));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, store->ListTasks());
    EXPECT_THAT(TaskIds(tasks), ElementsAre("task-1", "task-2", "task-3"));
    EXPECT_THAT(store->GetTask("task-2"), IsOkAndHolds(EqualsProto(task2)));
    EXPECT_THAT(store->ListRounds("task-2"), IsOkAndHolds(ElementsAre(EqualsProto(round))));
    EXPECT_THAT(store->GetCheckpoint("task-2", 4), IsOkAndHolds(ElementsAre(0.5f, -0.25f)));
    ASSERT_OK_AND_ASSIGN(std::vector<v1::ClientRecord> clients, store->ListClients());
    EXPECT_THAT(ClientIds(clients), ElementsAre("site-a", "site-b"));
    EXPECT_THAT(store->CreateTask(MakeTask("t4")), IsOkAndHolds(std::string("task-4")));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    EXPECT_THAT(store->CreateTask(MakeTask("t5")), IsOkAndHolds(std::string("task-5")));
  }
}

TEST_F(RocksDbStoreTest, SecondOpenWhileOpenIsFailedPrecondition) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> first, OpenRocksDbStore(path()));
  EXPECT_THAT(OpenRocksDbStore(path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr(path()),
                                        HasSubstr("in use by another coordinator process"))));
  // The failed open did not disturb the first one, nor leave the directory locked.
  EXPECT_THAT(first->CreateTask(MakeTask("t1")), IsOkAndHolds(std::string("task-1")));
  first.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> again, OpenRocksDbStore(path()));
  EXPECT_THAT(again->GetTask("task-1"), IsOkAndHolds(::testing::_));
}

TEST_F(RocksDbStoreTest, DirectoryLockedByAnotherProcessIsFailedPrecondition) {
  Populate();
  // A child process takes RocksDB's LOCK file the way RocksDB does (an fcntl write lock)
  // and holds it until told to go. Only async-signal-safe calls run in the child.
  const std::string lock_path = path() + "/LOCK";
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    char result = '0';
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fd >= 0 && ::fcntl(fd, F_SETLK, &lock) == 0) result = '1';
    (void)!::write(ready[1], &result, 1);
    char unused;
    (void)!::read(release[0], &unused, 1);  // returns when the parent closes its end
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char result = 0;
  ASSERT_EQ(::read(ready[0], &result, 1), 1);
  ::close(ready[0]);
  EXPECT_EQ(result, '1') << "the child could not lock " << lock_path;

  EXPECT_THAT(OpenRocksDbStore(path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr(path()),
                                        HasSubstr("in use by another coordinator process"))));

  ::close(release[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetTask("task-1"), IsOkAndHolds(::testing::_));
}

constexpr char kCrashDirEnv[] = "TESSERA_STORE_TEST_CRASH_DIR";

// Run only as the child of CommittedRoundSurvivesSigkill: commits, then dies without
// closing anything.
TEST(RocksDbCrashChild, DISABLED_CommitThenSigkill) {
  const char* dir = std::getenv(kCrashDirEnv);
  if (dir == nullptr) GTEST_SKIP() << "only run by CommittedRoundSurvivesSigkill";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(dir));
  ASSERT_OK_AND_ASSIGN(std::string id, store->CreateTask(MakeTask("t1")));
  v1::TaskRecord task = MakeTask("t1");
  task.set_task_id(id);
  task.set_last_committed_round(0);
  ASSERT_OK(store->CommitRound(task, MakeRound(id, 0), std::vector<float>{7.0f, 8.0f}));
  ::raise(SIGKILL);
}

TEST_F(RocksDbStoreTest, CommittedRoundSurvivesSigkill) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  std::string filter = "--gtest_filter=RocksDbCrashChild.DISABLED_CommitThenSigkill";
  std::string also = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv = {self, filter.data(), also.data(), nullptr};
  std::vector<std::string> env_strings = {absl::StrCat(kCrashDirEnv, "=", path())};
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  ASSERT_EQ(posix_spawn_file_actions_init(&actions), 0);
  ASSERT_EQ(posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0), 0);
  pid_t child = 0;
  const int spawned = posix_spawn(&child, self, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ASSERT_EQ(spawned, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Killed, not exited: the child got through its commit and never closed the store.
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask("task-1"));
  EXPECT_EQ(task.last_committed_round(), 0);
  EXPECT_THAT(store->ListRounds("task-1"), IsOkAndHolds(SizeIs(1)));
  EXPECT_THAT(store->GetCheckpoint("task-1", 0), IsOkAndHolds(ElementsAre(7.0f, 8.0f)));
  EXPECT_THAT(store->CreateTask(MakeTask("t2")), IsOkAndHolds(std::string("task-2")));
}

TEST_F(RocksDbStoreTest, CorruptTaskRecordIsDataLoss) {
  Populate();
  PutRaw(path(), "tasks", TaskKey(1), kGarbage);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetTask("task-1"),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("tasks"), HasSubstr("task-1"))));
  EXPECT_THAT(store->ListTasks(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("tasks")));
}

TEST_F(RocksDbStoreTest, TaskRecordUnderTheWrongKeyIsDataLoss) {
  Populate();
  v1::TaskRecord misplaced = MakeTask("t1");
  misplaced.set_task_id("task-7");
  PutRaw(path(), "tasks", TaskKey(1), misplaced.SerializeAsString());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetTask("task-1"), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("task-7")));
}

TEST_F(RocksDbStoreTest, CorruptRoundRecordIsDataLoss) {
  Populate();
  PutRaw(path(), "rounds", RoundKey("task-1", 0), kGarbage);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->ListRounds("task-1"),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("rounds"), HasSubstr("task-1 round 0"))));
}

TEST_F(RocksDbStoreTest, CorruptCheckpointIsDataLoss) {
  Populate();
  PutRaw(path(), "models", RoundKey("task-1", 0), kGarbage);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetCheckpoint("task-1", 0),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("models"), HasSubstr("task-1 round 0"))));
}

TEST_F(RocksDbStoreTest, CorruptClientRecordIsDataLoss) {
  Populate();
  PutRaw(path(), "clients", "site-a", kGarbage);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetClient("site-a"),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("clients"), HasSubstr("site-a"))));
  EXPECT_THAT(store->ListClients(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("clients")));
}

TEST_F(RocksDbStoreTest, CorruptTaskCounterIsDataLossAtOpen) {
  Populate();
  PutRaw(path(), "meta", "last_task_seq", "\x01\x02\x03");
  EXPECT_THAT(OpenRocksDbStore(path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("last_task_seq")));
}

TEST_F(RocksDbStoreTest, TaskCounterBehindStoredTasksIsDataLossAtOpen) {
  Populate();
  // Rolled back to 0 while task-1 exists: the next CreateTask would reuse task-1.
  PutRaw(path(), "meta", "last_task_seq", std::string(8, '\0'));
  EXPECT_THAT(OpenRocksDbStore(path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("last_task_seq")));
}

TEST_F(RocksDbStoreTest, OpensDatabaseWithColumnFamiliesItDoesNotKnow) {
  // A database made by a newer version with an extra family (and none of ours yet).
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* audit = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "audit", &audit).ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(audit).ok());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(dir_.path()));
  EXPECT_THAT(store->CreateTask(MakeTask("t1")), IsOkAndHolds(std::string("task-1")));
  store.reset();
  PutRaw(dir_.path(), "audit", "k", "v");  // the family is still there
}

TEST_F(RocksDbStoreTest, OpenOnARegularFileFails) {
  tessera::testing::WriteTestFile(dir_.File("file"), "x");
  EXPECT_THAT(OpenRocksDbStore(dir_.File("file")), ::testing::Not(tessera::testing::IsOk()));
}

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
}  // namespace tessera::coordinator
