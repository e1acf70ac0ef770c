// Child processes for the end-to-end suite: daemons that run in the background with their
// output in a log file, and one-shot commands whose output the test reads.
//
// Every child is reaped: a Process sends SIGTERM (then SIGCONT, in case it was stopped)
// when destroyed, waits a bounded time, escalates to SIGKILL and waits for it. If the test
// binary itself dies of a signal (a crash, or ctest's timeout), a handler installed with the
// first child SIGKILLs every child still running, so no daemon outlives the suite.
//
// Children get an empty signal mask and default signal dispositions (whatever the test
// runner blocked or ignored), stdin from /dev/null, and inherit the environment.
//
// Not thread-safe: one test thread drives its processes.
#ifndef TESSERA_TESTS_E2E_PROCESS_H_
#define TESSERA_TESTS_E2E_PROCESS_H_

#include <sys/types.h>

#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tessera::e2e {

// How a child ended.
struct ExitStatus {
  // True if it called exit(); false if a signal ended it.
  bool exited = false;
  // exit() code when `exited`, the signal number otherwise.
  int code = 0;

  bool Succeeded() const { return exited && code == 0; }
  bool KilledBy(int signal) const { return !exited && code == signal; }
  // "exit code 1", "killed by signal 9 (Killed)".
  std::string ToString() const;
};

// The factor on the tests' waits for daemons: TESSERA_TEST_TIMEOUT_MULTIPLIER when set to a
// whole number above 1 (deploy/test.sh --sanitize exports it: sanitizer builds run several
// times slower), else 1.
int TimeoutMultiplier();

class Process {
 public:
  // Starts argv[0] (a path; no PATH lookup) with stdout and stderr appended to `log_path`.
  // INTERNAL naming the program if the spawn fails.
  static absl::StatusOr<std::unique_ptr<Process>> Start(const std::vector<std::string>& argv,
                                                        const std::string& log_path);

  // Terminate(): SIGTERM, bounded wait, SIGKILL; always reaps.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // The program's base name, for messages.
  const std::string& name() const { return name_; }

  // Sends `signal`. FAILED_PRECONDITION if the child was already reaped.
  absl::Status Kill(int signal);
  // SIGSTOP / SIGCONT: freezes and resumes the child.
  absl::Status Stop() { return Kill(SIGSTOP); }
  absl::Status Continue() { return Kill(SIGCONT); }

  // Waits up to `timeout` for the child to end and reaps it. DEADLINE_EXCEEDED (with the
  // log's tail) if it is still running then. After the first success, returns the same
  // status again at once.
  absl::StatusOr<ExitStatus> Wait(absl::Duration timeout);

  // True until the child has ended (reaps it without blocking if it has).
  bool Running();

  // SIGTERM (and SIGCONT), waits up to `grace` (times TimeoutMultiplier()), then SIGKILL
  // and waits. Returns how the child ended.
  // Idempotent.
  ExitStatus Terminate(absl::Duration grace = absl::Seconds(10));

  // The whole log, and its last `lines` lines.
  std::string Log() const;
  std::string LogTail(int lines = 40) const;

 private:
  Process(pid_t pid, std::string name, std::string log_path);
  // Non-blocking reap; true if the child has ended (status in exit_).
  bool Reap();

  pid_t pid_;
  std::string name_;
  std::string log_path_;
  std::optional<ExitStatus> exit_;
};

// Polls every few milliseconds until `path` exists and is non-empty, and returns its
// contents. Fails fast if `owner` (the process expected to write it) has ended, and with
// DEADLINE_EXCEEDED after `timeout` (times TimeoutMultiplier()); both messages carry the
// owner's log tail.
absl::StatusOr<std::string> WaitForFile(const std::string& path, Process& owner,
                                        absl::Duration timeout = absl::Seconds(60));

// Polls `condition` every few milliseconds until it returns true; DEADLINE_EXCEEDED
// naming `what` after `timeout` (times TimeoutMultiplier()).
absl::Status WaitFor(const std::string& what, const std::function<bool()>& condition,
                     absl::Duration timeout);

struct CommandResult {
  ExitStatus status;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr
  // Exit code, or -1 if a signal ended the command.
  int exit_code() const { return status.exited ? status.code : -1; }
};

// Runs a command to completion, capturing stdout and stderr. DEADLINE_EXCEEDED (after
// killing it) if it runs longer than `timeout`.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout = absl::Seconds(120));

// A TCP port on 127.0.0.1 that the OS just handed out and that nothing listens on now
// (bound to port 0, read back, closed). Another process could take it in between; the
// OS cycles through its ephemeral range before reusing a number, which makes that rare.
absl::StatusOr<int> ReserveLoopbackPort();

// The file's contents, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// The last `lines` lines of `text`.
std::string Tail(const std::string& text, int lines);

// What /proc says of a live process: its number of threads and its peak resident set size
// in bytes (/proc/PID/status "Threads", "VmHWM"), -1 if unreadable; its user + system CPU
// time so far in seconds (/proc/PID/stat), -1 if unreadable.
int ThreadCount(int pid);
int64_t PeakResidentBytes(int pid);
// Its resident set size now in bytes (/proc/PID/status "VmRSS"), -1 if unreadable.
int64_t ResidentBytes(int pid);
double CpuSeconds(int pid);

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_PROCESS_H_
