// The crash campaign (issue 11, "Crash at every step, as a test"; first issue 7's kill
// campaign): with real daemons, the coordinator or a site is SIGKILLed at a named crash point
// (crash_points.h: the test-only daemons stop themselves there) and restarted, and the task
// must complete with a model bit-identical to an uninterrupted run: every round's model hash
// and metrics, and the last checkpoint's floats bit for bit. The points walk every (stage x
// secure-aggregation step) of the statistics (round 0), fit and evaluate sessions (round 2)
// for both daemons, and every step of a query's analytics session (round 1 of a task of its
// own): the coordinator right after the state before the step is durable, a
// site after recording its answer and before sending it; plus, per stage, the coordinator
// mid-step (after the first masked input was accepted) and after the session had its sum
// but stored nothing of it, and a site right after its masked input was delivered. The
// sessions are continued, not redone (the sites would refuse to contribute twice): every
// round takes one attempt and drops nobody.
//
// Each crash point is its own test (TEST_P, ~3 s alone, ~6 s under ctest -j2). A
// representative few run by default (kDefaultPoints); the whole campaign with
// TESSERA_LONG_TESTS=1, e.g.
//   TESSERA_LONG_TESTS=1 ctest --test-dir build -R CrashCampaign -j2
// Each test makes its own uninterrupted reference run first (in the same directory, whose
// stores are then wiped); a process that runs several crash points (gtest_filter) makes it
// once and reuses it: the model depends only on the data and the seeds, not on the
// certificates or the masks (which cancel exactly in the sum).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_text.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/crash_points.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {

// Names the point in gtest's output (rather than dumping the struct's bytes); found by
// argument-dependent lookup, so in CrashPoint's namespace.
void PrintTo(const CrashPoint& point, std::ostream* os) { *os << point.Name(); }

namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uint32_t kRounds = 3;
constexpr char kOnceFile[] = "crash-once";
constexpr char kVictim[] = "hospital-b";

// The points that run without TESSERA_LONG_TESTS=1: one of each kind, over the stages.
const char* const kDefaultPoints[] = {
    "coordinator/fit/masked_input/step_persisted",
    "coordinator/evaluate/consistency_check/step_persisted",
    "coordinator/fit_evaluate/masked_input/mid_step",
    "coordinator/statistics/session_ended",
    "site/fit_evaluate/consistency_check/before_send",
    "site/fit_evaluate/masked_input/after_send",
    "site/evaluate/masked_input/after_send",
    "coordinator/analytics/share_keys/step_persisted",
};

bool ByDefault(const CrashPoint& point) {
  for (const char* name : kDefaultPoints) {
    if (point.Name() == name) return true;
  }
  return false;
}

// gtest's name for a point: "coordinator_fit_masked_input_step_persisted".
std::string TestName(const CrashPoint& point) {
  std::string name = point.Name();
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

bool LongTests() {
  const char* v = std::getenv("TESSERA_LONG_TESTS");
  return v != nullptr && std::string(v) == "1";
}

// How many times `needle` occurs in `text`.
int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

bool Finished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

// What a completed run committed.
struct Outcome {
  std::vector<v1::RoundRecord> rounds;
  std::vector<float> last_checkpoint;  // empty for a query
};

// The query of the analytics points: a filter and a histogram, so counts, sums and sums of
// squares are in the sum.
constexpr char kQuery[] = R"pb(
  name: "malignant-radius"
  dataset { id: "breast_cancer" }
  analytics {
    queries {
      column: "mean_radius"
      histogram_edges: [ 15, 20 ]
    }
    queries { column: "worst_area" }
    filter { column: "malignant" op: EQ value: 1 }
    min_cohort: 3
  }
)pb";

bool IsQuery(const CrashPoint& point) { return point.stage == v1::STAGE_ANALYTICS; }

// The uninterrupted run of the training task or of the query, made once per process each.
std::optional<Outcome>& Reference(bool query) {
  static std::optional<Outcome> training, analytics;
  return query ? analytics : training;
}

// Bit-identical floats: the same bytes, not merely == (which would take -0 for +0).
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp must not see the null data() of an empty vector (a query has no checkpoint).
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

class E2eCrashCampaignTest : public FederationTest,
                             public ::testing::WithParamInterface<CrashPoint> {
 protected:
  // The example task, three rounds, or (for an analytics point) a query of the same data:
  // deadlines long enough for a restart on a loaded machine (steps close as soon as every
  // site answered, so they cost nothing when all goes well).
  static v1::TaskSpec Spec(bool query) {
    v1::TaskSpec spec;
    if (query) {
      EXPECT_OK(common::ParseTextProto(kQuery, "query", &spec, nullptr));
    } else {
      absl::StatusOr<v1::TaskSpec> example = LoadExampleTask();
      EXPECT_OK(example.status());
      if (example.ok()) spec = *example;
      spec.set_rounds(kRounds);
    }
    spec.set_min_clients(3);
    spec.set_round_deadline_seconds(60);
    spec.mutable_secure_aggregation()->set_step_deadline_seconds(30);
    return spec;
  }

  // Stops every site and the coordinator (each must exit 0) and reads what was committed:
  // rounds 0 to kRounds and the last checkpoint of the training task, round 1 of a query.
  void StopAndRead(const std::string& task_id, bool query, Outcome* out) {
    for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
    ASSERT_OK(StopCoordinator());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store, OpenStore());
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask(task_id));
    EXPECT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
    const uint32_t last = query ? kAnalyticsRound : kRounds;
    EXPECT_EQ(task.last_committed_round(), static_cast<int>(last));
    ASSERT_OK_AND_ASSIGN(out->rounds, store->ListRounds(task_id));
    if (query) {
      ASSERT_EQ(out->rounds.size(), 1u);
      EXPECT_EQ(out->rounds[0].round(), kAnalyticsRound);
      EXPECT_GT(out->rounds[0].metrics_size(), 0);
    } else {
      ASSERT_EQ(out->rounds.size(), kRounds + 1);
      ASSERT_OK_AND_ASSIGN(out->last_checkpoint, store->GetCheckpoint(task_id, kRounds));
    }
    for (const v1::RoundRecord& r : out->rounds) {
      SCOPED_TRACE(absl::StrCat("round ", r.round()));
      // One session per stage, nobody dropped: a session interrupted by a kill was continued.
      EXPECT_EQ(r.attempts(), 1u);
      EXPECT_THAT(r.drops(), IsEmpty());
      EXPECT_THAT(r.fit_participants(), ElementsAreArray(Sites()));
      if (!query && r.round() > 0) {
        EXPECT_THAT(r.eval_participants(), ElementsAreArray(Sites()));
      }
    }
  }

  // The uninterrupted run; then the stores of the coordinator and the sites are wiped so
  // that the run under test starts from nothing as well (the sites would otherwise refuse
  // to contribute again, and the coordinator would reuse its pooled statistics).
  void RunReference(bool query) {
    if (Reference(query).has_value()) return;
    const absl::Time start = absl::Now();
    ASSERT_OK(StartCoordinator());
    ASSERT_OK(StartClients());
    ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(Spec(query)));
    ASSERT_EQ(task_id, "task-1");
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(90)));
    ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
    Outcome outcome;
    ASSERT_NO_FATAL_FAILURE(StopAndRead(task_id, query, &outcome));
    std::error_code error;
    std::filesystem::remove_all(data_dir(), error);
    ASSERT_FALSE(error) << error.message();
    for (const std::string& name : Sites()) {
      std::filesystem::remove_all(site(name).dir + "/store", error);
      ASSERT_FALSE(error) << error.message();
    }
    Reference(query) = std::move(outcome);
    std::fprintf(stderr, "reference run (%s): %s\n", query ? "query" : "training task",
                 absl::FormatDuration(absl::Now() - start).c_str());
  }

  // The coordinator, started with `fault`, dies by its own SIGKILL at the crash point (its
  // log holding `crash_line`, into `*first_life`), and is started again on `address` with
  // the same environment: the once file keeps the second life alive.
  void AwaitCoordinatorCrashAndRestart(const std::string& address,
                                       const std::map<std::string, std::string>& fault,
                                       const std::string& crash_line, std::string* first_life) {
    ASSERT_OK(WaitFor(
        "the coordinator to be killed",
        [&] {
          return !coordinator()->Running() ||
                 coordinator()->Log().find("event=task_finished") != std::string::npos;
        },
        absl::Seconds(90)));
    ASSERT_OK_AND_ASSIGN(ExitStatus how, coordinator()->Wait(absl::Seconds(30)));
    ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << coordinator()->LogTail();
    *first_life = coordinator()->Log();
    EXPECT_THAT(*first_life, HasSubstr(crash_line));
    ASSERT_OK(StartCoordinator(address, fault));
  }
};

// A crashed run's `outcome` against the uninterrupted run's: the same rounds, models,
// participants and metrics, bit for bit, and the same last checkpoint.
void ExpectSameOutcome(const Outcome& outcome, const Outcome& reference) {
  ASSERT_EQ(outcome.rounds.size(), reference.rounds.size());
  for (size_t r = 0; r < reference.rounds.size(); ++r) {
    SCOPED_TRACE(absl::StrCat("round ", r));
    const v1::RoundRecord& want = reference.rounds[r];
    const v1::RoundRecord& got = outcome.rounds[r];
    EXPECT_EQ(crypto::ToHex(got.model_hash()), crypto::ToHex(want.model_hash()));
    EXPECT_THAT(got.fit_participants(), ElementsAreArray(want.fit_participants()));
    ASSERT_EQ(got.metrics_size(), want.metrics_size());
    for (int m = 0; m < want.metrics_size(); ++m) {
      EXPECT_EQ(got.metrics(m).name(), want.metrics(m).name());
      // Exact: the same sums, decoded the same way.
      EXPECT_EQ(got.metrics(m).value(), want.metrics(m).value()) << want.metrics(m).name();
    }
  }
  EXPECT_TRUE(SameBits(outcome.last_checkpoint, reference.last_checkpoint))
      << "round " << kRounds << "'s checkpoint differs from the uninterrupted run's";
}

TEST_P(E2eCrashCampaignTest, RunCompletesBitIdenticalToUninterruptedRun) {
  const CrashPoint& point = GetParam();
  if (!ByDefault(point) && !LongTests()) {
    GTEST_SKIP() << "crash point " << point.Name()
                 << " runs in the long campaign only: set TESSERA_LONG_TESTS=1 (e.g. "
                    "TESSERA_LONG_TESTS=1 ctest --test-dir build -R CrashCampaign)";
  }
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  const bool query = IsQuery(point);
  ASSERT_NO_FATAL_FAILURE(RunReference(query));
  const Outcome& reference = *Reference(query);
  const absl::Time start = absl::Now();

  const bool site_point = point.daemon == CrashDaemon::kSite;
  const std::map<std::string, std::string> fault = {
      {kCrashAtVariable, point.Name()}, {kCrashOnceFileVariable, temp().File(kOnceFile)}};
  const std::string crash_line = absl::StrCat("event=test_crash point=", point.Name(), "\n");
  const size_t victim_log_start = ReadFileOrEmpty(site(kVictim).dir + "/log").size();
  ASSERT_OK(
      StartCoordinator("127.0.0.1:0", site_point ? std::map<std::string, std::string>() : fault));
  const std::string address = absl::StrCat("127.0.0.1:", port());
  for (const std::string& name : Sites()) {
    ASSERT_OK(StartClient(
        name, "", site_point && name == kVictim ? fault : std::map<std::string, std::string>()));
  }
  for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(Spec(query)));
  const std::string session = point.Session(task_id);
  const std::string work_id = point.WorkId(task_id);

  std::string first_life;
  if (site_point) {
    Site& victim = site(kVictim);
    ASSERT_OK_AND_ASSIGN(ExitStatus how, victim.process->Wait(absl::Seconds(90)));
    ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << victim.process->LogTail();
    // The site's log file also holds the reference run's lines.
    first_life = victim.process->Log().substr(victim_log_start);
    EXPECT_THAT(first_life, HasSubstr(crash_line));
    // It received the step, and died before it logged the answer as sent.
    EXPECT_THAT(first_life, HasSubstr(absl::StrCat(" work=", work_id, "\n")));
    EXPECT_THAT(first_life,
                Not(HasSubstr(absl::StrCat("event=work_answered work=", work_id, " "))));
    // Its session was not over when it died.
    ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse during, GetTask(task_id));
    EXPECT_EQ(during.task().state(), v1::TASK_RUNNING);
    // Restarted as the production daemon.
    ASSERT_OK(StartClient(kVictim));
  } else {
    // The coordinator dies by its own SIGKILL at the point (or the run ends without it).
    ASSERT_NO_FATAL_FAILURE(
        AwaitCoordinatorCrashAndRestart(address, fault, crash_line, &first_life));
  }

  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(90)));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  if (site_point) {
    // The second life answered the step from its store, once; or, if the first life's
    // answer was delivered, not again.
    const std::string second_life =
        site(kVictim).process->Log().substr(victim_log_start + first_life.size());
    EXPECT_EQ(Count(second_life, absl::StrCat("event=work_answered work=", work_id, " ")),
              point.moment == CrashMoment::kBeforeSend ? 1 : 0)
        << second_life;
  } else {
    // The second life continued the very session the first was in.
    EXPECT_THAT(coordinator()->Log(),
                HasSubstr(absl::StrCat("event=secagg_session_resumed session=", session)));
    EXPECT_THAT(coordinator()->Log(), Not(HasSubstr("event=test_crash")));
  }
  Outcome outcome;
  ASSERT_NO_FATAL_FAILURE(StopAndRead(task_id, query, &outcome));
  std::fprintf(stderr, "run crashed at %s: %s\n", point.Name().c_str(),
               absl::FormatDuration(absl::Now() - start).c_str());

  ExpectSameOutcome(outcome, reference);
}

// The set walks what the issue asks: every (stage x step) for both daemons, the analytics
// stage's included, a mid-step point per stage for both, and each name is found again (an unknown
// one is refused, naming the set).
TEST(E2eCrashCampaignPointsTest, EveryStageAndStepHasAPointForBothDaemons) {
  std::set<std::string> names;
  for (const CrashPoint& point : AllCrashPoints()) {
    EXPECT_TRUE(names.insert(point.Name()).second) << "twice: " << point.Name();
    ASSERT_OK_AND_ASSIGN(CrashPoint found, FindCrashPoint(point.Name()));
    EXPECT_EQ(found.Name(), point.Name());
  }
  for (const char* stage : {"statistics", "fit", "fit_evaluate", "evaluate", "analytics"}) {
    for (const char* step :
         {"advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking"}) {
      EXPECT_EQ(names.count(absl::StrCat("coordinator/", stage, "/", step, "/step_persisted")), 1u);
      EXPECT_EQ(names.count(absl::StrCat("site/", stage, "/", step, "/before_send")), 1u);
    }
    EXPECT_EQ(names.count(absl::StrCat("coordinator/", stage, "/masked_input/mid_step")), 1u);
    EXPECT_EQ(names.count(absl::StrCat("site/", stage, "/masked_input/after_send")), 1u);
    EXPECT_EQ(names.count(absl::StrCat("coordinator/", stage, "/session_ended")), 1u);
  }
  EXPECT_EQ(names.size(), 65u);  // 13 per stage
  for (const char* name : kDefaultPoints) EXPECT_EQ(names.count(name), 1u) << name;
  EXPECT_THAT(FindCrashPoint("coordinator/fit/nowhere"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no crash point \"coordinator/fit/nowhere\"; the points: ")));
}

INSTANTIATE_TEST_SUITE_P(Points, E2eCrashCampaignTest, ::testing::ValuesIn(AllCrashPoints()),
                         [](const ::testing::TestParamInfo<CrashPoint>& info) {
                           return TestName(info.param);
                         });

}  // namespace
}  // namespace tessera::e2e
