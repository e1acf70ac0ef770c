// The RocksDB site store refuses every kind of damage at open, naming what is wrong and
// saying to restore the store from a backup (site_store.h, "Never silently forget what
// left").

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/site_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_state.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/client/site_store_testing.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client::site_store_testing {
namespace {

namespace fs = std::filesystem;

using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// ---- damage: every kind is refused at open, naming what is wrong.

TEST_F(SiteStoreRocksDbTest, FlippedByteInATableFileIsDataLoss) {
  const std::string original = dir_.File("original");
  Populate(original);
  // Reopening flushes the log into table files (recovery, then the scrub at open).
  { ASSERT_OK(OpenSiteStore(original)); }
  const std::vector<std::string> tables = FilesEndingWith(original, ".sst");
  ASSERT_THAT(tables, SizeIs(::testing::Ge(3)));  // one per family at least
  ASSERT_THAT(FilesHolding(original, RecordMark(2)), ::testing::Contains(HasSubstr(".sst")));
  // (A flip of any byte of a table file was checked once to be caught.)
  ExpectEveryTableFlipIsDataLoss(
      original, [](const std::string& copy) { return OpenSiteStore(copy).status(); });
}

TEST_F(SiteStoreRocksDbTest, FlippedByteInTheWriteAheadLogIsDataLoss) {
  const std::string original = dir_.File("original");
  Populate(original);  // closed without a flush: the records are in the log only
  const std::vector<std::string> logs = FilesEndingWith(original, ".log");
  ASSERT_THAT(logs, ::testing::Not(IsEmpty()));
  ASSERT_THAT(FilesHolding(original, RecordMark(2)),
              ElementsAre(fs::path(logs.back()).filename().string()));
  const std::string newest = fs::path(logs.back()).filename().string();
  const uint64_t size = fs::file_size(logs.back());
  for (uint64_t offset : {uint64_t{0}, uint64_t{6}, size / 2, size - 1}) {
    const std::string copy = CopyOf(original);
    FlipByte(absl::StrCat(copy, "/", newest), offset);
    EXPECT_THAT(OpenSiteStore(copy),
                StatusIs(absl::StatusCode::kDataLoss, AllOf(SaysRestore(copy), HasSubstr(".log"))))
        << newest << " byte " << offset << " of " << size;
  }
  // The undamaged original still opens with everything in it.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(original));
  EXPECT_THAT(store->ListSessions(), IsOkAndHolds(SizeIs(2)));
}

TEST_F(SiteStoreRocksDbTest, TornWriteAheadLogTailIsDataLoss) {
  // What absolute consistency costs (site_store.h): a log that ends inside a record.
  Populate(path());
  const std::vector<std::string> logs = FilesEndingWith(path(), ".log");
  ASSERT_THAT(logs, ::testing::Not(IsEmpty()));
  fs::resize_file(logs.back(), fs::file_size(logs.back()) - 3);
  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(SaysRestore(path()), HasSubstr(".log"))));
}

TEST_F(SiteStoreRocksDbTest, UnparsableRecordIsDataLossNamingFamilyAndKey) {
  // Not a protobuf encoding: 0x0f is field 1 with the invalid wire type 7.
  const std::string garbage = "\x0fnot a proto";
  Populate(path());
  const std::string contributions = CopyOf(path());
  PutRaw(contributions, "contributions", Key(1), garbage);
  EXPECT_THAT(OpenSiteStore(contributions),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(contributions), HasSubstr("family contributions"),
                             HasSubstr("key " + Hex(Key(1))), HasSubstr("does not parse"))));
  const std::string sessions = CopyOf(path());
  PutRaw(sessions, "sessions", "s2", garbage);
  EXPECT_THAT(OpenSiteStore(sessions),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(sessions), HasSubstr("family sessions"),
                             HasSubstr("key " + Hex("s2")), HasSubstr("does not parse"))));
}

TEST_F(SiteStoreRocksDbTest, RecordUnderTheWrongKeyIsDataLossNamingFamilyAndKey) {
  Populate(path());
  const std::string contributions = CopyOf(path());
  // The record of Key(1), moved under Key(3): it would hide Key(1) and guard Key(3).
  PutRaw(contributions, "contributions", Key(3),
         MakeContribution(Key(1), "s1").SerializeAsString());
  EXPECT_THAT(OpenSiteStore(contributions),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(contributions), HasSubstr("family contributions"),
                             HasSubstr("key " + Hex(Key(3))), HasSubstr(Hex(Key(1))))));

  const std::string short_key = CopyOf(path());
  PutRaw(short_key, "contributions", "abc", MakeContribution("abc", "s1").SerializeAsString());
  EXPECT_THAT(OpenSiteStore(short_key),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("family contributions"), HasSubstr("key " + Hex("abc")),
                             HasSubstr("3 bytes"))));

  const std::string sessions = CopyOf(path());
  PutRaw(sessions, "sessions", "s9", MakeSession("s2", Key(2)).SerializeAsString());
  EXPECT_THAT(OpenSiteStore(sessions),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(sessions), HasSubstr("family sessions"),
                             HasSubstr("key " + Hex("s9")), HasSubstr(Hex("s2")))));
}

TEST_F(SiteStoreRocksDbTest, SnapshotWithoutItsSessionRecordIsDataLoss) {
  Populate(path());
  PutRaw(path(), "session_machines", "s9", "a snapshot");
  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(path()), HasSubstr("family session_machines"),
                             HasSubstr("key " + Hex("s9")), HasSubstr("without its session"))));
}

TEST_F(SiteStoreRocksDbTest, SnapshotWhoseKeyIsMissingOrThatDoesNotOpenIsDataLoss) {
  Populate(path());  // s2 is open: its snapshot sealed under its key
  const std::string altered = CopyOf(path());
  WithRawDb(altered, [](rocksdb::DB* db, RawFamilies& families) {
    std::string sealed;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), families.at("session_machines"), "s2", &sealed).ok());
    sealed[sealed.size() / 2] ^= 0x5a;
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), families.at("session_machines"), "s2", sealed).ok());
  });
  EXPECT_THAT(OpenSiteStore(altered),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(altered), HasSubstr("family session_machines"),
                             HasSubstr("key " + Hex("s2")), HasSubstr("does not open"))));

  const std::string keyless = CopyOf(path());
  ASSERT_THAT(HeldKeys(keyless), SizeIs(2));  // s1's and s2's
  fs::remove(keyless + "/SESSION_KEYS");
  EXPECT_THAT(OpenSiteStore(keyless),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(keyless), HasSubstr("family session_machines"),
                             HasSubstr("key of this session's snapshot is missing"))));

  const std::string torn = CopyOf(path());
  fs::resize_file(torn + "/SESSION_KEYS", 100);
  EXPECT_THAT(OpenSiteStore(torn),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(torn), HasSubstr("SESSION_KEYS has 100 bytes"))));
}

// The input a snapshot keeps apart: never without its snapshot, and sealed as an input
// (a snapshot put in its place does not open).
TEST_F(SiteStoreRocksDbTest, InputWithoutItsSnapshotOrThatDoesNotOpenIsDataLoss) {
  Populate(path());  // s2 is open
  const std::string orphan = CopyOf(path());
  PutRaw(orphan, "session_inputs", "s9", "an input");  // no session s9
  EXPECT_THAT(OpenSiteStore(orphan),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(orphan), HasSubstr("family session_inputs"),
                             HasSubstr("key " + Hex("s9")), HasSubstr("without its snapshot"))));

  const std::string swapped = CopyOf(path());
  WithRawDb(swapped, [](rocksdb::DB* db, RawFamilies& families) {
    std::string sealed;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), families.at("session_machines"), "s2", &sealed).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), families.at("session_inputs"), "s2", sealed).ok());
  });
  EXPECT_THAT(OpenSiteStore(swapped),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(swapped), HasSubstr("family session_inputs"),
                             HasSubstr("key " + Hex("s2")), HasSubstr("does not open"))));
}

TEST_F(SiteStoreRocksDbTest, NewerFormatVersionIsRefused) {
  Populate(path());
  PutRaw(path(), "meta", "format_version", std::string("\0\0\0\x03", 4));
  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path()), HasSubstr("format version 3"),
                             HasSubstr("newer tessera-client"))));
}

TEST_F(SiteStoreRocksDbTest, DamagedOrMissingFormatVersionIsDataLoss) {
  Populate(path());
  const std::string malformed = CopyOf(path());
  PutRaw(malformed, "meta", "format_version", "\x01\x02\x03");
  EXPECT_THAT(OpenSiteStore(malformed),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(malformed), HasSubstr("family meta"),
                             HasSubstr(Hex("format_version")), HasSubstr("3 bytes"))));
  const std::string missing = CopyOf(path());
  DeleteRaw(missing, "meta", "format_version");
  EXPECT_THAT(OpenSiteStore(missing),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(missing), HasSubstr("format_version"))));
}

TEST_F(SiteStoreRocksDbTest, MissingColumnFamilyIsDataLossNotAnEmptyOne) {
  Populate(path());
  WithRawDb(path(), [](rocksdb::DB* db, auto& cf) {
    ASSERT_TRUE(db->DropColumnFamily(cf["contributions"]).ok());
  });
  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(SaysRestore(path()), HasSubstr("column family contributions"))));
}

TEST_F(SiteStoreRocksDbTest, LostCurrentFileIsDataLossNotANewStore) {
  Populate(path());
  fs::remove(path() + "/CURRENT");
  EXPECT_THAT(OpenSiteStore(path()), StatusIs(absl::StatusCode::kDataLoss,
                                              AllOf(SaysRestore(path()), HasSubstr("CURRENT"))));
}

TEST_F(SiteStoreRocksDbTest, OpensStoreWithColumnFamiliesItDoesNotKnow) {
  Populate(path());
  // ("ledger", the example this test used, is a family of this version now.)
  WithRawDb(path(), [](rocksdb::DB* db, auto&) {
    rocksdb::ColumnFamilyHandle* added = nullptr;
    ASSERT_TRUE(
        db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "from_a_newer_version", &added)
            .ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(added).ok());
  });
  PutRaw(path(), "from_a_newer_version", "k", "v");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  EXPECT_THAT(store->ListSessions(), IsOkAndHolds(SizeIs(2)));
}

}  // namespace
}  // namespace tessera::client::site_store_testing
