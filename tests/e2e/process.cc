#include "tests/e2e/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace tessera::e2e {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(5);

// Children not yet reaped, for the fatal-signal handler. Lock-free so the handler may read it.
constexpr size_t kMaxChildren = 256;
std::array<std::atomic<pid_t>, kMaxChildren> g_children{};

void KillChildrenAndDie(int signal) {
  for (std::atomic<pid_t>& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  // SA_RESETHAND restored the default action; SA_NODEFER lets it act now.
  ::raise(signal);
}

void InstallFatalSignalHandlerOnce() {
  static const bool installed = [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = KillChildrenAndDie;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND | SA_NODEFER;
    for (int signal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTERM, SIGINT, SIGHUP}) {
      ::sigaction(signal, &action, nullptr);
    }
    return true;
  }();
  (void)installed;
}

void RegisterChild(pid_t pid) {
  for (std::atomic<pid_t>& slot : g_children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
  // More than kMaxChildren alive at once: the destructor still reaps it.
}

void UnregisterChild(pid_t pid) {
  for (std::atomic<pid_t>& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus out;
  if (WIFEXITED(status)) {
    out.exited = true;
    out.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.code = WTERMSIG(status);
  }
  return out;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// posix_spawn with stdin from /dev/null, stdout/stderr on the given descriptors, an empty
// signal mask and every catchable signal at its default action.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  InstallFatalSignalHandlerOnce();
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s = 1; s < 32; ++s) {
    if (s != SIGKILL && s != SIGSTOP) sigaddset(&defaults, s);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }
  RegisterChild(pid);
  return pid;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return absl::StrCat("exit code ", code);
  return absl::StrCat("killed by signal ", code, " (", strsignal(code), ")");
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string Tail(const std::string& text, int lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  while (lines-- > 0 && pos > 0) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return pos == 0 ? text : text.substr(pos + 1);
}

Process::Process(pid_t pid, std::string name, std::string log_path)
    : pid_(pid), name_(std::move(name)), log_path_(std::move(log_path)) {}

absl::StatusOr<std::unique_ptr<Process>> Process::Start(const std::vector<std::string>& argv,
                                                        const std::string& log_path) {
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", log_path, ": ", std::strerror(errno)));
  }
  absl::StatusOr<pid_t> pid = Spawn(argv, log_fd, log_fd);
  ::close(log_fd);
  if (!pid.ok()) return pid.status();
  return std::unique_ptr<Process>(new Process(*pid, BaseName(argv[0]), log_path));
}

Process::~Process() { Terminate(); }

bool Process::Reap() {
  if (exit_.has_value()) return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return false;
  if (r == pid_) {
    exit_ = FromWaitStatus(status);
  } else {
    // ECHILD: someone else reaped it; nothing more to learn.
    exit_ = ExitStatus{false, 0};
  }
  UnregisterChild(pid_);
  return true;
}

bool Process::Running() { return !Reap(); }

absl::Status Process::Kill(int signal) {
  if (exit_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name_, " (pid ", pid_, ") has already ended: ", exit_->ToString()));
  }
  // A zombie still accepts signals; Wait() tells how it ended.
  if (::kill(pid_, signal) != 0) {
    return absl::InternalError(
        absl::StrCat("kill(", pid_, ", ", signal, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Reap()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(name_, " (pid ", pid_, ") still running after ",
                       absl::FormatDuration(timeout), "; its log ends with:\n", LogTail()));
    }
    absl::SleepFor(kPollInterval);
  }
  return *exit_;
}

int TimeoutMultiplier() {
  int multiplier = 1;
  if (const char* m = std::getenv("TESSERA_TEST_TIMEOUT_MULTIPLIER"); m != nullptr) {
    if (!absl::SimpleAtoi(m, &multiplier) || multiplier < 1) multiplier = 1;
  }
  return multiplier;
}

ExitStatus Process::Terminate(absl::Duration grace) {
  if (Reap()) return *exit_;
  // Sanitizer builds run everything several times slower, stopping a daemon too.
  grace *= TimeoutMultiplier();
  ::kill(pid_, SIGTERM);
  ::kill(pid_, SIGCONT);  // a stopped child only acts on SIGTERM once it runs again
  if (Wait(grace).ok()) return *exit_;
  ::kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exit_ = r == pid_ ? FromWaitStatus(status) : ExitStatus{false, SIGKILL};
  UnregisterChild(pid_);
  return *exit_;
}

std::string Process::Log() const { return ReadFileOrEmpty(log_path_); }

std::string Process::LogTail(int lines) const { return Tail(Log(), lines); }

absl::StatusOr<std::string> WaitForFile(const std::string& path, Process& owner,
                                        absl::Duration timeout) {
  timeout *= TimeoutMultiplier();  // sanitizer runs are slower
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string contents = ReadFileOrEmpty(path);
    if (!contents.empty()) return contents;
    if (!owner.Running()) {
      absl::StatusOr<ExitStatus> how = owner.Wait(absl::ZeroDuration());
      return absl::FailedPreconditionError(
          absl::StrCat(owner.name(), " ended (", how.ok() ? how->ToString() : "?",
                       ") before writing ", path, "; its log ends with:\n", owner.LogTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(owner.name(), " did not write ", path,
                                                      " within ", absl::FormatDuration(timeout),
                                                      "; its log ends with:\n", owner.LogTail()));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status WaitFor(const std::string& what, const std::function<bool()>& condition,
                     absl::Duration timeout) {
  timeout *= TimeoutMultiplier();  // sanitizer runs are slower
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    absl::SleepFor(kPollInterval);
  }
  return absl::OkStatus();
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return absl::InternalError("pipe2 failed");
  }
  absl::StatusOr<pid_t> pid = Spawn(argv, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (!pid.ok()) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return pid.status();
  }

  CommandResult result;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  bool timed_out = false;
  const absl::Time deadline = absl::Now() + timeout;
  while (open_fds > 0) {
    int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait_ms <= 0) {
      timed_out = true;
      break;
    }
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (struct pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  if (timed_out) ::kill(*pid, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(*pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  UnregisterChild(*pid);
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " did not finish within ", absl::FormatDuration(timeout),
                     "; stdout:\n", Tail(result.out, 20), "\nstderr:\n", Tail(result.err, 20)));
  }
  result.status = FromWaitStatus(status);
  return result;
}

absl::StatusOr<int> ReserveLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  struct sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", std::strerror(err)));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

namespace {

// The value of `key` ("Threads", "VmHWM") in /proc/PID/status, -1 if none.
int64_t StatusField(int pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, key + ":")) continue;
    // A view of `line`, not of a temporary substring.
    absl::string_view value =
        absl::StripAsciiWhitespace(absl::string_view(line).substr(key.size() + 1));
    value = absl::StripSuffix(value, " kB");
    int64_t number = 0;
    if (absl::SimpleAtoi(value, &number)) return number;
  }
  return -1;
}

}  // namespace

int ThreadCount(int pid) { return static_cast<int>(StatusField(pid, "Threads")); }

int64_t PeakResidentBytes(int pid) {
  const int64_t kib = StatusField(pid, "VmHWM");
  return kib < 0 ? -1 : kib * 1024;
}

int64_t ResidentBytes(int pid) {
  const int64_t kib = StatusField(pid, "VmRSS");
  return kib < 0 ? -1 : kib * 1024;
}

double CpuSeconds(int pid) {
  const std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  // The command name (field 2) is in parentheses and may hold spaces: count from its end.
  // After it come the state (field 3) ... utime (field 14) and stime (field 15).
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  int64_t utime = 0;
  int64_t stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace tessera::e2e
