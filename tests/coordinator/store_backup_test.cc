// Backups of the coordinator store (coordinator/store_backup.h) and its schema version
// (coordinator/store.h kStoreSchemaVersion): a backup taken while writers go on is a
// consistent copy that restores to an equal store; a damaged, incomplete or newer backup
// is refused naming what is wrong and restores nothing; a store of a newer schema is
// refused at open.

#include "coordinator/store_backup.h"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "coordinator/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/state.pb.h"
#include "rocksdb/db.h"
#include "tests/coordinator/store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/raw_rocksdb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::coordinator::store_testing {
namespace {

namespace fs = std::filesystem;
using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string BigEndian32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

class StoreBackupTest : public ::testing::Test {
 protected:
  std::string data_dir() const { return dir_.File("data"); }
  std::string backup_dir() const { return dir_.File("backups/monday"); }

  // A store with `tasks` tasks, each with round 1 committed, and client site-a; open.
  std::unique_ptr<Store> Populated(int tasks) {
    auto store = OpenRocksDbStore(data_dir());
    EXPECT_OK(store.status());
    for (int i = 1; i <= tasks; ++i) {
      auto id = (*store)->CreateTask(MakeTask(absl::StrCat("t", i)));
      EXPECT_OK(id.status());
      v1::TaskRecord task = MakeTask(absl::StrCat("t", i));
      task.set_task_id(*id);
      task.set_state(v1::TASK_RUNNING);
      task.set_last_committed_round(1);
      EXPECT_OK((*store)->CommitRound(task, MakeRound(*id, 1), std::vector<float>{1.0f * i, 2}));
    }
    EXPECT_OK((*store)->PutClient(MakeClient("site-a", "aa")));
    return std::move(*store);
  }

  // A thread committing task-1's rounds 2, 3, ... (models of `floats` values) into `store`
  // as fast as it can, until `stop`.
  static std::thread CommitUntil(Store& store, const std::atomic<bool>& stop, size_t floats) {
    return std::thread([&store, &stop, floats] {
      for (uint32_t round = 2; !stop; ++round) {
        v1::TaskRecord task = MakeTask("t1");
        task.set_task_id("task-1");
        task.set_state(v1::TASK_RUNNING);
        task.set_last_committed_round(round);
        ASSERT_OK(store.CommitRound(task, MakeRound("task-1", round),
                                    std::vector<float>(floats, static_cast<float>(round))));
      }
    });
  }

  // Streams a backup of `store` into backup_dir() through a BackupWriter, as the console.
  absl::Status Backup(Store& store) {
    auto writer = BackupWriter::Create(backup_dir());
    if (!writer.ok()) return writer.status();
    absl::Status added;
    absl::Status streamed = StreamStoreBackup(store, BackupStagingDir(data_dir()), absl::Now(),
                                              [&](const v1::BackupStoreChunk& chunk) {
                                                added = (*writer)->Add(chunk);
                                                return added.ok();
                                              });
    if (!added.ok()) return added;
    if (!streamed.ok()) (*writer)->Abandon();
    return streamed;
  }

  // Takes `backups` backups of `store` while a thread commits task-1's rounds with models
  // of `floats` values, restores each into a folder of its own and hands that folder to
  // `check` (the backup is still in backup_dir()); returns how many restored.
  int RestoredBackupsWhileCommitting(Store& store, size_t floats, int backups,
                                     const std::function<void(const std::string&)>& check) {
    std::atomic<bool> stop{false};
    std::thread writer = CommitUntil(store, stop, floats);
    int restored_ok = 0;
    for (int i = 0; i < backups; ++i) {
      SCOPED_TRACE(absl::StrCat("backup ", i));
      fs::remove_all(backup_dir());
      const absl::Status backed_up = Backup(store);
      EXPECT_OK(backed_up);
      if (!backed_up.ok()) continue;
      const std::string restored = dir_.File(absl::StrCat("restored-", i));
      const absl::Status summary = RestoreStoreBackup(backup_dir(), restored).status();
      EXPECT_OK(summary);
      if (summary.ok()) {
        check(restored);
        ++restored_ok;
      }
      fs::remove_all(restored);
    }
    stop = true;
    writer.join();
    return restored_ok;
  }

  std::string StoreFile(const std::string& suffix) const {
    for (const auto& entry : fs::directory_iterator(fs::path(backup_dir()) / kBackupStoreFolder)) {
      if (entry.path().filename().string().ends_with(suffix)) return entry.path().string();
    }
    ADD_FAILURE() << "no " << suffix << " file in the backup";
    return "";
  }

  TempDir dir_;
};

TEST_F(StoreBackupTest, BackupWhileWritersGoOnRestoresToAConsistentEqualStore) {
  std::unique_ptr<Store> store = Populated(3);
  // Writers keep committing while the checkpoint is taken: the backup is one instant.
  std::atomic<bool> stop{false};
  std::thread writer = CommitUntil(*store, stop, 2);
  absl::Status backed_up = Backup(*store);
  stop = true;
  writer.join();
  ASSERT_OK(backed_up);
  EXPECT_FALSE(fs::exists(BackupStagingDir(data_dir()))) << "the checkpoint must be removed";

  ASSERT_OK_AND_ASSIGN(v1::StoreBackupManifest manifest, VerifyStoreBackup(backup_dir()));
  EXPECT_EQ(manifest.schema_version(), kStoreSchemaVersion);
  EXPECT_EQ(manifest.tasks(), 3u);
  EXPECT_EQ(manifest.unfinished_tasks(), 3u);
  EXPECT_GT(manifest.files_size(), 2);
  EXPECT_EQ(fs::status(backup_dir()).permissions() & fs::perms::all, fs::perms::owner_all);

  const std::string restored = dir_.File("restored");
  ASSERT_OK_AND_ASSIGN(RestoreSummary summary, RestoreStoreBackup(backup_dir(), restored));
  EXPECT_EQ(summary.tasks, 3u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> copy, OpenRocksDbStore(restored));
  // The copy is one instant: task-1's record names the last round whose checkpoint it has.
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task1, copy->GetTask("task-1"));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, copy->ListRounds("task-1"));
  ASSERT_FALSE(rounds.empty());
  EXPECT_EQ(rounds.back().round(), task1.last_committed_round());
  EXPECT_OK(copy->GetCheckpoint("task-1", task1.last_committed_round()).status());
  for (const char* id : {"task-2", "task-3"}) {
    EXPECT_THAT(copy->GetTask(id), IsOkAndHolds(EqualsProto(*store->GetTask(id))));
    EXPECT_THAT(copy->GetCheckpoint(id, 1), IsOkAndHolds(*store->GetCheckpoint(id, 1))) << id;
  }
  EXPECT_THAT(copy->GetClient("site-a"), IsOkAndHolds(EqualsProto(*store->GetClient("site-a"))));
  EXPECT_THAT(copy->CreateTask(MakeTask("t4")), IsOkAndHolds(std::string("task-4")));
}

// Many backups while a writer commits as fast as it can: every one restores. (A checkpoint
// copies the live write-ahead log; taken while a write was appending to it, the copy could
// end in a torn record, which the store's absolute-consistency recovery refuses as damage:
// seen once in CI, in E2eBackupTest.)
TEST_F(StoreBackupTest, EveryBackupTakenWhileAWriterCommitsRestores) {
  std::unique_ptr<Store> store = Populated(1);
  EXPECT_EQ(RestoredBackupsWhileCommitting(*store, 4096, 25, [](const std::string&) {}), 25);
}

// Models above the store's blob size (64 KiB) go to blob files when their memtable is
// flushed (rocksdb_store.cc): a backup carries those files, and the restored store reads
// every checkpoint back.
TEST_F(StoreBackupTest, ModelsInBlobFilesAreBackedUpAndRestored) {
  std::unique_ptr<Store> store = Populated(1);
  constexpr size_t kFloats = 100000;  // 400 KB a checkpoint
  constexpr uint32_t kRounds = 30;    // 12 MB: past the memtables, so some are flushed
  for (uint32_t round = 2; round <= kRounds; ++round) {
    v1::TaskRecord task = MakeTask("t1");
    task.set_task_id("task-1");
    task.set_state(v1::TASK_RUNNING);
    task.set_last_committed_round(round);
    ASSERT_OK(store->CommitRound(task, MakeRound("task-1", round),
                                 std::vector<float>(kFloats, static_cast<float>(round))));
  }
  bool blob_file = false;
  for (const auto& entry : fs::directory_iterator(data_dir())) {
    blob_file |= entry.path().extension() == ".blob";
  }
  EXPECT_TRUE(blob_file) << "no model went to a blob file";

  ASSERT_OK(Backup(*store));
  EXPECT_FALSE(StoreFile(".blob").empty());
  const std::string restored = dir_.File("restored");
  ASSERT_OK(RestoreStoreBackup(backup_dir(), restored).status());
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> copy, OpenRocksDbStore(restored));
    for (uint32_t round = 2; round <= kRounds; ++round) {
      ASSERT_OK_AND_ASSIGN(std::vector<float> model, copy->GetCheckpoint("task-1", round));
      ASSERT_EQ(model.size(), kFloats) << round;
      EXPECT_EQ(model.front(), static_cast<float>(round));
      EXPECT_EQ(model.back(), static_cast<float>(round));
    }
  }
  // RocksDB opened without blob options (as by an earlier coordinator, or the store's
  // repair) reads them too: every model, the first one flushed among them.
  tessera::testing::WithRawDb(restored, [&](rocksdb::DB* db, tessera::testing::RawFamilies& f) {
    for (uint32_t round = 2; round <= kRounds; ++round) {
      std::string value;
      const std::string key = std::string("task-1") + '\0' + BigEndian32(round);
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), f["models"], key, &value).ok()) << round;
      v1::ModelParameters model;
      ASSERT_TRUE(model.ParseFromString(value));
      EXPECT_EQ(model.values_size(), static_cast<int>(kFloats));
    }
  });
}

// The same while a writer commits models that go to blob files (400 KB each): every
// backup restores, with the checkpoint its task record names.
TEST_F(StoreBackupTest, EveryBackupTakenWhileBlobFilesAreWrittenRestores) {
  std::unique_ptr<Store> store = Populated(1);
  bool blob_backed_up = false;
  const int restored =
      RestoredBackupsWhileCommitting(*store, 100000, 4, [&](const std::string& restored_dir) {
        for (const auto& entry :
             fs::directory_iterator(fs::path(backup_dir()) / kBackupStoreFolder)) {
          blob_backed_up |= entry.path().extension() == ".blob";
        }
        auto copy = OpenRocksDbStore(restored_dir);
        ASSERT_OK(copy.status());
        ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, (*copy)->GetTask("task-1"));
        ASSERT_OK_AND_ASSIGN(std::vector<float> model,
                             (*copy)->GetCheckpoint("task-1", task.last_committed_round()));
        EXPECT_EQ(model.size(), task.last_committed_round() > 1 ? 100000u : 2u);
      });
  EXPECT_EQ(restored, 4);
  EXPECT_TRUE(blob_backed_up) << "no backup held a blob file";
}

TEST_F(StoreBackupTest, BackupIntoAFolderThatIsNotEmptyIsRefusedAndTouchesNothing) {
  std::unique_ptr<Store> store = Populated(1);
  ASSERT_OK(common::MakeDirectories(backup_dir(), 0700));
  ASSERT_OK(common::WriteFileAtomic(backup_dir() + "/notes.txt", "mine"));
  EXPECT_THAT(Backup(*store), StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(backup_dir())));
  EXPECT_THAT(common::ReadFile(backup_dir() + "/notes.txt"), IsOkAndHolds(std::string("mine")));
  EXPECT_FALSE(fs::exists(backup_dir() + "/store"));
}

TEST_F(StoreBackupTest, ABackupStreamCutShortLeavesNothingBehind) {
  std::unique_ptr<Store> store = Populated(2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BackupWriter> writer, BackupWriter::Create(backup_dir()));
  int chunks = 0;
  absl::Status streamed = StreamStoreBackup(store.operator*(), BackupStagingDir(data_dir()),
                                            absl::Now(), [&](const v1::BackupStoreChunk& chunk) {
                                              EXPECT_OK(writer->Add(chunk));
                                              return ++chunks < 3;  // the receiver goes away
                                            });
  EXPECT_THAT(streamed, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_FALSE(writer->complete());
  writer->Abandon();
  EXPECT_FALSE(fs::exists(backup_dir()));
  EXPECT_FALSE(fs::exists(BackupStagingDir(data_dir())));
}

TEST_F(StoreBackupTest, ADamagedOrIncompleteBackupIsRefusedNamingTheFileAndRestoresNothing) {
  std::unique_ptr<Store> store = Populated(1);
  ASSERT_OK(Backup(*store));
  const std::string restored = dir_.File("restored");
  const std::string sst = StoreFile(".sst");
  {
    std::fstream f(sst, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x5a');
  }
  EXPECT_THAT(VerifyStoreBackup(backup_dir()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(sst)));
  EXPECT_THAT(RestoreStoreBackup(backup_dir(), restored),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(sst)));
  EXPECT_FALSE(fs::exists(restored));

  ASSERT_OK(common::WriteFileAtomic(backup_dir() + "/store/000999.log", "extra"));
  fs::remove(backup_dir() + "/" + kBackupManifestFile);
  EXPECT_THAT(VerifyStoreBackup(backup_dir()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("incomplete")));
}

TEST_F(StoreBackupTest, AnExtraFileInTheBackupIsRefused) {
  std::unique_ptr<Store> store = Populated(1);
  ASSERT_OK(Backup(*store));
  ASSERT_OK(common::WriteFileAtomic(backup_dir() + "/store/000999.log", "extra"));
  EXPECT_THAT(VerifyStoreBackup(backup_dir()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("000999.log")));
}

TEST_F(StoreBackupTest, RestoreIntoADataDirThatIsNotEmptyIsRefusedAndLeavesItAsItWas) {
  std::unique_ptr<Store> store = Populated(2);
  ASSERT_OK(Backup(*store));
  store.reset();
  const auto before = std::distance(fs::directory_iterator(data_dir()), fs::directory_iterator());
  EXPECT_THAT(
      RestoreStoreBackup(backup_dir(), data_dir()),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               ::testing::AllOf(HasSubstr(data_dir()), HasSubstr("move the old one away"))));
  EXPECT_EQ(std::distance(fs::directory_iterator(data_dir()), fs::directory_iterator()), before);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> reopened, OpenRocksDbStore(data_dir()));
  EXPECT_OK(reopened->GetTask("task-2").status());
}

TEST_F(StoreBackupTest, ABackupOfANewerStoreSchemaIsRefused) {
  std::unique_ptr<Store> store = Populated(1);
  ASSERT_OK(Backup(*store));
  v1::StoreBackupManifest manifest;
  const std::string path = backup_dir() + "/" + kBackupManifestFile;
  ASSERT_OK(common::LoadProtoFile(path, &manifest));
  manifest.set_schema_version(kStoreSchemaVersion + 1);
  ASSERT_OK(common::WriteFileAtomic(path, common::ToTextProto(manifest)));
  EXPECT_THAT(RestoreStoreBackup(backup_dir(), dir_.File("restored")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat("schema version ", kStoreSchemaVersion + 1))));
  EXPECT_FALSE(fs::exists(dir_.File("restored")));
}

TEST_F(StoreBackupTest, TheInMemoryStoreHasNoBackup) {
  std::unique_ptr<Store> memory = NewMemoryStore();
  EXPECT_THAT(StreamStoreBackup(*memory, dir_.File("staging"), absl::Now(),
                                [](const v1::BackupStoreChunk&) { return true; }),
              StatusIs(absl::StatusCode::kUnimplemented));
}

// ---- Schema version ----

TEST(StoreSchemaVersionTest, ANewStoreIsStampedAndAStoreOfANewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.File("store");
  { ASSERT_OK(OpenRocksDbStore(path).status()); }
  std::string stamped;
  tessera::testing::WithRawDb(path, [&](rocksdb::DB* db, tessera::testing::RawFamilies& cf) {
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cf.at("meta"), "schema_version", &stamped).ok());
  });
  EXPECT_EQ(stamped, BigEndian32(kStoreSchemaVersion));

  tessera::testing::PutRaw(path, "meta", "schema_version", BigEndian32(kStoreSchemaVersion + 1));
  EXPECT_THAT(
      OpenRocksDbStore(path),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               ::testing::AllOf(HasSubstr(path),
                                HasSubstr(absl::StrCat("schema version ", kStoreSchemaVersion + 1)),
                                HasSubstr("newer tessera-coordinator"))));
}

TEST(StoreSchemaVersionTest, AStoreFromBeforeVersionsIsStampedAndKeepsItsRecords) {
  TempDir dir;
  const std::string path = dir.File("store");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path));
    ASSERT_OK(store->CreateTask(MakeTask("old")).status());
  }
  tessera::testing::DeleteRaw(path, "meta", "schema_version");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenRocksDbStore(path));
  EXPECT_OK(store->GetTask("task-1").status());
  store.reset();
  std::string stamped;
  tessera::testing::WithRawDb(path, [&](rocksdb::DB* db, tessera::testing::RawFamilies& cf) {
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cf.at("meta"), "schema_version", &stamped).ok());
  });
  EXPECT_EQ(stamped, BigEndian32(kStoreSchemaVersion));
}

}  // namespace
}  // namespace tessera::coordinator::store_testing
