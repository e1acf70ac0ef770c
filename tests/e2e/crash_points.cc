#include "tests/e2e/crash_points.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "proto/labels.h"

namespace tessera::e2e {
namespace {

constexpr v1::Stage kStages[] = {v1::STAGE_STATISTICS, v1::STAGE_FIT, v1::STAGE_FIT_EVALUATE,
                                 v1::STAGE_EVALUATE, v1::STAGE_ANALYTICS};
constexpr v1::SecAggRound kSteps[] = {v1::SECAGG_ADVERTISE_KEYS, v1::SECAGG_SHARE_KEYS,
                                      v1::SECAGG_MASKED_INPUT, v1::SECAGG_CONSISTENCY_CHECK,
                                      v1::SECAGG_UNMASKING};

const char* MomentLabel(CrashMoment moment) {
  switch (moment) {
    case CrashMoment::kStepPersisted:
      return "step_persisted";
    case CrashMoment::kMidStep:
      return "mid_step";
    case CrashMoment::kSessionEnded:
      return "session_ended";
    case CrashMoment::kBeforeSend:
      return "before_send";
    case CrashMoment::kAfterSend:
      return "after_send";
  }
  return "unknown";
}

std::vector<CrashPoint> MakeAll() {
  std::vector<CrashPoint> all;
  for (v1::Stage stage : kStages) {
    for (v1::SecAggRound step : kSteps) {
      all.push_back({CrashDaemon::kCoordinator, stage, step, CrashMoment::kStepPersisted});
    }
    all.push_back(
        {CrashDaemon::kCoordinator, stage, v1::SECAGG_MASKED_INPUT, CrashMoment::kMidStep});
    all.push_back(
        {CrashDaemon::kCoordinator, stage, v1::SECAGG_UNMASKING, CrashMoment::kSessionEnded});
  }
  for (v1::Stage stage : kStages) {
    for (v1::SecAggRound step : kSteps) {
      all.push_back({CrashDaemon::kSite, stage, step, CrashMoment::kBeforeSend});
    }
    all.push_back({CrashDaemon::kSite, stage, v1::SECAGG_MASKED_INPUT, CrashMoment::kAfterSend});
  }
  return all;
}

// A stage's points outside the campaign: the coordinator at every step's boundary and at
// the session's end, a site before each step's answer leaves.
std::vector<CrashPoint> StagePoints(v1::Stage stage) {
  std::vector<CrashPoint> points;
  for (v1::SecAggRound step : kSteps) {
    points.push_back({CrashDaemon::kCoordinator, stage, step, CrashMoment::kStepPersisted});
    points.push_back({CrashDaemon::kSite, stage, step, CrashMoment::kBeforeSend});
  }
  points.push_back(
      {CrashDaemon::kCoordinator, stage, v1::SECAGG_UNMASKING, CrashMoment::kSessionEnded});
  return points;
}

}  // namespace

std::string CrashPoint::Name() const {
  const char* who = daemon == CrashDaemon::kCoordinator ? "coordinator" : "site";
  if (moment == CrashMoment::kSessionEnded) {
    return absl::StrCat(who, "/", proto::StageLabel(stage), "/", MomentLabel(moment));
  }
  return absl::StrCat(who, "/", proto::StageLabel(stage), "/", proto::StepLabel(step), "/",
                      MomentLabel(moment));
}

uint32_t CrashPoint::Round() const {
  switch (stage) {
    case v1::STAGE_STATISTICS:
      return 0;
    case v1::STAGE_ANALYTICS:
      return kAnalyticsRound;
    case v1::STAGE_FIT:
      return kFitRound;
    case v1::STAGE_EVALUATE:
      return kEvaluateRound;
    case v1::STAGE_GLM:
      return kGlmRound;
    default:
      return kCrashRound;
  }
}

std::string CrashPoint::Session(const std::string& task_id) const {
  return absl::StrCat(task_id, "/r", Round(), "/", proto::StageLabel(stage), "/a1");
}

std::string CrashPoint::WorkId(const std::string& task_id) const {
  return absl::StrCat(Session(task_id), "/s",
                      static_cast<int>(step) - static_cast<int>(v1::SECAGG_ADVERTISE_KEYS));
}

bool CrashPoint::InSession(const std::string& session, v1::SecAggRound at) const {
  // "<task>/r<round>/<stage>/a<attempt>": any task, any attempt (a test session: any round,
  // the selected one).
  const std::string middle = stage == v1::STAGE_TEST
                                 ? std::string("/test/a")
                                 : absl::StrCat("/r", Round(), "/", proto::StageLabel(stage), "/a");
  return at == step && session.find(middle) != std::string::npos;
}

const std::vector<CrashPoint>& AllCrashPoints() {
  static const std::vector<CrashPoint>* all = new std::vector<CrashPoint>(MakeAll());
  return *all;
}

const std::vector<CrashPoint>& GlmCrashPoints() {
  static const std::vector<CrashPoint>* glm =
      new std::vector<CrashPoint>(StagePoints(v1::STAGE_GLM));
  return *glm;
}

const std::vector<CrashPoint>& TestStageCrashPoints() {
  static const std::vector<CrashPoint>* test =
      new std::vector<CrashPoint>(StagePoints(v1::STAGE_TEST));
  return *test;
}

std::string CrashPointTestName(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

absl::StatusOr<CrashPoint> FindCrashPoint(const std::string& name) {
  std::vector<std::string> names;
  for (const std::vector<CrashPoint>* points :
       {&AllCrashPoints(), &GlmCrashPoints(), &TestStageCrashPoints()}) {
    for (const CrashPoint& point : *points) {
      if (point.Name() == name) return point;
      names.push_back(point.Name());
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no crash point \"", name, "\"; the points: ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<std::optional<CrashPoint>> CrashPointFromEnvironment(CrashDaemon daemon) {
  const char* name = std::getenv(kCrashAtVariable);
  if (name == nullptr) return std::nullopt;
  absl::StatusOr<CrashPoint> point = FindCrashPoint(name);
  if (!point.ok()) return point.status();
  if (point->daemon != daemon) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCrashAtVariable, "=", name, " is a point of another daemon"));
  }
  return *point;
}

void CrashHere(const CrashPoint& point) {
  if (const char* once = std::getenv(kCrashOnceFileVariable); once != nullptr) {
    const int fd = ::open(once, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0) return;  // crashed here once already: run on
    ::close(fd);
  }
  common::LogWarning("test_crash").With("point", point.Name());
  std::raise(SIGKILL);
}

}  // namespace tessera::e2e
