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

}  // namespace
}  // namespace tessera::e2e
