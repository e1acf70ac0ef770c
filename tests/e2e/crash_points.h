// The named points at which the crash campaign (crash_campaign_test.cc) stops a daemon, and
// the code that stops it there. Test code only: the point is reached through the test builds
// of the daemons (faulty_coordinator_main.cc: a StageObserver; faulty_client_main.cc: an
// UpdateSink wrapper), which are never installed; tessera-coordinator and tessera-client have
// no such hook, and this header refuses to compile without the test-only build flag
// TESSERA_TEST_CRASH_POINTS that tests/e2e/CMakeLists.txt gives the test targets only.
//
// A test picks a point by its name in the test daemon's environment
// (TESSERA_TEST_CRASH_AT=<name>); a name that is not in the set stops the daemon at start
// with an error listing the names. Names:
//
//   coordinator/<stage>/<step>/step_persisted  the state before <step> of the stage's session
//                                              is durable, the step's items not yet posted
//   coordinator/<stage>/<step>/mid_step        the step accepted its first answer; the
//                                              others are still outstanding
//   coordinator/<stage>/session_ended          the session has its sum (unmasking closed);
//                                              nothing of the sum is stored yet
//   site/<stage>/<step>/before_send            the site store recorded the site's answer to
//                                              the step; the answer has not left
//   site/<stage>/<step>/after_send             the answer was delivered; the site dies
//                                              before it hears the step close
//
// <stage>: statistics, fit, fit_evaluate, evaluate (a training task's), analytics (a
// query's); <step>: advertise_keys, share_keys, masked_input, consistency_check, unmasking.
// The daemon stops in the session of the point's round (0 for statistics, kFitRound for fit,
// kCrashRound for fit_evaluate, kEvaluateRound for evaluate, kAnalyticsRound for analytics)
// by SIGKILL, after logging
// "event=test_crash point=<name>"; with TESSERA_TEST_CRASH_ONCE_FILE=<path> only if that file
// did not exist (it is created first), so that a daemon restarted with the same environment
// runs on.
#ifndef TESSERA_TESTS_E2E_CRASH_POINTS_H_
#define TESSERA_TESTS_E2E_CRASH_POINTS_H_

#ifndef TESSERA_TEST_CRASH_POINTS
#error "crash points are test-only: link tessera_test_crash_points (tests/e2e/CMakeLists.txt)"
#endif

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"

namespace tessera::e2e {

inline constexpr char kCrashAtVariable[] = "TESSERA_TEST_CRASH_AT";
inline constexpr char kCrashOnceFileVariable[] = "TESSERA_TEST_CRASH_ONCE_FILE";
// The rounds of the campaign's three-round training task whose sessions the points stop
// (one session per round): round 1 is a plain fit (no earlier model to evaluate), round 2
// a fit_evaluate, and round 3, the last, is followed by its model's own evaluate session.
inline constexpr uint32_t kFitRound = 1;
inline constexpr uint32_t kCrashRound = 2;
inline constexpr uint32_t kEvaluateRound = 3;
// The round of a query's only session (coordinator/task_runner_statistics.cc).
inline constexpr uint32_t kAnalyticsRound = 1;
// The Newton round of an exact regression whose glm session a point stops: the first after
// the start (round 1 at beta = 0, round 2 at the start).
inline constexpr uint32_t kGlmRound = 3;

enum class CrashDaemon { kCoordinator, kSite };
enum class CrashMoment { kStepPersisted, kMidStep, kSessionEnded, kBeforeSend, kAfterSend };

struct CrashPoint {
  CrashDaemon daemon = CrashDaemon::kCoordinator;
  v1::Stage stage = v1::STAGE_UNSPECIFIED;
  // SECAGG_UNMASKING for kSessionEnded.
  v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
  CrashMoment moment = CrashMoment::kStepPersisted;

  // "coordinator/fit/masked_input/step_persisted" (see above).
  std::string Name() const;
  // The round whose session it stops (a test session's is the selected round: any).
  uint32_t Round() const;
  // The session it stops, "<task>/r<round>/<stage>/a1".
  std::string Session(const std::string& task_id) const;
  // That session's work id for the point's step, "<session>/s<step - 1>".
  std::string WorkId(const std::string& task_id) const;
  // Whether a session labelled `session` ("task-1/r2/fit/a1") at `step` is the point's.
  bool InSession(const std::string& session, v1::SecAggRound step) const;
};

// Every point the campaign walks: for the coordinator, every (stage x step) at
// step_persisted, a mid_step at masked_input and session_ended per stage; for a site, every
// (stage x step) at before_send and an after_send at masked_input per stage.
const std::vector<CrashPoint>& AllCrashPoints();

// Points in an exact regression's glm sessions (round kGlmRound), named as the others
// ("coordinator/glm/masked_input/step_persisted"): recognised by the test daemons for the
// GLM tests (glm_e2e_test.cc), not walked by the campaign (its task is a training one).
const std::vector<CrashPoint>& GlmCrashPoints();

// Points in the test session of a task with a validation split (whatever round it
// selected: InSession matches any), named "coordinator/test/masked_input/step_persisted" and
// so on: for early_stopping_e2e_test.cc, not walked by the campaign.
const std::vector<CrashPoint>& TestStageCrashPoints();

// A point's name as a gtest parameter name: "coordinator_glm_session_ended".
std::string CrashPointTestName(std::string name);

// The point named `name` (of AllCrashPoints, GlmCrashPoints or TestStageCrashPoints);
// INVALID_ARGUMENT listing the names if there is none.
absl::StatusOr<CrashPoint> FindCrashPoint(const std::string& name);

// The point kCrashAtVariable names for a daemon of kind `daemon`: nullopt when the variable
// is unset; INVALID_ARGUMENT if it names no point of that daemon.
absl::StatusOr<std::optional<CrashPoint>> CrashPointFromEnvironment(CrashDaemon daemon);

// Logs "event=test_crash point=<name>" and SIGKILLs the process, unless the once file
// (kCrashOnceFileVariable) says it happened already. Returns only in that case.
void CrashHere(const CrashPoint& point);

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_CRASH_POINTS_H_
