// tessera-coordinator-under-test: the coordinator daemon (coordinator::RunCoordinator, the
// very code tessera-coordinator runs) with a StageObserver that kills the process at a
// named crash point of a secure-aggregation session, as a crash would (crash_points.h: the
// points, TESSERA_TEST_CRASH_AT=<name> and TESSERA_TEST_CRASH_ONCE_FILE=<path>). Test code
// only, built with the test-only flag TESSERA_TEST_CRASH_POINTS: it is never installed, and
// tessera-coordinator has no such hook.
//
// Usage: tessera-coordinator-under-test --config FILE [--listen ADDR] [--ready-file FILE]
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/signals.h"
#include "common/status.h"
#include "coordinator/secure_stage.h"
#include "coordinator/server.h"
#include "crypto/tls.h"
#include "proto/config.pb.h"
#include "proto/validation.h"
#include "tests/e2e/crash_points.h"

namespace {

using ::tessera::e2e::CrashMoment;
using ::tessera::e2e::CrashPoint;

// Stops the process at its crash point (if any).
class Crasher final : public tessera::coordinator::StageObserver {
 public:
  explicit Crasher(std::optional<CrashPoint> point) : point_(point) {}

  void StepPersisted(const std::string& session, tessera::v1::SecAggRound step) override {
    At(CrashMoment::kStepPersisted, session, step);
  }
  void AnswerAccepted(const std::string& session, tessera::v1::SecAggRound step,
                      const std::string& client) override {
    At(CrashMoment::kMidStep, session, step);
  }
  void SessionEnded(const std::string& session,
                    const tessera::coordinator::SecureStageResult& result) override {
    if (result.completed) At(CrashMoment::kSessionEnded, session, tessera::v1::SECAGG_UNMASKING);
  }

 private:
  void At(CrashMoment moment, const std::string& session, tessera::v1::SecAggRound step) {
    if (point_.has_value() && point_->moment == moment && point_->InSession(session, step)) {
      tessera::e2e::CrashHere(*point_);
    }
  }

  const std::optional<CrashPoint> point_;
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
  ASSIGN_OR_RETURN(std::optional<CrashPoint> point, tessera::e2e::CrashPointFromEnvironment(
                                                        tessera::e2e::CrashDaemon::kCoordinator));
  static Crasher* crasher = new Crasher(point);  // observes until exit
  static absl::Notification stop;
  tessera::common::StopOnTerminationSignal(&stop);
  return tessera::coordinator::RunCoordinator(config, &stop, crasher);
}

}  // namespace

int main(int argc, char** argv) {
  tessera::crypto::KeepGrpcReadBuffersSmall();  // as tessera-coordinator does
  absl::Status st = Run(argc, argv);
  if (!st.ok()) {
    std::fprintf(stderr, "tessera-coordinator-under-test: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
