// Running the documentation's command blocks: the fenced blocks of a markdown file, the
// commands of a shell block (one per line, `\` continuations joined), a bash session that
// keeps exported variables from one command to the next, and the rewrites that move a
// command written for a real machine onto a test machine (absolute paths into a temporary
// root, example host names onto 127.0.0.1).
//
// It also holds what the docs tests share (docs_test.cc, operations_guide.h): where a
// documented command comes from, for messages (Where, Trace, Failed); which commands a
// test machine does not run (NotRunHere); the build folder and the data the docs name; and
// the daemons a test starts through a session (DocDaemons).
//
// The blocks are read at test time, so a test built on these runs the documentation as it
// is written now. Not thread-safe: one test thread drives a session.
#ifndef TESSERA_TESTS_E2E_DOC_RUNNER_H_
#define TESSERA_TESTS_E2E_DOC_RUNNER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/e2e/process.h"

namespace tessera::e2e {

// A fenced block (``` ... ```) of a markdown file.
struct FencedBlock {
  std::string file;  // as given to ReadFencedBlocks, for messages: "docs/operations.md"
  int line = 0;      // 1-based line of the opening fence
  std::string info;  // the fence's info string: "sh", "textproto", "" ...
  // The last non-blank line before the fence: the prose that introduces the block.
  std::string intro;
  // The block's lines (without the fences) and their 1-based line numbers.
  std::vector<std::pair<int, std::string>> lines;

  // The block's lines, each ending in '\n'.
  std::string Text() const;
  // True for the shell blocks a reader is told to type: ```sh, ```bash, ```shell.
  bool IsShell() const;
};

// Every fenced block of the markdown file at `path`, in order. `name` labels them.
// NOT_FOUND if the file cannot be read; INVALID_ARGUMENT if a fence is never closed.
absl::StatusOr<std::vector<FencedBlock>> ReadFencedBlocks(const std::string& path,
                                                          const std::string& name);

// The block that shows the file `file_name`: the one whose introducing prose starts with
// "`file_name`" ("`site.textproto` (a `ClientConfig`):"). Null if there is none.
const FencedBlock* FindFileBlock(const std::vector<FencedBlock>& blocks,
                                 const std::string& file_name);

// One command of a shell block: a line, with the lines a trailing `\` continues joined to it.
struct DocCommand {
  int line = 0;      // 1-based line where it starts
  std::string text;  // as written (comments after it included; bash ignores them)
};

// The commands of a shell block; blank and comment-only lines are left out.
std::vector<DocCommand> ShellCommands(const FencedBlock& block);
// The commands of every shell block of `blocks`, in order.
std::vector<DocCommand> ShellCommands(const std::vector<FencedBlock>& blocks);

// The command's words, split on blanks, up to a word that starts a comment. No quoting
// rules: for recognising commands and flags, not for running them.
std::vector<std::string> Words(const std::string& command);
// The value after `--flag` in `words` ("--flag VALUE" or "--flag=VALUE"); nullopt if absent.
std::optional<std::string> FlagValue(const std::vector<std::string>& words,
                                     const std::string& flag);

// `text` with the absolute paths a real machine has and a test machine must not touch —
// those starting /etc, /var/lib, /run, /root and /data — moved under `root` ("/etc/x" ->
// root + "/etc/x"). A path is recognised at the start of `text` or after a blank, a quote,
// '=', ',' or ':'.
std::string MapMachinePaths(const std::string& text, const std::string& root);

// `text` with the build folder of the documentation's build commands (`cmake -B build`
// in the clone: "$PWD/build/..." or a word starting "build/") replaced by `build_dir`, where
// CMake built the programs under test.
std::string MapBuildDir(const std::string& text, const std::string& build_dir);

// `text` with the documentation's example host names (RFC 2606: *.example.org, .com,
// .net) replaced: "host:port" by `address` (where the test's coordinator listens) and a
// bare host by 127.0.0.1. INVALID_ARGUMENT if `text` has a "host:port" and `address` is
// empty (the coordinator has not started yet).
absl::StatusOr<std::string> MapExampleHosts(const std::string& text, const std::string& address);

// A bash session: each command runs in its own `bash -c` (so that a failure is pinned to
// its line), in a given working directory, with the variables every earlier command
// exported (`export` in the documentation carries on to the next lines, as in a terminal).
// The state lives in a file under `state_dir`.
class ShellSession {
 public:
  // `exports`: the variables the session starts with (HOME, PATH, ...), on top of the test
  // process's own environment; `unset`: variables of that environment to remove.
  static absl::StatusOr<std::unique_ptr<ShellSession>> Create(
      const std::string& state_dir, const std::map<std::string, std::string>& exports,
      const std::vector<std::string>& unset = {});

  // Runs `command` with bash in `cwd` (`set -o pipefail`), capturing its output.
  // DEADLINE_EXCEEDED (after killing it) if it runs longer than `timeout`.
  absl::StatusOr<CommandResult> Run(const std::string& command, const std::string& cwd,
                                    absl::Duration timeout = absl::Seconds(60));

  // Starts `command` in the background (bash `exec`s it, so signals reach the program
  // itself) with its output appended to `log_path`.
  absl::StatusOr<std::unique_ptr<Process>> Start(const std::string& command, const std::string& cwd,
                                                 const std::string& log_path);

  // The value of an exported variable of the session; "" if unset.
  absl::StatusOr<std::string> Variable(const std::string& name);

 private:
  explicit ShellSession(std::string state_path) : state_path_(std::move(state_path)) {}
  std::string Prologue(const std::string& cwd) const;

  std::string state_path_;
};

// Single-quotes `s` for bash.
std::string ShellQuote(const std::string& s);

// --- What the docs tests share -------------------------------------------------------------

// Sites of a federation the docs tests make: min_clients of the example task and of the
// query, and docs/operations.md's policy.min_cohort.
inline constexpr int kDocSites = 3;

// The folder CMake built into: the console is <it>/console/tessera. The docs' build folder
// maps to it (MapBuildDir), so that the docs' `build/coordinator` and `build/client` are
// checked too.
std::string BuildDir();

// True, after a line on stderr saying why, for a documented command that is not run on a
// test machine: `bash deploy/install-deps.sh` (installs packages as root; CI runs it in
// deploy/test.sh) and the `cmake` / `ninja` lines (the test runs the programs CMake built
// for it).
bool NotRunHere(const FencedBlock& block, const DocCommand& command);

// Where a documented command comes from, for messages.
struct Where {
  const FencedBlock* block = nullptr;  // not owned; must outlive the Where
  int line = 0;
  std::string as_written;
  std::string site;  // the institution it was run for, if it runs once per institution

  // "file:line (the ```sh block at line N), for site S\n  as written: ...\n".
  std::string ToString() const;
};

// One line on stderr per command run: where it comes from and what ran.
void Trace(const Where& where, const std::string& ran);

// INTERNAL: where the command comes from, what ran in `cwd`, `why` it failed, and the last
// 40 lines of its stdout and stderr.
absl::Status Failed(const Where& where, const std::string& ran, const std::string& cwd,
                    const CommandResult& result, const std::string& why);

// The FILEs of `tessera query FILE` in `blocks`' shell blocks, in order.
std::vector<std::string> QueryFiles(const std::vector<FencedBlock>& blocks);

// The stem of the CSV under deploy/data/ that holds the rows of a dataset id the docs use
// ("breast_cancer" -> "breast_cancer_wisconsin"). NOT_FOUND for an id no CSV is known for.
absl::StatusOr<std::string> DatasetStem(const std::string& id);

// Makes `dir`/deploy a link to the source tree's deploy/: `dir` is then a clone of the
// repository as far as the docs' `deploy/...` paths go. INTERNAL if it cannot be made.
absl::Status LinkDeploy(const std::string& dir);

// A daemon a docs test starts in the background.
struct Daemon {
  std::string label;                 // "coordinator" or the site's id
  std::string command;               // as run by bash
  std::string cwd;                   // where it runs
  std::string ready_file;            // written by the daemon once it serves
  std::unique_ptr<Process> process;  // null until started
};

// The daemons of a docs test, in the order added. Owns them: one still running when this
// is destroyed is stopped by ~Process (SIGTERM, then SIGKILL). Not thread-safe.
class DocDaemons {
 public:
  // Their logs go to `log_dir`/<label>.log (the folder is made at the first start).
  explicit DocDaemons(std::string log_dir) : log_dir_(std::move(log_dir)) {}
  DocDaemons(const DocDaemons&) = delete;
  DocDaemons& operator=(const DocDaemons&) = delete;

  // A daemon, not started yet. The reference stays valid as long as this object.
  Daemon& Add(const std::string& label, const std::string& command, const std::string& cwd,
              const std::string& ready_file);

  // Starts `d` (again) through `session`, after removing an old ready file, and waits up to
  // 60 s for the ready file; returns its contents. INTERNAL if the old ready file cannot be
  // removed; otherwise the errors of ShellSession::Start and WaitForFile (with the log tail).
  absl::StatusOr<std::string> Start(ShellSession& session, Daemon& d);

  // SIGTERM, and waits up to 30 s: the daemon must exit 0. FAILED_PRECONDITION if it is not
  // running; DEADLINE_EXCEEDED if it has not ended by then; INTERNAL with how it ended and
  // its log tail if it did not exit 0.
  static absl::Status Stop(Daemon& d);

  // Stops every daemon still running, the sites before the coordinator (so that none is left
  // retrying against a coordinator that is gone): SIGTERM, then SIGKILL after 30 s. Returns a
  // message (with the log tail) per daemon that did not exit 0; empty if each did.
  std::vector<std::string> StopAll();

  // The last lines of every started daemon's log, on stderr (for a test that failed).
  void PrintLogs() const;

 private:
  // The sites, then the coordinator.
  std::vector<Daemon*> StopOrder() const;

  std::string log_dir_;
  std::vector<std::unique_ptr<Daemon>> daemons_;
};

// The rows of deploy/data/<stem>.csv dealt to `sites` sites, as deploy/demo.sh and the
// end-to-end fixture do: the rows listed in deploy/data/splits/<stem>.test_rows.txt
// round robin into the sites' test files, the others round robin into their training
// files. Each file starts with the CSV's header.
struct SiteShare {
  std::string train;
  std::string test;
  // train and test rows together (a site with no held-out file).
  std::string all;
};
absl::StatusOr<std::vector<SiteShare>> SplitDataset(const std::string& stem, int sites);

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_DOC_RUNNER_H_
