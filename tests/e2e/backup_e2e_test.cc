// Backups of a running coordinator, end to end with real processes (docs/operations.md,
// "Backup, restore and upgrade"): `tessera admin backup DIR` while a task runs, the
// coordinator's machine lost, `tessera-coordinator --restore-from DIR` into a new data
// directory, and the restored coordinator resuming the task to the end.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "coordinator/store.h"
#include "coordinator/store_backup.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "proto/state.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uint32_t kRounds = 40;  // rounds take ~0.1 s: room to act mid-task

class E2eBackupTest : public FederationTest {
 protected:
  // A federation of three sites running the example task with kRounds rounds, 3 of them
  // committed; sets task_id_.
  void StartTaskPastRound3() {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    ASSERT_OK(StartCoordinator());
    ASSERT_OK(StartClients());
    ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
    spec.set_rounds(kRounds);
    ASSERT_OK_AND_ASSIGN(task_id_, SubmitTask(spec));
    ASSERT_OK(WaitForTask(task_id_, [](const v1::TaskRecord& t) {
                return t.last_committed_round() >= 3 || IsFinished(t);
              }).status());
  }

  // Restores `backup` with the daemon's --restore-from into the (empty) data_dir.
  void Restore(const std::string& backup, CommandResult* result) {
    ASSERT_OK_AND_ASSIGN(*result,
                         RunCommand({CoordinatorBinary(), "--config", coordinator_config_path(),
                                     "--restore-from", backup}));
  }

  std::string task_id_;
};

TEST_F(E2eBackupTest, BackupTakenDuringARunningTaskRestoresAndTheTaskResumes) {
  ASSERT_NO_FATAL_FAILURE(StartTaskPastRound3());
  const int port = this->port();
  const std::string& task_id = task_id_;

  // The sites pause (so that nothing the sites send after the backup is lost with the
  // coordinator: see the docs on what a restore rewinds), the coordinator keeps running
  // with its task mid-round, and the operator takes the backup.
  for (const std::string& name : Sites()) ASSERT_OK(site(name).process->Stop());
  const std::string backup = temp().File("backups/during-task");
  ASSERT_OK_AND_ASSIGN(CommandResult backed_up, Console({"admin", "backup"}, {backup}));
  ASSERT_EQ(backed_up.exit_code(), 0) << backed_up.err;
  EXPECT_THAT(backed_up.out, HasSubstr(absl::StrCat("backup written to ", backup)));
  EXPECT_THAT(backed_up.out, HasSubstr("1 tasks (1 unfinished)"));
  std::fputs(backed_up.out.c_str(), stdout);  // the figures: files, bytes, milliseconds
  EXPECT_THAT(coordinator()->Log(), HasSubstr("event=store_backup_sent"));
  EXPECT_FALSE(fs::exists(coordinator::BackupStagingDir(data_dir())));
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse at_backup, GetTask(task_id));
  ASSERT_EQ(at_backup.task().state(), v1::TASK_RUNNING);
  const uint32_t k = at_backup.task().last_committed_round();
  ASSERT_LT(k, kRounds) << "the task ended before the backup";

  // The coordinator's machine is lost: process and disk.
  ASSERT_OK(coordinator()->Kill(SIGKILL));
  ASSERT_OK(coordinator()->Wait(absl::Seconds(30)).status());
  fs::rename(data_dir(), data_dir() + ".lost");

  // A restore refuses to overwrite a store that is still there.
  ASSERT_OK(common::MakeDirectories(data_dir(), 0700));
  ASSERT_OK(common::WriteFileAtomic(data_dir() + "/CURRENT", "somebody's store\n"));
  CommandResult refused;
  ASSERT_NO_FATAL_FAILURE(Restore(backup, &refused));
  EXPECT_EQ(refused.exit_code(), 1);
  EXPECT_THAT(refused.err, HasSubstr("move the old one away"));
  fs::remove_all(data_dir());

  CommandResult restored;
  ASSERT_NO_FATAL_FAILURE(Restore(backup, &restored));
  ASSERT_EQ(restored.exit_code(), 0) << restored.err;
  EXPECT_THAT(restored.out, HasSubstr("1 tasks (1 unfinished"));

  ASSERT_OK(StartCoordinator(absl::StrCat("127.0.0.1:", port)));
  for (const std::string& name : Sites()) ASSERT_OK(site(name).process->Continue());
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord finished, WaitForTask(task_id, IsFinished));
  EXPECT_EQ(finished.state(), v1::TASK_COMPLETED) << finished.state_reason();
  EXPECT_EQ(finished.last_committed_round(), kRounds);
  EXPECT_THAT(coordinator()->Log(), HasSubstr(absl::StrCat("event=task_resumed task=", task_id,
                                                           " last_committed_round=", k)));
  ASSERT_OK(StopCoordinator());

  // Every round is there once, and those committed before the backup are unchanged.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store, OpenStore());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, store->ListRounds(task_id));
  ASSERT_EQ(rounds.size(), kRounds + 1);
  for (uint32_t r = 0; r <= kRounds; ++r) EXPECT_EQ(rounds[r].round(), r);
  for (uint32_t r = 0; r < static_cast<uint32_t>(at_backup.rounds_size()) && r <= k; ++r) {
    EXPECT_EQ(rounds[r].committed_unix_ms(), at_backup.rounds(r).committed_unix_ms()) << r;
    EXPECT_EQ(rounds[r].model_hash(), at_backup.rounds(r).model_hash()) << r;
  }
}

TEST_F(E2eBackupTest, BackupNeedsAnOperatorAndAnEmptyFolder) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(StartCoordinator());
  const std::string backup = temp().File("backup");
  ASSERT_OK(common::MakeDirectories(backup, 0700));
  ASSERT_OK(common::WriteFileAtomic(backup + "/keep.txt", "mine"));
  ASSERT_OK_AND_ASSIGN(CommandResult refused, Console({"admin", "backup"}, {backup}));
  EXPECT_EQ(refused.exit_code(), 1);
  EXPECT_THAT(refused.err, HasSubstr("exists and is not an empty folder"));
  EXPECT_THAT(common::ReadFile(backup + "/keep.txt"),
              ::tessera::testing::IsOkAndHolds(std::string("mine")));

  // An institution's certificate may not take the coordinator's store.
  ASSERT_OK_AND_ASSIGN(auto channel, ChannelAs(site("hospital-a").tls, crypto::Role::kInstitution));
  auto stub = v1::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  auto reader = stub->BackupStore(&ctx, v1::BackupStoreRequest());
  v1::BackupStoreChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// A restore rewinds the coordinator, never the sites: the rounds they contributed to after
// the backup are not computed a second time (which would hand a coordinator two sums of the
// same contributions with different cohorts); the task stops there, naming why.
TEST_F(E2eBackupTest, ARestoredCoordinatorGetsNoSecondContributionForRoundsAfterTheBackup) {
  ASSERT_NO_FATAL_FAILURE(StartTaskPastRound3());
  const int port = this->port();
  const std::string& task_id = task_id_;
  const std::string backup = temp().File("backup");
  ASSERT_OK_AND_ASSIGN(CommandResult backed_up, Console({"admin", "backup"}, {backup}));
  ASSERT_EQ(backed_up.exit_code(), 0) << backed_up.err;
  // Where the backup stands: restored into a scratch folder and read.
  int32_t k = 0;
  {
    const std::string scratch = temp().File("scratch");
    ASSERT_OK(coordinator::RestoreStoreBackup(backup, scratch).status());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store,
                         coordinator::OpenRocksDbStore(scratch));
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask(task_id));
    k = task.last_committed_round();
  }
  // The federation goes on past the backup, then the coordinator's machine is lost.
  ASSERT_OK(WaitForTask(task_id, [k](const v1::TaskRecord& t) {
              return t.last_committed_round() >= k + 3 || IsFinished(t);
            }).status());
  ASSERT_OK(coordinator()->Kill(SIGKILL));
  ASSERT_OK(coordinator()->Wait(absl::Seconds(30)).status());
  v1::TaskRecord lost;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store, OpenStore());
    ASSERT_OK_AND_ASSIGN(lost, store->GetTask(task_id));
  }
  ASSERT_LT(lost.last_committed_round(), kRounds) << "the task ended before the loss";
  fs::rename(data_dir(), data_dir() + ".lost");
  CommandResult restored;
  ASSERT_NO_FATAL_FAILURE(Restore(backup, &restored));
  ASSERT_EQ(restored.exit_code(), 0) << restored.err;
  ASSERT_OK(StartCoordinator(absl::StrCat("127.0.0.1:", port)));

  ASSERT_OK_AND_ASSIGN(v1::TaskRecord ended, WaitForTask(task_id, IsFinished));
  EXPECT_EQ(ended.state(), v1::TASK_FAILED);
  EXPECT_THAT(ended.state_reason(), HasSubstr("ALREADY_CONTRIBUTED"));
  EXPECT_LT(ended.last_committed_round(), lost.last_committed_round());
}

}  // namespace
}  // namespace tessera::e2e
