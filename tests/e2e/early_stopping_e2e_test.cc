// A validation split with early stopping (TrainingSpec.validation_fraction, early_stopping)
// with the real daemons: three site daemons, mTLS gRPC, every session secure.
//
//   E2eEarlyStoppingTest.SitesHoldOutRowsTheRoundIsSelectedAndTestedOnceAndEverySiteVerifiesIt:
//     the example task stops early, selects a round, and evaluates that round's model once
//     on the test rows (a STAGE_TEST session over the three sites); `tessera tasks show`
//     prints the selection and the test metrics (`--metric` the test metric); the selected
//     round's provenance record (with the test session) verifies against each site's own
//     ledger; and `tessera models export` exports the selected round's model.
//   E2eEarlyStoppingCrashTest.ACoordinatorKilledInTheTestSessionResumesIt: SIGKILLed in the
//     test session (before the masked input, or with the sum unmasked but not stored), the
//     restarted coordinator continues that very session and commits the test metrics.
#include <csignal>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/provenance.pb.h"
#include "proto/task.pb.h"
#include "tests/e2e/crash_points.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::TaskSpec EarlyStopping() {
  v1::TaskSpec spec;
  EXPECT_OK(common::LoadProtoFile(
      SourcePath("deploy/examples/breast_cancer_early_stopping.textproto"), &spec));
  return spec;
}

bool Finished(const v1::TaskRecord& t) {
  return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED ||
         t.state() == v1::TASK_CANCELLED;
}

// The STAGE_TEST attempts of the selected round's record.
int TestAttempts(const v1::GetTaskResponse& got, uint32_t round) {
  int n = 0;
  for (const v1::RoundRecord& r : got.rounds()) {
    if (r.round() != round) continue;
    for (const v1::StageAttempt& a : r.stage_attempts()) n += a.stage() == v1::STAGE_TEST ? 1 : 0;
  }
  return n;
}

using E2eEarlyStoppingTest = FederationTest;

TEST_F(E2eEarlyStoppingTest,
       SitesHoldOutRowsTheRoundIsSelectedAndTestedOnceAndEverySiteVerifiesIt) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(const std::string id, SubmitTask(EarlyStopping()));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, WaitForTask(id, Finished));
  ASSERT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
  EXPECT_THAT(task.state_reason(), HasSubstr("early stopping after round"));
  const uint32_t selected = task.selected_round();
  ASSERT_GT(selected, 0u);
  EXPECT_LT(selected, static_cast<uint32_t>(task.last_committed_round()));
  EXPECT_EQ(task.test_participants_size(), 3);
  std::map<std::string, double> test;
  for (const v1::Metric& m : task.test_metrics()) test[m.name()] = m.value();
  ASSERT_TRUE(test.contains("accuracy"));
  EXPECT_GT(test["accuracy"], 0.93);
  EXPECT_EQ(test["num_examples"], 114);  // every test row, once
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(id));
  EXPECT_EQ(TestAttempts(got, selected), 1);
  // The sites trained on the rows outside the split: 455 training rows over 3 sites (152,
  // 152, 151), each holding out round(0.25 n) = 38; those 114 are what every round was
  // evaluated on (as many as the test rows, by chance).
  for (const v1::RoundRecord& r : got.rounds()) {
    for (const v1::Metric& m : r.metrics()) {
      if (m.name() == "num_train_rows") {
        EXPECT_EQ(m.value(), 455 - 114);
      } else if (m.name() == "num_examples") {
        EXPECT_EQ(m.value(), 114) << "round " << r.round();
      }
    }
  }

  ASSERT_OK_AND_ASSIGN(CommandResult shown, Console({"tasks", "show"}, {id}));
  ASSERT_EQ(shown.exit_code(), 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr(absl::StrCat("selected    round ", selected, ": round ",
                                                selected, " has the best validation loss")));
  EXPECT_THAT(shown.out, HasSubstr(absl::StrCat("test        round ", selected,
                                                " on the test rows of 3 sites: ")));

  // `--metric` answers with the task's reported figure: the test metric.
  ASSERT_OK_AND_ASSIGN(CommandResult metric, Console({"tasks", "show"}, {id, "--metric", "auc"}));
  ASSERT_EQ(metric.exit_code(), 0) << metric.err;
  EXPECT_EQ(metric.out, absl::StrFormat("%.4f\n", test["auc"]));

  // The selected round's record carries the test session; each site verifies it.
  const std::string record = temp().File("selected.provenance");
  ASSERT_OK_AND_ASSIGN(
      CommandResult saved,
      Console({"tasks", "provenance"}, {id, "--round", absl::StrCat(selected), "--out", record}));
  ASSERT_EQ(saved.exit_code(), 0) << saved.out << saved.err;
  v1::RoundProvenance provenance;
  ASSERT_OK(common::LoadProtoFile(record, &provenance));
  bool has_test = false;
  for (const v1::SessionProvenance& s : provenance.sessions()) {
    has_test |= s.stage() == v1::STAGE_TEST;
  }
  EXPECT_TRUE(has_test);
  for (const std::string& name : Sites()) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(CommandResult audit,
                         RunCommand({ClientBinary(), "audit", "provenance", record, "--config",
                                     site(name).config_path}));
    EXPECT_EQ(audit.exit_code(), 0) << audit.out << audit.err;
    EXPECT_THAT(audit.out, HasSubstr(absl::StrCat("/r", selected, "/test/a1")));
    EXPECT_THAT(audit.out, Not(HasSubstr("mismatch")));
  }

  // `models export` without --round exports the tested model.
  const std::string exported = temp().File("model.json");
  ASSERT_OK_AND_ASSIGN(CommandResult out,
                       Console({"models", "export"}, {id, "--format", "json", "--out", exported}));
  ASSERT_EQ(out.exit_code(), 0) << out.out << out.err;
  ASSERT_OK_AND_ASSIGN(CommandResult verified, Console({"models", "verify"}, {exported}));
  EXPECT_THAT(verified.out, HasSubstr(absl::StrCat("round ", selected, " of 100")));
}

class E2eEarlyStoppingCrashTest : public FederationTest,
                                  public ::testing::WithParamInterface<std::string> {};

TEST_P(E2eEarlyStoppingCrashTest, ACoordinatorKilledInTheTestSessionResumesIt) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  const std::map<std::string, std::string> fault = {
      {kCrashAtVariable, GetParam()}, {kCrashOnceFileVariable, temp().File("crashed-once")}};
  ASSERT_OK(StartCoordinator("127.0.0.1:0", fault));
  const std::string coordinator_address = address();
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(const std::string id, SubmitTask(EarlyStopping()));
  ASSERT_OK_AND_ASSIGN(ExitStatus how, coordinator()->Wait(absl::Seconds(120)));
  ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << coordinator()->LogTail();
  EXPECT_THAT(coordinator()->Log(), HasSubstr("event=test_crash point=" + GetParam()));
  ASSERT_OK(StartCoordinator(coordinator_address, fault));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, WaitForTask(id, Finished));
  ASSERT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
  ASSERT_GT(task.selected_round(), 0u);
  EXPECT_EQ(task.test_participants_size(), 3);
  EXPECT_FALSE(task.test_metrics().empty()) << task.state_reason();
  // One attempt: the restarted coordinator went on with the session (the sites would refuse
  // to evaluate the same model on their test rows in another).
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(id));
  EXPECT_EQ(TestAttempts(got, task.selected_round()), 1);
}

INSTANTIATE_TEST_SUITE_P(Points, E2eEarlyStoppingCrashTest,
                         ::testing::Values("coordinator/test/masked_input/step_persisted",
                                           "coordinator/test/session_ended"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return CrashPointTestName(info.param);
                         });

}  // namespace
}  // namespace tessera::e2e
