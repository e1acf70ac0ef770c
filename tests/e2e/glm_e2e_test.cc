// Exact regression (ModelSpec.GlmSpec) with the real daemons: three site daemons, mTLS gRPC,
// every round a secure-aggregation session.
//
//   E2eGlmTest.ThreeSiteDaemonsFitRsModelAndTheConsolePrintsIt: the smoking example over
//     three sites holding a third of the training rows each commits a report equal to R's
//     glm() on the pooled training rows (tests/research/reference) to 1e-6, every round
//     with all three sites, in at most 10 rounds; `tessera tasks show` prints the odds
//     ratios and `tessera query` the same report.
//   E2eGlmTest.ASiteLostInARoundFailsTheTaskInsteadOfFittingFewerSites: a site that dies
//     before its masked input of the first Newton round: the task fails (a sum over two of
//     the three sites would be another population's fit), naming the round.
//   E2eGlmTest.ACoordinatorKilledMidRoundResumesThatSessionAndTheFitIsRs: the coordinator is
//     SIGKILLed in round 3's session (its state before the masked-input step durable, or
//     with the sum unmasked but not stored); restarted, it continues the very session (the
//     sites would refuse to send the same coefficients' sums again), and the report is R's.
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/e2e/crash_points.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

// The example task, on the federation's dataset id.
v1::TaskSpec SmokingGlm() {
  v1::TaskSpec spec;
  EXPECT_OK(common::LoadProtoFile(SourcePath("deploy/examples/smoking_nhis_glm.textproto"), &spec));
  spec.mutable_dataset()->set_id("breast_cancer");
  return spec;
}

// R's coefficients of smoking_nhis_binomial: name -> {estimate, std_error, statistic,
// p_value, ci_low, ci_high}.
std::map<std::string, std::vector<double>> RCoefficients() {
  std::ifstream in(SourcePath("tests/research/reference/glm_coefficients.csv"));
  std::map<std::string, std::vector<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (cells.size() != 8 || cells[0] != "smoking_nhis_binomial") continue;
    std::vector<double>& values = out[cells[1]];
    for (size_t i = 2; i < cells.size(); ++i) {
      double v = 0;
      EXPECT_TRUE(absl::SimpleAtod(cells[i], &v)) << cells[i];
      values.push_back(v);
    }
  }
  return out;
}

void ExpectRelative(double got, double want, double tolerance, const std::string& what) {
  EXPECT_LE(std::abs(got - want), tolerance * std::abs(want))
      << what << ": got " << got << ", R gives " << want;
}

using E2eGlmTest = FederationTest;

TEST_F(E2eGlmTest, ThreeSiteDaemonsFitRsModelAndTheConsolePrintsIt) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData(Sites(), "smoking_nhis"));
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(const std::string id, SubmitTask(SmokingGlm()));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, WaitForTask(id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  ASSERT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
  ASSERT_TRUE(task.has_glm_report());
  const v1::GlmReport& report = task.glm_report();
  EXPECT_TRUE(report.converged());
  EXPECT_LE(report.rounds(), 10u);
  EXPECT_EQ(report.rows(), 8000);
  const std::map<std::string, std::vector<double>> r = RCoefficients();
  ASSERT_EQ(report.coefficients_size(), static_cast<int>(r.size()));
  for (const v1::GlmCoefficient& c : report.coefficients()) {
    ASSERT_TRUE(r.contains(c.name())) << c.name();
    const std::vector<double>& want = r.at(c.name());
    ExpectRelative(c.estimate(), want[0], 1e-6, c.name() + " estimate");
    ExpectRelative(c.std_error(), want[1], 1e-6, c.name() + " std_error");
    ExpectRelative(c.p_value(), want[3], 1e-5, c.name() + " p_value");
    ExpectRelative(c.ci_low(), want[4], 1e-6, c.name() + " ci_low");
  }
  // Every round's sum is over all three sites.
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(id));
  ASSERT_EQ(got.rounds_size(), static_cast<int>(report.rounds()) + 1);
  for (const v1::RoundRecord& round : got.rounds()) {
    EXPECT_EQ(round.fit_participants_size(), 3) << "round " << round.round();
  }

  ASSERT_OK_AND_ASSIGN(CommandResult shown, Console({"tasks", "show"}, {id}));
  ASSERT_EQ(shown.exit_code(), 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("binomial regression on 8000 rows: converged"));
  EXPECT_THAT(shown.out, HasSubstr("ODDS_RATIO (95% CI)"));
  EXPECT_THAT(shown.out, HasSubstr("0.7717 (0.6928, 0.8595)"));  // the ban's

  // `tessera query` asks again under another task: the sites decline every Newton round's
  // coefficients they already summed (the once-only rule), so that task cannot fit.
  const std::string file = temp().File("smoking_glm.textproto");
  ASSERT_OK(common::WriteFileAtomic(file, common::ToTextProto(SmokingGlm())));
  ASSERT_OK_AND_ASSIGN(CommandResult again, Console({"query"}, {file, "--timeout-seconds", "100"}));
  EXPECT_NE(again.exit_code(), 0) << again.out;
  EXPECT_THAT(again.err, HasSubstr("FAILED"));
  EXPECT_THAT(again.err, HasSubstr("ALREADY_CONTRIBUTED"));
}

TEST_F(E2eGlmTest, ASiteLostInARoundFailsTheTaskInsteadOfFittingFewerSites) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData(Sites(), "smoking_nhis"));
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClient(Sites()[0]));
  ASSERT_OK(StartClient(Sites()[1]));
  ASSERT_OK(StartClient(Sites()[2], "", {{"TESSERA_TEST_EXIT_BEFORE", "glm/masked_input"}}));
  for (const std::string& site : Sites()) ASSERT_OK(WaitClientReady(site));
  v1::TaskSpec spec = SmokingGlm();
  spec.set_max_round_attempts(2);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(5);
  ASSERT_OK_AND_ASSIGN(const std::string id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, WaitForTask(id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  EXPECT_EQ(task.state(), v1::TASK_FAILED);
  EXPECT_THAT(task.state_reason(), HasSubstr("round 1"));
  EXPECT_FALSE(task.has_glm_report());
  // The lost site exited on its fault, not on a signal.
  ASSERT_OK_AND_ASSIGN(ExitStatus how, site(Sites()[2]).process->Wait(absl::Seconds(10)));
  EXPECT_TRUE(how.exited && how.code == 3) << how.ToString();
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(id));
  for (const v1::RoundRecord& round : got.rounds()) {
    EXPECT_EQ(round.round(), 0u) << "a Newton round committed without every site";
  }
}

class E2eGlmCrashTest : public FederationTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(E2eGlmCrashTest, ACoordinatorKilledMidRoundResumesThatSessionAndTheFitIsRs) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData(Sites(), "smoking_nhis"));
  const std::map<std::string, std::string> fault = {
      {kCrashAtVariable, GetParam()}, {kCrashOnceFileVariable, temp().File("crashed-once")}};
  ASSERT_OK(StartCoordinator("127.0.0.1:0", fault));
  const std::string coordinator_address = address();
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(const std::string id, SubmitTask(SmokingGlm()));
  ASSERT_OK_AND_ASSIGN(ExitStatus how, coordinator()->Wait(absl::Seconds(90)));
  ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << coordinator()->LogTail();
  EXPECT_THAT(coordinator()->Log(), HasSubstr("event=test_crash point=" + GetParam()));
  ASSERT_OK(StartCoordinator(coordinator_address, fault));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, WaitForTask(id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  ASSERT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
  const std::map<std::string, std::vector<double>> r = RCoefficients();
  ASSERT_EQ(task.glm_report().coefficients_size(), static_cast<int>(r.size()));
  for (const v1::GlmCoefficient& c : task.glm_report().coefficients()) {
    ExpectRelative(c.estimate(), r.at(c.name())[0], 1e-6, c.name() + " estimate");
    ExpectRelative(c.std_error(), r.at(c.name())[1], 1e-6, c.name() + " std_error");
  }
  // Round 3 took one attempt: the restarted coordinator went on with its session.
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(id));
  ASSERT_GT(got.rounds_size(), 3);
  EXPECT_EQ(got.rounds(3).round(), 3u);
  EXPECT_EQ(got.rounds(3).attempts(), 1u);
  EXPECT_EQ(got.rounds(3).fit_participants_size(), 3);
}

INSTANTIATE_TEST_SUITE_P(Points, E2eGlmCrashTest,
                         ::testing::Values("coordinator/glm/masked_input/step_persisted",
                                           "coordinator/glm/session_ended"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return CrashPointTestName(info.param);
                         });

}  // namespace
}  // namespace tessera::e2e
