// What only the RocksDB site store promises: everything survives close, reopen and SIGKILL;
// its directory is 0700 and locked against a second process; a store replaced by an empty
// one is refused; a read-only open sees it while another process writes. (What reaches its
// files: site_store_files_test.cc.)

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

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/site_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_state.pb.h"
#include "tests/client/site_store_testing.h"
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
