// End-to-end: what an operator sees from the command line when something is wrong — bad
// task files, bad invocations, a private key others can read — and that a refused task
// leaves the coordinator's store as it was.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// 1-based number of the line of `text` that contains `needle`; 0 if none does.
int LineOf(const std::string& text, const std::string& needle) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(needle) != std::string::npos) return static_cast<int>(i) + 1;
  }
  return 0;
}

// One line: a single '\n', at the end.
bool IsOneLine(const std::string& s) {
  return !s.empty() && s.back() == '\n' && std::count(s.begin(), s.end(), '\n') == 1;
}

// (e) Task files with a wrong field, refused with the field's name and where it is.
class E2eTaskValidationTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeTestPki({}));
    ASSERT_OK(StartCoordinator());
  }

  // The example task with `from` replaced by `to`, written as `name`; sets the line of the
  // change in `line`.
  std::string WriteTaskVariant(const std::string& name, const std::string& from,
                               const std::string& to, int* line) {
    const std::string example = ReadFileOrEmpty(ExampleTaskPath());
    EXPECT_THAT(example, HasSubstr(from));
    const std::string text = absl::StrReplaceAll(example, {{from, to}});
    *line = LineOf(text, to);
    EXPECT_GT(*line, 0);
    std::string path = temp().File(name);
    EXPECT_OK(common::WriteFileAtomic(path, text));
    return path;
  }

  // No task, through the console (JSON) and in the store after the coordinator stopped.
  void ExpectNoTaskStored() {
    ASSERT_OK_AND_ASSIGN(CommandResult listed, Console({"tasks", "list"}, {"--json"}));
    ASSERT_EQ(listed.exit_code(), 0) << listed.err;
    v1::ListTasksResponse response;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(listed.out, &response).ok())
        << listed.out;
    EXPECT_THAT(response.tasks(), IsEmpty()) << listed.out;
    ASSERT_OK(StopCoordinator());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store, OpenStore());
    ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> stored, store->ListTasks());
    EXPECT_THAT(stored, IsEmpty());
  }
};

TEST_F(E2eTaskValidationTest, UnknownFieldIsRefusedWithItsNameAndLine) {
  int line = 0;
  const std::string path =
      WriteTaskVariant("typo.textproto", "learning_rate: 0.3", "learnin_rate: 0.3", &line);
  ASSERT_OK_AND_ASSIGN(CommandResult r, Console({"tasks", "submit"}, {path}));
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_TRUE(IsOneLine(r.err)) << r.err;
  EXPECT_THAT(r.err,
              AllOf(HasSubstr(absl::StrCat(path, ":", line, ":")), HasSubstr("learnin_rate")));
  ExpectNoTaskStored();
}

TEST_F(E2eTaskValidationTest, BadValueIsRefusedWithItsFieldPathAndLine) {
  int line = 0;
  const std::string path =
      WriteTaskVariant("negative.textproto", "learning_rate: 0.3", "learning_rate: -1", &line);
  ASSERT_OK_AND_ASSIGN(CommandResult r, Console({"tasks", "submit"}, {path}));
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_TRUE(IsOneLine(r.err)) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(path, ":", line, ": training.learning_rate")));
  ExpectNoTaskStored();
}

// The coordinator validates too: a console that skipped the check changes nothing.
TEST_F(E2eTaskValidationTest, CoordinatorRefusesBadSpecWithInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.mutable_training()->set_learning_rate(-1);
  absl::StatusOr<std::string> id = SubmitTask(spec);
  EXPECT_THAT(id, testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("training.learning_rate")));
  ExpectNoTaskStored();
}

// Cheap checks of the programs' command lines.
class E2eCliTest : public FederationTest {};

TEST_F(E2eCliTest, ConsoleWithoutArgumentsPrintsUsageAndFails) {
  ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({ConsoleBinary()}));
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_THAT(r.err, StartsWith("usage: tessera "));
  EXPECT_THAT(r.out, IsEmpty());
}

TEST_F(E2eCliTest, TasksShowHelpPrintsItsFlags) {
  ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({ConsoleBinary(), "tasks", "show", "--help"}));
  EXPECT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_THAT(r.out, AllOf(StartsWith("usage: tessera tasks show"), HasSubstr("--metric"),
                           HasSubstr("--json"), HasSubstr("--config")));
}

// Every program prints the project's version (CMakeLists.txt) and exits 0.
TEST_F(E2eCliTest, EveryProgramPrintsItsVersion) {
  for (const auto& [binary, name] : std::vector<std::pair<std::string, std::string>>{
           {ConsoleBinary(), "tessera"},
           {ClientBinary(), "tessera-client"},
           {CoordinatorBinary(), "tessera-coordinator"}}) {
    ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({binary, "--version"}));
    EXPECT_EQ(r.exit_code(), 0) << name << ": " << r.err;
    EXPECT_EQ(r.out, absl::StrCat(name, " ", TESSERA_PROJECT_VERSION, "\n"));
  }
}

// `tessera GROUP --help` lists the group's subcommands and exits 0 (it was an error).
TEST_F(E2eCliTest, ConsoleGroupHelpListsItsSubcommands) {
  const std::map<std::string, std::vector<std::string>> groups = {
      {"tasks", {"submit", "list", "show", "wait", "cancel", "provenance"}},
      {"pki", {"init", "keygen", "sign"}},
      {"clients", {"list"}}};
  for (const auto& [group, subcommands] : groups) {
    ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({ConsoleBinary(), group, "--help"}));
    EXPECT_EQ(r.exit_code(), 0) << group << ": " << r.err;
    EXPECT_THAT(r.out, StartsWith("usage: tessera " + group + " SUBCOMMAND"));
    for (const std::string& sub : subcommands) {
      EXPECT_THAT(r.out, HasSubstr(absl::StrCat("  ", group, " ", sub))) << group;
    }
  }
}

// `tessera pki sign` never replaces a certificate, and a coordinator certificate must name
// the addresses clients connect to.
TEST_F(E2eCliTest, PkiSignNeverOverwritesAndWantsSansForACoordinator) {
  const std::string ca_dir = temp().File("ca");
  const std::string dir = temp().File("node");
  ASSERT_OK_AND_ASSIGN(CommandResult init, RunCommand({ConsoleBinary(), "pki", "init", "--dir",
                                                       ca_dir, "--federation", "cli"}));
  ASSERT_EQ(init.exit_code(), 0) << init.err;
  ASSERT_OK_AND_ASSIGN(CommandResult keygen, RunCommand({ConsoleBinary(), "pki", "keygen", "--name",
                                                         "coordinator", "--out-dir", dir}));
  ASSERT_EQ(keygen.exit_code(), 0) << keygen.err;
  const std::string csr = dir + "/coordinator.csr";
  const std::string crt = dir + "/coordinator.crt";

  ASSERT_OK_AND_ASSIGN(CommandResult no_san,
                       RunCommand({ConsoleBinary(), "pki", "sign", "--ca-dir", ca_dir, "--csr", csr,
                                   "--role", "coordinator"}));
  EXPECT_EQ(no_san.exit_code(), 2) << no_san.err;
  EXPECT_TRUE(IsOneLine(no_san.err)) << no_san.err;
  EXPECT_THAT(no_san.err, HasSubstr("needs --san"));
  EXPECT_FALSE(common::PathExists(crt));

  const std::vector<std::string> sign = {ConsoleBinary(), "pki",   "sign",     "--ca-dir",
                                         ca_dir,          "--csr", csr,        "--role",
                                         "coordinator",   "--san", "127.0.0.1"};
  ASSERT_OK_AND_ASSIGN(CommandResult first, RunCommand(sign));
  ASSERT_EQ(first.exit_code(), 0) << first.err;
  ASSERT_OK_AND_ASSIGN(std::string issued, common::ReadFile(crt));

  ASSERT_OK_AND_ASSIGN(CommandResult again, RunCommand(sign));
  EXPECT_NE(again.exit_code(), 0);
  EXPECT_TRUE(IsOneLine(again.err)) << again.err;
  EXPECT_THAT(again.err, AllOf(HasSubstr(crt), HasSubstr("refusing to overwrite")));
  ASSERT_OK_AND_ASSIGN(std::string after, common::ReadFile(crt));
  EXPECT_EQ(after, issued);
}

TEST_F(E2eCliTest, ClientRunWithMissingConfigNamesTheFile) {
  const std::string missing = temp().File("missing.textproto");
  ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({ClientBinary(), "run", "--config", missing}));
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_TRUE(IsOneLine(r.err)) << r.err;
  EXPECT_THAT(r.err, HasSubstr(missing));
}

TEST_F(E2eCliTest, CoordinatorRefusesGroupReadableKey) {
  ASSERT_OK(MakeTestPki({}));
  const std::string key = coordinator_tls().key();
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  v1::CoordinatorConfig config;
  config.set_listen_address("127.0.0.1:0");
  config.set_data_dir(temp().File("db"));
  *config.mutable_tls() = coordinator_tls();
  const std::string config_path = temp().File("coordinator.textproto");
  ASSERT_OK(common::WriteFileAtomic(config_path, common::ToTextProto(config)));
  const std::string ready = temp().File("ready");

  ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({CoordinatorBinary(), "--config", config_path,
                                                    "--ready-file", ready},
                                                   absl::Seconds(60)));
  EXPECT_TRUE(r.status.exited) << r.status.ToString();
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_TRUE(IsOneLine(r.err)) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr(key), HasSubstr("0644")));
  EXPECT_FALSE(common::PathExists(ready));
}

// The ready file's folder (/run/tessera in docs/operations.md) need not exist: the
// coordinator creates it, as systemd's RuntimeDirectory would.
TEST_F(E2eCliTest, CoordinatorCreatesTheFolderOfItsReadyFile) {
  ASSERT_OK(MakeTestPki({}));
  v1::CoordinatorConfig config;
  config.set_listen_address("127.0.0.1:0");
  config.set_data_dir(temp().File("db"));
  *config.mutable_tls() = coordinator_tls();
  const std::string ready = temp().File("run/tessera/ready");
  config.set_ready_file(ready);
  const std::string config_path = temp().File("coordinator.textproto");
  ASSERT_OK(common::WriteFileAtomic(config_path, common::ToTextProto(config)));
  ASSERT_FALSE(common::PathExists(temp().File("run")));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Process> coordinator,
                       Process::Start({CoordinatorBinary(), "--config", config_path},
                                      temp().File("coordinator.log")));
  ASSERT_OK_AND_ASSIGN(std::string bound, WaitForFile(ready, *coordinator, absl::Seconds(60)));
  EXPECT_THAT(bound, StartsWith("127.0.0.1:"));
  EXPECT_TRUE(coordinator->Terminate(absl::Seconds(30)).Succeeded()) << coordinator->LogTail();
}

}  // namespace
}  // namespace tessera::e2e
