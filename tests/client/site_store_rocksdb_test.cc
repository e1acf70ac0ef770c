// What only the RocksDB site store promises: everything survives close, reopen and SIGKILL;
// its directory is 0700 and locked against a second process; no version of a session's
// secrets stays in any file once the session ends; a store replaced by an empty one is
// refused.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace tessera::client::site_store_testing {
namespace {

namespace fs = std::filesystem;

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST_F(SiteStoreRocksDbTest, EverythingSurvivesCloseAndReopen) {
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
    ASSERT_OK(store->PutSession(Sent(MakeSession("s1", Key(1), 1)), &contribution));
    ASSERT_OK(store->PutSession(MakeSession("s2", Key(2), 2), nullptr));
    ASSERT_OK(store->PutSession(MakeSession("s3", Key(3), 3), nullptr));
    ASSERT_OK(store->DeleteSession("s3"));
  }
  for (int reopen = 0; reopen < 2; ++reopen) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
    EXPECT_THAT(store->GetSession("s1"),
                IsOkAndHolds(EqualsProto(Sent(MakeSession("s1", Key(1), 1)))));
    EXPECT_THAT(store->GetSession("s2"), IsOkAndHolds(EqualsProto(MakeSession("s2", Key(2), 2))));
    EXPECT_THAT(store->GetSession("s3"), StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(store->ListContributions(), IsOkAndHolds(ElementsAre(EqualsProto(contribution))));
    // The once-only rule holds across the restart.
    v1::ContributionRecord again = MakeContribution(Key(1), "s4");
    EXPECT_THAT(store->PutSession(Sent(MakeSession("s4", Key(1))), &again),
                StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("\"s1\"")));
  }
}

TEST_F(SiteStoreRocksDbTest, CreatesItsDirectoryWithMode0700) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  EXPECT_EQ(Mode(path()), "0700");
}

TEST_F(SiteStoreRocksDbTest, CreatesItsDirectoryWithMode0700WhateverTheUmask) {
  ASSERT_EQ(::mkdir(dir_.File("data").c_str(), 0700), 0);
  // mkdir(0700) under this umask would give 0500, under 0 it gives 0700: never more.
  const mode_t saved = ::umask(0277);
  absl::StatusOr<std::unique_ptr<SiteStore>> store = OpenSiteStore(path());
  ::umask(saved);
  ASSERT_OK(store);
  EXPECT_EQ(Mode(path()), "0700");
}

TEST_F(SiteStoreRocksDbTest, DirectoryGroupOrOthersCanAccessIsRefused) {
  ASSERT_EQ(::mkdir(path().substr(0, path().rfind('/')).c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(path().c_str(), 0700), 0);
  for (mode_t mode : {0755, 0750, 0705, 0770, 0707, 0710, 0701, 0740, 0704, 0720, 0702, 0777}) {
    ASSERT_EQ(::chmod(path().c_str(), mode), 0);
    const std::string octal = absl::StrFormat("%04o", mode);
    EXPECT_THAT(OpenSiteStore(path()),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr(path()), HasSubstr("mode " + octal),
                               HasSubstr("chmod 700 " + path()), HasSubstr("secrets"))))
        << octal;
  }
  // Refused before anything was written into it.
  EXPECT_TRUE(fs::is_empty(path()));
  ASSERT_EQ(::chmod(path().c_str(), 0700), 0);
  EXPECT_OK(OpenSiteStore(path()));
}

TEST_F(SiteStoreRocksDbTest, DirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  ASSERT_EQ(::mkdir(dir_.File("theirs").c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir_.File("theirs").c_str(), 4242, 4242), 0);
  EXPECT_THAT(OpenSiteStore(dir_.File("theirs")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(dir_.File("theirs")), HasSubstr("uid 4242"))));
}

TEST_F(SiteStoreRocksDbTest, PathThatIsNotADirectoryIsRefused) {
  tessera::testing::WriteTestFile(dir_.File("file"), "x");
  EXPECT_THAT(OpenSiteStore(dir_.File("file")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a directory")));
}

TEST_F(SiteStoreRocksDbTest, SecondOpenInThisProcessIsFailedPrecondition) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> first, OpenSiteStore(path()));
  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path()), HasSubstr("in use by another process"))));
  ASSERT_OK(first->PutSession(MakeSession("s1", Key(1)), nullptr));
  first.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> again, OpenSiteStore(path()));
  EXPECT_OK(again->GetSession("s1"));
}

// ---- child processes: the test binary itself, run with a filter and a few variables.

constexpr char kChildDirEnv[] = "TESSERA_SITE_STORE_TEST_DIR";
constexpr char kChildReadyFdEnv[] = "TESSERA_SITE_STORE_TEST_READY_FD";
constexpr char kChildReleaseFdEnv[] = "TESSERA_SITE_STORE_TEST_RELEASE_FD";

// Starts this binary running only `test` (a DISABLED_ one) with `env` added; its stdout
// goes to /dev/null. Returns the child's pid, or -1.
pid_t SpawnSelf(const std::string& test, const std::vector<std::string>& env) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  std::string filter = "--gtest_filter=" + test;
  std::string also = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv = {self, filter.data(), also.data(), nullptr};
  std::vector<std::string> env_strings = env;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  if (posix_spawn_file_actions_init(&actions) != 0) return -1;
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t child = -1;
  const int spawned = posix_spawn(&child, self, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return spawned == 0 ? child : -1;
}

// A child (SpawnSelf of `test`) that works on the store in `dir`, reports whether it
// succeeded over the ready pipe and holds the store until Release closes the release pipe.
class HeldStore {
 public:
  HeldStore(const std::string& test, const std::string& dir) {
    // The parent's ends are close-on-exec; the child's ends are inherited.
    int ready[2];
    int release[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0 ||
        ::fcntl(ready[1], F_SETFD, 0) != 0 || ::fcntl(release[0], F_SETFD, 0) != 0) {
      return;
    }
    pid_ = SpawnSelf(
        test, {absl::StrCat(kChildDirEnv, "=", dir), absl::StrCat(kChildReadyFdEnv, "=", ready[1]),
               absl::StrCat(kChildReleaseFdEnv, "=", release[0])});
    ::close(ready[1]);
    ::close(release[0]);
    release_ = release[1];
    char result = 0;
    ready_ = pid_ > 0 && ::read(ready[0], &result, 1) == 1 && result == '1';
    ::close(ready[0]);
  }
  ~HeldStore() { Release(); }

  // True if the child started and did its work.
  bool ready() const { return ready_; }

  // Lets the child go and waits for it; true if it exited with status 0.
  bool Release() {
    if (release_ >= 0) ::close(release_);
    release_ = -1;
    if (pid_ <= 0) return false;
    int status = 0;
    const bool waited = ::waitpid(pid_, &status, 0) == pid_;
    pid_ = -1;
    return waited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  bool ready_ = false;
};

// The child side of HeldStore: runs `work` on the store in its directory, reports the
// result and holds on until released.
void HoldForParent(const std::function<bool(const char* dir)>& work) {
  const char* dir = std::getenv(kChildDirEnv);
  const char* ready = std::getenv(kChildReadyFdEnv);
  const char* release = std::getenv(kChildReleaseFdEnv);
  if (dir == nullptr || ready == nullptr || release == nullptr) GTEST_SKIP() << "child only";
  const char result = work(dir) ? '1' : '0';
  ASSERT_EQ(::write(std::atoi(ready), &result, 1), 1);
  char unused;
  while (::read(std::atoi(release), &unused, 1) > 0) {
  }
}

// Run only as the child of SecondProcessIsRefusedWhileTheFirstHoldsTheStore: opens the
// store, says so, and holds it until the parent closes its end of the release pipe.
TEST(SiteStoreChild, DISABLED_HoldOpenUntilReleased) {
  std::unique_ptr<SiteStore> store;
  // The parent asserts on what the child reports (its ready byte and its exit status).
  ASSERT_NO_FATAL_FAILURE(HoldForParent([&](const char* dir) {
    absl::StatusOr<std::unique_ptr<SiteStore>> opened = OpenSiteStore(dir);
    if (opened.ok()) store = *std::move(opened);
    return store != nullptr;
  }));
}

TEST_F(SiteStoreRocksDbTest, SecondProcessIsRefusedWhileTheFirstHoldsTheStore) {
  Populate(path());
  HeldStore child("SiteStoreChild.DISABLED_HoldOpenUntilReleased", path());
  ASSERT_TRUE(child.ready()) << "the child could not open the store";

  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path()), HasSubstr("in use by another process"))));

  EXPECT_TRUE(child.Release()) << "the child did not exit cleanly";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  EXPECT_OK(store->GetSession("s1"));
}

// Run only as the child of SessionAndContributionSurviveSigkillRightAfterPutSession:
// records the steps of a session up to its masked input, then dies without closing
// anything, as if killed between "recorded" and "sent".
TEST(SiteStoreChild, DISABLED_PutSessionThenSigkill) {
  const char* dir = std::getenv(kChildDirEnv);
  if (dir == nullptr) GTEST_SKIP() << "child only";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(dir));
  ASSERT_OK(store->PutSession(MakeSession("s1", Key(1)), nullptr));
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  ASSERT_OK(store->PutSession(Sent(MakeSession("s1", Key(1))), &contribution));
  ::raise(SIGKILL);
}

TEST_F(SiteStoreRocksDbTest, SessionAndContributionSurviveSigkillRightAfterPutSession) {
  const pid_t child = SpawnSelf("SiteStoreChild.DISABLED_PutSessionThenSigkill",
                                {absl::StrCat(kChildDirEnv, "=", path())});
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Killed, not exited: the child got through its writes and never closed the store.
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
  EXPECT_THAT(store->GetSession("s1"), IsOkAndHolds(EqualsProto(Sent(MakeSession("s1", Key(1))))));
  EXPECT_THAT(store->GetContribution(Key(1)),
              IsOkAndHolds(EqualsProto(MakeContribution(Key(1), "s1"))));
  v1::ContributionRecord again = MakeContribution(Key(1), "s2");
  EXPECT_THAT(store->PutSession(Sent(MakeSession("s2", Key(1))), &again),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

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
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && !HeldKeys(path()).empty()) {
    absl::SleepFor(absl::Milliseconds(5));
  }
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

// The store's files replaced by an empty store (RocksDB's files deleted, the directory kept):
// the high-water mark beside them says a masked input was recorded at a later write than
// the new store has, and the open refuses rather than forget it.
TEST_F(SiteStoreRocksDbTest, StoreReplacedByAnEmptyOneIsDataLoss) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(path()));
    const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
    ASSERT_OK(store->PutSession(Sent(MakeSession("s1", Key(1))), &contribution));
  }
  for (const auto& entry : std::filesystem::directory_iterator(path())) {
    if (entry.path().filename() != "CONTRIBUTED_UP_TO") std::filesystem::remove_all(entry.path());
  }
  EXPECT_THAT(OpenSiteStore(path()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("recorded a masked input")));
}

// ---- read-only

TEST_F(SiteStoreRocksDbTest, ReadOnlyOpenSeesTheRecordsWhileTheStoreIsOpenForWriting) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> writer, OpenSiteStore(path()));
  const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
  ASSERT_OK(writer->PutSession(Sent(MakeSession("s1", Key(1), 1)), &contribution));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> reader, OpenSiteStoreReadOnly(path()));
    EXPECT_THAT(reader->GetSession("s1"),
                IsOkAndHolds(EqualsProto(Sent(MakeSession("s1", Key(1), 1)))));
    EXPECT_THAT(reader->ListContributions(), IsOkAndHolds(ElementsAre(EqualsProto(contribution))));
    // It writes nothing.
    EXPECT_THAT(reader->PutSession(MakeSession("s2", Key(2)), nullptr),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("read-only")));
    EXPECT_THAT(reader->DeleteSession("s1"), StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(reader->ScrubNow(), StatusIs(absl::StatusCode::kFailedPrecondition));
    // The writer goes on; the reader shows the store as it was when it opened.
    ASSERT_OK(writer->PutSession(MakeSession("s2", Key(2), 2), nullptr));
    EXPECT_THAT(reader->GetSession("s2"), StatusIs(absl::StatusCode::kNotFound));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> again, OpenSiteStoreReadOnly(path()));
  EXPECT_THAT(again->ListSessions(), IsOkAndHolds(::testing::SizeIs(2)));
  EXPECT_OK(writer->GetSession("s1"));
}

TEST_F(SiteStoreRocksDbTest, ReadOnlyOpenOfNoStoreIsNotFoundAndCreatesNothing) {
  EXPECT_THAT(OpenSiteStoreReadOnly(path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path())));
  EXPECT_FALSE(fs::exists(path()));
  ASSERT_TRUE(fs::create_directories(path()));
  fs::permissions(path(), fs::perms::owner_all, fs::perm_options::replace);
  EXPECT_THAT(OpenSiteStoreReadOnly(path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("holds no store")));
  EXPECT_TRUE(fs::is_empty(path()));
}

TEST_F(SiteStoreRocksDbTest, ReadOnlyOpenRefusesADamagedOrMissingTableFile) {
  const std::string original = dir_.File("original");
  Populate(original);
  { ASSERT_OK(OpenSiteStore(original)); }  // flushes the log into table files
  const std::vector<std::string> tables = FilesEndingWith(original, ".sst");
  ASSERT_FALSE(tables.empty());
  ExpectEveryTableFlipIsDataLoss(
      original, [](const std::string& copy) { return OpenSiteStoreReadOnly(copy).status(); });
  for (const std::string& table : tables) {
    const std::string name = fs::path(table).filename().string();
    const std::string copy = CopyOf(original);
    fs::remove(absl::StrCat(copy, "/", name));
    EXPECT_THAT(OpenSiteStoreReadOnly(copy), ::testing::Not(::tessera::testing::IsOk()))
        << name << " deleted";
  }
}

TEST_F(SiteStoreRocksDbTest, ReadOnlyOpenChangesNoFileOfTheStore) {
  Populate(path());
  auto listing = [&] {
    std::map<std::string, std::string> files;  // name -> contents
    for (const auto& e : fs::recursive_directory_iterator(path())) {
      if (e.is_regular_file()) files[fs::relative(e.path(), path())] = ReadAll(e.path().string());
    }
    return files;
  };
  const std::map<std::string, std::string> before = listing();
  { ASSERT_OK(OpenSiteStoreReadOnly(path())); }
  EXPECT_TRUE(listing() == before) << "a file of the store was added, removed or changed";
}

// Run only as the child of ReadOnlyOpenWorksWhileAnotherProcessWrites: opens the store,
// writes session "child" (a masked input for Key(7)), says so, and holds the store until
// released.
TEST(SiteStoreChild, DISABLED_WriteAndHoldUntilReleased) {
  std::unique_ptr<SiteStore> store;
  // The parent asserts on what the child reports (its ready byte and its exit status).
  ASSERT_NO_FATAL_FAILURE(HoldForParent([&](const char* dir) {
    absl::StatusOr<std::unique_ptr<SiteStore>> opened = OpenSiteStore(dir);
    if (!opened.ok()) return false;
    store = *std::move(opened);
    const v1::ContributionRecord contribution = MakeContribution(Key(7), "child");
    return store->PutSession(Sent(MakeSession("child", Key(7))), &contribution).ok();
  }));
}

TEST_F(SiteStoreRocksDbTest, ReadOnlyOpenWorksWhileAnotherProcessWrites) {
  Populate(path());
  HeldStore child("SiteStoreChild.DISABLED_WriteAndHoldUntilReleased", path());
  ASSERT_TRUE(child.ready()) << "the child could not write the store";

  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> reader, OpenSiteStoreReadOnly(path()));
    // What the child wrote is still only in its write-ahead log: the reader replays it.
    EXPECT_THAT(reader->GetContribution(Key(7)),
                IsOkAndHolds(EqualsProto(MakeContribution(Key(7), "child"))));
    EXPECT_OK(reader->GetSession("s1"));
  }
  EXPECT_TRUE(child.Release()) << "the child did not exit cleanly";
}

}  // namespace
}  // namespace tessera::client::site_store_testing
