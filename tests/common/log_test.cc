#include "common/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace tessera::common {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](const std::string& line) { lines_.push_back(line); });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogFormat(LogFormat::kLogfmt);
  }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, LogfmtIsTheDefault) {
  LogInfo("round_committed").With("task", "task-1").With("round", 3).With("why", "a b=\"c\"");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z level=info "
                                      "event=round_committed task=task-1 round=3 "
                                      "why=\"a b=\\\\\"c\\\\\"\""));
}

TEST_F(LogTest, JsonLinesAreOneParsableObjectPerLine) {
  SetLogFormat(LogFormat::kJson);
  LogWarning("tls_handshake_failed")
      .With("peer", "ipv4:127.0.0.1:4242")
      .With("error", "quote \" backslash \\ newline \n tab \t bell \x07 end")
      .With("count", uint64_t{7})
      .With("delta", int64_t{-2})
      .With("ratio", 0.5)
      .With("inf", 1.0 / 0.0)
      .With("ok", true);
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& line = lines_[0];
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, StartsWith("{\"ts\":\""));
  EXPECT_THAT(line, HasSubstr("\"level\":\"warning\",\"event\":\"tls_handshake_failed\""));
  EXPECT_THAT(line,
              HasSubstr("\"count\":7,\"delta\":-2,\"ratio\":0.5,\"inf\":\"inf\",\"ok\":true}"));
  EXPECT_THAT(line, HasSubstr("\\u0007"));
  // A real JSON parser reads it back, every value intact.
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok()) << line;
  EXPECT_EQ(parsed.fields().at("error").string_value(),
            "quote \" backslash \\ newline \n tab \t bell \x07 end");
  EXPECT_EQ(parsed.fields().at("peer").string_value(), "ipv4:127.0.0.1:4242");
  EXPECT_EQ(parsed.fields().at("count").number_value(), 7);
  EXPECT_TRUE(parsed.fields().at("ok").bool_value());
}

TEST(LogFormatTest, ParseNamesTheChoices) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("logfmt"), LogFormat::kLogfmt);
  absl::StatusOr<LogFormat> bad = ParseLogFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'xml' (logfmt or json)"));
}

TEST(LogFileTest, AppendsAndReopensAfterRotation) {
  tessera::testing::TempDir dir;
  const std::string path = dir.File("daemon.log");
  tessera::testing::WriteTestFile(path, "earlier line\n");
  ASSERT_TRUE(ConfigureLogging("json", path).ok());
  LogInfo("first").With("n", 1);
  // logrotate's create mode: the file moves away, a SIGHUP asks for a reopen.
  ASSERT_EQ(std::rename(path.c_str(), dir.File("daemon.log.1").c_str()), 0);
  LogInfo("second").With("n", 2);  // still into the moved file
  ASSERT_TRUE(ReopenLogFile().ok());
  LogInfo("third").With("n", 3);
  SetLogFormat(LogFormat::kLogfmt);
  ASSERT_TRUE(SetLogFile("").ok());  // back to stderr

  const std::string old_file = ReadAll(dir.File("daemon.log.1"));
  EXPECT_THAT(old_file, StartsWith("earlier line\n{\"ts\""));
  EXPECT_THAT(old_file, HasSubstr("\"event\":\"first\""));
  EXPECT_THAT(old_file, HasSubstr("\"event\":\"second\""));
  const std::string new_file = ReadAll(path);
  EXPECT_THAT(new_file, HasSubstr("\"event\":\"third\""));
  EXPECT_THAT(new_file, Not(HasSubstr("second")));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(LogFileTest, AnUnwritablePathIsNamed) {
  absl::Status st = SetLogFile("/nonexistent-dir/x.log");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("/nonexistent-dir/x.log"));
  EXPECT_FALSE(ConfigureLogging("yaml", "").ok());
}

TEST(JournalTest, RecognisesTheStreamJournalStreamNames) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fds[1], &st), 0);
  const std::string mine = absl::StrCat(st.st_dev, ":", st.st_ino);
  EXPECT_TRUE(IsJournalStream(mine.c_str(), fds[1]));
  EXPECT_FALSE(IsJournalStream(nullptr, fds[1]));
  EXPECT_FALSE(IsJournalStream(absl::StrCat(st.st_dev, ":", st.st_ino + 1).c_str(), fds[1]));
  EXPECT_FALSE(IsJournalStream("garbage", fds[1]));
  ::close(fds[0]);
  ::close(fds[1]);
}

// In a fresh process (the journal check is made once per process): stderr is a pipe that
// $JOURNAL_STREAM names, as systemd sets it up.
int LogToFakeJournal() {
  int fds[2];
  if (::pipe(fds) != 0) return 10;
  if (::dup2(fds[1], STDERR_FILENO) < 0) return 11;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return 12;
  ::setenv("JOURNAL_STREAM", absl::StrCat(st.st_dev, ":", st.st_ino).c_str(), 1);
  LogWarning("disk_low").With("free_mb", 12);
  char buf[256] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof(buf) - 1);
  if (n <= 0) return 13;
  // The level as a syslog priority, and no timestamp (the journal keeps its own).
  return std::string(buf, static_cast<size_t>(n)) == "<4>level=warning event=disk_low free_mb=12\n"
             ? 0
             : 14;
}

TEST(JournalDeathTest, UnderTheJournalLinesCarryAPriorityAndNoTimestamp) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(LogToFakeJournal()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace tessera::common
