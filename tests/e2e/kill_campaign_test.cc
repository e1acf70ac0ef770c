// The kill campaign (issue 7, "Must show"): with real daemons, the coordinator is SIGKILLed
// at every secure-aggregation step of a FIT and of an EVALUATE session and in the middle of
// a step, and a site is SIGKILLed in the middle of a session; each time the killed daemon is
// restarted and the task must complete with a model bit-identical to an uninterrupted run:
// every round's model hash and metrics, and the last checkpoint's floats bit for bit. The
// sessions are continued, not redone (the sites would refuse to contribute twice): every
// round takes one attempt and drops nobody.
//
// Each kill point is its own test (TEST_P, ~3 s alone, ~6 s under ctest -j2). Five run by
// default (fit masked_input and unmasking, evaluate consistency_check, the mid-step kill
// of fit masked_input, a site killed before sending its fit consistency check); the whole
// campaign of fourteen with TESSERA_LONG_TESTS=1, e.g.
//   TESSERA_LONG_TESTS=1 ctest --test-dir build -R Kill -j2
// Each test makes its own uninterrupted reference run first (in the same directory, whose
// stores are then wiped); a process that runs several kill points (gtest_filter) makes it
// once and reuses it: the model depends only on the data and the seeds, not on the
// certificates or the masks (which cancel exactly in the sum).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uint32_t kRounds = 3;
constexpr char kOnceFile[] = "kill-once";

// Where a daemon is killed.
struct KillPoint {
  // The test's name suffix.
  const char* name;
  // The fault variable and its value (tests/e2e/faulty_*_main.cc).
  const char* variable;
  const char* value;
  // The session the kill interrupts: the coordinator's kill line names it, and the
  // restarted coordinator resumes it. For a site: the work id of the step whose answer it
  // recorded but did not send.
  const char* session;
  // A site fault (hospital-b), not the coordinator's.
  bool site = false;
  // Runs without TESSERA_LONG_TESTS=1.
  bool by_default = false;
};

constexpr char kAt[] = "TESSERA_TEST_KILL_AT";
constexpr char kMid[] = "TESSERA_TEST_KILL_MID";
constexpr char kBeforeSend[] = "TESSERA_TEST_KILL_BEFORE_SEND";
constexpr char kVictim[] = "hospital-b";

// The count /2 selects the second session of the stage: round 2's (round 1 has the first).
const KillPoint kPoints[] = {
    {"fit_advertise_keys", kAt, "fit/advertise_keys/2", "task-1/r2/fit/a1"},
    {"fit_share_keys", kAt, "fit/share_keys/2", "task-1/r2/fit/a1"},
    {"fit_masked_input", kAt, "fit/masked_input/2", "task-1/r2/fit/a1", false, true},
    {"fit_consistency_check", kAt, "fit/consistency_check/2", "task-1/r2/fit/a1"},
    {"fit_unmasking", kAt, "fit/unmasking/2", "task-1/r2/fit/a1", false, true},
    {"evaluate_advertise_keys", kAt, "evaluate/advertise_keys/2", "task-1/r2/evaluate/a1"},
    {"evaluate_share_keys", kAt, "evaluate/share_keys/2", "task-1/r2/evaluate/a1"},
    {"evaluate_masked_input", kAt, "evaluate/masked_input/2", "task-1/r2/evaluate/a1"},
    {"evaluate_consistency_check", kAt, "evaluate/consistency_check/2", "task-1/r2/evaluate/a1",
     false, true},
    {"evaluate_unmasking", kAt, "evaluate/unmasking/2", "task-1/r2/evaluate/a1"},
    // Mid-step: right after the session accepted the first answer to the step.
    {"mid_fit_masked_input", kMid, "fit/masked_input/2", "task-1/r2/fit/a1", false, true},
    {"mid_evaluate_unmasking", kMid, "evaluate/unmasking/2", "task-1/r2/evaluate/a1"},
    // A site, after recording its answer and before sending it (its first FIT session).
    {"site_fit_consistency_check", kBeforeSend, "fit/consistency_check", "task-1/r1/fit/a1/s3",
     true, true},
    {"site_evaluate_unmasking", kBeforeSend, "evaluate/unmasking", "task-1/r1/evaluate/a1/s4",
     true},
};

// Names the point in gtest's output (rather than dumping the struct's bytes).
void PrintTo(const KillPoint& point, std::ostream* os) { *os << point.name; }

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
  std::vector<float> last_checkpoint;
};

// The uninterrupted run, made once per process.
std::optional<Outcome>& Reference() {
  static std::optional<Outcome> reference;
  return reference;
}

// Bit-identical floats: the same bytes, not merely == (which would take -0 for +0).
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class E2eKillCampaignTest : public FederationTest, public ::testing::WithParamInterface<KillPoint> {
 protected:
  // The example task, three rounds; deadlines long enough for a restart on a loaded machine
  // (steps close as soon as every site answered, so they cost nothing when all goes well).
  static v1::TaskSpec Spec() {
    absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
    EXPECT_OK(spec.status());
    spec->set_rounds(kRounds);
    spec->set_min_clients(3);
    spec->set_round_deadline_seconds(60);
    spec->mutable_secure_aggregation()->set_step_deadline_seconds(30);
    return *spec;
  }

  // Stops every site and the coordinator (each must exit 0) and reads what was committed.
  void StopAndRead(const std::string& task_id, Outcome* out) {
    for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
    ASSERT_OK(StopCoordinator());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store, OpenStore());
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, store->GetTask(task_id));
    EXPECT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
    EXPECT_EQ(task.last_committed_round(), static_cast<int>(kRounds));
    ASSERT_OK_AND_ASSIGN(out->rounds, store->ListRounds(task_id));
    ASSERT_EQ(out->rounds.size(), kRounds + 1);
    ASSERT_OK_AND_ASSIGN(out->last_checkpoint, store->GetCheckpoint(task_id, kRounds));
    for (const v1::RoundRecord& r : out->rounds) {
      SCOPED_TRACE(absl::StrCat("round ", r.round()));
      // One session per stage, nobody dropped: a session interrupted by a kill was continued.
      EXPECT_EQ(r.attempts(), 1u);
      EXPECT_THAT(r.drops(), IsEmpty());
      EXPECT_THAT(r.fit_participants(), ElementsAreArray(Sites()));
      if (r.round() > 0) {
        EXPECT_THAT(r.eval_participants(), ElementsAreArray(Sites()));
      }
    }
  }

  // The uninterrupted run; then the stores of the coordinator and the sites are wiped so
  // that the run under test starts from nothing as well (the sites would otherwise refuse
  // to contribute again, and the coordinator would reuse its pooled statistics).
  void RunReference() {
    if (Reference().has_value()) return;
    const absl::Time start = absl::Now();
    ASSERT_OK(StartCoordinator());
    ASSERT_OK(StartClients());
    ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(Spec()));
    ASSERT_EQ(task_id, "task-1");
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(90)));
    ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
    Outcome outcome;
    ASSERT_NO_FATAL_FAILURE(StopAndRead(task_id, &outcome));
    std::error_code error;
    std::filesystem::remove_all(data_dir(), error);
    ASSERT_FALSE(error) << error.message();
    for (const std::string& name : Sites()) {
      std::filesystem::remove_all(site(name).dir + "/store", error);
      ASSERT_FALSE(error) << error.message();
    }
    Reference() = std::move(outcome);
    std::fprintf(stderr, "reference run: %s\n", absl::FormatDuration(absl::Now() - start).c_str());
  }
};

TEST_P(E2eKillCampaignTest, RunCompletesBitIdenticalToUninterruptedRun) {
  const KillPoint& point = GetParam();
  if (!point.by_default && !LongTests()) {
    GTEST_SKIP() << "kill point " << point.name
                 << " runs in the long campaign only: set TESSERA_LONG_TESTS=1 (e.g. "
                    "TESSERA_LONG_TESTS=1 ctest --test-dir build -R Kill)";
  }
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_NO_FATAL_FAILURE(RunReference());
  const Outcome& reference = *Reference();
  const absl::Time start = absl::Now();

  const std::map<std::string, std::string> fault = {{point.variable, point.value}};
  std::map<std::string, std::string> coordinator_env;
  if (!point.site) {
    coordinator_env = fault;
    coordinator_env["TESSERA_TEST_KILL_ONCE_FILE"] = temp().File(kOnceFile);
  }
  const size_t victim_log_start = ReadFileOrEmpty(site(kVictim).dir + "/log").size();
  ASSERT_OK(StartCoordinator("127.0.0.1:0", coordinator_env));
  const std::string address = absl::StrCat("127.0.0.1:", port());
  for (const std::string& name : Sites()) {
    ASSERT_OK(StartClient(
        name, "", point.site && name == kVictim ? fault : std::map<std::string, std::string>()));
  }
  for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(Spec()));

  std::string first_life;
  if (point.site) {
    Site& victim = site(kVictim);
    ASSERT_OK_AND_ASSIGN(ExitStatus how, victim.process->Wait(absl::Seconds(90)));
    ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << victim.process->LogTail();
    // The site's log file also holds the reference run's lines.
    first_life = victim.process->Log().substr(victim_log_start);
    EXPECT_THAT(first_life, HasSubstr(absl::StrCat("event=test_fault_kill before=", point.value)));
    // It received the step and died before answering it.
    EXPECT_THAT(first_life, HasSubstr(absl::StrCat(" work=", point.session, "\n")));
    EXPECT_THAT(first_life,
                Not(HasSubstr(absl::StrCat("event=work_answered work=", point.session, " "))));
    // Its session was not over when it died.
    ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse during, GetTask(task_id));
    EXPECT_EQ(during.task().state(), v1::TASK_RUNNING);
    ASSERT_OK(StartClient(kVictim));
  } else {
    // The coordinator dies by its own SIGKILL at the point (or the run ends without it).
    ASSERT_OK(WaitFor(
        "the coordinator to be killed",
        [&] {
          return !coordinator()->Running() ||
                 coordinator()->Log().find("event=task_finished") != std::string::npos;
        },
        absl::Seconds(90)));
    ASSERT_OK_AND_ASSIGN(ExitStatus how, coordinator()->Wait(absl::Seconds(30)));
    ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << coordinator()->LogTail();
    first_life = coordinator()->Log();
    // Killed where it was asked to be: "fit/masked_input/2" -> step masked_input.
    const std::vector<std::string> parts = absl::StrSplit(point.value, '/');
    ASSERT_GE(parts.size(), 2u);
    EXPECT_THAT(first_life,
                HasSubstr(absl::StrCat(
                    "event=test_fault_kill where=",
                    point.variable == std::string(kMid) ? "mid-step" : "\"after persisting\"",
                    " session=", point.session, " step=", parts[1], "\n")));
    // Same environment: the once file keeps the second life alive.
    ASSERT_OK(StartCoordinator(address, coordinator_env));
  }

  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(90)));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  if (point.site) {
    // The second life answered the step from its store, once.
    const std::string second_life =
        site(kVictim).process->Log().substr(victim_log_start + first_life.size());
    EXPECT_EQ(Count(second_life, absl::StrCat("event=work_answered work=", point.session, " ")), 1)
        << second_life;
  } else {
    // The second life continued the very session the first was in.
    EXPECT_THAT(coordinator()->Log(),
                HasSubstr(absl::StrCat("event=secagg_session_resumed session=", point.session)));
    EXPECT_THAT(coordinator()->Log(), Not(HasSubstr("event=test_fault_kill")));
  }
  Outcome outcome;
  ASSERT_NO_FATAL_FAILURE(StopAndRead(task_id, &outcome));
  std::fprintf(stderr, "run killed at %s: %s\n", point.name,
               absl::FormatDuration(absl::Now() - start).c_str());

  ASSERT_EQ(outcome.rounds.size(), reference.rounds.size());
  for (size_t r = 0; r < reference.rounds.size(); ++r) {
    SCOPED_TRACE(absl::StrCat("round ", r));
    const v1::RoundRecord& want = reference.rounds[r];
    const v1::RoundRecord& got = outcome.rounds[r];
    EXPECT_EQ(crypto::ToHex(got.model_hash()), crypto::ToHex(want.model_hash()));
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

INSTANTIATE_TEST_SUITE_P(Points, E2eKillCampaignTest, ::testing::ValuesIn(kPoints),
                         [](const ::testing::TestParamInfo<KillPoint>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace tessera::e2e
