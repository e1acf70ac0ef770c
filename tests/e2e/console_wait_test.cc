// `tessera tasks wait` against a real coordinator exits by outcome: 0 completed (the
// federation tests), 1 failed (E2eSiteApprovalTest), 3 cancelled, 4 coordinator unreachable.

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

class E2eTasksWaitTest : public FederationTest {};

TEST_F(E2eTasksWaitTest, ExitsThreeForACancelledTaskAndFourWhenTheCoordinatorIsGone) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_min_clients(static_cast<uint32_t>(Sites().size()) + 1);  // waits for a 4th site
  ASSERT_OK_AND_ASSIGN(std::string waiting, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(CommandResult cancelled,
                       Console({"tasks", "cancel"}, {waiting, "--reason", "wrong dataset"}));
  ASSERT_EQ(cancelled.exit_code(), 0) << cancelled.err;
  ASSERT_OK_AND_ASSIGN(CommandResult waited, Console({"tasks", "wait"}, {waiting}));
  EXPECT_EQ(waited.exit_code(), 3) << waited.err;
  EXPECT_THAT(waited.err, HasSubstr("CANCELLED"));

  spec.set_name(spec.name() + "-2");
  ASSERT_OK_AND_ASSIGN(std::string running, SubmitTask(spec));
  ASSERT_OK(StopCoordinator());
  ASSERT_OK_AND_ASSIGN(
      CommandResult gone,
      Console({"tasks", "wait"}, {running, "--unreachable-seconds", "1", "--poll-ms", "50"}));
  EXPECT_EQ(gone.exit_code(), 4) << gone.err;
  EXPECT_THAT(gone.err, HasSubstr("has not answered for 1 s"));
}

// A restart of the coordinator while `tasks wait` follows a task: the wait rides it out and
// sees the new coordinator at once (it took 30-60 s when the console polled its old channel,
// longer than this test's deadline), and the task, resumed by the new coordinator, is
// cancelled: exit 3.
TEST_F(E2eTasksWaitTest, RidesOutACoordinatorRestartThenExitsThreeWhenCancelled) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_min_clients(static_cast<uint32_t>(Sites().size()) + 1);  // waits for a 4th site
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Process> wait,
      Process::Start({ConsoleBinary(), "tasks", "wait", "--config",
                      temp().File("operator-console.textproto"), "--poll-ms", "100", task_id},
                     temp().File("wait.log")));
  // The wait has heard from the first coordinator: it prints why the task waits.
  ASSERT_OK(WaitFor(
      "the wait's first answer",
      [&] {
        return wait->Log().find(task_id +
                                ": waiting for 4 sites holding dataset breast_cancer "
                                "(have 3)") != std::string::npos;
      },
      absl::Seconds(20)));
  ASSERT_OK(StopCoordinator());
  ASSERT_OK(StartCoordinator(absl::StrCat("127.0.0.1:", port())));
  ASSERT_OK_AND_ASSIGN(CommandResult cancelled, Console({"tasks", "cancel"}, {task_id}));
  ASSERT_EQ(cancelled.exit_code(), 0) << cancelled.err;
  const absl::Time cancelled_at = absl::Now();
  ASSERT_OK_AND_ASSIGN(ExitStatus how, wait->Wait(absl::Seconds(20)));
  EXPECT_TRUE(how.exited && how.code == 3) << how.ToString() << "\n" << wait->Log();
  EXPECT_THAT(wait->Log(), HasSubstr("CANCELLED"));
  // Polled every 100 ms: the cancellation is seen well within the 10-s reconnect backoff.
  EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(5));
}

}  // namespace
}  // namespace tessera::e2e
