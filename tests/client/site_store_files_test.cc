// What reaches the RocksDB site store's files: no version of a session's secrets stays in
// any file once the session ends (each is sealed under a key of its own, whose file a
// scrub removes); an input kept apart is written once; model-sized values never reach a
// table file; a scrub rewrites no retained record; an older store is converted; the
// contributions stay in a few files over many sessions.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/site_store.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_state.pb.h"
#include "rocksdb/db.h"
#include "tests/client/site_store_testing.h"
#include "tests/testing/eventually.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client::site_store_testing {
namespace {

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// ---- secrets on disk

// No snapshot is ever on disk in plaintext: each is sealed under its session's own key,
// whose file is the one thing a scrub removes.
TEST_F(SiteStoreRocksDbTest, DeletedSessionLeavesNoReadableVersionOfItsSecrets) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  // Five versions of s1's snapshot, some flushed to table files by a reopen.
  for (uint64_t step = 1; step <= 3; ++step) {
    ASSERT_OK(store->PutSession(MakeSession("s1", Key(1), 100 + step), nullptr));
  }
  ASSERT_OK(store->PutSession(MakeSession("s2", Key(2), 200), nullptr));
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(path()));
  for (uint64_t step = 4; step <= 5; ++step) {
    ASSERT_OK(store->PutSession(MakeSession("s1", Key(1), 100 + step), nullptr));
  }
  for (uint64_t step = 1; step <= 5; ++step) {
    EXPECT_THAT(FilesHolding(path(), Secret(100 + step)), IsEmpty()) << "version " << step;
  }
  EXPECT_THAT(FilesHolding(path(), RecordMark(105)), ::testing::Not(IsEmpty()));  // stored
  EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(MakeSession("s1", Key(1), 105))));
  ASSERT_THAT(HeldKeys(path()), ::testing::SizeIs(2));

  ASSERT_OK(store->DeleteSession("s1"));
  // s1's key is gone, s2's stays with its session.
  ASSERT_THAT(HeldKeys(path()), ::testing::SizeIs(1));
  EXPECT_THAT(FilesHolding(path(), Secret(200)), IsEmpty());
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(path()));
  EXPECT_THAT(store->GetSession("s2"), IsOkAndHolds(EqualsProto(MakeSession("s2", Key(2), 200))));
  EXPECT_THAT(store->GetSession("s1"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SiteStoreRocksDbTest, EndedSessionLeavesNoReadableVersionOfItsSecrets) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  ASSERT_OK(store->PutSession(MakeSession("s1", Key(1), 301), nullptr));
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  ASSERT_OK(store->PutSession(Sent(MakeSession("s1", Key(1), 302)), &contribution));
  ASSERT_THAT(HeldKeys(path()), ::testing::SizeIs(1));
  const std::string key = HeldKeys(path())[0];

  v1::SiteSessionRecord completed = Sent(MakeSession("s1", Key(1)));
  completed.set_state(v1::SITE_SESSION_COMPLETED);
  completed.clear_machine();
  ASSERT_OK(store->PutSession(completed, nullptr));
  // The store's scrubber thread unlinks the key right after the write, off the caller's
  // path.
  EXPECT_TRUE(
      ::tessera::testing::Eventually([&] { return HeldKeys(path()).empty(); }, absl::Seconds(10)));
  EXPECT_THAT(HeldKeys(path()), IsEmpty());
  EXPECT_THAT(FilesHolding(path(), key), IsEmpty());
  EXPECT_THAT(FilesHolding(path(), Secret(301)), IsEmpty());
  EXPECT_THAT(FilesHolding(path(), Secret(302)), IsEmpty());
  // What left (the answers, the contribution) is kept.
  EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(completed)));
  EXPECT_THAT(store->GetContribution(Key(1)), IsOkAndHolds(EqualsProto(contribution)));
}

// The input a snapshot keeps apart is sealed like the snapshot (never in a file in
// plaintext), written by the write that carries it only, and unreadable once the session
// ended.
TEST_F(SiteStoreRocksDbTest, AnInputKeptApartIsSealedWrittenOnceAndScrubbedWithItsSession) {
  // An input of 64 KiB of incompressible bytes; the snapshot and record are a few hundred.
  std::string input;
  for (uint64_t part = 0; part < 683; ++part) input += Secret(10'000 + part);
  const auto log_bytes = [&] { return BytesOfFilesEndingWith(path(), ".log"); };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  v1::SiteSessionRecord first = MakeSession("s1", Key(1), 401);
  first.set_machine_input(input);
  const uint64_t before_first = log_bytes();
  ASSERT_OK(store->PutSession(first, nullptr));
  const uint64_t after_first = log_bytes();
  EXPECT_GT(after_first - before_first, input.size());
  for (uint64_t step = 2; step <= 4; ++step) {
    ASSERT_OK(store->PutSession(MakeSession("s1", Key(1), 400 + step), nullptr));
  }
  // Three later writes of the snapshot without its input: together a few KiB.
  EXPECT_LT(log_bytes() - after_first, 4096u);
  EXPECT_THAT(FilesHolding(path(), input.substr(0, 96)), IsEmpty());
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(path()));
  ASSERT_OK_AND_ASSIGN(v1::SiteSessionRecord read, store->GetSession("s1"));
  EXPECT_EQ(read.machine_input(), input);
  EXPECT_EQ(read.machine(), Secret(404));
  EXPECT_THAT(FilesHolding(path(), input.substr(0, 96)), IsEmpty());

  v1::SiteSessionRecord completed = Sent(MakeSession("s1", Key(1)));
  completed.set_state(v1::SITE_SESSION_COMPLETED);
  completed.clear_machine();
  ASSERT_OK(store->PutSession(completed, nullptr));
  ASSERT_OK(store->ScrubNow());
  EXPECT_THAT(HeldKeys(path()), IsEmpty());
  EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(completed)));
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(path()));
  EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(completed)));
}

// A session's model-sized values (its input, kept apart, and the masked input its record
// holds until the next step) stay in memory while the session runs and are flushed away
// after it ends, superseded or deleted: they never reach a table file. Written while the
// session ran, each was flushed into one and read back (the file check) mid-session: at
// d = 10^6 about a tenth of a site's CPU (docs/performance.md).
TEST_F(SiteStoreRocksDbTest, ASessionsModelSizedValuesNeverReachATableFile) {
  // 6 MiB of incompressible bytes each: more than the 4 MiB memtable of a small family.
  std::string input;
  std::string masked;
  for (uint64_t part = 0; input.size() < (size_t{6} << 20); ++part) {
    input += Secret(20'000'000 + part);
    masked += Secret(30'000'000 + part);
  }
  const auto table_bytes = [&] { return BytesOfFilesEndingWith(path(), ".sst"); };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  const uint64_t before = table_bytes();
  v1::SiteSessionRecord record = MakeSession("s1", Key(1), 501);
  record.set_machine_input(input);
  ASSERT_OK(store->PutSession(record, nullptr));
  record.clear_machine_input();
  // The masked input, then the next step's record without it.
  v1::StepAnswer* step = record.add_answers();
  step->set_step(v1::SECAGG_MASKED_INPUT);
  step->mutable_answer()->mutable_secagg()->mutable_masked_input()->set_masked_input(masked);
  ASSERT_OK(store->PutSession(record, nullptr));
  step->mutable_answer()->mutable_secagg()->mutable_masked_input()->clear_masked_input();
  step->set_sent_sha256(crypto::Sha256(masked));
  ASSERT_OK(store->PutSession(record, nullptr));
  ASSERT_OK_AND_ASSIGN(v1::SiteSessionRecord read, store->GetSession("s1"));
  EXPECT_EQ(read.machine_input(), input);

  v1::SiteSessionRecord completed = record;
  completed.set_state(v1::SITE_SESSION_COMPLETED);
  completed.clear_machine();
  ASSERT_OK(store->PutSession(completed, nullptr));
  ASSERT_OK(store->ScrubNow());
  // The flush the scrub started: a table file for each of the two families (the input's
  // deletion; the ended session's record).
  ASSERT_TRUE(::tessera::testing::Eventually(
      [&] { return FilesEndingWith(path(), ".sst").size() >= 2; }, absl::Seconds(30)));
  EXPECT_LT(table_bytes() - before, uint64_t{1} << 20)
      << "a session's input or masked input was written to a table file";
  store.reset();
  ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(path()));
  EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(completed)));
}

// A scrub rewrites the open sessions' snapshots, not the records the store retains: a site
// keeps an hour of sessions (their masked input answers included), and rewriting them all
// at each session's end made a session's cost grow with the sessions before it.
TEST_F(SiteStoreRocksDbTest, ScrubDoesNotRewriteTheRetainedSessionRecords) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  // A mark of each retained record, found verbatim in the table file that holds it
  // (incompressible bytes: the files are compressed).
  const auto marker = [](uint64_t secret) { return Secret(secret + 100000); };
  const auto end_session = [&](const std::string& label, uint64_t secret) {
    const std::string key = crypto::Sha256(label);
    ASSERT_OK(store->PutSession(MakeSession(label, key, secret), nullptr));
    v1::SiteSessionRecord ended = Sent(MakeSession(label, key));
    ended.set_state(v1::SITE_SESSION_COMPLETED);
    ended.clear_machine();
    ended.set_model_hash(marker(secret));
    ASSERT_OK(store->PutSession(ended, nullptr));
  };
  for (int i = 0; i < 20; ++i) end_session(absl::StrCat("r", i), 3000 + i);
  store.reset();  // the open's scrub flushes them to table files
  ASSERT_OK_AND_ASSIGN(store, OpenSiteStore(path()));
  const std::vector<std::string> holding = FilesHolding(path(), marker(3007));
  ASSERT_EQ(holding.size(), 1u);
  ASSERT_TRUE(absl::EndsWith(holding[0], ".sst")) << holding[0];

  end_session("r20", 3020);
  ASSERT_OK(store->ScrubNow());
  EXPECT_THAT(HeldKeys(path()), IsEmpty());  // scrubbed
  EXPECT_THAT(FilesHolding(path(), marker(3007)), ElementsAre(holding[0]))
      << "the retained records' table file was rewritten by the scrub";
  EXPECT_THAT(store->GetSession("r7"),
              IsOkAndHolds(::testing::Property(&v1::SiteSessionRecord::model_hash, marker(3007))));
}

// Opening a version 2 store rewrites none of its table files (only a version 1 store's
// open flushes and compacts, to scrub its plaintext snapshots): a site's start does not
// grow with the sessions it keeps.
TEST_F(SiteStoreRocksDbTest, OpeningAVersionTwoStoreRewritesNoTableFile) {
  Populate(path());
  { ASSERT_OK(OpenSiteStore(path())); }  // recovery leaves the log's records in tables
  const std::vector<std::string> tables = FilesEndingWith(path(), ".sst");
  ASSERT_THAT(tables, ::testing::Not(IsEmpty()));
  { ASSERT_OK(OpenSiteStore(path())); }
  EXPECT_EQ(FilesEndingWith(path(), ".sst"), tables);
}

// A store written before format version 2 kept each open session's snapshot inside its
// record: the read-only open reads it there, the first writable open moves it apart (and
// records version 2), and its old versions still leave every file when the session ends.
TEST_F(SiteStoreRocksDbTest, VersionOneStoreIsConvertedAndKeepsItsOpenSession) {
  Populate(path());
  const v1::SiteSessionRecord open = MakeSession("s2", Key(2), 2);
  PutRaw(path(), "sessions", "s2", open.SerializeAsString());  // the snapshot inline
  DeleteRaw(path(), "session_machines", "s2");
  PutRaw(path(), "meta", "format_version", std::string("\0\0\0\x01", 4));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> reader, OpenSiteStoreReadOnly(path()));
    EXPECT_THAT(reader->GetSession("s2"), IsOkAndHolds(EqualsProto(open)));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
    EXPECT_THAT(store->GetSession("s2"), IsOkAndHolds(EqualsProto(open)));
    ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteSessionRecord> all, store->ListSessions());
    ASSERT_EQ(all.size(), 2u);
    v1::SiteSessionRecord listed = open;
    listed.clear_machine();
    EXPECT_THAT(all[1], EqualsProto(listed));
  }
  WithRawDb(path(), [](rocksdb::DB* db, RawFamilies& families) {
    std::string value;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), families.at("meta"), "format_version", &value).ok());
    EXPECT_EQ(value, std::string("\0\0\0\x02", 4));
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), families.at("sessions"), "s2", &value).ok());
    v1::SiteSessionRecord record;
    ASSERT_TRUE(record.ParseFromString(value));
    EXPECT_TRUE(record.machine().empty());
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), families.at("session_machines"), "s2", &value).ok());
    EXPECT_EQ(value.size(), Secret(2).size() + 28);  // sealed: nonce, ciphertext, tag
  });
  // The open's scrub removed the plaintext versions; the sealed ones have their keys
  // (s1's and s2's: Populate leaves both open).
  EXPECT_THAT(FilesHolding(path(), Secret(2)), IsEmpty());
  EXPECT_THAT(HeldKeys(path()), ::testing::SizeIs(2));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  v1::SiteSessionRecord ended = Sent(MakeSession("s2", Key(2)));
  ended.set_state(v1::SITE_SESSION_ABORTED);
  ended.clear_machine();
  ASSERT_OK(store->PutSession(ended, nullptr));
  ASSERT_OK(store->ScrubNow());
  EXPECT_THAT(HeldKeys(path()), ::testing::SizeIs(1));  // s1's
  EXPECT_THAT(store->GetSession("s2"), IsOkAndHolds(EqualsProto(ended)));
}

// Every session's end flushes the store (the scrub), leaving the contributions family a
// small table file each time; they must not pile up (a site runs for years, and RocksDB keeps
// every table file open).
TEST_F(SiteStoreRocksDbTest, ContributionsStayInAFewFilesOverManySessions) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  constexpr int kSessions = 120;
  for (int i = 0; i < kSessions; ++i) {
    const std::string label = absl::StrCat("s", i);
    std::string key = crypto::Sha256(label);  // spread over the key space, as real keys are
    ASSERT_OK(store->PutSession(MakeSession(label, key, 1000 + i), nullptr));
    const v1::ContributionRecord contribution = MakeContribution(key, label);
    v1::SiteSessionRecord ended = Sent(MakeSession(label, key));
    ended.set_state(v1::SITE_SESSION_COMPLETED);
    ended.clear_machine();
    ASSERT_OK(store->PutSession(ended, &contribution));
  }
  int tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path())) {
    if (entry.path().extension() == ".sst") ++tables;
  }
  EXPECT_LE(tables, 24) << "table files after " << kSessions << " sessions";
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ContributionRecord> all, store->ListContributions());
  EXPECT_EQ(all.size(), static_cast<size_t>(kSessions));
}

}  // namespace
}  // namespace tessera::client::site_store_testing
