// End-to-end: the site's own commands. `tessera-client hash TASK_FILE` prints, offline, the
// spec hash the coordinator logs as `spec_sha256` when the file is submitted; `tessera-client
// privacy` shows the site's privacy budget per dataset from its store, while the daemon runs.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// The value of `key=` on the coordinator's log line of event `event` for `task`; "" if none.
std::string LoggedField(const std::string& log, const std::string& event, const std::string& task,
                        const std::string& key) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, "event=" + event) ||
        !absl::StrContains(line, " task=" + task + " ")) {
      continue;
    }
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&field, key + "=")) return std::string(field);
    }
  }
  return "";
}

class E2eSiteCliTest : public FederationTest {};

TEST_F(E2eSiteCliTest, HashOfATaskFileIsTheCoordinatorsSpecSha256) {
  ASSERT_OK(MakeTestPki({}));
  ASSERT_OK(StartCoordinator());
  // A file with every default left out, one with ranges of features, and a query.
  for (const std::string example :
       {"breast_cancer_logistic", "digits_softmax", "diabetes_query_dp"}) {
    const std::string path = SourcePath("deploy/examples/" + example + ".textproto");
    ASSERT_OK_AND_ASSIGN(CommandResult hashed, RunCommand({ClientBinary(), "hash", path}));
    ASSERT_EQ(hashed.exit_code(), 0) << hashed.err;
    EXPECT_THAT(hashed.out, MatchesRegex("[0-9a-f]{64}\n"));
    ASSERT_OK_AND_ASSIGN(CommandResult submitted, Console({"tasks", "submit"}, {path}));
    ASSERT_EQ(submitted.exit_code(), 0) << submitted.err;
    const std::string task(absl::StripAsciiWhitespace(submitted.out));
    const std::string logged = LoggedField(ReadFileOrEmpty(coordinator()->log_path()),
                                           "task_submitted", task, "spec_sha256");
    EXPECT_EQ(logged + "\n", hashed.out) << example;
  }
}

TEST_F(E2eSiteCliTest, HashOfABadTaskFileNamesTheField) {
  const std::string path = temp().File("bad.textproto");
  ASSERT_OK(common::WriteFileAtomic(path, "name: \"x\"\nrounds: 100000\n"));
  ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({ClientBinary(), "hash", path}));
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_THAT(r.err, HasSubstr(path));
  EXPECT_THAT(r.out, IsEmpty());
  ASSERT_OK_AND_ASSIGN(CommandResult help, RunCommand({ClientBinary(), "hash", "--help"}));
  EXPECT_EQ(help.exit_code(), 0);
  EXPECT_THAT(help.out, StartsWith("usage: tessera-client hash TASK_FILE"));
}

}  // namespace
}  // namespace tessera::e2e
