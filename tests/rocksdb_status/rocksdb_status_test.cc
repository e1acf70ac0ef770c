// rocksdb_status: RocksDB's status kinds as abseil codes, and a held LOCK recognised, with
// a real database.
#include "rocksdb_status/rocksdb_status.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/testing/temp_dir.h"

namespace tessera::rocksdb_status {
namespace {

TEST(RocksDbStatusTest, EachKindHasItsCode) {
  EXPECT_EQ(CodeOf(rocksdb::Status::OK()), absl::StatusCode::kOk);
  EXPECT_EQ(CodeOf(rocksdb::Status::NotFound("k")), absl::StatusCode::kNotFound);
  EXPECT_EQ(CodeOf(rocksdb::Status::Corruption("block checksum mismatch")),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(CodeOf(rocksdb::Status::NoSpace("disk full")), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeOf(rocksdb::Status::Busy()), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeOf(rocksdb::Status::TimedOut()), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeOf(rocksdb::Status::TryAgain()), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeOf(rocksdb::Status::ShutdownInProgress()), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeOf(rocksdb::Status::IOError("read failed")), absl::StatusCode::kInternal);
  EXPECT_EQ(CodeOf(rocksdb::Status::InvalidArgument("bad option")), absl::StatusCode::kInternal);
}

TEST(RocksDbStatusTest, ASecondOpenOfTheSameDirectoryIsALockConflict) {
  testing::TempDir dir;
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* first = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &first).ok());
  std::unique_ptr<rocksdb::DB> holder(first);
  rocksdb::DB* second = nullptr;
  const rocksdb::Status held = rocksdb::DB::Open(options, dir.path(), &second);
  ASSERT_FALSE(held.ok());
  EXPECT_TRUE(IsLockConflict(held)) << held.ToString();

  // Other failures are not: a directory that is not a database, corruption, an I/O error.
  options.create_if_missing = false;
  const rocksdb::Status missing = rocksdb::DB::Open(options, dir.File("none"), &second);
  ASSERT_FALSE(missing.ok());
  EXPECT_FALSE(IsLockConflict(missing)) << missing.ToString();
  EXPECT_FALSE(IsLockConflict(rocksdb::Status::Corruption("While lock file")));
  EXPECT_FALSE(IsLockConflict(rocksdb::Status::IOError("read failed")));
}

}  // namespace
}  // namespace tessera::rocksdb_status
