// The coordinator's RocksDB store never silently forgets (issue 11): random bytes in its
// write-ahead log refuse the open, naming the log file, instead of RocksDB's point-in-time
// recovery quietly dropping the damaged record and everything after it (a COMPLETED task
// back to RUNNING, committed rounds gone). The repair (store_repair.h) is the operator's
// explicit, confirmed way out.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/store.h"
#include "coordinator/store_repair.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "tests/coordinator/store_testing.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::coordinator::store_testing {
namespace {

namespace fs = std::filesystem;

using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr uint32_t kRounds = 30;

class StoreWalTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.File("coordinator"); }

  // task-1 COMPLETED after kRounds committed rounds (0..kRounds-1); closed without a flush,
  // so every record is in the write-ahead log only.
  void Populate() {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
    ASSERT_OK_AND_ASSIGN(std::string id, store->CreateTask(MakeTask("t1")));
    v1::TaskRecord task = MakeTask("t1");
    task.set_task_id(id);
    task.mutable_spec()->set_rounds(kRounds);
    task.set_state(v1::TASK_RUNNING);
    for (uint32_t r = 0; r < kRounds; ++r) {
      task.set_last_committed_round(static_cast<int32_t>(r));
      ASSERT_OK(store->CommitRound(task, MakeRound(id, r), std::vector<float>(64, 0.5f * r)));
    }
    task.set_state(v1::TASK_COMPLETED);
    ASSERT_OK(store->UpdateTask(task));
  }

  // The write-ahead log files of the closed store.
  std::vector<std::string> Wals() const {
    std::vector<std::string> logs;
    for (const auto& entry : fs::directory_iterator(path())) {
      if (entry.path().extension() == ".log") logs.push_back(entry.path().string());
    }
    std::sort(logs.begin(), logs.end());
    return logs;
  }

  // Overwrites 64 bytes in the middle of `file` with random ones (fixed seed).
  static void Scribble(const std::string& file) {
    const uint64_t size = fs::file_size(file);
    std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(static_cast<std::streamoff>(size / 2));
    std::mt19937 random(11);
    for (int i = 0; i < 64; ++i) out.put(static_cast<char>(random()));
    ASSERT_TRUE(out.good()) << file;
  }

  TempDir dir_;
};

TEST_F(StoreWalTest, RandomBytesInTheWalRefuseTheOpenNamingTheLogFile) {
  Populate();
  const std::vector<std::string> wals = Wals();
  ASSERT_THAT(wals, SizeIs(1));
  Scribble(wals[0]);
  absl::StatusOr<std::unique_ptr<Store>> reopened = OpenRocksDbStore(path());
  if (reopened.ok()) {
    // What point-in-time recovery makes of it: the tail of the log is gone, silently.
    absl::StatusOr<v1::TaskRecord> task = (*reopened)->GetTask("task-1");
    FAIL() << "the damaged store opened: task-1 is "
           << (task.ok() ? absl::StrCat(v1::TaskState_Name(task->state()), " at round ",
                                        task->last_committed_round(), " of ", kRounds)
                         : task.status().ToString());
  }
  EXPECT_THAT(reopened.status(), StatusIs(absl::StatusCode::kDataLoss,
                                          AllOf(HasSubstr(wals[0]), HasSubstr("write-ahead log"),
                                                HasSubstr("--repair-store"), HasSubstr("backup"))));
  // Refused twice the same way: the refusal changed nothing.
  EXPECT_THAT(OpenRocksDbStore(path()).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(wals[0])));
}

TEST_F(StoreWalTest, AnUndamagedStoreStillOpensWithEverything) {
  Populate();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask("task-1"));
  EXPECT_EQ(task.state(), v1::TASK_COMPLETED);
  EXPECT_THAT(store->ListRounds("task-1"), ::tessera::testing::IsOkAndHolds(SizeIs(kRounds)));
}

TEST_F(StoreWalTest, RepairWithoutConfirmationSaysWhatItKeepsAndChangesNothing) {
  Populate();
  const std::string wal = Wals()[0];
  Scribble(wal);
  ASSERT_OK_AND_ASSIGN(std::string report, RepairRocksDbStore(path(), /*confirm=*/false));
  EXPECT_THAT(report, AllOf(HasSubstr(wal), HasSubstr("task-1 TASK_RUNNING, last committed round"),
                            HasSubstr("lost for good"), HasSubstr("Nothing was changed")));
  EXPECT_THAT(OpenRocksDbStore(path()).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(wal)));
}

TEST_F(StoreWalTest, ConfirmedRepairKeepsWhatItSaidAndTheStoreOpensAgain) {
  Populate();
  Scribble(Wals()[0]);
  ASSERT_OK_AND_ASSIGN(std::string report, RepairRocksDbStore(path(), /*confirm=*/true));
  EXPECT_THAT(report, HasSubstr("Repaired"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask("task-1"));
  // The report named the state the store now holds; the rounds after it are gone.
  EXPECT_THAT(report, HasSubstr(absl::StrCat("task-1 TASK_RUNNING, last committed round ",
                                             task.last_committed_round())));
  EXPECT_EQ(task.state(), v1::TASK_RUNNING);
  EXPECT_LT(task.last_committed_round(), static_cast<int32_t>(kRounds) - 1);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store->ListRounds("task-1"));
  EXPECT_EQ(rounds.size(), static_cast<size_t>(task.last_committed_round() + 1));
  // And it stays repaired: a second open is clean too.
  store.reset();
  EXPECT_OK(OpenRocksDbStore(path()).status());
}

TEST_F(StoreWalTest, RepairOfAnUndamagedStoreChangesNothing) {
  Populate();
  EXPECT_THAT(RepairRocksDbStore(path(), /*confirm=*/true),
              ::tessera::testing::IsOkAndHolds(HasSubstr("not damaged")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path()));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask("task-1"));
  EXPECT_EQ(task.state(), v1::TASK_COMPLETED);
  EXPECT_THAT(RepairRocksDbStore(dir_.File("nothing"), false),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace tessera::coordinator::store_testing
