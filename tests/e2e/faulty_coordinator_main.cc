// tessera-coordinator-under-test: the coordinator daemon (coordinator::RunCoordinator, the
// very code tessera-coordinator runs) with a StageObserver that kills the process at a
// chosen point of a secure-aggregation session, as a crash would. Test code only: it is
// never installed, and tessera-coordinator has no such hook. Configured from the
// environment:
//
//   TESSERA_TEST_KILL_AT=<stage>/<step>[/<session count>]
//       SIGKILL right after the state before <step> of a <stage> session is persisted, before
//       the step's items are posted ("fit/masked_input": after share_keys closed); with a
//       count, at the count-th such session (default 1)
//   TESSERA_TEST_KILL_MID=<stage>/<step>[/<session count>]
//       SIGKILL right after the first answer to <step> is accepted: mid-step
//   TESSERA_TEST_KILL_ONCE_FILE=<path>
//       kill only if <path> does not exist, creating it first (so the restarted coordinator,
//       started with the same environment, runs on)
//
// Usage: tessera-coordinator-under-test --config FILE [--listen ADDR] [--ready-file FILE]
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/proto_text.h"
#include "common/signals.h"
#include "common/status.h"
#include "coordinator/secure_stage.h"
#include "coordinator/server.h"
#include "proto/config.pb.h"
#include "proto/labels.h"
#include "proto/validation.h"

namespace {

struct KillPoint {
  std::string stage;  // "fit"
  std::string step;   // "masked_input"
  int nth = 1;
  bool armed = false;
};

KillPoint Parse(const char* variable) {
  KillPoint point;
  const char* value = std::getenv(variable);
  if (value == nullptr) return point;
  std::vector<std::string> parts = absl::StrSplit(value, '/');
  if (parts.size() < 2) return point;
  point.stage = parts[0];
  point.step = parts[1];
  if (parts.size() > 2 && !absl::SimpleAtoi(parts[2], &point.nth)) return point;
  point.armed = true;
  return point;
}

// "task-1/r1/fit/a1" -> "fit".
std::string StageOf(const std::string& session) {
  std::vector<std::string> parts = absl::StrSplit(session, '/');
  return parts.size() >= 3 ? parts[2] : "";
}

class Killer final : public tessera::coordinator::StageObserver {
 public:
  Killer() : at_(Parse("TESSERA_TEST_KILL_AT")), mid_(Parse("TESSERA_TEST_KILL_MID")) {
    const char* once = std::getenv("TESSERA_TEST_KILL_ONCE_FILE");
    if (once != nullptr) once_file_ = once;
  }

  void StepPersisted(const std::string& session, tessera::v1::SecAggRound step) override {
    if (Matches(at_, session, step, &at_seen_)) Die("after persisting", session, step);
  }
  void AnswerAccepted(const std::string& session, tessera::v1::SecAggRound step,
                      const std::string& client) override {
    if (Matches(mid_, session, step, &mid_seen_)) Die("mid-step", session, step);
  }

 private:
  // Counts the sessions that reach the point; true at the nth (once per session).
  bool Matches(const KillPoint& point, const std::string& session, tessera::v1::SecAggRound step,
               std::vector<std::string>* seen) {
    absl::MutexLock lock(&mu_);
    if (!point.armed || StageOf(session) != point.stage ||
        tessera::proto::StepLabel(step) != point.step) {
      return false;
    }
    for (const std::string& s : *seen) {
      if (s == session) return false;
    }
    seen->push_back(session);
    return static_cast<int>(seen->size()) == point.nth;
  }

  void Die(const char* where, const std::string& session, tessera::v1::SecAggRound step) {
    if (!once_file_.empty()) {
      const int fd = ::open(once_file_.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
      if (fd < 0) return;  // killed once already: run on
      ::close(fd);
    }
    tessera::common::LogWarning("test_fault_kill")
        .With("where", where)
        .With("session", session)
        .With("step", tessera::proto::StepLabel(step));
    std::raise(SIGKILL);
  }

  const KillPoint at_;
  const KillPoint mid_;
  std::string once_file_;
  absl::Mutex mu_;  // answers arrive on several threads
  std::vector<std::string> at_seen_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> mid_seen_ ABSL_GUARDED_BY(mu_);
};

absl::Status Run(int argc, char** argv) {
  std::string path, listen, ready_file;
  tessera::common::FlagParser flags("tessera-coordinator-under-test --config FILE [flags]",
                                    "tessera-coordinator with injected faults (tests only).");
  flags.AddString("config", &path, "CoordinatorConfig file");
  flags.AddString("listen", &listen, "override listen_address");
  flags.AddString("ready-file", &ready_file, "override ready_file");
  flags.Require("config");
  ASSIGN_OR_RETURN(std::vector<std::string> positional,
                   flags.Parse(std::vector<std::string>(argv + 1, argv + argc)));
  if (!positional.empty()) return absl::InvalidArgumentError("unexpected argument");
  tessera::v1::CoordinatorConfig config;
  tessera::common::TextLocations where;
  RETURN_IF_ERROR(tessera::common::LoadProtoFile(path, &config, &where));
  if (!listen.empty()) config.set_listen_address(listen);
  if (!ready_file.empty()) config.set_ready_file(ready_file);
  RETURN_IF_ERROR(tessera::common::FieldErrorsToStatus(
      tessera::proto::ValidateCoordinatorConfig(config), path, &where));
  tessera::proto::ApplyCoordinatorDefaults(&config);
  static Killer killer;
  static absl::Notification stop;
  tessera::common::StopOnTerminationSignal(&stop);
  return tessera::coordinator::RunCoordinator(config, &stop, &killer);
}

}  // namespace

int main(int argc, char** argv) {
  absl::Status st = Run(argc, argv);
  if (!st.ok()) {
    std::fprintf(stderr, "tessera-coordinator-under-test: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
