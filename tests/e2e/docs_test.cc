// End-to-end: the documentation's command blocks, run as written ("docs that run").
//
// The ```sh blocks are read from the markdown at test time, so an edit of the docs is
// tested as it is written. Every command runs with bash, in order; a failure names the
// file, the block, the line, the command as written and as run, and its output.
//
// What cannot run on a test machine is rewritten, and only that:
// - Building: `bash deploy/install-deps.sh` (apt-get as root; CI runs it in
//   deploy/test.sh) and the `cmake` / `ninja` lines are not run: the test uses the programs
//   CMake built for it (TESSERA_*_BIN). The build folder the docs name (`$PWD/build/...`,
//   `build/console/tessera`) is mapped to CMake's, so the guide's own
//   `export PATH=...` puts the programs' folders first on PATH; the test checks that
//   `tessera`, `tessera-coordinator` and `tessera-client` then resolve to those programs
//   (and that the quick start's `build/console/tessera` is the console CMake built).
// - docs/operations.md: the machines, hosts, files that travel between machines, config
//   files, institutions, daemons and the cancelled task, as operations_guide.h says.
// - docs/research.md: "On a federation" points at docs/operations.md for one; the test
//   makes it directly (a PKI from TestPki, a coordinator on a port the OS chooses and
//   kDocSites site daemons holding their share of every dataset the guide's queries ask).
//   Absolute machine paths (/etc, /var/lib, /run, /root, /data) are mapped into a
//   temporary root, *.example.org names onto 127.0.0.1 and "host:port" onto the
//   coordinator's address; the console config is the researcher's, written by the test.
//
// README.md's block (`bash deploy/demo.sh`, `bash deploy/test.sh`) is not run here: CI runs
// deploy/test.sh itself (.ci/run), and demo.sh, which installs packages as root and builds
// everything, is run by hand. EveryShellBlockIsRunByATest keeps it at those two.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/task.pb.h"
#include "tests/e2e/doc_runner.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/operations_guide.h"
#include "tests/e2e/process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::e2e {
namespace {

namespace fs = std::filesystem;

// The programs' folders first, then the test's own PATH.
std::string ProgramsPath() {
  const char* path = std::getenv("PATH");
  return absl::StrCat(fs::path(ConsoleBinary()).parent_path().string(), ":",
                      fs::path(CoordinatorBinary()).parent_path().string(), ":",
                      fs::path(ClientBinary()).parent_path().string(), ":",
                      path != nullptr ? path : "/usr/bin:/bin");
}

class E2eDocsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Each daemon must stop cleanly on SIGTERM; the logs of all when the test failed.
    DocDaemons& daemons = walk_ != nullptr ? walk_->daemons() : daemons_;
    for (const std::string& failure : daemons.StopAll()) ADD_FAILURE() << failure;
    if (HasFailure()) daemons.PrintLogs();
  }

  // --- docs/research.md: the federation the guide assumes ---------------------------------

  // The researcher's shell: HOME, TMPDIR, the programs on PATH, the console config at
  // `console_config`; its work/ is a clone (deploy/ is the source tree's).
  absl::Status OpenResearcherSession(const std::string& console_config) {
    for (const char* dir : {"tmp", "home", "work"}) {
      RETURN_IF_ERROR(common::MakeDirectories(temp_.File(dir), 0755));
    }
    ASSIGN_OR_RETURN(session_, ShellSession::Create(temp_.File("shell"),
                                                    {{"HOME", temp_.File("home")},
                                                     {"TMPDIR", temp_.File("tmp")},
                                                     {"PATH", ProgramsPath()},
                                                     {"TESSERA_CONSOLE_CONFIG", console_config}}));
    return LinkDeploy(temp_.File("work"));
  }

  // Starts the coordinator; returns the address it listens on.
  absl::StatusOr<std::string> StartCoordinator(const v1::TlsFiles& tls, const std::string& cwd) {
    v1::CoordinatorConfig coordinator;
    coordinator.set_listen_address("127.0.0.1:0");
    coordinator.set_ready_file(temp_.File("coordinator.ready"));
    coordinator.set_data_dir(temp_.File("coordinator-db"));
    *coordinator.mutable_tls() = tls;
    RETURN_IF_ERROR(common::WriteFileAtomic(temp_.File("coordinator.textproto"),
                                            common::ToTextProto(coordinator)));
    Daemon& c = daemons_.Add("coordinator",
                             absl::StrCat(ShellQuote(CoordinatorBinary()), " --config ",
                                          ShellQuote(temp_.File("coordinator.textproto"))),
                             cwd, coordinator.ready_file());
    ASSIGN_OR_RETURN(std::string ready, daemons_.Start(*session_, c));
    return std::string(absl::StripAsciiWhitespace(ready));
  }

  // The datasets the guide's queries (files under `cwd`) ask for.
  static absl::StatusOr<std::set<std::string>> QueriedDatasets(
      const std::vector<FencedBlock>& blocks, const std::string& cwd) {
    std::set<std::string> datasets;
    for (const std::string& file : QueryFiles(blocks)) {
      v1::TaskSpec spec;
      RETURN_IF_ERROR(common::LoadProtoFile(absl::StrCat(cwd, "/", file), &spec));
      datasets.insert(spec.dataset().id());
    }
    return datasets;
  }

  // Starts site `i` of kDocSites ("site-<i+1>"), holding its share of each of `datasets`.
  absl::Status StartSite(int i, testing::TestPki& pki, const std::string& address,
                         const std::set<std::string>& datasets) {
    const std::string name = absl::StrCat("site-", i + 1);
    const std::string dir = temp_.File(name);
    RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
    v1::ClientConfig site;
    site.set_coordinator_address(address);
    ASSIGN_OR_RETURN(*site.mutable_tls(), pki.IssueNode(name, crypto::Role::kInstitution));
    for (const std::string& id : datasets) {
      ASSIGN_OR_RETURN(std::string stem, DatasetStem(id));
      ASSIGN_OR_RETURN(std::vector<SiteShare> shares, SplitDataset(stem, kDocSites));
      v1::LocalDataset* d = site.add_datasets();
      d->set_id(id);
      d->set_train_csv(absl::StrCat(dir, "/", id, ".csv"));
      RETURN_IF_ERROR(common::WriteFileAtomic(d->train_csv(), shares[i].all));
    }
    site.mutable_policy()->set_min_cohort(kDocSites);
    site.mutable_retry()->set_initial_backoff_ms(100);
    site.mutable_retry()->set_max_backoff_ms(500);
    site.set_ready_file(dir + "/ready");
    site.set_data_dir(dir + "/store");
    RETURN_IF_ERROR(common::WriteFileAtomic(dir + "/site.textproto", common::ToTextProto(site)));
    Daemon& d = daemons_.Add(name,
                             absl::StrCat(ShellQuote(ClientBinary()), " run --config ",
                                          ShellQuote(dir + "/site.textproto")),
                             dir, site.ready_file());
    return daemons_.Start(*session_, d).status();
  }

  // Runs one command of docs/research.md in `cwd`; it must succeed.
  void RunResearchCommand(const Where& where, const std::string& address, const std::string& cwd) {
    std::string command =
        MapMachinePaths(MapBuildDir(where.as_written, BuildDir()), temp_.File("root"));
    ASSERT_OK_AND_ASSIGN(command, MapExampleHosts(command, address));
    // The quick start's build/console/tessera must be the console CMake built.
    std::vector<std::string> w = Words(command);
    std::error_code same;
    if (absl::StrContains(w[0], "/")) {
      ASSERT_TRUE(fs::equivalent(w[0], ConsoleBinary(), same))
          << where.ToString() << "  runs " << w[0] << ", not " << ConsoleBinary();
    }
    Trace(where, command);
    ASSERT_OK_AND_ASSIGN(CommandResult r, session_->Run(command, cwd));
    ASSERT_TRUE(r.status.Succeeded()) << Failed(where, command, cwd, r, r.status.ToString());
  }

  // docs/operations.md: the walk, made by its test.
  std::unique_ptr<OperationsGuideWalk> walk_;

  // docs/research.md: the test's directory, the researcher's shell, the federation.
  testing::TempDir temp_;
  std::unique_ptr<ShellSession> session_;
  DocDaemons daemons_{temp_.File("logs")};
};

// --- docs/operations.md ------------------------------------------------------------------

TEST_F(E2eDocsTest, OperationsGuideRunsAsWritten) {
  const absl::Time start = absl::Now();
  walk_ = std::make_unique<OperationsGuideWalk>();
  const absl::Status walked = walk_->Run();
  ASSERT_TRUE(walked.ok()) << walked.message();  // once: the message is long
  std::fprintf(stderr, "docs/operations.md ran in %s\n",
               absl::FormatDuration(absl::Now() - start).c_str());
}

// --- docs/research.md --------------------------------------------------------------------

TEST_F(E2eDocsTest, ResearchGuideRunsAsWritten) {
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(std::vector<FencedBlock> blocks,
                       ReadFencedBlocks(SourcePath("docs/research.md"), "docs/research.md"));

  // "On a federation": the guide points at docs/operations.md for one. The test makes it
  // directly: a coordinator and kDocSites sites holding every dataset the guide's queries ask.
  ASSERT_OK(common::MakeDirectories(temp_.File("pki"), 0700));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<testing::TestPki> pki,
                       testing::TestPki::Create(temp_.File("pki")));
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles coordinator_tls,
                       pki->IssueNode("coordinator", crypto::Role::kCoordinator));
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles researcher_tls,
                       pki->IssueNode("researcher", crypto::Role::kOperator));
  const std::string console_config = temp_.File("home/console.textproto");
  ASSERT_OK(OpenResearcherSession(console_config));
  const std::string cwd = temp_.File("work");
  ASSERT_OK_AND_ASSIGN(const std::string address, StartCoordinator(coordinator_tls, cwd));
  ASSERT_OK_AND_ASSIGN(const std::set<std::string> datasets, QueriedDatasets(blocks, cwd));
  for (int i = 0; i < kDocSites; ++i) ASSERT_OK(StartSite(i, *pki, address, datasets));
  v1::ConsoleConfig console;
  console.set_coordinator_address(address);
  *console.mutable_tls() = researcher_tls;
  ASSERT_OK(common::WriteFileAtomic(console_config, common::ToTextProto(console)));

  int shell_blocks = 0;
  int commands_run = 0;
  for (const FencedBlock& block : blocks) {
    if (!block.IsShell()) continue;
    ++shell_blocks;
    for (const DocCommand& cmd : ShellCommands(block)) {
      if (NotRunHere(block, cmd)) continue;
      ASSERT_NO_FATAL_FAILURE(
          RunResearchCommand(Where{&block, cmd.line, cmd.text, ""}, address, cwd));
      ++commands_run;
    }
  }
  EXPECT_GT(shell_blocks, 0);
  std::fprintf(stderr, "docs/research.md: %d shell blocks, %d commands run in %s\n", shell_blocks,
               commands_run, absl::FormatDuration(absl::Now() - start).c_str());
}

// --- every file ----------------------------------------------------------------------------

// Every shell block of README.md and docs/*.md is run by a test: docs/operations.md and
// docs/research.md by the two tests above; README.md's two commands by CI (deploy/test.sh,
// through .ci/run) and by hand (deploy/demo.sh). A shell block anywhere else fails here.
TEST_F(E2eDocsTest, EveryShellBlockIsRunByATest) {
  const std::set<std::string> run_here = {"docs/operations.md", "docs/research.md"};
  std::vector<std::string> files = {"README.md"};
  for (const auto& entry : fs::directory_iterator(SourcePath("docs"))) {
    if (entry.path().extension() == ".md") {
      files.push_back("docs/" + entry.path().filename().string());
    }
  }
  for (const std::string& file : files) {
    ASSERT_OK_AND_ASSIGN(std::vector<FencedBlock> blocks, ReadFencedBlocks(SourcePath(file), file));
    for (const FencedBlock& b : blocks) {
      if (!b.IsShell() || run_here.contains(file)) continue;
      for (const DocCommand& c : ShellCommands(b)) {
        const std::vector<std::string> w = Words(c.text);
        const bool ci_or_by_hand = file == "README.md" && w.size() == 2 && w[0] == "bash" &&
                                   (w[1] == "deploy/test.sh" || w[1] == "deploy/demo.sh");
        EXPECT_TRUE(ci_or_by_hand) << file << ":" << c.line << ": `" << c.text
                                   << "` is run by no test (tests/e2e/docs_test.cc)";
      }
    }
  }
}

}  // namespace
}  // namespace tessera::e2e
