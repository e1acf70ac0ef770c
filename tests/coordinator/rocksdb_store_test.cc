// What only the coordinator's RocksDB store promises: durability across reopen and
// SIGKILL, the directory lock, corruption detection, and its on-disk layout.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/coordinator/store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/raw_rocksdb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace tessera::coordinator::store_testing {
namespace {

using ::tessera::testing::PutRaw;

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

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
  envp.reserve(env_strings.size() + 1);
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
  EXPECT_THAT(store->GetCheckpointBytes("task-1", 0),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("models"), HasSubstr("task-1 round 0"))));
}

// A checkpoint stored in another encoding protobuf reads (each float a field of its own,
// as an older writer could have left it) is handed out as the sites are sent a model: the
// one packed field.
TEST_F(RocksDbStoreTest, ACheckpointInAnotherEncodingIsReadAsTheSerializedModel) {
  Populate();
  const std::vector<float> values = {7.0f, -8.5f};
  std::string unpacked;
  for (float v : values) {
    unpacked += '\x0d';  // field 1, 32-bit
    unpacked.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  PutRaw(path(), "models", RoundKey("task-1", 0), unpacked);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetCheckpoint("task-1", 0), IsOkAndHolds(ElementsAre(7.0f, -8.5f)));
  v1::ModelParameters packed;
  packed.mutable_values()->Add(values.begin(), values.end());
  EXPECT_THAT(store->GetCheckpointBytes("task-1", 0), IsOkAndHolds(packed.SerializeAsString()));
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

// A round in flight is several values: the record without its model-sized fields under
// the task id, the snapshot and strategy state under the task id + '\0' + "bulk" (schema
// version 2) and the next model under the task id + '\0' + "model" (schema version 3).
v1::InFlightRound BigInFlight(const std::string& task_id, size_t snapshot_bytes) {
  v1::InFlightRound r;
  r.set_task_id(task_id);
  r.set_round(1);
  r.set_session(task_id + "/r1/fit/a1");
  r.set_server_snapshot(std::string(snapshot_bytes, 's'));
  r.mutable_next_model()->add_values(2.5f);
  r.add_cohort("site-a");
  return r;
}

// Bytes in the store's write-ahead logs.
int64_t WalBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") total += static_cast<int64_t>(entry.file_size());
  }
  return total;
}

TEST_F(RocksDbStoreTest, InFlightModelSizedFieldsAreAValueOfTheirOwnAndProgressLeavesThem) {
  constexpr size_t kSnapshot = size_t{2} << 20;
  v1::InFlightRound in_flight = BigInFlight("task-1", kSnapshot);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK(store->CreateTask(MakeTask("t1")).status());
    int64_t before = WalBytes(path());
    ASSERT_OK(store->PutInFlight(in_flight));
    EXPECT_GE(WalBytes(path()) - before, static_cast<int64_t>(kSnapshot));
    // Ten progress writes (answers arriving) write the answers, not the snapshot again.
    before = WalBytes(path());
    for (int i = 0; i < 10; ++i) {
      in_flight.add_drops(absl::StrCat("drop ", i));
      ASSERT_OK(store->PutInFlightProgress(in_flight));
    }
    EXPECT_LT(WalBytes(path()) - before, 64 << 10);
  }
  tessera::testing::WithRawDb(path(), [&](rocksdb::DB* db, tessera::testing::RawFamilies& f) {
    std::string light, bulk;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), f["inflight"], "task-1", &light).ok());
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), f["inflight"], std::string("task-1\0bulk", 11), &bulk)
            .ok());
    std::string model;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), f["inflight"], std::string("task-1\0model", 12), &model)
            .ok());
    v1::InFlightRound light_record, bulk_record, model_record;
    ASSERT_TRUE(light_record.ParseFromString(light));
    ASSERT_TRUE(bulk_record.ParseFromString(bulk));
    ASSERT_TRUE(model_record.ParseFromString(model));
    EXPECT_TRUE(light_record.server_snapshot().empty());
    EXPECT_FALSE(light_record.has_next_model());
    EXPECT_EQ(light_record.drops_size(), 10);
    EXPECT_EQ(bulk_record.task_id(), "task-1");
    EXPECT_EQ(bulk_record.server_snapshot().size(), kSnapshot);
    EXPECT_FALSE(bulk_record.has_next_model());
    EXPECT_EQ(bulk_record.drops_size(), 0);
    // Schema version 3: the next model is a value of its own.
    EXPECT_EQ(model_record.task_id(), "task-1");
    EXPECT_EQ(model_record.next_model().values_size(), 1);
    EXPECT_TRUE(model_record.server_snapshot().empty());
  });
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
}

// A store of schema version 1 holds a round in flight whole under its task id: it reads as
// it is, and the first progress write of a coordinator of version 2 (which has not yet
// written that task's model-sized fields apart) keeps them.
TEST_F(RocksDbStoreTest, AVersionOneInFlightRecordIsReadWholeAndKeptByAProgressWrite) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK(store->CreateTask(MakeTask("t1")).status());
  }
  v1::InFlightRound in_flight = BigInFlight("task-1", 1000);
  PutRaw(path(), "inflight", "task-1", in_flight.SerializeAsString());
  PutRaw(path(), "meta", "schema_version", std::string("\0\0\0\x01", 4));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
    in_flight.add_drops("site-b: no answer");
    ASSERT_OK(store->PutInFlightProgress(in_flight));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
}

// Blob files (*.blob) in `dir`.
int BlobFiles(const std::string& dir) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    n += entry.path().extension() == ".blob" ? 1 : 0;
  }
  return n;
}

// A large value that leaves its family's memtable (4 MiB) at least half full (a step
// boundary's snapshot, a checkpoint: 3.8 to 4 MB at d = 10^6) goes to a blob file right
// after its write, not when the next write fills the memtable, which may be the next
// boundary or round: until the flush the memtable holds it in the coordinator's memory.
// A smaller write leaves the memtable as it is.
TEST_F(RocksDbStoreTest, AMemtableALargeWriteLeftHalfFullIsFlushedAtOnce) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  ASSERT_OK(store->CreateTask(MakeTask("t1")).status());
  ASSERT_OK(store->PutInFlight(BigInFlight("task-1", 200000)));
  ASSERT_EQ(BlobFiles(path()), 0);
  ASSERT_OK(store->PutInFlight(BigInFlight("task-1", size_t{3} << 20)));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (BlobFiles(path()) == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(BlobFiles(path()), 1) << "the full memtable was not flushed";
}

// A coordinator restarted in the middle of a session holds the stored snapshot only as
// the session it resumes from: its first progress write, of a record without the snapshot,
// keeps the stored one (as it does in the process that wrote it).
TEST_F(RocksDbStoreTest, AProgressWriteAfterAReopenKeepsTheStoredSnapshot) {
  v1::InFlightRound in_flight = BigInFlight("task-1", 100000);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK(store->CreateTask(MakeTask("t1")).status());
    ASSERT_OK(store->PutInFlight(in_flight));
  }
  v1::InFlightRound held = in_flight;
  held.clear_server_snapshot();
  held.add_drops("site-b: no answer");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK(store->PutInFlightProgress(held));
    held.add_drops("site-c: no answer");
    ASSERT_OK(store->PutInFlightProgress(held));  // now light only
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  held.set_server_snapshot(in_flight.server_snapshot());
  EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(held)));
}

// Schema version 3: the next model (4 MB at d = 10^6) is written when it changes, not at
// every step boundary of the evaluation session that follows the update.
TEST_F(RocksDbStoreTest, TheNextModelIsWrittenOnlyWhenItChanges) {
  constexpr int kParameters = 1 << 19;  // 2 MiB
  v1::InFlightRound in_flight = BigInFlight("task-1", 1000);
  in_flight.mutable_next_model()->mutable_values()->Resize(kParameters, 0.5f);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK(store->CreateTask(MakeTask("t1")).status());
    int64_t before = WalBytes(path());
    ASSERT_OK(store->PutInFlight(in_flight));
    EXPECT_GE(WalBytes(path()) - before, int64_t{4} * kParameters);
    // Step boundaries: a new snapshot each, the same model.
    before = WalBytes(path());
    for (int i = 0; i < 4; ++i) {
      in_flight.set_server_snapshot(std::string(1000, static_cast<char>('a' + i)));
      ASSERT_OK(store->PutInFlight(in_flight));
    }
    EXPECT_LT(WalBytes(path()) - before, 64 << 10);
    // One parameter changes: the model is written again.
    in_flight.mutable_next_model()->set_values(kParameters - 1, 0.25f);
    before = WalBytes(path());
    ASSERT_OK(store->PutInFlight(in_flight));
    EXPECT_GE(WalBytes(path()) - before, int64_t{4} * kParameters);
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
  }
  {
    // Another process (a restart) writes it whole once, then only when it changes.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
    int64_t before = WalBytes(path());
    ASSERT_OK(store->PutInFlight(in_flight));
    EXPECT_GE(WalBytes(path()) - before, int64_t{4} * kParameters);
    // A record without a next model (a retried round) has none once read back.
    in_flight.clear_next_model();
    ASSERT_OK(store->PutInFlight(in_flight));
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
}

// A store of schema version 2 keeps the next model with the snapshot: it reads whole, and
// once a coordinator of version 3 writes the record, the model is under its own key alone
// (read together, the values never hold it twice).
TEST_F(RocksDbStoreTest, AVersionTwoRecordIsReadWholeAndItsModelMovesToItsOwnValue) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK(store->CreateTask(MakeTask("t1")).status());
  }
  v1::InFlightRound in_flight = BigInFlight("task-1", 1000);
  in_flight.mutable_next_model()->add_values(-1.5f);
  v1::InFlightRound light = in_flight;
  light.clear_server_snapshot();
  light.clear_next_model();
  v1::InFlightRound bulk;
  bulk.set_task_id("task-1");
  bulk.set_server_snapshot(in_flight.server_snapshot());
  *bulk.mutable_next_model() = in_flight.next_model();
  PutRaw(path(), "inflight", "task-1", light.SerializeAsString());
  PutRaw(path(), "inflight", std::string("task-1\0bulk", 11), bulk.SerializeAsString());
  PutRaw(path(), "meta", "schema_version", std::string("\0\0\0\x02", 4));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
    in_flight.add_drops("site-b: no answer");
    ASSERT_OK(store->PutInFlightProgress(in_flight));
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
    in_flight.set_server_snapshot("next step");
    ASSERT_OK(store->PutInFlight(in_flight));
    in_flight.set_server_snapshot("the step after");
    ASSERT_OK(store->PutInFlight(in_flight));
    EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
  }
  tessera::testing::WithRawDb(path(), [&](rocksdb::DB* db, tessera::testing::RawFamilies& f) {
    std::string stored;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), f["inflight"], std::string("task-1\0bulk", 11), &stored)
            .ok());
    v1::InFlightRound stored_bulk;
    ASSERT_TRUE(stored_bulk.ParseFromString(stored));
    EXPECT_FALSE(stored_bulk.has_next_model());
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), f["meta"], "schema_version", &stored).ok());
    EXPECT_EQ(stored, std::string("\0\0\0\x03", 4));
  });
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  EXPECT_THAT(store->GetInFlight("task-1"), IsOkAndHolds(EqualsProto(in_flight)));
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

}  // namespace
}  // namespace tessera::coordinator::store_testing
