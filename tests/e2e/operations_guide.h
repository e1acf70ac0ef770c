// docs/operations.md, walked as written: every command of its ```sh blocks run with bash, in
// order, on test machines in a temporary directory, with the programs CMake built. The walk
// goes through the whole deployment the guide describes: the CA, the coordinator, kDocSites
// institutions, tasks submitted, waited for and cancelled, a site store backed up and
// restored.
//
// What cannot run on a test machine is rewritten, and only that (the building lines and the
// build folder as in docs_test.cc):
// - Machines: absolute paths under /etc, /var/lib, /run, /root and /data (and `~`, through
//   HOME) are mapped into a fresh temporary root per machine: one for the coordinator host,
//   the CA and the operator's workstation (their paths do not overlap), one per
//   institution. Each machine's commands run in its own working directory; the operator's
//   holds `deploy` (a link to the source tree's, for `deploy/examples/...`) and
//   `task.textproto`.
// - Hosts: *.example.org names become 127.0.0.1 (also in `--san`, so the coordinator's
//   certificate names 127.0.0.1), "host:port" becomes the address the coordinator wrote
//   to its ready_file, and its listen_address becomes "127.0.0.1:0" (a port the OS chooses).
// - Files travel between machines only by the guide's own `scp FILE... HOST:DIR/` lines,
//   run as a copy from the machine the command runs on to the one HOST names (an
//   institution by its name, else the coordinator host). The walk copies no CSR, no
//   certificate and no task file itself: a file a config names that no command put there
//   fails the walk, naming it.
// - Config files the guide shows (coordinator.textproto, site.textproto, console.textproto)
//   are written from its own blocks, with the rewrites above, when a command first names
//   them (the console's: when TESSERA_CONSOLE_CONFIG names it), as the reader would with an
//   editor; the walk adds a ready_file where one is missing (site.textproto), and checks
//   that the sites hold the datasets of, and allow the spec hashes of, the files the guide
//   submits. Each site's CSVs are its share of the shipped deploy/data/*.csv
//   (SplitDataset), the one thing a test machine cannot have otherwise.
// - The guide shows one institution; the federation needs kDocSites, made with the same
//   commands under other names (a line naming the institution runs once per site).
// - Daemons (`tessera-coordinator --config ...`, `tessera-client run ...`) are started in
//   the background and waited for on their ready files; the test stops them with SIGTERM at
//   the end (each must exit 0). Lines that touch a site store (tar, mv) run with that site's
//   daemon stopped, as the guide says, and the daemon is started again after the block.
// - `tessera-client audit provenance FILE`: FILE, which the operator wrote, travels to the
//   site's working directory.
// - A site's decision (`tessera-client tasks show|approve|reject ID`): the site must have
//   seen the task first, which the guide's reader waits for with `tasks pending`; the walk
//   polls `tessera-client tasks pending` (with a deadline) until it lists ID. The sites'
//   working directories hold `deploy` too (the researcher sends them the task files).
// - `tessera tasks cancel task-1`: by then task-1 has completed (the guide waited for it),
//   and a finished task cannot be cancelled. The walk submits a second task that stays
//   running (it waits for one site more than there are), cancels that one instead, and
//   checks that it ends CANCELLED.
// - Section 7's restore: a line that touches the coordinator's store (names its data_dir,
//   or `--restore-from`) runs with the coordinator stopped, as the guide says, and
//   `tessera-coordinator --restore-from` runs as a command, not a daemon. A coordinator
//   started again gets `--listen` with the address it had, where the sites look for it.
//
// Ownership: the walk owns its temporary directory (removed when the walk is destroyed,
// unless TESSERA_KEEP_TEST_DIRS is set), its bash session and the daemons it started. A
// test stops those with daemons().StopAll() before the walk is destroyed, to check that each
// exits 0 on SIGTERM; any still running at destruction are stopped by ~Process.
//
// Errors: Run() stops at the first failure. A command that fails names the file, the block,
// the line (and the site), the command as written and as run, where it ran and the tails of
// its output; a rewrite the guide does not allow (a config it shows nowhere, a task id no
// submit printed, a submitted file no site holds the data of or allows) names the line too.
//
// Not thread-safe: one test thread drives a walk.
#ifndef TESSERA_TESTS_E2E_OPERATIONS_GUIDE_H_
#define TESSERA_TESTS_E2E_OPERATIONS_GUIDE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "tests/e2e/doc_runner.h"
#include "tests/e2e/process.h"
#include "tests/testing/temp_dir.h"

namespace tessera::e2e {

class OperationsGuideWalk {
 public:
  // Makes the temporary directory; runs nothing yet.
  OperationsGuideWalk() = default;
  OperationsGuideWalk(const OperationsGuideWalk&) = delete;
  OperationsGuideWalk& operator=(const OperationsGuideWalk&) = delete;

  // Reads docs/operations.md and runs its shell blocks, in order. Once per walk. NOT_FOUND
  // if the guide has no shell block or shows no `tessera-client keygen --name ...`.
  absl::Status Run();

  // The daemons Run started (the coordinator and the site daemons), for the test to stop.
  DocDaemons& daemons() { return daemons_; }

 private:
  // A machine of the federation: its file system root and where its commands run.
  struct Machine {
    std::string name;
    std::string root;
    std::string cwd;
  };

  // Set-up: the institutions, their machines and the operator's, the shell session.
  static absl::StatusOr<Machine> MakeMachine(const std::string& name, const std::string& root);
  absl::Status FindDocSite();
  absl::Status MakeMachines();
  absl::Status OpenSession();

  // Running: a block, a command once per site, one command on one machine.
  absl::Status RunBlock(const FencedBlock& block);
  absl::Status RunForEachSite(Where where, bool institution, std::set<int>& stopped);
  absl::Status RestartStopped(const FencedBlock& block, const std::set<int>& stopped);
  absl::Status RunGuideCommand(const Where& where, const std::string& as_written, Machine& machine,
                               int site);
  absl::StatusOr<std::string> RewriteCommand(const Where& where, const std::string& as_written,
                                             const Machine& machine) const;
  absl::StatusOr<std::string> RewriteCopy(const Where& where, const std::string& as_written,
                                          const Machine& machine) const;
  absl::Status CheckTaskIds(const Where& where, const std::vector<std::string>& words) const;
  absl::Status StopCoordinatorForItsStore(const Where& where);
  absl::Status StartGuideDaemon(const Where& where, const std::string& command,
                                const std::vector<std::string>& words, const Machine& machine);
  absl::StatusOr<CommandResult> RunOwn(const std::string& command, const std::string& cwd);
  absl::StatusOr<std::string> SpecHash(const std::string& file, const std::string& cwd);

  // Config files, written when a command first names them.
  absl::Status WriteGuideConfig(const Where& where, const std::string& program,
                                const std::string& name, const Machine& machine, int site);
  absl::StatusOr<std::string> GuideConfigText(const FencedBlock& block, const std::string& origin,
                                              const std::string& program, const Machine& machine,
                                              int site) const;
  template <typename Config>
  absl::StatusOr<std::string> CompleteConfig(const Where& where, const std::string& origin,
                                             const std::string& path, const std::string& program,
                                             const Machine& machine, std::string& text,
                                             Config& config);
  absl::Status CheckTlsFiles(const Where& where, const std::string& config_path,
                             const v1::TlsFiles& tls);
  absl::Status DeliverSiteData(const v1::ClientConfig& config, int site);
  std::vector<std::string> SubmittedFiles() const;
  absl::Status CheckSubmittedFiles(const std::string& origin, const v1::ClientConfig& config);
  absl::Status WriteConsoleConfig(const std::string& path);

  // After a command: what it made that the next ones need, and the checks it asks for.
  absl::Status AfterGuideCommand(const Where& where, const std::vector<std::string>& words,
                                 const CommandResult& result, const Machine& machine);
  absl::Status AfterExport(const Where& where, const std::vector<std::string>& words,
                           const Machine& machine);
  absl::Status AfterTasks(const Where& where, const std::vector<std::string>& words,
                          const CommandResult& result);
  absl::StatusOr<std::string> PrepareCancel(const Where& where, const std::string& command);

  // Chapter 6, for the site (operations_guide_site.cc).
  absl::Status BeforeSiteDecision(const Where& where, const std::vector<std::string>& words,
                                  const Machine& machine);
  absl::Status DeliverProvenance(const Where& where, const std::string& file,
                                 const Machine& machine);

  testing::TempDir temp_;
  std::unique_ptr<ShellSession> session_;
  DocDaemons daemons_{temp_.File("logs")};

  // The state of the walk.
  std::vector<FencedBlock> blocks_;
  std::string doc_site_;  // the institution the guide shows ("hospital-north")
  Machine host_;          // the coordinator host, the CA and the operator's workstation
  std::vector<Machine> sites_;
  std::map<std::string, Daemon*> site_daemons_;     // site -> its daemon (in daemons_)
  Daemon* coordinator_daemon_ = nullptr;            // its last start (in daemons_)
  std::string address_;                             // where the coordinator listens
  std::map<std::string, std::string> ready_files_;  // config path -> its daemon's ready file
  std::set<std::string> task_ids_;                  // ids a `tasks submit` printed
  std::string last_task_file_;                      // the last `tasks submit FILE`
  int commands_run_ = 0;
};

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_OPERATIONS_GUIDE_H_
