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
//   `tessera`, `tessera-coordinator` and `tessera-client` then resolve to those programs.
// - Machines: absolute paths under /etc, /var/lib, /run, /root and /data (and `~`, through
//   HOME) are mapped into a fresh temporary root per machine: one for the coordinator host,
//   the CA and the operator's workstation (their paths do not overlap), one per
//   institution. Each machine's commands run in its own working directory; the operator's
//   holds `deploy` (a link to the source tree's, for `deploy/examples/...`) and
//   `task.textproto`.
// - Hosts: *.example.org names become 127.0.0.1 (also in `--san`, so the coordinator's
//   certificate names 127.0.0.1), "host:port" becomes the address the coordinator wrote
//   to its ready_file, and its listen_address becomes "127.0.0.1:0" (a port the OS chooses).
// - Files that travel between machines, as the guide says in prose: a CSR to the
//   operator's working directory after each keygen; the signed certificate and ca.crt
//   to where a node's config names them, when the config is written.
// - Config files the guide shows (coordinator.textproto, site.textproto) are written from
//   its own blocks, with the rewrites above, when a command first names them; the test
//   adds a ready_file where one is missing (site.textproto), and checks that the sites hold
//   the datasets of, and allow the spec hashes of, the files the guide submits. The console
//   config, which the guide only sketches in comments, is the minimal one the test writes.
//   Each site's CSVs are its share of the shipped deploy/data/*.csv (SplitDataset).
// - The guide shows one institution; the federation needs kSites, made with the same
//   commands under other names (a line naming the institution runs once per site).
// - Daemons (`tessera-coordinator --config ...`, `tessera-client run ...`) are started in
//   the background, waited for on their ready files, and stopped with SIGTERM at the end
//   (each must exit 0). Lines that touch a site store (tar, mv) run with that site's daemon
//   stopped, as the guide says, and the daemon is started again after the block.
// - `tessera tasks cancel task-1`: by then task-1 has completed (the guide waited for it),
//   and a finished task cannot be cancelled. The test submits a second task that stays
//   running (it waits for one site more than there are), cancels that one instead, and
//   checks that it ends CANCELLED.
//
// README.md's block (`bash deploy/demo.sh`, `bash deploy/test.sh`) is not run here: CI runs
// deploy/test.sh itself (.ci/run), and demo.sh, which installs packages as root and builds
// everything, is run by hand. EveryShellBlockIsRunByATest keeps it at those two.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
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
#include "tests/e2e/process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::e2e {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kReadyTimeout = absl::Seconds(60);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);
// Sites of a federation: min_clients of the example task and of the query, and the guide's
// policy.min_cohort.
constexpr int kSites = 3;

// The folder CMake built into: the console is <it>/console/tessera. The docs' build folder
// maps to it, so that the docs' `build/coordinator` and `build/client` are checked too.
std::string BuildDir() { return fs::path(ConsoleBinary()).parent_path().parent_path().string(); }

// The programs' folders first, then the test's own PATH.
std::string ProgramsPath() {
  const char* path = std::getenv("PATH");
  return absl::StrCat(fs::path(ConsoleBinary()).parent_path().string(), ":",
                      fs::path(CoordinatorBinary()).parent_path().string(), ":",
                      fs::path(ClientBinary()).parent_path().string(), ":",
                      path != nullptr ? path : "/usr/bin:/bin");
}

// Why a documented command is not run on a test machine; nullopt if it is run.
std::optional<std::string> NotRunReason(const std::string& command) {
  const std::vector<std::string> w = Words(command);
  if (w.size() >= 2 && w[0] == "bash" && w[1] == "deploy/install-deps.sh") {
    return "installs Debian packages as root (apt-get); CI runs it in deploy/test.sh";
  }
  if (!w.empty() && (w[0] == "cmake" || w[0] == "ninja")) {
    return "builds the programs; the test runs the ones CMake built for it";
  }
  return std::nullopt;
}

// The CSV under deploy/data/ that holds the rows of a dataset id the docs use.
absl::StatusOr<std::string> DatasetStem(const std::string& id) {
  static const auto* kStems =
      new std::map<std::string, std::string>{{"breast_cancer", "breast_cancer_wisconsin"},
                                             {"diabetes", "diabetes_progression"},
                                             {"digits", "digits"},
                                             {"rotterdam", "rotterdam_survival"},
                                             {"smoking_nhis", "smoking_nhis"}};
  auto it = kStems->find(id);
  if (it == kStems->end()) {
    return absl::NotFoundError(absl::StrCat("dataset '", id, "': no CSV in deploy/data is known"));
  }
  return it->second;
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(std::string contents, common::ReadFile(from));
  RETURN_IF_ERROR(common::MakeDirectories(fs::path(to).parent_path().string(), 0755));
  return common::WriteFileAtomic(to, contents, 0644);
}

// Where a documented command comes from, for messages.
struct Where {
  const FencedBlock* block = nullptr;
  int line = 0;
  std::string as_written;
  std::string site;  // the institution it was run for, if it runs once per institution

  std::string ToString() const {
    return absl::StrCat(block->file, ":", line, " (the ```", block->info, " block at line ",
                        block->line, ")", site.empty() ? "" : absl::StrCat(", for site ", site),
                        "\n  as written: ", as_written, "\n");
  }
};

// One line on stderr per command run: where it comes from and what ran.
void Trace(const Where& w, const std::string& ran) {
  std::fprintf(stderr, "%s:%d%s: %s\n", w.block->file.c_str(), w.line,
               w.site.empty() ? "" : absl::StrCat(" [", w.site, "]").c_str(), ran.c_str());
}

absl::Status Failed(const Where& w, const std::string& ran, const std::string& cwd,
                    const CommandResult& r, const std::string& why) {
  return absl::InternalError(absl::StrCat(w.ToString(), "  ran:        ", ran,
                                          "\n  in:         ", cwd, "\n  ", why,
                                          "\n--- stdout (last 40 lines):\n", Tail(r.out, 40),
                                          "\n--- stderr (last 40 lines):\n", Tail(r.err, 40)));
}

class E2eDocsTest : public ::testing::Test {
 protected:
  // A machine of the federation: its file system root and where its commands run.
  struct Machine {
    std::string name;
    std::string root;
    std::string cwd;
  };

  // A daemon the test started in the background.
  struct Daemon {
    std::string label;    // "coordinator" or the site's id
    std::string command;  // as run by bash
    std::string cwd;
    std::string ready_file;  // written by the daemon once it serves
    std::unique_ptr<Process> process;
  };

  void TearDown() override {
    // Sites first, so that none is left retrying against a coordinator that is gone.
    std::vector<Daemon*> order;
    for (auto& d : daemons_) {
      if (d->label != "coordinator") order.push_back(d.get());
    }
    for (auto& d : daemons_) {
      if (d->label == "coordinator") order.push_back(d.get());
    }
    for (Daemon* d : order) {
      if (d->process == nullptr || !d->process->Running()) continue;
      ExitStatus how = d->process->Terminate(kStopTimeout);
      EXPECT_TRUE(how.Succeeded())
          << d->label << " did not stop cleanly on SIGTERM: " << how.ToString() << "\n"
          << d->process->LogTail(30);
    }
    if (HasFailure()) {
      for (Daemon* d : order) {
        if (d->process == nullptr) continue;
        std::fprintf(stderr, "---- %s (%s): last lines of %s\n%s\n", d->label.c_str(),
                     d->command.c_str(), d->process->log_path().c_str(),
                     d->process->LogTail(30).c_str());
      }
    }
  }

  // A fresh machine root with what any Debian machine has (/etc, /root, /run, /var/lib),
  // and work/, where its commands run.
  absl::StatusOr<Machine> MakeMachine(const std::string& name, const std::string& root) {
    for (const char* dir : {"etc", "root", "run", "var/lib", "work"}) {
      RETURN_IF_ERROR(common::MakeDirectories(absl::StrCat(root, "/", dir), 0755));
    }
    return Machine{name, root, root + "/work"};
  }

  Daemon& AddDaemon(const std::string& label, const std::string& command, const std::string& cwd,
                    const std::string& ready_file) {
    daemons_.push_back(std::make_unique<Daemon>(Daemon{label, command, cwd, ready_file, nullptr}));
    return *daemons_.back();
  }

  // Starts `d` (again) and waits for its ready file; returns the file's contents.
  absl::StatusOr<std::string> StartDaemon(Daemon& d) {
    if (std::remove(d.ready_file.c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError("cannot remove " + d.ready_file);
    }
    const std::string log = temp_.File(absl::StrCat("logs/", d.label, ".log"));
    RETURN_IF_ERROR(common::MakeDirectories(temp_.File("logs"), 0755));
    ASSIGN_OR_RETURN(d.process, session_->Start(d.command, d.cwd, log));
    return WaitForFile(d.ready_file, *d.process, kReadyTimeout);
  }

  // SIGTERM; the daemon must exit 0.
  absl::Status StopDaemon(Daemon& d) {
    if (d.process == nullptr || !d.process->Running()) {
      return absl::FailedPreconditionError(d.label + " is not running");
    }
    RETURN_IF_ERROR(d.process->Kill(SIGTERM));
    ASSIGN_OR_RETURN(ExitStatus how, d.process->Wait(kStopTimeout));
    if (!how.Succeeded()) {
      return absl::InternalError(
          absl::StrCat(d.label, " stopped with ", how.ToString(), "\n", d.process->LogTail()));
    }
    return absl::OkStatus();
  }

  // Runs a command of the test's own (not from the docs) in the session; it must succeed.
  absl::StatusOr<CommandResult> RunOwn(const std::string& command, const std::string& cwd) {
    std::fprintf(stderr, "test: %s\n", command.c_str());
    ASSIGN_OR_RETURN(CommandResult r, session_->Run(command, cwd));
    if (!r.status.Succeeded()) {
      return absl::InternalError(absl::StrCat("(the test's own step) ", command, " in ", cwd, ": ",
                                              r.status.ToString(), "\n", r.out, r.err));
    }
    return r;
  }

  // The spec hash `tessera tasks submit --dry-run` prints for `file`.
  absl::StatusOr<std::string> SpecHash(const std::string& file, const std::string& cwd) {
    ASSIGN_OR_RETURN(CommandResult r, RunOwn("tessera tasks submit --dry-run " + file, cwd));
    std::smatch m;
    static const std::regex kHash("spec sha256 ([0-9a-f]{64})");
    if (!std::regex_search(r.out, m, kHash)) {
      return absl::InternalError("no spec hash in: " + r.out);
    }
    return m[1].str();
  }

  // The `tessera query FILE` files of `blocks`' shell blocks.
  static std::vector<std::string> QueryFiles(const std::vector<FencedBlock>& blocks) {
    std::vector<std::string> files;
    for (const FencedBlock& b : blocks) {
      if (!b.IsShell()) continue;
      for (const DocCommand& c : ShellCommands(b)) {
        std::vector<std::string> w = Words(c.text);
        if (w.size() >= 3 && w[0] == "tessera" && w[1] == "query") files.push_back(w[2]);
      }
    }
    return files;
  }

  // --- docs/operations.md ----------------------------------------------------------------

  absl::Status RunOperationsGuide();
  absl::Status RunGuideCommand(const Where& where, const std::string& as_written, Machine& machine,
                               int site);
  absl::Status WriteGuideConfig(const Where& where, const std::string& program,
                                const std::string& name, Machine& machine, int site);
  absl::Status DeliverTls(const Where& where, v1::TlsFiles tls, const Machine& machine);
  absl::Status AfterGuideCommand(const Where& where, const std::vector<std::string>& words,
                                 const CommandResult& result, Machine& machine);
  absl::StatusOr<std::string> PrepareCancel(const Where& where, const std::string& command);
  absl::Status WriteConsoleConfig(const std::string& path);

  // The state of the walkthrough.
  struct Guide {
    std::vector<FencedBlock> blocks;
    std::string doc_site;  // the institution the guide shows ("hospital-north")
    Machine host;          // the coordinator host, the CA and the operator's workstation
    std::vector<Machine> sites;
    std::map<std::string, Daemon*> site_daemons;
    std::string address;                             // where the coordinator listens
    std::string ca_dir;                              // `tessera pki init --dir`
    std::string operator_id;                         // the CSR signed with --role operator
    std::map<std::string, std::string> key_dirs;     // node id -> where its keygen wrote
    std::map<std::string, std::string> ready_files;  // config path -> its daemon's ready file
    std::set<std::string> task_ids;                  // ids a `tasks submit` printed
    std::string last_task_file;                      // the last `tasks submit FILE`
    int commands_run = 0;
  };
  Guide guide_;

  testing::TempDir temp_;
  std::unique_ptr<ShellSession> session_;
  std::vector<std::unique_ptr<Daemon>> daemons_;
};

absl::Status E2eDocsTest::RunOperationsGuide() {
  Guide& g = guide_;
  ASSIGN_OR_RETURN(g.blocks,
                   ReadFencedBlocks(SourcePath("docs/operations.md"), "docs/operations.md"));
  // The institution the guide shows; the federation needs kSites, made the same way.
  for (const FencedBlock& b : g.blocks) {
    if (!b.IsShell()) continue;
    for (const DocCommand& c : ShellCommands(b)) {
      std::vector<std::string> w = Words(c.text);
      if (g.doc_site.empty() && w.size() >= 2 && w[0] == "tessera-client" && w[1] == "keygen") {
        g.doc_site = FlagValue(w, "--name").value_or("");
      }
    }
  }
  if (g.doc_site.empty()) {
    return absl::NotFoundError("docs/operations.md shows no `tessera-client keygen --name ...`");
  }
  std::vector<std::string> names = {g.doc_site};
  for (const char* other : {"hospital-north", "hospital-south", "hospital-east", "hospital-west"}) {
    if (names.size() < kSites && other != g.doc_site) names.push_back(other);
  }

  ASSIGN_OR_RETURN(g.host, MakeMachine("coordinator host", temp_.File("host")));
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(Machine m, MakeMachine(name, temp_.File("sites/" + name)));
    g.sites.push_back(m);
  }
  // The operator works in a clone of the repository (the guide's commands name
  // deploy/examples/...): here a folder with a link to the source tree's deploy/.
  std::error_code ec;
  fs::create_directory_symlink(SourcePath("deploy"), g.host.cwd + "/deploy", ec);
  if (ec) return absl::InternalError("cannot link deploy/: " + ec.message());
  // The guide's task file: the example its section 5 names, as shipped.
  RETURN_IF_ERROR(CopyFile(SourcePath("deploy/examples/breast_cancer_logistic.textproto"),
                           g.host.cwd + "/task.textproto"));
  const std::string home = g.host.root + "/home/operator";
  RETURN_IF_ERROR(common::MakeDirectories(home, 0755));
  RETURN_IF_ERROR(common::MakeDirectories(temp_.File("tmp"), 0755));
  // No programs on PATH yet: the guide's first block puts them there.
  const char* path = std::getenv("PATH");
  ASSIGN_OR_RETURN(session_,
                   ShellSession::Create(temp_.File("shell"),
                                        {{"HOME", home},
                                         {"TMPDIR", temp_.File("tmp")},
                                         {"PATH", path != nullptr ? path : "/usr/bin:/bin"}},
                                        {"TESSERA_CONSOLE_CONFIG"}));

  int shell_blocks = 0;
  for (const FencedBlock& block : g.blocks) {
    if (!block.IsShell()) continue;
    ++shell_blocks;
    std::set<int> stopped;  // sites whose daemon this block stopped
    for (const DocCommand& c : ShellCommands(block)) {
      Where where{&block, c.line, c.text, ""};
      if (std::optional<std::string> why = NotRunReason(c.text)) {
        std::fprintf(stderr, "%s:%d: not run (%s): %s\n", block.file.c_str(), c.line, why->c_str(),
                     c.text.c_str());
        continue;
      }
      // An institution's own command (its program, its paths) runs on each institution's
      // machine; the operator's command for an institution (signing its CSR) runs once per
      // institution on the operator's.
      const bool institution = absl::StrContains(c.text, "tessera-client");
      if (!institution && !absl::StrContains(c.text, g.doc_site)) {
        RETURN_IF_ERROR(RunGuideCommand(where, c.text, g.host, -1));
        continue;
      }
      for (size_t i = 0; i < g.sites.size(); ++i) {
        Machine& site = g.sites[i];
        where.site = site.name;
        const std::string text = absl::StrReplaceAll(c.text, {{g.doc_site, site.name}});
        // tar and mv on the site store: "with tessera-client stopped".
        if (institution && Words(text)[0] != "tessera-client" &&
            g.site_daemons.contains(site.name) && g.site_daemons[site.name]->process->Running()) {
          std::fprintf(stderr, "test [%s]: stopped (SIGTERM) for the site store's lines\n",
                       site.name.c_str());
          RETURN_IF_ERROR(StopDaemon(*g.site_daemons[site.name]));
          stopped.insert(static_cast<int>(i));
        }
        RETURN_IF_ERROR(
            RunGuideCommand(where, text, institution ? site : g.host, static_cast<int>(i)));
      }
    }
    // The guide goes on with the sites running: start the stopped daemons again, with
    // the command the guide gave (on the restored store).
    for (int i : stopped) {
      Daemon& d = *g.site_daemons[g.sites[i].name];
      std::fprintf(stderr, "test [%s]: started again after the block at line %d: %s\n",
                   d.label.c_str(), block.line, d.command.c_str());
      absl::StatusOr<std::string> ready = StartDaemon(d);
      if (!ready.ok()) {
        return absl::InternalError(
            absl::StrCat(block.file, ": the ```sh block at line ", block.line, " left ", d.label,
                         " unable to start again: ", ready.status().message()));
      }
    }
  }
  if (shell_blocks == 0) return absl::NotFoundError("docs/operations.md has no ```sh block");
  std::fprintf(stderr, "docs/operations.md: %d shell blocks, %d commands run\n", shell_blocks,
               g.commands_run);
  return absl::OkStatus();
}

absl::Status E2eDocsTest::RunGuideCommand(const Where& where, const std::string& as_written,
                                          Machine& machine, int site) {
  Guide& g = guide_;
  std::string command = MapMachinePaths(MapBuildDir(as_written, BuildDir()), machine.root);
  absl::StatusOr<std::string> hosts = MapExampleHosts(command, g.address);
  if (!hosts.ok()) {
    return absl::FailedPreconditionError(where.ToString() + hosts.status().ToString());
  }
  command = *hosts;
  std::vector<std::string> w = Words(command);

  // A config file the guide shows as text is written from its block, for this machine.
  if (std::optional<std::string> config = FlagValue(w, "--config");
      config.has_value() && (w[0] == "tessera-coordinator" || w[0] == "tessera-client")) {
    RETURN_IF_ERROR(WriteGuideConfig(where, w[0], *config, machine, site));
  }
  // Every task id a console command names must be one a submit printed.
  static const std::regex kTaskId(R"(\btask-[0-9]+\b)");
  for (const std::string& word : w) {
    if (std::regex_match(word, kTaskId) && !g.task_ids.contains(word)) {
      return absl::FailedPreconditionError(absl::StrCat(
          where.ToString(), "  names ", word, ", which no `tessera tasks submit` printed"));
    }
  }
  if (w.size() >= 3 && w[0] == "tessera" && w[1] == "tasks" && w[2] == "cancel") {
    ASSIGN_OR_RETURN(command, PrepareCancel(where, command));
    w = Words(command);
  }

  // A daemon: started in the background; ready when its ready file is written.
  const bool coordinator = w[0] == "tessera-coordinator";
  if (coordinator || (w.size() >= 2 && w[0] == "tessera-client" && w[1] == "run")) {
    const std::string config = machine.cwd + "/" + FlagValue(w, "--config").value_or("");
    if (!g.ready_files.contains(config)) {
      return absl::FailedPreconditionError(where.ToString() + "  starts a daemon with no config");
    }
    Trace(where, command + "   (in the background)");
    Daemon& d = AddDaemon(coordinator ? "coordinator" : machine.name, command, machine.cwd,
                          g.ready_files[config]);
    absl::StatusOr<std::string> ready = StartDaemon(d);
    if (!ready.ok()) {
      return absl::InternalError(absl::StrCat(where.ToString(), "  ran:        ", command,
                                              " (in the background)\n  ",
                                              ready.status().message()));
    }
    ++g.commands_run;
    if (coordinator) {
      g.address = std::string(absl::StripAsciiWhitespace(*ready));
    } else {
      g.site_daemons[machine.name] = &d;
      if (*ready != machine.name + "\n") {
        return absl::InternalError(absl::StrCat(where.ToString(), "  its ready file holds '",
                                                *ready, "', not ", machine.name));
      }
    }
    return absl::OkStatus();
  }

  Trace(where, command);
  ASSIGN_OR_RETURN(CommandResult r, session_->Run(command, machine.cwd));
  ++g.commands_run;
  if (!r.status.Succeeded()) return Failed(where, command, machine.cwd, r, r.status.ToString());
  return AfterGuideCommand(where, w, r, machine);
}

absl::Status E2eDocsTest::AfterGuideCommand(const Where& where, const std::vector<std::string>& w,
                                            const CommandResult& r, Machine& machine) {
  Guide& g = guide_;
  auto absolute = [&](std::string dir) -> absl::StatusOr<std::string> {
    if (absl::StartsWith(dir, "~/") || dir == "~") {
      ASSIGN_OR_RETURN(std::string home, session_->Variable("HOME"));
      dir = home + dir.substr(1);
    }
    return fs::path(dir).is_absolute() ? dir : machine.cwd + "/" + dir;
  };
  const bool console = w.size() >= 3 && w[0] == "tessera";
  if (console && w[1] == "pki" && w[2] == "init") {
    ASSIGN_OR_RETURN(g.ca_dir, absolute(FlagValue(w, "--dir").value_or(".")));
  }
  // Each node sends its CSR to the operator (section 2), who signs it where they work.
  if ((console && w[1] == "pki" && w[2] == "keygen") ||
      (w.size() >= 2 && w[0] == "tessera-client" && w[1] == "keygen")) {
    const std::string id = FlagValue(w, "--name").value_or("");
    ASSIGN_OR_RETURN(std::string dir, absolute(FlagValue(w, "--out-dir").value_or(".")));
    g.key_dirs[id] = dir;
    const std::string csr = absl::StrCat(dir, "/", id, ".csr");
    const std::string to = absl::StrCat(g.host.cwd, "/", id, ".csr");
    if (!fs::exists(to)) RETURN_IF_ERROR(CopyFile(csr, to));
  }
  if (console && w[1] == "pki" && w[2] == "sign" && FlagValue(w, "--role") == "operator") {
    g.operator_id = fs::path(FlagValue(w, "--csr").value_or("")).stem().string();
  }
  if (w.size() >= 2 && w[0] == "export") {
    if (absl::StrContains(w[1], "PATH=")) {
      // The guide's PATH must find the programs CMake built.
      ASSIGN_OR_RETURN(
          CommandResult found,
          RunOwn("command -v tessera tessera-coordinator tessera-client", machine.cwd));
      std::vector<std::string> paths = absl::StrSplit(found.out, '\n', absl::SkipEmpty());
      const std::vector<std::string> want = {ConsoleBinary(), CoordinatorBinary(), ClientBinary()};
      for (size_t i = 0; i < want.size(); ++i) {
        std::error_code ec;
        if (i >= paths.size() || !fs::equivalent(paths[i], want[i], ec)) {
          return Failed(where, absl::StrJoin(w, " "), machine.cwd, found,
                        "after it, PATH does not lead to " + want[i]);
        }
      }
    }
    ASSIGN_OR_RETURN(std::string console_config, session_->Variable("TESSERA_CONSOLE_CONFIG"));
    if (!console_config.empty() && !fs::exists(console_config)) {
      RETURN_IF_ERROR(WriteConsoleConfig(console_config));
    }
  }
  if (console && w[1] == "tasks" && w[2] == "submit" &&
      std::find(w.begin(), w.end(), "--dry-run") == w.end()) {
    g.task_ids.insert(std::string(absl::StripAsciiWhitespace(r.out)));
    g.last_task_file = w.back();
  }
  if (console && w[1] == "tasks" && w[2] == "cancel") {
    // The cancelled task ends: `tasks wait` returns 1 and says so.
    std::fprintf(stderr, "test: tessera tasks wait %s   (must end CANCELLED)\n", w[3].c_str());
    ASSIGN_OR_RETURN(CommandResult ended, session_->Run("tessera tasks wait " + w[3], g.host.cwd));
    if (ended.exit_code() != 1 || !absl::StrContains(ended.err, "CANCELLED")) {
      return Failed(where, "tessera tasks wait " + w[3], g.host.cwd, ended,
                    "the task it cancelled did not end as CANCELLED");
    }
  }
  return absl::OkStatus();
}

absl::Status E2eDocsTest::WriteGuideConfig(const Where& where, const std::string& program,
                                           const std::string& name, Machine& machine, int site) {
  Guide& g = guide_;
  const std::string path = fs::path(name).is_absolute() ? name : machine.cwd + "/" + name;
  if (fs::exists(path)) return absl::OkStatus();
  const FencedBlock* block = FindFileBlock(g.blocks, name);
  if (block == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(where.ToString(), "  names ", name, ", which the guide shows nowhere"));
  }
  const std::string origin = absl::StrCat(block->file, ":", block->line, " (", name, ")");
  std::string text = block->Text();
  if (site >= 0) text = absl::StrReplaceAll(text, {{g.doc_site, machine.name}});
  text = MapMachinePaths(text, machine.root);
  if (program == "tessera-coordinator") {
    static const std::regex kListen(R"re(listen_address:\s*"[^"]*")re");
    text = std::regex_replace(text, kListen, "listen_address: \"127.0.0.1:0\"");
  }
  absl::StatusOr<std::string> hosts = MapExampleHosts(text, g.address);
  if (!hosts.ok()) return absl::FailedPreconditionError(origin + ": " + hosts.status().ToString());
  text = *hosts;

  std::string ready_file;
  if (program == "tessera-coordinator") {
    v1::CoordinatorConfig config;
    RETURN_IF_ERROR(common::Annotate(common::ParseTextProto(text, path, &config, nullptr), origin));
    ready_file = config.ready_file();
    if (ready_file.empty()) {
      ready_file = machine.root + "/run/tessera-coordinator.ready";
      absl::StrAppend(&text, "ready_file: \"", ready_file, "\"  # added by the test\n");
    }
    RETURN_IF_ERROR(DeliverTls(where, config.tls(), machine));
  } else {
    v1::ClientConfig config;
    RETURN_IF_ERROR(common::Annotate(common::ParseTextProto(text, path, &config, nullptr), origin));
    ready_file = config.ready_file();
    if (ready_file.empty()) {
      // The guide's config has none; the test needs it to know when the daemon is in.
      ready_file = machine.root + "/run/tessera-client.ready";
      absl::StrAppend(&text, "ready_file: \"", ready_file, "\"  # added by the test\n");
    }
    RETURN_IF_ERROR(DeliverTls(where, config.tls(), machine));
    // The institution's own data, where its config says: its share of the shipped CSV.
    for (const v1::LocalDataset& d : config.datasets()) {
      ASSIGN_OR_RETURN(std::string stem, DatasetStem(d.id()));
      ASSIGN_OR_RETURN(std::vector<SiteShare> shares,
                       SplitDataset(stem, static_cast<int>(g.sites.size())));
      const SiteShare& share = shares[site];
      RETURN_IF_ERROR(
          common::MakeDirectories(fs::path(d.train_csv()).parent_path().string(), 0755));
      RETURN_IF_ERROR(
          common::WriteFileAtomic(d.train_csv(), d.test_csv().empty() ? share.all : share.train));
      if (!d.test_csv().empty()) RETURN_IF_ERROR(common::WriteFileAtomic(d.test_csv(), share.test));
    }
    // Every file the guide submits to the sites must name a dataset the site holds and,
    // when the policy lists spec hashes, be one of them: else every site declines it (or,
    // for a dataset no site holds, the task waits for sites forever).
    std::vector<std::string> files = QueryFiles(g.blocks);
    for (const FencedBlock& b : g.blocks) {
      if (!b.IsShell()) continue;
      for (const DocCommand& c : ShellCommands(b)) {
        std::vector<std::string> cw = Words(c.text);
        if (cw.size() == 4 && cw[0] == "tessera" && cw[1] == "tasks" && cw[2] == "submit") {
          files.push_back(cw[3]);
        }
      }
    }
    for (const std::string& file : files) {
      v1::TaskSpec spec;
      RETURN_IF_ERROR(common::LoadProtoFile(g.host.cwd + "/" + file, &spec));
      const auto& held = config.datasets();
      if (std::none_of(held.begin(), held.end(),
                       [&](const v1::LocalDataset& d) { return d.id() == spec.dataset().id(); })) {
        return absl::FailedPreconditionError(absl::StrCat(origin, ": holds no dataset '",
                                                          spec.dataset().id(), "', which ", file,
                                                          " (submitted by the guide) asks for"));
      }
      const auto& allowed = config.policy().allowed_spec_hashes();
      if (allowed.empty()) continue;
      ASSIGN_OR_RETURN(std::string hash, SpecHash(file, g.host.cwd));
      if (std::find(allowed.begin(), allowed.end(), hash) == allowed.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat(origin, ": policy.allowed_spec_hashes does not list ", hash,
                         ", the spec hash of ", file, " (`tessera tasks submit --dry-run ", file,
                         "`), which the guide submits: every site would decline it"));
      }
    }
  }
  RETURN_IF_ERROR(common::WriteFileAtomic(path, text));
  g.ready_files[path] = ready_file;
  return absl::OkStatus();
}

absl::Status E2eDocsTest::DeliverTls(const Where& where, v1::TlsFiles tls, const Machine& machine) {
  Guide& g = guide_;
  auto absolute = [&](const std::string& p) {
    return fs::path(p).is_absolute() ? p : machine.cwd + "/" + p;
  };
  // "ca.crt goes to every node" (section 1).
  if (!fs::exists(absolute(tls.ca_cert()))) {
    if (g.ca_dir.empty()) {
      return absl::FailedPreconditionError(where.ToString() +
                                           "  needs ca.crt before the CA exists");
    }
    RETURN_IF_ERROR(CopyFile(g.ca_dir + "/ca.crt", absolute(tls.ca_cert())));
  }
  // The operator sends the signed certificate back to its node.
  const std::string cert = absolute(tls.cert());
  if (!fs::exists(cert)) {
    const std::string signed_cert = g.host.cwd + "/" + fs::path(cert).filename().string();
    if (!fs::exists(signed_cert)) {
      return absl::FailedPreconditionError(
          absl::StrCat(where.ToString(), "  its config names the certificate ", tls.cert(),
                       ", but the operator signed no ", fs::path(cert).filename().string()));
    }
    RETURN_IF_ERROR(CopyFile(signed_cert, cert));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> E2eDocsTest::PrepareCancel(const Where& where,
                                                       const std::string& command) {
  // The guide cancels task-1, which its `tasks wait` has seen complete; a finished task
  // cannot be cancelled. So the test first submits a second task that stays running (it
  // waits for one site more than the federation has) and cancels that one instead.
  Guide& g = guide_;
  if (g.last_task_file.empty()) {
    return absl::FailedPreconditionError(where.ToString() + "  cancels before any submit");
  }
  v1::TaskSpec spec;
  RETURN_IF_ERROR(common::LoadProtoFile(g.host.cwd + "/" + g.last_task_file, &spec));
  spec.set_name(spec.name() + "-to-cancel");
  spec.set_min_clients(static_cast<uint32_t>(g.sites.size()) + 1);
  RETURN_IF_ERROR(common::WriteFileAtomic(
      g.host.cwd + "/task-to-cancel.textproto",
      absl::StrCat("# ", g.last_task_file, " waiting for one site more than the federation has\n",
                   common::ToTextProto(spec))));
  ASSIGN_OR_RETURN(CommandResult r,
                   RunOwn("tessera tasks submit task-to-cancel.textproto", g.host.cwd));
  const std::string id(absl::StripAsciiWhitespace(r.out));
  std::vector<std::string> w = Words(command);
  const std::string doc_id = w[3];
  g.task_ids.insert(id);
  return absl::StrCat("tessera tasks cancel ", id,
                      command.substr(command.find(doc_id) + doc_id.size()));
}

absl::Status E2eDocsTest::WriteConsoleConfig(const std::string& path) {
  // The guide shows the console config only as a sketch in comments ("..." for the CA);
  // this is the minimal one: the coordinator's address and the operator's files where the
  // guide's commands put them.
  Guide& g = guide_;
  if (g.address.empty() || g.operator_id.empty() || !g.key_dirs.contains(g.operator_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the console config ", path,
                     " is needed before the coordinator runs or the operator's "
                     "certificate is signed"));
  }
  v1::ConsoleConfig config;
  config.set_coordinator_address(g.address);
  config.mutable_tls()->set_ca_cert(g.ca_dir + "/ca.crt");
  config.mutable_tls()->set_cert(absl::StrCat(g.host.cwd, "/", g.operator_id, ".crt"));
  config.mutable_tls()->set_key(
      absl::StrCat(g.key_dirs[g.operator_id], "/", g.operator_id, ".key"));
  RETURN_IF_ERROR(common::MakeDirectories(fs::path(path).parent_path().string(), 0700));
  return common::WriteFileAtomic(
      path, absl::StrCat("# written by the test (docs/operations.md sketches it in comments)\n",
                         common::ToTextProto(config)));
}

TEST_F(E2eDocsTest, OperationsGuideRunsAsWritten) {
  const absl::Time start = absl::Now();
  const absl::Status walked = RunOperationsGuide();
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
  // directly: a coordinator and kSites sites holding every dataset the guide's queries ask.
  ASSERT_OK(common::MakeDirectories(temp_.File("pki"), 0700));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<testing::TestPki> pki,
                       testing::TestPki::Create(temp_.File("pki")));
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles coordinator_tls,
                       pki->IssueNode("coordinator", crypto::Role::kCoordinator));
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles researcher_tls,
                       pki->IssueNode("researcher", crypto::Role::kOperator));
  ASSERT_OK(common::MakeDirectories(temp_.File("tmp"), 0755));
  ASSERT_OK(common::MakeDirectories(temp_.File("home"), 0755));
  ASSERT_OK(common::MakeDirectories(temp_.File("work"), 0755));
  const std::string console_config = temp_.File("home/console.textproto");
  ASSERT_OK_AND_ASSIGN(
      session_,
      ShellSession::Create(temp_.File("shell"), {{"HOME", temp_.File("home")},
                                                 {"TMPDIR", temp_.File("tmp")},
                                                 {"PATH", ProgramsPath()},
                                                 {"TESSERA_CONSOLE_CONFIG", console_config}}));
  // The researcher works in a clone: deploy/ is the source tree's.
  const std::string cwd = temp_.File("work");
  std::error_code ec;
  fs::create_directory_symlink(SourcePath("deploy"), cwd + "/deploy", ec);
  ASSERT_FALSE(ec) << ec.message();

  v1::CoordinatorConfig coordinator;
  coordinator.set_listen_address("127.0.0.1:0");
  coordinator.set_ready_file(temp_.File("coordinator.ready"));
  coordinator.set_data_dir(temp_.File("coordinator-db"));
  *coordinator.mutable_tls() = coordinator_tls;
  ASSERT_OK(common::WriteFileAtomic(temp_.File("coordinator.textproto"),
                                    common::ToTextProto(coordinator)));
  Daemon& c = AddDaemon("coordinator",
                        absl::StrCat(ShellQuote(CoordinatorBinary()), " --config ",
                                     ShellQuote(temp_.File("coordinator.textproto"))),
                        cwd, coordinator.ready_file());
  ASSERT_OK_AND_ASSIGN(std::string ready, StartDaemon(c));
  const std::string address(absl::StripAsciiWhitespace(ready));

  std::set<std::string> datasets;
  for (const std::string& file : QueryFiles(blocks)) {
    v1::TaskSpec spec;
    ASSERT_OK(common::LoadProtoFile(cwd + "/" + file, &spec));
    datasets.insert(spec.dataset().id());
  }
  for (int i = 0; i < kSites; ++i) {
    const std::string name = absl::StrCat("site-", i + 1);
    const std::string dir = temp_.File(name);
    ASSERT_OK(common::MakeDirectories(dir, 0700));
    v1::ClientConfig site;
    site.set_coordinator_address(address);
    ASSERT_OK_AND_ASSIGN(*site.mutable_tls(), pki->IssueNode(name, crypto::Role::kInstitution));
    for (const std::string& id : datasets) {
      ASSERT_OK_AND_ASSIGN(std::string stem, DatasetStem(id));
      ASSERT_OK_AND_ASSIGN(std::vector<SiteShare> shares, SplitDataset(stem, kSites));
      v1::LocalDataset* d = site.add_datasets();
      d->set_id(id);
      d->set_train_csv(absl::StrCat(dir, "/", id, ".csv"));
      ASSERT_OK(common::WriteFileAtomic(d->train_csv(), shares[i].all));
    }
    site.mutable_policy()->set_min_cohort(kSites);
    site.mutable_retry()->set_initial_backoff_ms(100);
    site.mutable_retry()->set_max_backoff_ms(500);
    site.set_ready_file(dir + "/ready");
    site.set_data_dir(dir + "/store");
    ASSERT_OK(common::WriteFileAtomic(dir + "/site.textproto", common::ToTextProto(site)));
    Daemon& d = AddDaemon(name,
                          absl::StrCat(ShellQuote(ClientBinary()), " run --config ",
                                       ShellQuote(dir + "/site.textproto")),
                          dir, site.ready_file());
    ASSERT_OK(StartDaemon(d).status());
  }
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
      Where where{&block, cmd.line, cmd.text, ""};
      if (std::optional<std::string> why = NotRunReason(cmd.text)) {
        std::fprintf(stderr, "%s:%d: not run (%s): %s\n", block.file.c_str(), cmd.line,
                     why->c_str(), cmd.text.c_str());
        continue;
      }
      std::string command = MapMachinePaths(MapBuildDir(cmd.text, BuildDir()), temp_.File("root"));
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
      ++commands_run;
      ASSERT_TRUE(r.status.Succeeded()) << Failed(where, command, cwd, r, r.status.ToString());
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
